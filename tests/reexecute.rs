//! Re-execution through the binary (Dagster case 23, without its bugs with dynamic steps): from
//! failure, and by step selection.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{StoredJob, Workspace};
use serde_json::{Value, json};

/// 20 files for behave; the keys in `failing` fail on the first run.
fn setup(failing: &[usize]) -> StoredJob {
    let ws = Workspace::new();
    let names: Vec<String> = (0..20).map(|i| format!("f{i:02}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), if failing.contains(&i) { &b"fail:not yet"[..] } else { &b"ok\n"[..] }))
        .collect();
    ws.files("cmds", &files);
    let job = common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "")
        + "[ops.summarize_directory]\ncomponent = \"summarize_directory\"\ninputs = { results = { collect = \"behave\" } }\n";
    StoredJob::new(ws, &job)
}

fn keys(report: &Value) -> Vec<String> {
    report["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn from_failure_reruns_only_the_failed_clones_and_what_they_abandoned() {
    let s = setup(&[3, 11]);
    let (code, first, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1);
    assert_eq!(first["status"], "failure");
    // Fix the two inputs, then re-execute from failure.
    for i in [3, 11] {
        std::fs::write(s.ws.path().join(format!("cmds/f{i:02}.txt")), b"ok\n").unwrap();
    }
    let parent = first["run_id"].as_str().unwrap();
    let (code, second, stderr) = s.run(&["reexecute", parent, "--from-failure", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second["status"], "success");
    assert_eq!(second["parent_run_id"], parent);
    assert_eq!(keys(&second), ["behave[f03_txt]", "behave[f11_txt]", "summarize_directory"]);
    let reused: Vec<&str> = second["reused"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(reused.len(), 19);
    assert_eq!(reused[0], "files_in_directory");
    assert!(reused.contains(&"behave[f00_txt]") && !reused.contains(&"behave[f03_txt]"));
    assert_eq!(second["outputs"]["summarize_directory"]["result"], json!({"files": 20, "bytes": 60, "lines": 20}));
    // The store has it, with its parent, exactly as printed.
    let (_, shown, _) = s.run(&["show", second["run_id"].as_str().unwrap(), "--json"]);
    assert_eq!(shown, second);
    // From failure on a run that succeeded: Dagster's error.
    let (code, _, stderr) = s.run(&["reexecute", second["run_id"].as_str().unwrap(), "--from-failure"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("Cannot reexecute from failure a run that is not failed"), "{stderr}");
}

#[test]
fn collect_order_stays_the_parents_emission_order() {
    let s = setup(&[0]);
    // A second collect that keeps the list itself.
    let job = std::fs::read_to_string(&s.job).unwrap()
        + "[ops.order]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"behave\" } }\n";
    std::fs::write(&s.job, job).unwrap();
    let (_, first, _) = s.run(&["run", &s.job, "--json"]);
    std::fs::write(s.ws.path().join("cmds/f00.txt"), b"ok\n").unwrap();
    // f00 is the only clone that runs again, so it finishes after every reused one.
    let (code, second, stderr) = s.run(&["reexecute", first["run_id"].as_str().unwrap(), "--from-failure", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let paths: Vec<String> = second["outputs"]["order"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("/data/f{i:02}.txt")).collect();
    assert_eq!(paths, expected);
}

#[test]
fn step_selection_reruns_what_is_named() {
    let s = setup(&[]);
    let (code, first, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0);
    let id = first["run_id"].as_str().unwrap();
    let (code, one, _) = s.run(&["reexecute", id, "--step", "behave[f03_txt]", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(keys(&one), ["behave[f03_txt]"]);
    let (_, with_downstream, _) = s.run(&["reexecute", id, "--step", "behave[f03_txt]*", "--json"]);
    assert_eq!(keys(&with_downstream), ["behave[f03_txt]", "summarize_directory"]);
    let (_, every_key, _) = s.run(&["reexecute", id, "--step", "behave[?]", "--json"]);
    assert_eq!(keys(&every_key).len(), 20);
    assert!(every_key["reused"].as_array().unwrap().contains(&json!("summarize_directory")));
    for unknown in ["behave", "behave[f99_txt]", "nope[?]"] {
        let (code, _, stderr) = s.run(&["reexecute", id, "--step", unknown]);
        assert_eq!(code, 2, "{unknown}");
        assert!(stderr.contains(&format!("Step selection refers to unknown step: {unknown}")), "{stderr}");
    }
    let (code, _, stderr) = s.run(&["reexecute", id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--from-failure") || stderr.contains("required"), "{stderr}");
}

#[test]
fn a_reexecution_keeps_the_parents_set_overrides() {
    let ws = Workspace::new();
    ws.files("cmds", &[("top.txt", b"ok\n")]);
    ws.files("cmds/sub", &[("inner.txt", b"ok\n")]);
    let s = StoredJob::new(ws, &common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", ""));
    let (code, first, stderr) = s.run(&["run", &s.job, "--json", "--set", "files_in_directory.config.path=/data/sub"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&first), ["files_in_directory", "behave[inner_txt]"]);
    // Running the fan-out again lists the overridden folder, not the job file's.
    let parent = first["run_id"].as_str().unwrap();
    let (code, second, stderr) = s.run(&["reexecute", parent, "--step", "files_in_directory*", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&second), ["files_in_directory", "behave[inner_txt]"]);
    assert_eq!(second["outputs"], first["outputs"]);
}

fn reused(report: &Value) -> Vec<String> {
    report["reused"].as_array().map_or_else(Vec::new, |r| r.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
}

fn status_of<'a>(report: &'a Value, key: &str) -> &'a Value {
    &report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key}"))["status"]
}

/// How many times behave ran for `key` (its `mark:` files).
fn marks(dir: &std::path::Path, key: &str) -> usize {
    (1..).take_while(|n| dir.join(format!("{key}.{n}")).exists()).count()
}

/// `n` files for behave (each marks its executions in `marks/`), a chained map `stat` (mapper,
/// per key, over behave's result) and a collect `summary` over `stat`; the keys in `failing`
/// fail.
fn chain(n: usize, failing: &[usize]) -> StoredJob {
    let ws = Workspace::new();
    ws.files("marks", &[]);
    let s = StoredJob::new(ws, &common::behave_chain_job(""));
    for i in 0..n {
        write_command(&s, i, failing.contains(&i));
    }
    s
}

fn write_command(s: &StoredJob, i: usize, fail: bool) {
    let command: &[u8] = if fail { b"mark:/marks\nfail:bad row\n" } else { b"mark:/marks\nok\n" };
    s.ws.files("cmds", &[(&format!("f{i:02}.txt"), command)]);
}

fn file_keys(op: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{op}[f{i:02}_txt]")).collect()
}

#[test]
fn a_reexecution_of_a_reexecution_runs_only_what_is_still_failed() {
    // Ten files, two bad: R1 fails two clones.
    let s = setup_ten(&[2, 7]);
    let (code, r1, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1);
    assert_eq!(
        r1["error"],
        "Execution of run for \"chain\" failed. Steps failed: ['parse[f02_txt]', 'parse[f07_txt]']."
    );
    // One file fixed: R2 runs the two failed clones and what they abandoned, and fails the other.
    write_command(&s, 2, false);
    let (code, r2, stderr) = s.run(&["reexecute", r1["run_id"].as_str().unwrap(), "--from-failure", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        keys(&r2),
        ["parse[f02_txt]", "parse[f07_txt]", "stat[f02_txt]", "stat[f07_txt]", "summary"].map(String::from)
    );
    assert_eq!(r2["error"], "Execution of run for \"chain\" failed. Steps failed: ['parse[f07_txt]'].");
    assert_eq!(status_of(&r2, "stat[f07_txt]"), "abandoned");
    // The other fixed: R3 runs that clone, its stat and the collect; everything R2 took from R1
    // is R2's own, so none of it runs again.
    write_command(&s, 7, false);
    let r2_id = r2["run_id"].as_str().unwrap();
    let (code, r3, stderr) = s.run(&["reexecute", r2_id, "--from-failure", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(r3["parent_run_id"], r2_id);
    assert_eq!(keys(&r3), ["parse[f07_txt]", "stat[f07_txt]", "summary"]);
    let mut expected_reused = vec!["files_in_directory".to_owned()];
    expected_reused.extend(file_keys("parse", 0..10).into_iter().filter(|k| k != "parse[f07_txt]"));
    expected_reused.extend(file_keys("stat", 0..10).into_iter().filter(|k| k != "stat[f07_txt]"));
    assert_eq!(reused(&r3), expected_reused);
    let marks_dir = s.ws.path().join("marks");
    let runs: Vec<usize> = (0..10).map(|i| marks(&marks_dir, &format!("f{i:02}_txt"))).collect();
    assert_eq!(runs, [1, 1, 2, 1, 1, 1, 1, 3, 1, 1]);
    // The outputs of a fresh run of the fixed files, and `show` gives R3 as printed.
    let (_, fresh, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(r3["outputs"], fresh["outputs"]);
    assert_eq!(r3["outputs"]["summary"]["result"].as_array().unwrap().len(), 10);
    let (_, shown, _) = s.run(&["show", r3["run_id"].as_str().unwrap(), "--json"]);
    assert_eq!(shown, r3);
    // A step R2 took from R1 is a step of R2: selecting it on R2 (and on R3) runs exactly it.
    for run in [r2_id, r3["run_id"].as_str().unwrap()] {
        let (code, again, stderr) = s.run(&["reexecute", run, "--step", "parse[f04_txt]", "--json"]);
        assert_eq!(code, if run == r2_id { 1 } else { 0 }, "{stderr}");
        assert_eq!(keys(&again), ["parse[f04_txt]"]);
    }
    // R1, the fresh run, and the two selections.
    assert_eq!(marks(&marks_dir, "f04_txt"), 4);
}

fn setup_ten(failing: &[usize]) -> StoredJob {
    chain(10, failing)
}

#[test]
fn a_selection_runs_exactly_what_it_names_even_on_a_failed_run() {
    let s = chain(10, &[2, 7]);
    let (code, r1, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1);
    let r1_id = r1["run_id"].as_str().unwrap();
    // `stat[?]*` names every stat clone and the collect: the failed parse clones were not
    // selected, so their failures stand (they do not run), and what they abandon stays so.
    let (code, r2, stderr) = s.run(&["reexecute", r1_id, "--step", "stat[?]*", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    let mut expected = file_keys("stat", 0..10);
    expected.push("summary".into());
    assert_eq!(keys(&r2), expected);
    for i in 0..10 {
        let status = if i == 2 || i == 7 { "abandoned" } else { "success" };
        assert_eq!(status_of(&r2, &format!("stat[f{i:02}_txt]")), status, "{i}");
    }
    assert_eq!(status_of(&r2, "summary"), "abandoned");
    let mut taken = vec!["files_in_directory".to_owned()];
    taken.extend(file_keys("parse", 0..10));
    assert_eq!(reused(&r2), taken);
    assert_eq!(
        r2["error"],
        "Execution of run for \"chain\" failed. Steps failed: ['parse[f02_txt]', 'parse[f07_txt]']."
    );
    let marks_dir = s.ws.path().join("marks");
    assert!((0..10).all(|i| marks(&marks_dir, &format!("f{i:02}_txt")) == 1), "a parse clone ran again");

    // Selecting a failed clone alone runs it alone: what it abandoned was not selected.
    write_command(&s, 2, false);
    let (code, r3, stderr) = s.run(&["reexecute", r1_id, "--step", "parse[f02_txt]", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(keys(&r3), ["parse[f02_txt]"]);
    assert_eq!(status_of(&r3, "parse[f02_txt]"), "success");
    assert!(reused(&r3).contains(&"stat[f02_txt]".to_owned()) && reused(&r3).contains(&"summary".to_owned()));
    // From failure on that run picks up what is still not done.
    write_command(&s, 7, false);
    let (code, r4, stderr) = s.run(&["reexecute", r3["run_id"].as_str().unwrap(), "--from-failure", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&r4), ["parse[f07_txt]", "stat[f02_txt]", "stat[f07_txt]", "summary"]);
    let (_, fresh, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(r4["outputs"], fresh["outputs"]);
}

#[test]
fn dagster_step_selection_syntax_picks_levels_up_and_down() {
    let s = chain(3, &[]);
    let (code, r1, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0);
    let id = r1["run_id"].as_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["parse[f01_txt]"], &["parse[f01_txt]"]),
        (&["parse[f01_txt]+"], &["parse[f01_txt]", "stat[f01_txt]"]),
        (&["parse[f01_txt]++"], &["parse[f01_txt]", "stat[f01_txt]", "summary"]),
        (&["parse[f01_txt]*"], &["parse[f01_txt]", "stat[f01_txt]", "summary"]),
        (&["+stat[f01_txt]"], &["parse[f01_txt]", "stat[f01_txt]"]),
        (&["++stat[f01_txt]"], &["files_in_directory", "parse[f01_txt]", "stat[f01_txt]"]),
        (&["+summary"], &["stat[f00_txt]", "stat[f01_txt]", "stat[f02_txt]", "summary"]),
        (
            &["*summary"],
            &[
                "files_in_directory",
                "parse[f00_txt]",
                "parse[f01_txt]",
                "parse[f02_txt]",
                "stat[f00_txt]",
                "stat[f01_txt]",
                "stat[f02_txt]",
                "summary",
            ],
        ),
        (&["files_in_directory+"], &["files_in_directory", "parse[f00_txt]", "parse[f01_txt]", "parse[f02_txt]"]),
        (&["stat[?]+"], &["stat[f00_txt]", "stat[f01_txt]", "stat[f02_txt]", "summary"]),
        (&["+stat[f00_txt]+", "parse[f02_txt]"], &["parse[f00_txt]", "parse[f02_txt]", "stat[f00_txt]", "summary"]),
    ];
    for (selection, expected) in cases {
        let mut args = vec!["reexecute", id, "--json"];
        for step in *selection {
            args.extend(["--step", step]);
        }
        let (code, report, stderr) = s.run(&args);
        assert_eq!(code, 0, "{selection:?}: {stderr}");
        assert_eq!(keys(&report), *expected, "{selection:?}");
        // Everything else is taken from the parent, and the results are the parent's.
        assert_eq!(keys(&report).len() + reused(&report).len(), 8, "{selection:?}");
        assert_eq!(report["outputs"], r1["outputs"], "{selection:?}");
    }
    for bad in ["parse[f01_txt]*+", "parse[f01_txt", "+*parse[?]", "parse[a-b]"] {
        let (code, _, stderr) = s.run(&["reexecute", id, "--step", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(stderr.contains(&format!("Invalid step selection \"{bad}\"")), "{stderr}");
    }
    for unknown in ["parse+", "+stat[f09_txt]", "*nope[?]*"] {
        let (code, _, stderr) = s.run(&["reexecute", id, "--step", unknown]);
        assert_eq!(code, 2, "{unknown}");
        let name = unknown.trim_matches(|c| c == '+' || c == '*');
        assert!(stderr.contains(&format!("Step selection refers to unknown step: {name}")), "{stderr}");
    }
}

/// generate_subtasks emits `keys` (value = key × `factor`); offset gives a plain value; subtask
/// (per key) gets the record and offset; double is chained over it; total collects it.
fn subtasks_job(keys: &[u32], factor: u32, offset: u32) -> String {
    let script: Vec<String> =
        keys.iter().map(|k| format!("{{ emit = \"{k}\", value = {{ v = {} }} }}", k * factor)).collect();
    format!(
        r#"
name = "subtasks"
[ops.generate_subtasks]
component = "emit_script"
config = {{ script = [{}] }}
[ops.offset]
component = "emit_script"
config = {{ script = [{{ output_value = "extra", value = {offset} }}] }}
[ops.subtask]
component = "mapper"
inputs = {{ x = {{ map = "generate_subtasks" }}, y = "offset.extra" }}
[ops.double]
component = "mapper"
inputs = {{ x = {{ map = "subtask" }} }}
[ops.total]
component = "mapper"
inputs = {{ x = {{ collect = "double" }} }}
"#,
        script.join(", ")
    )
}

#[test]
fn a_clone_is_reused_only_for_the_same_record_value_and_inputs() {
    let ws = Workspace::new();
    let s = StoredJob::new(ws, &subtasks_job(&[0, 2, 4], 1, 7));
    let (code, r1, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = r1["run_id"].as_str().unwrap();
    let value = |v: u32| json!({"x": {"v": v}, "y": 7});
    assert_eq!(r1["outputs"]["total"]["result"], json!([value(0), value(2), value(4)]));

    // The fan-out runs again and emits the same values: exactly it runs.
    let (code, same, stderr) = s.run(&["reexecute", id, "--step", "generate_subtasks", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&same), ["generate_subtasks"]);
    assert_eq!(same["outputs"], r1["outputs"]);

    // A clone picked alone gets every input it had (offset is a root after the fan-out).
    let (_, one, _) = s.run(&["reexecute", id, "--step", "subtask[2]", "--json"]);
    assert_eq!(keys(&one), ["subtask[2]"]);
    assert_eq!(one["outputs"], r1["outputs"]);

    // Key 0 now comes with 100: its clone, what it feeds and the collect run; keys 2 and 4 are
    // the parent's.
    std::fs::write(&s.job, subtasks_job(&[0, 2, 4], 1, 7).replace("v = 0 ", "v = 100 ")).unwrap();
    let (code, changed, stderr) = s.run(&["reexecute", id, "--step", "generate_subtasks", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&changed), ["generate_subtasks", "subtask[0]", "double[0]", "total"]);
    assert_eq!(reused(&changed), ["offset", "subtask[2]", "subtask[4]", "double[2]", "double[4]"]);
    assert_eq!(changed["outputs"]["total"]["result"], json!([value(100), value(2), value(4)]));
    let (_, fresh, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(changed["outputs"], fresh["outputs"]);

    // A broadcast input that changes: every clone reading it runs, nothing else.
    std::fs::write(&s.job, subtasks_job(&[0, 2, 4], 1, 8)).unwrap();
    let (code, offset, stderr) = s.run(&["reexecute", id, "--step", "offset", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        keys(&offset),
        ["offset", "subtask[0]", "subtask[2]", "subtask[4]", "double[0]", "double[2]", "double[4]", "total"]
    );
    assert_eq!(reused(&offset), ["generate_subtasks"]);
    assert_eq!(offset["outputs"]["total"]["result"][1]["y"], 8);
}

#[test]
fn a_selected_clone_the_fan_out_no_longer_emits_fails_naming_its_key() {
    let ws = Workspace::new();
    let s = StoredJob::new(ws, &subtasks_job(&[0, 2, 4], 1, 7));
    let (_, r1, _) = s.run(&["run", &s.job, "--json"]);
    let id = r1["run_id"].as_str().unwrap();
    std::fs::write(&s.job, subtasks_job(&[0, 4], 1, 7)).unwrap();
    let (code, r2, stderr) = s.run(&["reexecute", id, "--step", "generate_subtasks", "--step", "subtask[2]", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(r2["status"], "failure");
    assert_eq!(r2["error"], "Execution of run for \"subtasks\" failed. Steps failed: ['subtask[2]'].");
    let missing = r2["steps"].as_array().unwrap().iter().find(|s| s["key"] == "subtask[2]").unwrap();
    assert_eq!(missing["status"], "failure");
    assert_eq!(missing["attempts"], 0);
    assert_eq!(
        missing["error"],
        "Step selection refers to step subtask[2], but step generate_subtasks ran again and did not emit mapping key \
         \"2\" on output \"result\" this time"
    );
    // The rest goes by the keys the fan-out emitted: the other clones are the parent's, and the
    // collect over them gets two values (so it runs).
    assert_eq!(keys(&r2), ["generate_subtasks", "subtask[2]", "total"]);
    assert_eq!(reused(&r2), ["offset", "subtask[0]", "subtask[4]", "double[0]", "double[4]"]);
    assert_eq!(r2["outputs"]["total"]["result"].as_array().unwrap().len(), 2);
    let (_, shown, _) = s.run(&["show", r2["run_id"].as_str().unwrap(), "--json"]);
    assert_eq!(shown, r2);
    // Not named one by one, a key the fan-out dropped is simply gone.
    let (code, r3, stderr) = s.run(&["reexecute", id, "--step", "generate_subtasks*", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&r3), ["generate_subtasks", "subtask[0]", "subtask[4]", "double[0]", "double[4]", "total"]);
    assert_eq!(r3["outputs"]["total"]["result"].as_array().unwrap().len(), 2);
}

/// Dagster's `test_select_dynamic_step_with_non_static_mapping`: the fan-out runs again with
/// other config (`reexecute --set`) and emits other keys; the new keys run, the dropped ones are
/// gone, and the collect gets the new list.
#[test]
fn reexecute_set_changes_config_and_a_rerun_fan_out_may_emit_new_keys() {
    let job = r#"
name = "keys"
[ops.emit]
component = "emit_script"
config = { script = [{ emit = "k0", value = 0 }, { emit = "k2", value = 2 }, { emit = "k4", value = 4 }] }
[ops.per]
component = "mapper"
inputs = { x = { map = "emit" } }
[ops.all]
component = "mapper"
inputs = { x = { collect = "per" } }
"#;
    let stored = common::StoredJob::new(common::Workspace::new(), job);
    let (code, parent, stderr) = stored.run(&["run", &stored.job.clone(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = parent["run_id"].as_str().unwrap();
    let script = "emit.config.script=[{ emit = \"k1\", value = 1 }, { emit = \"k3\", value = 3 }]";
    let (code, child, stderr) = stored.run(&["reexecute", id, "--step", "emit*", "--set", script, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let ran: Vec<&str> = child["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(ran, ["emit", "per[k1]", "per[k3]", "all"]);
    assert_eq!(child["outputs"]["all"]["result"], serde_json::json!([1, 3]));
    assert!(stderr.contains("note: op \"emit\": config changed since run"), "{stderr}");

    // Not selected, the fan-out is taken as it was (its old keys), whatever its config now says.
    let child_id = child["run_id"].as_str().unwrap();
    let back = "emit.config.script=[{ emit = \"k9\", value = 9 }]";
    let (code, grandchild, stderr) = stored.run(&["reexecute", child_id, "--step", "per[?]*", "--set", back, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let ran: Vec<&str> = grandchild["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(ran, ["per[k1]", "per[k3]", "all"]);
    assert!(stderr.contains("steps taken from that run are as they were"), "{stderr}");
}
