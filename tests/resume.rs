//! `sandmap resume` after the host process is killed with SIGKILL mid-run, and the live
//! progress lines, through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;

use common::{StoredJob, Workspace, sandmap, wait_for};
use sandmap::executor::EndedStep;
use serde_json::Value;

fn setup(commands: &[&str]) -> StoredJob {
    common::gated_behave_job(commands, "")
}

fn keys(values: &Value) -> Vec<String> {
    values.as_array().unwrap().iter().map(|v| v.as_str().map_or_else(|| v["key"].to_string(), str::to_owned)).collect()
}

fn marks(dir: &Path, key: &str) -> usize {
    (1..).take_while(|n| dir.join(format!("{key}.{n}")).exists()).count()
}

#[test]
fn a_run_killed_with_sigkill_resumes_without_redoing_a_finished_clone() {
    // f00–f09 finish at once; f10–f19 wait for /gate/open, so the run stalls with 2 of them
    // running and 10 clones ended.
    let commands: Vec<&str> =
        (0..20).map(|i| if i < 10 { "mark:/marks\nok\n" } else { "mark:/marks\nawait:/gate/open\n" }).collect();
    let s = setup(&commands);
    let mut host = s.spawn_run(&["--json", "--max-concurrent", "2"]);

    // Every ended step is in the store while the run goes on.
    let id = wait_for("the run to be recorded", || {
        let (_, runs, _) = s.run(&["runs", "--json"]);
        runs.as_array()?.first()?["run_id"].as_str().map(str::to_owned)
    });
    wait_for("10 clones recorded as ended", || {
        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        let ended = shown["steps"].as_array()?.iter().filter(|s| s["op"] == "behave" && s["status"] == "success");
        (ended.count() == 10).then_some(())
    });
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "running");
    let (code, _, stderr) = s.run(&["resume", &id]);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("run {} is still running", &id[id.len() - 12..])), "{stderr}");

    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();

    // The store is consistent and says what happened.
    let (_, runs, _) = s.run(&["runs", "--json", "--status", "interrupted"]);
    assert_eq!(runs[0]["run_id"], id.as_str());
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "interrupted");
    let ended: Vec<String> = keys(&shown["steps"]).into_iter().map(|k| k.trim_matches('"').to_owned()).collect();
    assert!(ended.len() >= 11, "{ended:?}");
    let (code, _, stderr) = s.run(&["reexecute", &id, "--from-failure"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("was interrupted; `sandmap resume"), "{stderr}");

    // A changed job is refused, naming what changed; the run's finished steps came from the old one.
    let original = std::fs::read_to_string(&s.job).unwrap();
    let changed = original.replacen(
        "grants = [{ host = \"cmds\"",
        "limits = { timeout = \"7s\" }\ngrants = [{ host = \"cmds\"",
        1,
    );
    assert_ne!(changed, original);
    std::fs::write(&s.job, &changed).unwrap();
    let (code, _, stderr) = s.run(&["resume", &id]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: {}: the job changed since run {} started: op \"files_in_directory\": limits.timeout 1m → 7s; \
             resume needs the job it started with (or start a new run)\n",
            std::fs::canonicalize(&s.job).unwrap().display(),
            &id[id.len() - 12..]
        )
    );
    // Comments, blank lines and the order of keys are not the job: such an edit resumes.
    let reordered =
        original.replace("name = \"behave_job\"", "# edited after the crash\n\nname = \"behave_job\"  # same job");
    assert_ne!(reordered, original);
    std::fs::write(&s.job, &reordered).unwrap();

    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (code, resumed, stderr) = s.run(&["resume", &id[..13], "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed["run_id"], id.as_str());
    assert_eq!(resumed["status"], "success");
    let mut executed: Vec<String> = (10..20).map(|i| format!("behave[f{i:02}_txt]")).collect();
    executed.push("summarize_directory".into());
    let executed_now: Vec<String> =
        resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(executed_now, executed);
    let mut reused = vec!["files_in_directory".to_owned()];
    reused.extend((0..10).map(|i| format!("behave[f{i:02}_txt]")));
    assert_eq!(keys(&resumed["reused"]), reused);

    // No finished clone ran twice; the two killed mid-run ran again.
    let marks_dir = s.ws.path().join("marks");
    let counts: Vec<usize> = (0..20).map(|i| marks(&marks_dir, &format!("f{i:02}_txt"))).collect();
    assert_eq!(counts[..10], [1; 10]);
    assert_eq!(counts[10..].iter().filter(|&&n| n == 2).count(), 2, "{counts:?}");
    assert!(counts[10..].iter().all(|&n| n == 1 || n == 2), "{counts:?}");

    // The stored run is whole: every step, in report order, and the outputs of an
    // uninterrupted run of the same job.
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "success");
    let mut all = vec!["files_in_directory".to_owned()];
    all.extend((0..20).map(|i| format!("behave[f{i:02}_txt]")));
    all.push("summarize_directory".into());
    assert_eq!(shown["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect::<Vec<_>>(), all);
    let (code, fresh, _) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(shown["outputs"], fresh["outputs"]);
    assert_eq!(resumed["outputs"], fresh["outputs"]);

    let (code, _, stderr) = s.run(&["resume", &id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not interrupted: it ended (success)"), "{stderr}");
}

#[test]
fn a_failure_before_the_kill_stands_after_resume() {
    let s = setup(&["fail:broken", "mark:/marks\nawait:/gate/open\n"]);
    let mut host = s.spawn_run(&["--max-concurrent", "1"]);
    let id = wait_for("the failure to be recorded", || {
        let (_, runs, _) = s.run(&["runs", "--json"]);
        let id = runs.as_array()?.first()?["run_id"].as_str()?.to_owned();
        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        let failed =
            shown["steps"].as_array()?.iter().any(|s| s["key"] == "behave[f00_txt]" && s["status"] == "failure");
        let marked = s.ws.path().join("marks/f01_txt.1").exists();
        (failed && marked).then_some(id)
    });
    host.kill().unwrap();
    host.wait().unwrap();
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (code, resumed, stderr) = s.run(&["resume", &id, "--json"]);
    // The failure is not retried (that is `reexecute --from-failure`): the run still fails, and
    // the collect is abandoned as it would have been.
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(resumed["status"], "failure");
    assert_eq!(resumed["error"], "Execution of run for \"behave_job\" failed. Steps failed: ['behave[f00_txt]'].");
    let executed: Vec<&str> = resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(executed, ["behave[f01_txt]", "summarize_directory"]);
    assert_eq!(resumed["steps"][1]["status"], "abandoned");
    assert!(keys(&resumed["reused"]).contains(&"behave[f00_txt]".to_owned()));
}

#[test]
fn progress_lines_show_what_runs_when_stderr_is_not_a_terminal() {
    let s = setup(&["ok\n", "ok\n", "await:/gate/open\n"]);
    let mut host = common::Host::new(
        sandmap()
            .env("SANDMAP_HOME", &s.store)
            .args(["run", &s.job, "--progress", "lines"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(host.stderr.take().unwrap()).lines();
    // The run's id comes first, with how to finish it if it is stopped.
    let first = lines.next().unwrap().unwrap();
    let id = first.strip_prefix("run ").and_then(|rest| rest.split_once(' ')).map(|(id, _)| id.to_owned()).unwrap();
    assert_eq!(first, format!("run {id} of job \"behave_job\" (if it is stopped: sandmap resume {id})"));
    // The first status line comes while behave[f02_txt] waits for the gate: it names the step
    // running, and for how long.
    let line = lines.next().unwrap().unwrap();
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (_, status) = line.split_once("] ").unwrap();
    let (counts, running) = status.split_once("; running: ").unwrap_or((status, ""));
    assert_eq!(counts, "steps: 3/5 done, 1 running; behave 2/3", "{line}");
    let (step, elapsed) = running.split_once(' ').unwrap_or((running, ""));
    assert_eq!(step, "behave[f02_txt]", "{line}");
    assert!(elapsed.ends_with('s'), "{line}");
    assert!(host.wait().unwrap().success());
}

#[test]
fn progress_counts_as_running_only_what_a_worker_runs() {
    // One worker, three clones waiting on the gate: one runs, the others wait their turn (they
    // were counted running as soon as they were queued for the worker).
    let s = setup(&["await:/gate/open\n", "await:/gate/open\n", "await:/gate/open\n"]);
    let mut host = common::Host::new(
        sandmap()
            .env("SANDMAP_HOME", &s.store)
            .args(["run", &s.job, "--progress", "lines", "--max-concurrent", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(host.stderr.take().unwrap()).lines();
    let _id = lines.next().unwrap().unwrap();
    let line = lines.next().unwrap().unwrap();
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (_, status) = line.split_once("] ").unwrap();
    let (counts, running) = status.split_once("; running: ").unwrap_or((status, ""));
    assert_eq!(counts, "steps: 1/5 done, 1 running; behave 0/3", "{line}");
    assert!(running.starts_with("behave[f00_txt] "), "{line}");
    assert!(host.wait().unwrap().success());
}

#[test]
fn a_kill_while_steps_are_being_recorded_leaves_a_store_that_resume_completes() {
    // 20,000 no-op clones on one worker: the writer thread is busy the whole time, so the kill
    // lands between (or during) its transactions.
    let n = 20_000;
    let ws = Workspace::new();
    let s = StoredJob::new(
        ws,
        &format!(
            "name = \"fan\"\n[ops.emit]\ncomponent = \"emit_range\"\nconfig = {{ n = {n} }}\n\
         limits = {{ max_emits = {n}, max_fan_out = {n} }}\n\
         [ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n\
         [ops.all]\ncomponent = \"noop\"\ninputs = {{ x = {{ collect = \"each\" }} }}\n"
        ),
    );
    let (code, expected, _) = s.run(&["run", &s.job, "--json", "--store", s.ws.path().join("other").to_str().unwrap()]);
    assert_eq!(code, 0);

    for after in [1, 3_000] {
        let mut host = s.spawn_run(&["--max-concurrent", "1", "--quiet"]);
        let id = wait_for("steps to be recorded", || {
            let (_, runs, _) = s.run(&["runs", "--json", "--status", "running"]);
            let run = runs.as_array()?.first()?.clone();
            (run["steps"].as_u64()? >= after).then(|| run["run_id"].as_str().unwrap().to_owned())
        });
        host.kill().unwrap();
        host.wait().unwrap();

        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        assert_eq!(shown["status"], "interrupted");
        let before: Vec<String> =
            shown["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect();
        assert!(before.len() as u64 >= after && before.len() < n + 2, "{} steps", before.len());

        let (code, resumed, stderr) = s.run(&["resume", &id, "--json", "--quiet"]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(resumed["outputs"], expected["outputs"]);
        let executed: Vec<&str> =
            resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
        let reused: Vec<&str> = resumed["reused"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        // What had ended (all successes) was reused, every other step ran: each step exactly once.
        let mut ended: Vec<&str> = before.iter().map(String::as_str).collect();
        let mut reused_sorted = reused.clone();
        ended.sort_unstable();
        reused_sorted.sort_unstable();
        assert_eq!(reused_sorted, ended);
        let mut all: Vec<&str> = executed.iter().chain(&reused).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n + 2);
        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        assert_eq!(shown["status"], "success");
        assert_eq!(shown["steps"].as_array().unwrap().len(), n + 2);
    }
}

#[test]
fn a_fan_out_that_failed_after_its_clones_ended_keeps_them_after_resume() {
    // emit's two clones end, then emit fails; `blocker` keeps the run open until the gate opens.
    let ws = Workspace::new();
    ws.files("cmds", &[("a.txt", b"mark:/marks\nok\n"), ("b.txt", b"mark:/marks\nok\n")]);
    ws.files("marks", &[]);
    ws.files("gate", &[]);
    let s = StoredJob::new(
        ws,
        &format!(
            r#"
name = "late_failure"
[ops.emit]
component = "emit_script"
config = {{ script = [{{ emit = "a", value = "/data/a.txt" }}, {{ emit = "b", value = "/data/b.txt" }},
                      {{ wait_for = "/marks/a.done" }}, {{ wait_for = "/marks/b.done" }}, {{ fail = "late" }}] }}
grants = [{{ host = "marks", guest = "/marks" }}]
[ops.behave]
component = "{behave}"
inputs = {{ path = {{ map = "emit" }} }}
grants = [{{ host = "cmds", guest = "/data" }}, {{ host = "marks", guest = "/marks", access = "read-write" }}]
[ops.blocker]
component = "emit_script"
config = {{ script = [{{ wait_for = "/gate/open" }}] }}
grants = [{{ host = "gate", guest = "/gate" }}]
"#,
            behave = sandmap_test_programs::BEHAVE
        ),
    );
    let mut host = s.spawn_run(&["--max-concurrent", "4"]);
    let id = wait_for("the clones and the failure to be recorded", || {
        // Each clone has marked its run: let emit go on to fail once they have ended.
        for key in ["a", "b"] {
            if s.ws.path().join(format!("marks/{key}.1")).exists() {
                let _ = std::fs::write(s.ws.path().join(format!("marks/{key}.done")), b"");
            }
        }
        let (_, runs, _) = s.run(&["runs", "--json"]);
        let id = runs.as_array()?.first()?["run_id"].as_str()?.to_owned();
        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        let steps = shown["steps"].as_array()?;
        let ended = |key: &str, status: &str| steps.iter().any(|s| s["key"] == key && s["status"] == status);
        (ended("emit", "failure") && ended("behave[a]", "success") && ended("behave[b]", "success")).then_some(id)
    });
    host.kill().unwrap();
    host.wait().unwrap();
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();

    let (code, resumed, stderr) = s.run(&["resume", &id, "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(resumed["error"], "Execution of run for \"late_failure\" failed. Steps failed: ['emit'].");
    assert_eq!(keys(&resumed["reused"]), ["emit", "behave[a]", "behave[b]"]);
    let executed: Vec<&str> = resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(executed, ["blocker"]);
    assert_eq!(marks(&s.ws.path().join("marks"), "a"), 1);
    assert_eq!(marks(&s.ws.path().join("marks"), "b"), 1);
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    let stored: Vec<&str> = shown["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(stored, ["emit", "behave[a]", "behave[b]", "blocker"]);
    assert_eq!(shown["outputs"]["behave"]["result"]["a"]["said"], "ok");
}

#[test]
fn a_clone_is_reused_only_for_the_record_value_it_was_made_from() {
    let ws = Workspace::new();
    let job = "name = \"j\"\n[ops.emit]\ncomponent = \"emit_script\"\n\
               config = { script = [{ emit = \"a\", value = 1 }, { emit = \"b\", value = 2 }] }\n\
               [ops.each]\ncomponent = \"mapper\"\ninputs = { x = { map = \"emit\" } }\n";
    let first = ws.run(job);
    // As if the run had been interrupted with both clones ended but emit not, and b's clone had
    // been made from another value than the one emit gives when it runs again.
    let digest_of = |value: &str| sandmap::runtime::digest(value.as_bytes());
    let ended: Vec<EndedStep> = first
        .steps
        .iter()
        .filter(|s| s.op == "each")
        .zip(["1", "3"])
        .map(|(s, value)| EndedStep {
            report: s.clone(),
            reused: false,
            record_digest: Some(digest_of(value)),
            inputs_digest: None,
            sort_key: Vec::new(),
        })
        .collect();
    let reuse = sandmap::executor::Reuse::resuming(&first.run_id, &ended).unwrap();
    let prepared = ws.prepare(job).unwrap();
    let options = sandmap::executor::ExecOptions {
        reuse: Some(std::sync::Arc::new(reuse)),
        ..sandmap::executor::ExecOptions::default()
    };
    let resumed = sandmap::executor::execute(&prepared.plan, &prepared.ops, common::runtime(), &options);
    let executed: Vec<&str> = resumed.steps.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(executed, ["emit", "each[b]"]);
    assert_eq!(resumed.reused, ["each[a]"]);
    assert_eq!(resumed.outputs, first.outputs);
}

#[test]
fn an_interrupted_reexecution_resumes_taking_from_its_parent_what_it_had_not_come_to() {
    // parse (behave) → stat (mapper, chained) → summary (collect). parse[f00_txt] waits for the
    // gate, open in R1 and closed in R2.
    let ws = Workspace::new();
    ws.files("marks", &[]);
    ws.files("gate", &[("open", b"")]);
    let mut files: Vec<(String, &[u8])> = vec![("f00.txt".into(), b"mark:/marks\nawait:/gate/open\n")];
    files.extend((1..4).map(|i| (format!("f{i:02}.txt"), &b"mark:/marks\nok\n"[..])));
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    ws.files("cmds", &files);
    let s = StoredJob::new(ws, &common::behave_chain_job(", { host = \"gate\", guest = \"/gate\" }"));
    let (code, r1, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let r1_id = r1["run_id"].as_str().unwrap();
    std::fs::remove_file(s.ws.path().join("gate/open")).unwrap();

    // R2 re-runs parse[f00_txt] alone; stat[f00_txt] and summary are taken from R1 only once it
    // has given the same value again, so R2 dies before it comes to them.
    let mut host = common::Host::new(
        sandmap()
            .env("SANDMAP_HOME", &s.store)
            .args(["reexecute", r1_id, "--step", "parse[f00_txt]", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let marks_dir = s.ws.path().join("marks");
    let r2 = wait_for("R2 to run parse[f00_txt]", || {
        let (_, runs, _) = s.run(&["runs", "--json"]);
        let id = runs.as_array()?.iter().find(|r| r["run_id"] != r1_id)?["run_id"].as_str()?.to_owned();
        (marks(&marks_dir, "f00_txt") == 2).then_some(id)
    });
    host.kill().unwrap();
    host.wait().unwrap();
    let (_, shown, _) = s.run(&["show", &r2, "--json"]);
    assert_eq!(shown["status"], "interrupted");

    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (code, resumed, stderr) = s.run(&["resume", &r2, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed["parent_run_id"], r1_id);
    assert_eq!(step_keys(&resumed), ["parse[f00_txt]"]);
    let mut taken = vec!["files_in_directory".to_owned()];
    taken.extend((1..4).map(|i| format!("parse[f{i:02}_txt]")));
    taken.extend((0..4).map(|i| format!("stat[f{i:02}_txt]")));
    taken.push("summary".into());
    let mut reused = keys(&resumed["reused"]);
    reused.sort();
    let mut expected = taken.clone();
    expected.sort();
    assert_eq!(reused, expected);
    assert_eq!(resumed["outputs"], r1["outputs"]);
    // Only parse[f00_txt] ran again (its killed attempt and the resumed one).
    let counts: Vec<usize> = (0..4).map(|i| marks(&marks_dir, &format!("f{i:02}_txt"))).collect();
    assert_eq!(counts, [3, 1, 1, 1]);
    // The stored re-execution is whole: its own step, and everything it took from R1.
    let (_, shown, _) = s.run(&["show", &r2, "--json"]);
    assert_eq!(shown["status"], "success");
    assert_eq!(step_keys(&shown), ["parse[f00_txt]"]);
    assert_eq!(keys(&shown["reused"]), taken);
    // So it re-executes like any run.
    let (code, again, stderr) = s.run(&["reexecute", &r2, "--step", "stat[f02_txt]+", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(step_keys(&again), ["stat[f02_txt]", "summary"]);
}

fn step_keys(report: &Value) -> Vec<String> {
    report["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect()
}

/// Send `signal` to `child`.
fn signal(child: &std::process::Child, signal: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), signal).unwrap();
}

#[test]
fn ctrl_c_cancels_the_run_and_resume_runs_the_rest() {
    let commands: Vec<&str> =
        (0..6).map(|i| if i < 3 { "mark:/marks\nok\n" } else { "mark:/marks\nawait:/gate/open\n" }).collect();
    let s = setup(&commands);
    let host = common::Host::new(
        sandmap()
            .env("SANDMAP_HOME", &s.store)
            .args(["run", &s.job, "--json", "--max-concurrent", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let id = wait_for("the run to be recorded", || {
        let (_, runs, _) = s.run(&["runs", "--json"]);
        runs.as_array()?.first()?["run_id"].as_str().map(str::to_owned)
    });
    wait_for("two clones waiting at the gate", || {
        let marks = std::fs::read_dir(s.ws.path().join("marks")).ok()?.count();
        let (_, shown, _) = s.run(&["show", &id, "--json"]);
        let ok = shown["steps"].as_array()?.iter().filter(|s| s["op"] == "behave" && s["status"] == "success").count();
        (marks == 5 && ok == 3).then_some(())
    });
    signal(&host, rustix::process::Signal::INT);
    let output = host.into_child().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let short = &id[id.len() - 12..];
    assert!(
        stderr.contains(&format!("cancelling run {short}: stopping its steps (again to exit at once)")),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "cancelled");
    assert_eq!(report["error"], "Run for \"behave_job\" was cancelled after 4 steps ended.", "{report:#}");
    let status_of = |key: &str| {
        let step = report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap();
        (step["status"].as_str().unwrap().to_owned(), step["error"].clone())
    };
    for key in ["behave[f03_txt]", "behave[f04_txt]", "behave[f05_txt]"] {
        let (status, error) = status_of(key);
        assert_eq!(status, "cancelled", "{key}");
        assert!(
            error == "cancelled while it ran (the run was cancelled)" || error == "the run was cancelled before it ran",
            "{key}: {error}"
        );
    }
    assert_eq!(
        status_of("summarize_directory"),
        ("cancelled".to_owned(), "the run was cancelled before it ran".into())
    );
    let (_, runs, _) = s.run(&["runs", "--json", "--status", "cancelled"]);
    assert_eq!(runs[0]["run_id"], id.as_str());
    let shown = sandmap().env("SANDMAP_HOME", &s.store).args(["show", &id]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("4 steps ended, 4 cancelled; `sandmap resume {}` runs the rest", &id[id.len() - 12..])),
        "{shown}"
    );

    // Resume runs the cancelled steps, and nothing that ended.
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
    let (code, resumed, stderr) = s.run(&["resume", &id, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed["status"], "success");
    let ran: Vec<&str> = resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(ran, ["behave[f03_txt]", "behave[f04_txt]", "behave[f05_txt]", "summarize_directory"]);
    let counts: Vec<usize> = (0..6).map(|i| marks(&s.ws.path().join("marks"), &format!("f{i:02}_txt"))).collect();
    assert_eq!(counts[..3], [1, 1, 1]);
    assert_eq!(resumed["outputs"]["summarize_directory"]["result"]["files"], 6);
}

#[test]
fn sandmap_cancel_stops_a_run_of_another_process() {
    let s = setup(&["mark:/marks\nawait:/gate/open\n"; 3]);
    let mut host = s.spawn_run(&["--max-concurrent", "1"]);
    let id = wait_for("the run to be recorded", || {
        let (_, runs, _) = s.run(&["runs", "--json"]);
        runs.as_array()?.first()?["run_id"].as_str().map(str::to_owned)
    });
    wait_for("a clone to start", || (std::fs::read_dir(s.ws.path().join("marks")).ok()?.count() == 1).then_some(()));
    let output = sandmap().env("SANDMAP_HOME", &s.store).args(["cancel", &id[..13]]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("run {}: cancelled\n", &id[id.len() - 12..]));
    assert_eq!(host.wait().unwrap().code(), Some(130));

    let output = sandmap().env("SANDMAP_HOME", &s.store).args(["cancel", &id]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("error: run {} is not running (it is cancelled); there is nothing to cancel\n", &id[id.len() - 12..])
    );
}
