//! The command line tells the truth and names the mistake (issue #12): errors that point at what
//! the user wrote, output a script can rely on, and pipes that close early. Through the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::Read;
use std::process::Stdio;

use common::{SEED_JOB, StoredJob, Workspace, run_binary, sandmap};
use serde_json::Value;

fn invalid(job_text: &str, extra: &[&str]) -> String {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"a\n")]);
    let job = ws.job(job_text).display().to_string();
    let mut args = vec!["validate", job.as_str()];
    args.extend_from_slice(extra);
    let (code, _, stderr) = run_binary(&args);
    assert_eq!(code, 2, "{stderr}");
    stderr.replace(&job, "job.toml")
}

#[test]
fn a_misspelled_input_is_named_at_its_own_line_with_what_it_meant() {
    let text = SEED_JOB.replace("inputs = { path = { map", "inputs = { paht = { map");
    assert_eq!(
        invalid(&text, &[]),
        "error: job.toml:11:19: op \"process_file\": inputs.paht: component \"process_file\" has no input \"paht\" \
         (its inputs are ['path']); did you mean \"path\"?\n"
    );
}

#[test]
fn config_on_an_op_that_takes_none_says_so() {
    let text = SEED_JOB.replace(
        "component = \"process_file\"\n",
        "component = \"process_file\"\nconfig = { verbose = true, level = 2 }\n",
    );
    assert_eq!(
        invalid(&text, &[]),
        "error: job.toml:11:10: op \"process_file\": config: op \"process_file\" takes no config (got \"verbose\", \
         \"level\")\n"
    );
}

#[test]
fn a_bad_set_is_said_to_come_from_set() {
    let error = invalid(SEED_JOB, &["--set", "files_in_directory.config.pth=/x"]);
    assert!(error.contains("op \"files_in_directory\": config: "), "{error}");
    assert!(error.ends_with(" (the config includes --set files_in_directory.config.pth=/x)\n"), "{error}");
}

#[test]
fn a_zero_timeout_is_named_as_the_timeout() {
    let text = SEED_JOB
        .replace("component = \"process_file\"\n", "component = \"process_file\"\nlimits = { timeout = \"0 s\" }\n");
    let error = invalid(&text, &[]);
    assert!(error.contains("op \"process_file\": limits.timeout: timeout must be greater than zero"), "{error}");
}

#[test]
fn runs_refuses_an_unknown_status_and_lists_the_real_ones() {
    let (code, _, stderr) = run_binary(&["runs", "--status", "bogus"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'bogus' for '--status <STATUS>'"), "{stderr}");
    assert!(
        stderr.contains("[possible values: success, success_with_failures, failure, cancelled, running, interrupted]"),
        "{stderr}"
    );
}

fn behave_run(files: &[(&str, &[u8])]) -> (StoredJob, Value) {
    let ws = Workspace::new();
    ws.files("cmds", files);
    let job = common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "");
    let stored = StoredJob::new(ws, &job);
    let (_, report, stderr) = stored.run(&["run", &stored.job.clone(), "--json"]);
    assert!(report.is_object(), "{stderr}");
    (stored, report)
}

#[test]
fn runs_shows_start_duration_status_job_and_parent() {
    let (stored, report) = behave_run(&[("a.txt", b"ok\n"), ("b.txt", b"fail:no good")]);
    let id = report["run_id"].as_str().unwrap().to_owned();
    let (code, child, stderr) = stored.run(&["reexecute", &id, "--from-failure", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    let child_id = child["run_id"].as_str().unwrap().to_owned();
    let output = sandmap().env("SANDMAP_HOME", &stored.store).arg("runs").output().unwrap();
    let listed = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["RUN", "STARTED", "(UTC)", "DURATION", "STATUS", "JOB", "STEPS", "FAILED"]
    );
    // Newest first: the re-execution, then the line naming its parent, then the parent.
    assert!(lines[1].starts_with(&child_id), "{listed}");
    assert!(lines[1].contains(" failure "), "{listed}");
    assert!(lines[1].contains(" behave_job "), "{listed}");
    assert_eq!(lines[2], format!("  ↳ reexecute of {id}"));
    assert!(lines[3].starts_with(&id), "{listed}");
    assert_eq!(lines.len(), 4, "{listed}");
}

#[test]
fn logs_of_a_failed_step_without_log_lines_prints_its_error() {
    let (stored, report) = behave_run(&[("b.txt", b"fail:no good")]);
    let id = report["run_id"].as_str().unwrap();
    let output = sandmap().env("SANDMAP_HOME", &stored.store).args(["logs", id, "behave[b_txt]"]).output().unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "behave[b_txt] failed: no good\n");
}

#[test]
fn a_closed_stdout_stops_quietly() {
    // A megabyte of log: far more than a pipe holds once its reader has gone.
    let (stored, report) = behave_run(&[("a.txt", b"print:1000000")]);
    let id = report["run_id"].as_str().unwrap();
    let mut child = sandmap()
        .env("SANDMAP_HOME", &stored.store)
        .args(["logs", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone (dropped above) before the writer is done.
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success(), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn run_json_keeps_every_step_key_when_empty() {
    let (_, report) = behave_run(&[("a.txt", b"ok\n")]);
    for step in report["steps"].as_array().unwrap() {
        for key in ["records", "log", "previous_attempts", "error", "mapping_key"] {
            assert!(step.get(key).is_some(), "{key} missing from {step}");
        }
    }
    let step = report["steps"].as_array().unwrap().iter().find(|s| s["key"] == "behave[a_txt]").unwrap();
    assert_eq!(step["records"], serde_json::json!([]));
    assert_eq!(step["log"], serde_json::json!({"entries": [], "truncated_bytes": 0}));
}

#[test]
fn a_failed_run_prints_no_empty_outputs_heading() {
    let ws = Workspace::new();
    ws.files("cmds", &[("b.txt", b"fail:no good")]);
    let job = ws.job(&common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "")).display().to_string();
    let (code, stdout, _) = run_binary(&["run", &job]);
    assert_eq!(code, 1);
    assert!(!stdout.contains("outputs:"), "{stdout}");
}

#[test]
fn inspect_finds_names_as_run_does() {
    // `sandmap()` puts the test plugins on SANDMAP_PLUGIN_PATH.
    let (code, stdout, stderr) = run_binary(&["inspect", "behave"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("op behave  ("), "{stdout}");
    let dir = std::path::Path::new(sandmap_test_programs::BEHAVE).parent().unwrap().display().to_string();
    let output = sandmap()
        .env_remove("SANDMAP_PLUGIN_PATH")
        .args(["inspect", "behave", "--plugin-path", &dir])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn cancelled_clones_collapse_to_one_line_per_op() {
    // The fan-out emits 200 records, then fails. With one worker, which it holds, only the clone
    // already handed to the worker's queue runs (each[k0]); the other 199 are cancelled.
    let ws = Workspace::new();
    let mut script: Vec<String> = (0..200).map(|i| format!("{{ emit = \"k{i}\", value = {i} }}")).collect();
    script.push("{ fail = \"late failure\" }".into());
    let job = ws.job(&format!(
        "name = \"late\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = {{ script = [{}] }}\n\
         [ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n",
        script.join(", ")
    ));
    let (code, stdout, stderr) = run_binary(&["run", job.to_str().unwrap(), "--max-concurrent", "1"]);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines.iter().position(|l| l.trim_start().starts_with("cancelled")).unwrap();
    assert_eq!(lines[at].split_whitespace().collect::<Vec<_>>(), ["cancelled", "each[…]", "199", "clones"]);
    assert_eq!(lines[at + 1].trim(), "Fan-out step emit did not succeed before this clone started. Not executing.");
    assert_eq!(lines.iter().filter(|l| l.trim_start().starts_with("cancelled")).count(), 1, "{stdout}");
    assert!(lines.contains(&"  each: 199 cancelled, 1 success"), "{stdout}");
}

#[test]
fn executor_and_worker_urls_that_are_not_nats_are_refused() {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"a\n".as_slice())]);
    let job = ws.job(SEED_JOB);
    let (code, _, stderr) = run_binary(&["run", job.to_str().unwrap(), "--executor", "http://x"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "invalid value 'http://x' for '--executor <EXECUTOR>': \"http://x\" is not an executor: use `local` or a NATS \
             server URL such as nats://127.0.0.1:4222"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run_binary(&["worker", "localhost:4222"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("\"localhost:4222\" is not a NATS server URL: use nats://HOST[:PORT] (or tls://…)"),
        "{stderr}"
    );
    let (code, _, stderr) = run_binary(&["worker", "nats://h", "--mount", "relative=/x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("\"relative=/x\": both paths must be absolute"), "{stderr}");
    // A server that is not there: a clear error before anything runs, not a hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let (code, _, stderr) = run_binary(&["run", job.to_str().unwrap(), "--executor", &url]);
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("error: cannot connect to NATS at {url}: ")), "{stderr}");
}
