//! The `sandmap` binary: exit codes, human and JSON output, `validate`, `inspect`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use common::{MAP_ONLY_JOB, SEED_JOB, StoredJob, Workspace, run_binary, run_json, sandmap};
use serde_json::json;

fn example_job() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/process_directory.toml").display().to_string()
}

#[test]
fn the_shipped_example_runs() {
    let (code, stdout, stderr) = run_binary(&["run", &example_job()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("summarize_directory.result = {\"bytes\":90,\"files\":4,\"lines\":6}"), "{stdout}");
    assert!(stdout.contains("success   process_file[fox_txt]"), "{stdout}");
    assert!(stdout.lines().last().unwrap().starts_with("success: 6 steps (6 succeeded) in "), "{stdout}");
}

#[test]
fn run_json_has_the_documented_shape() {
    let (code, report) = run_json(Path::new(&example_job()));
    assert_eq!(code, 0);
    assert_eq!(report["status"], "success");
    assert!(report["run_id"].as_str().is_some_and(|id| id.len() == 36));
    let steps = report["steps"].as_array().unwrap();
    let keys: Vec<&str> = steps.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "files_in_directory",
            "process_file[alpha_txt]",
            "process_file[fox_txt]",
            "process_file[no_newline_txt]",
            "process_file[notes_2026_md]",
            "summarize_directory"
        ]
    );
    assert_eq!(steps[1]["op"], "process_file");
    assert_eq!(steps[1]["mapping_key"], "alpha_txt");
    assert_eq!(steps[1]["status"], "success");
    assert_eq!(steps[1]["error"], serde_json::Value::Null);
    assert_eq!(steps[0]["mapping_key"], serde_json::Value::Null);
    assert_eq!(report["outputs"], json!({"summarize_directory": {"result": {"bytes": 90, "files": 4, "lines": 6}}}));
}

#[test]
fn a_failed_run_exits_1_and_an_invalid_job_2() {
    let ws = Workspace::new();
    ws.files("sample", &[("a-b.txt", b"1"), ("a_b.txt", b"2")]);
    let job = ws.job(SEED_JOB);
    let (code, report) = run_json(&job);
    assert_eq!(code, 1);
    assert_eq!(report["status"], "failure");
    assert_eq!(report["steps"][0]["status"], "failure");

    let bad = ws.path().join("bad.toml");
    std::fs::write(&bad, "name = \"j\"\n[ops.x]\ncomponent = \"nope\"\n").unwrap();
    let (code, stdout, stderr) = run_binary(&["run", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr
            .starts_with(&format!("error: {}:3:13: op \"x\": component: component \"nope\" not found", bad.display())),
        "{stderr}"
    );

    let (code, _, stderr) = run_binary(&["run", ws.path().join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing.toml: cannot read the job file"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = run_binary(&["run"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("Usage"), "{stderr}");
    let (code, _, _) = run_binary(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, _, _) = run_binary(&["run", "x.toml", "--max-concurrent", "0"]);
    assert_eq!(code, 2);
}

#[test]
fn validate_checks_without_running() {
    let (code, stdout, _) = run_binary(&["validate", &example_job()]);
    assert_eq!(code, 0);
    assert!(stdout.ends_with("job \"process_directory\" is valid: 3 ops (1 mapped)\n"), "{stdout}");
}

#[test]
fn inspect_prints_the_definition() {
    // Off the plugin path (the test plugins' folder holds a process_file.wasm too), a name is
    // the built-in op.
    let output =
        common::sandmap().env_remove("SANDMAP_PLUGIN_PATH").args(["inspect", "process_file"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.starts_with("op process_file  (built-in op process_file)"), "{stdout}");
    assert!(stdout.contains("  path             required  the file's guest path"), "{stdout}");
    assert!(stdout.contains("  result           plain, required  {path, bytes, lines, sha256}"), "{stdout}");
    assert!(stdout.contains("network  false"), "{stdout}");
    // process_file hashes with the host digest, so it imports it; emit_script below does not.
    assert!(stdout.contains("imports:\n  sandmap:op/digest@0.1.0\n  sandmap:op/host@0.1.0\n"), "{stdout}");
    assert!(stdout.contains("\n  wasi:filesystem/preopens@0.2."), "{stdout}");

    let (code, stdout, _) = run_binary(&["inspect", sandmap_test_programs::EMIT_SCRIPT, "--json"]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["definition"]["name"], "emit_script");
    assert_eq!(
        value["definition"]["outputs"][0],
        json!({"name": "result", "description": "", "dynamic": true, "required": true})
    );
    assert_eq!(value["network"], false);
    assert!(value["imports"].as_array().unwrap().contains(&json!("sandmap:op/host@0.1.0")));
    assert!(!value["imports"].as_array().unwrap().contains(&json!("sandmap:op/digest@0.1.0")), "unused, not imported");
    assert_eq!(value["default_limits"]["memory"], "256 MiB");

    let (code, _, stderr) = run_binary(&["inspect", sandmap_test_programs::NOT_AN_OP]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a sandmap op"), "{stderr}");
}

#[test]
fn guest_text_cannot_drive_the_terminal() {
    let ws = Workspace::new();
    ws.files("cmds", &[("a.txt", "fail:\u{1b}[2J\u{1b}]0;pwned\u{7}".as_bytes())]);
    let job = ws.job(&format!(
        "name = \"j\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"cmds\", guest = \"/data\" }}]\n\
         [ops.b]\ncomponent = \"{}\"\ninputs = {{ path = {{ map = \"files_in_directory\" }} }}\ngrants = [{{ host = \"cmds\", guest = \"/data\" }}]\n",
        sandmap_test_programs::BEHAVE
    ));
    let (code, stdout, _) = run_binary(&["run", job.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\u{7}'), "{stdout:?}");
    assert!(stdout.contains("\\u{1b}[2J"), "{stdout}");
}

#[test]
fn graph_draws_map_collect_and_broadcast_edges() {
    let (code, mermaid, stderr) = run_binary(&["graph", &example_job()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        mermaid,
        "flowchart LR\n    files_in_directory[\"files_in_directory\"]\n    process_file[\"process_file[?]\"]\n    \
         summarize_directory[\"summarize_directory\"]\n    files_in_directory ==>|\"map result → path\"| process_file\n    \
         process_file -.->|\"collect result → results\"| summarize_directory\n"
    );
    let ws = Workspace::new();
    let job = ws.job(
        "name = \"g\"\n[ops.emit]\ncomponent = \"emit_script\"\n[ops.cfg]\ncomponent = \"emit_script\"\n\
         [ops.add]\ncomponent = \"join2\"\ninputs = { a = { map = \"emit\" }, b = \"cfg.extra\" }\n\
         [ops.inner]\ncomponent = \"split_list\"\ninputs = { items = { map = \"add\" } }\n",
    );
    let (code, dot, stderr) = run_binary(&["graph", job.to_str().unwrap(), "--format", "dot"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dot.contains("\"add\" [label=\"add[?]\", shape=box3d];"), "{dot}");
    assert!(dot.contains("\"inner\" [label=\"inner[?]\", shape=box3d];"), "{dot}");
    assert!(dot.contains("\"cfg\" -> \"add\" [label=\"extra → b\", style=solid];"), "broadcast: {dot}");
    assert!(dot.contains("\"emit\" -> \"add\" [label=\"map result → a\", style=bold];"), "{dot}");
    assert!(dot.contains("\"add\" -> \"inner\" [label=\"map result → items\", style=bold];"), "chained: {dot}");
    let (code, _, stderr) = run_binary(&["graph", ws.path().join("nope.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read the job file"), "{stderr}");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, _) = run_binary(&["completions", shell]);
        assert_eq!(code, 0);
        assert!(
            script.contains("sandmap") && script.contains("inspect") && script.contains("max-concurrent"),
            "{shell}"
        );
    }
    let (code, _, _) = run_binary(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn set_overrides_config_and_is_validated_like_the_file() {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"1\n")]);
    ws.files("other", &[("x.txt", b"1\n2\n"), ("y.txt", b"")]);
    let job = ws.job(
        &SEED_JOB
            .replace(
                "grants = [{ host = \"sample\", guest = \"/data\", access = \"read\" }]",
                "grants = [{ host = \"sample\", guest = \"/data\" }, { host = \"other\", guest = \"/other\" }]",
            )
            .replace(
                "grants = [{ host = \"sample\", guest = \"/data\" }]\n\n[ops.summarize_directory]",
                "grants = [{ host = \"other\", guest = \"/other\" }]\n\n[ops.summarize_directory]",
            ),
    );
    let job = job.to_str().unwrap();
    let (code, out, stderr) = run_binary(&["run", job, "--json", "--set", "files_in_directory.config.path=\"/other\""]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["outputs"]["summarize_directory"]["result"], json!({"files": 2, "bytes": 4, "lines": 2}));
    // Text without quotes is taken as text.
    let (code, _, _) = run_binary(&["run", job, "--set", "files_in_directory.config.path=/other"]);
    assert_eq!(code, 0);
    // Checked against the op's schema, named like the file's own config.
    let (code, _, stderr) = run_binary(&["run", job, "--set", "files_in_directory.config.path=5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("op \"files_in_directory\": config: /path: 5 is not of type \"string\""), "{stderr}");
    let (code, _, stderr) = run_binary(&["validate", job, "--set", "nope.config.path=1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--set nope.config.path=1: no op \"nope\" in the job"), "{stderr}");
    let (code, _, stderr) = run_binary(&["run", job, "--set", "files_in_directory.limits.memory=1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("the key must be op.config.KEY"), "{stderr}");
}

/// `sandmap logs RUN STEP`'s lines for one step of a run recorded in `stored`'s store.
fn step_logs(stored: &StoredJob, run: &serde_json::Value, step: &str) -> String {
    let id = run["run_id"].as_str().unwrap();
    let output = sandmap().env("SANDMAP_HOME", &stored.store).args(["logs", id, step]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    common::without_times(&String::from_utf8(output.stdout).unwrap())
}

#[test]
fn files_in_directory_lists_as_before_by_default_and_logs_what_it_skipped() {
    let ws = Workspace::new();
    let dir = ws.files("sample", &[("b.txt", b"b\n"), (".hidden", b"h\n"), ("a-1.csv", b"a\n")]);
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/inner.txt"), b"i\n").unwrap();
    std::os::unix::fs::symlink("b.txt", dir.join("link.txt")).unwrap();
    let stored = StoredJob::new(ws, MAP_ONLY_JOB);
    let keys = |report: &serde_json::Value| -> Vec<String> {
        report["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect()
    };

    // No config: every regular file directly in /data, hidden ones too, sorted by name.
    let (code, report, stderr) = stored.run(&["run", &stored.job, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        keys(&report),
        ["files_in_directory", "process_file[_hidden]", "process_file[a_1_csv]", "process_file[b_txt]"]
    );
    assert_eq!(report["outputs"]["process_file"]["result"]["a_1_csv"]["path"], "/data/a-1.csv");
    assert_eq!(
        step_logs(&stored, &report, "files_in_directory"),
        "files_in_directory info: skipped 2 entries: 1 symlink, 1 directory\n"
    );

    // The options, set from the command line.
    let set = |kv: &str| format!("files_in_directory.config.{kv}");
    let (pattern, recursive, hidden) = (set("pattern=*.txt"), set("recursive=true"), set("include_hidden=false"));
    let args = ["run", &stored.job, "--json", "--set", &pattern, "--set", &recursive, "--set", &hidden];
    let (code, report, stderr) = stored.run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(keys(&report), ["files_in_directory", "process_file[b_txt]", "process_file[sub_inner_txt]"]);
    assert_eq!(report["outputs"]["process_file"]["result"]["sub_inner_txt"]["path"], "/data/sub/inner.txt");
    assert_eq!(
        step_logs(&stored, &report, "files_in_directory"),
        "files_in_directory info: skipped 3 entries: 1 hidden, 1 symlink, 1 not matching \"*.txt\"\n"
    );

    // An invalid pattern fails the step, naming the pattern.
    let bad = set("pattern=[a");
    let (code, report, _) = stored.run(&["run", &stored.job, "--json", "--set", &bad]);
    assert_eq!(code, 1);
    assert_eq!(report["steps"][0]["error"], "invalid pattern \"[a\": a \"[\" is never closed with \"]\"");
}
