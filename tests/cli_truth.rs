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
        "component = \"summarize_directory\"\n",
        "component = \"summarize_directory\"\nconfig = { verbose = true, level = 2 }\n",
    );
    assert_eq!(
        invalid(&text, &[]),
        "error: job.toml:16:10: op \"summarize_directory\": config: op \"summarize_directory\" takes no config (got \
         \"verbose\", \"level\")\n"
    );
}

#[test]
fn an_unknown_config_key_of_process_file_is_refused_naming_it() {
    let text = SEED_JOB
        .replace("component = \"process_file\"\n", "component = \"process_file\"\nconfig = { host_digset = false }\n");
    assert_eq!(
        invalid(&text, &[]),
        "error: job.toml:11:10: op \"process_file\": config: Additional properties are not allowed ('host_digset' was \
         unexpected)\n"
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

/// The short form of a run id that sandmap prints: its last 12 characters.
fn short(id: &str) -> &str {
    &id[id.len() - 12..]
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
    let (_, listed, _) = stored.text(&["runs"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["RUN", "STARTED", "(UTC)", "DURATION", "STATUS", "JOB", "STEPS", "FAILED"]
    );
    // Newest first: the re-execution, then the line naming its parent, then the parent.
    assert!(lines[1].starts_with(&format!("{}  ", short(&child_id))), "{listed}");
    assert!(lines[1].contains(" failure "), "{listed}");
    assert!(lines[1].contains(" behave_job "), "{listed}");
    assert_eq!(lines[2], format!("  ↳ reexecute of {}", short(&id)));
    assert!(lines[3].starts_with(&format!("{}  ", short(&id))), "{listed}");
    assert_eq!(lines.len(), 4, "{listed}");
}

#[test]
fn logs_of_a_failed_step_without_log_lines_prints_its_error() {
    let (stored, report) = behave_run(&[("b.txt", b"fail:no good")]);
    let id = report["run_id"].as_str().unwrap();
    assert_eq!(stored.text(&["logs", id, "behave[b_txt]"]).1, "behave[b_txt] failed: no good\n");
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

#[test]
fn run_ids_are_printed_short_and_accepted_short_or_as_a_prefix() {
    let (stored, first) = behave_run(&[("a.txt", b"ok\n")]);
    let (_, second, _) = stored.run(&["run", &stored.job.clone(), "--json"]);
    let (id, other) = (first["run_id"].as_str().unwrap(), second["run_id"].as_str().unwrap());
    // UUID v7: both runs start with the same minute; their tails are random.
    assert_eq!(id[..8], other[..8]);

    let (code, _, stderr) = stored.run(&["show", &id[..8]]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        format!(
            "error: \"{}\" matches 2 runs; give more of the run id (its last 12 characters, as sandmap prints it)\n",
            &id[..8]
        )
    );
    let (_, shown, _) = stored.text(&["show", short(id)]);
    assert_eq!(shown.lines().next().unwrap(), format!("run {} of job \"behave_job\"", short(id)));
    for form in [id, &id[..30], short(id), &short(id)[4..], &id.to_ascii_uppercase()] {
        let (code, shown, stderr) = stored.run(&["show", form, "--json"]);
        assert_eq!((code, shown["run_id"].as_str()), (0, Some(id)), "{form}: {stderr}");
    }
    for bad in ["%", "_", "nothing", ""] {
        let (code, _, stderr) = stored.run(&["show", bad]);
        assert_eq!(code, 2, "{bad}");
        assert_eq!(stderr, format!("error: no run {bad} in the store\n"), "{bad}");
    }
}

#[test]
fn plain_outputs_keep_their_metadata_in_json_the_store_show_and_reexecution() {
    let (stored, report) = behave_run(&[("a.txt", br#"with_metadata:{"x": [1, 2]}"#), ("b.txt", b"ok\n")]);
    let id = report["run_id"].as_str().unwrap().to_owned();
    let step =
        |report: &Value, key: &str| report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).cloned();
    let expected = serde_json::json!({ "result": {
        "m": { "type": "json", "value": { "x": [1, 2] } },
        "rows": { "type": "int", "value": 3 },
    } });
    assert_eq!(step(&report, "behave[a_txt]").unwrap()["output_metadata"], expected);
    // Always there, empty when there is none: a script's schema does not change with the data.
    assert_eq!(step(&report, "behave[b_txt]").unwrap()["output_metadata"], serde_json::json!({}));
    let (_, shown, _) = stored.run(&["show", &id, "--json"]);
    assert_eq!(step(&shown, "behave[a_txt]").unwrap()["output_metadata"], expected);

    // A re-execution that takes the step from its parent takes its metadata too.
    let (code, child, stderr) = stored.run(&["reexecute", &id, "--step", "behave[b_txt]", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(child["reused"], serde_json::json!(["files_in_directory", "behave[a_txt]"]));
    let child_id = child["run_id"].as_str().unwrap();
    let first_line = stored.text(&["show", child_id]).1.lines().next().unwrap().to_owned();
    assert_eq!(first_line, format!("run {} of job \"behave_job\" (reexecute of {})", short(child_id), short(&id)));
    let (code, detail, stderr) = stored.run(&["show", child_id, "--step", "behave[a_txt]", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(detail["output_metadata"], expected);
    assert_eq!(detail["reused"], true);
    assert_eq!(detail["outputs"]["result"], serde_json::json!({ "value": 1, "metadata": expected["result"] }));

    // `show --step`: what the step received, emitted and produced, with metadata.
    let (_, text, _) = stored.text(&["show", child_id, "--step", "behave[a_txt]"]);
    let head: Vec<&str> = text.lines().take(2).collect();
    assert_eq!(
        head,
        [format!("step behave[a_txt] (op \"behave\", taken from run {})", short(&id)).as_str(), "  status   success"]
    );
    let (_, shown_step, _) = stored.text(&["show", &id, "--step", "behave[a_txt]"]);
    let duration = step(&report, "behave[a_txt]").unwrap()["duration_ms"].as_f64().unwrap();
    assert_eq!(
        shown_step,
        format!(
            "step behave[a_txt] (op \"behave\")\n  status   success, 1 attempt(s), {duration:.1} ms, on local\ninputs:\n  \
             path ← map files_in_directory.result from files_in_directory.result[a_txt]\n    \"/data/a.txt\"\nrecords:\n  \
             (none)\noutputs:\n  result = 1\n    metadata: m = {{\"x\":[1,2]}}, rows = 3\n"
        )
    );
    let (code, detail, stderr) = stored.run(&["show", &id, "--step", "files_in_directory", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(detail["inputs"], serde_json::json!([]));
    assert_eq!(
        detail["records"],
        serde_json::json!([
            { "output": "result", "mapping_key": "a_txt", "value": "/data/a.txt",
              "metadata": { "filename": { "type": "text", "value": "a.txt" } } },
            { "output": "result", "mapping_key": "b_txt", "value": "/data/b.txt",
              "metadata": { "filename": { "type": "text", "value": "b.txt" } } },
        ])
    );
    assert_eq!(detail["outputs"], serde_json::json!({}));

    let (code, _, stderr) = stored.run(&["show", &id, "--step", "behave[a_tx]"]);
    assert_eq!(code, 2);
    assert_eq!(stderr, format!("error: run {} has no step behave[a_tx] (did you mean behave[a_txt]?)\n", short(&id)));
}

#[test]
fn show_step_gives_a_collect_the_list_it_received() {
    let (stored, report) = behave_run(&[("a.txt", b"ok\n"), ("b.txt", b"fail:no")]);
    let id = report["run_id"].as_str().unwrap();
    let job = std::fs::read_to_string(&stored.job).unwrap()
        + "[ops.summarize_directory]\ncomponent = \"summarize_directory\"\n\
           inputs = { results = { collect = \"behave\", min_success = 1 } }\n";
    std::fs::write(&stored.job, job).unwrap();
    let (_, report, stderr) = stored.run(&["run", &stored.job.clone(), "--json"]);
    let id2 = report["run_id"].as_str().unwrap();
    assert_ne!(id, id2, "{stderr}");
    let (code, detail, stderr) = stored.run(&["show", id2, "--step", "summarize_directory", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let ok = report["steps"].as_array().unwrap().iter().find(|s| s["key"] == "behave[a_txt]").unwrap();
    assert_eq!(ok["status"], "success");
    assert_eq!(detail["inputs"][0]["name"], "results");
    assert_eq!(detail["inputs"][0]["source"], "collect behave.result");
    assert_eq!(detail["inputs"][0]["from"], serde_json::json!(["behave[?] (2 clones)"]));
    // Only the clone that succeeded: min_success runs the collect without the other.
    assert_eq!(detail["inputs"][0]["value"].as_array().unwrap().len(), 1);
    assert_eq!(detail["inputs"][0]["value"][0]["said"], "ok");
}

#[test]
fn log_lines_carry_the_time_they_were_written() {
    let before = std::time::SystemTime::now();
    let (stored, report) = behave_run(&[("a.txt", b"print:3")]);
    let after = std::time::SystemTime::now();
    let id = report["run_id"].as_str().unwrap();
    let (_, text, _) = stored.text(&["logs", id]);
    let (time, line) = text.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "behave[a_txt] stdout: xxx");
    // RFC 3339 in UTC to the millisecond, between the run's start and end.
    assert_eq!((time.len(), &time[10..11], &time[23..]), (24, "T", "Z"), "{time}");
    let at = humantime::parse_rfc3339(time).unwrap();
    let ms = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert!(ms(before) <= ms(at) && ms(at) <= ms(after), "{time}");
}
