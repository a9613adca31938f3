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
