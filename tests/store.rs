//! The run store through the binary: every run recorded, `runs`, `show`, `logs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workspace, sandmap};
use serde_json::Value;

/// Run the binary with its own store in `store`; (exit code, stdout, stderr).
fn with_store(store: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let output = sandmap().env("SANDMAP_HOME", store).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn behave_job(ws: &Workspace, files: &[(&str, &[u8])]) -> String {
    ws.files("cmds", files);
    let job =
        common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "limits = { max_log_bytes = \"1 KiB\" }");
    ws.job(&job).display().to_string()
}

#[test]
fn every_run_is_recorded_and_shown_as_it_was_printed() {
    let ws = Workspace::new();
    let store = ws.path().join("store");
    let job = behave_job(&ws, &[("a.txt", b"ok\n"), ("b.txt", b"fail:no good")]);
    let (code, printed, _) = with_store(&store, &["run", &job, "--json"]);
    assert_eq!(code, 1);
    let printed: Value = serde_json::from_str(&printed).unwrap();
    let run_id = printed["run_id"].as_str().unwrap().to_owned();

    let (code, shown, stderr) = with_store(&store, &["show", &run_id[..13], "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown, printed, "show --json reads back exactly what run --json printed");

    let (code, _, _) = with_store(&store, &["run", &job, "--json"]);
    assert_eq!(code, 1);
    let (code, list, _) = with_store(&store, &["runs", "--json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&list).unwrap();
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["run_id"], Value::String(run_id.clone()), "newest first");
    assert_eq!(runs[0]["status"], "failure");
    assert_eq!(runs[0]["failed"], 1);
    assert_eq!(runs[0]["steps"], 3);
    let (_, filtered, _) = with_store(&store, &["runs", "--status", "success", "--json"]);
    assert_eq!(filtered.trim(), "[]");
}

#[test]
fn logs_show_each_step_escaped_with_the_cut_marked() {
    let ws = Workspace::new();
    let store = ws.path().join("store");
    let job = behave_job(&ws, &[("a.txt", b"print:3000"), ("b.txt", b"ansi")]);
    let (_, printed, _) = with_store(&store, &["run", &job, "--json"]);
    let run: Value = serde_json::from_str(&printed).unwrap();
    let id = run["run_id"].as_str().unwrap();
    let (code, logs, stderr) = with_store(&store, &["logs", id, "behave[a_txt]"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        common::without_times(&logs),
        format!("behave[a_txt] stdout: {}\nbehave[a_txt] [… 2040 more bytes cut at max_log_bytes]\n", "x".repeat(960))
    );
    let (_, logs, _) = with_store(&store, &["logs", id]);
    assert!(logs.contains("behave[b_txt] stdout: \\u{1b}[2J\\u{1b}]0;owned\\u{7}"), "{logs}");
    assert!(!logs.contains('\u{1b}'));
    let (code, _, stderr) = with_store(&store, &["logs", id, "behave[zzz]"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has no step behave[zzz]"), "{stderr}");
}

#[test]
fn unknown_runs_and_missing_stores_are_clear_errors() {
    let ws = Workspace::new();
    let store = ws.path().join("store");
    let (code, _, stderr) = with_store(&store, &["runs"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no run store found"), "{stderr}");
    let job = behave_job(&ws, &[("a.txt", b"ok")]);
    with_store(&store, &["run", &job]);
    let (code, _, stderr) = with_store(&store, &["show", "ffffffff"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no run ffffffff in the store"), "{stderr}");
}

#[test]
fn a_grant_containing_the_run_store_is_refused() {
    let ws = Workspace::new();
    ws.files("cmds", &[("a.txt", b"ok")]);
    // The store inside the granted folder.
    let store = ws.path().join("cmds/.sandmap");
    let job = ws.job(&common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "")).display().to_string();
    let (code, _, stderr) = with_store(&store, &["run", &job]);
    assert_eq!(code, 2);
    assert!(stderr.contains("grants[0].host: ") && stderr.contains("contains sandmap's own data"), "{stderr}");
}

#[test]
fn step_outputs_and_record_values_are_stored() {
    let ws = Workspace::new();
    let store = ws.path().join("store");
    ws.files("sample", &[("a.txt", b"one\n")]);
    let job = ws.job(common::SEED_JOB).display().to_string();
    let (code, printed, _) = with_store(&store, &["run", &job, "--json"]);
    assert_eq!(code, 0);
    let id = serde_json::from_str::<Value>(&printed).unwrap()["run_id"].as_str().unwrap().to_owned();
    let report = sandmap::store::RunStore::open_existing(&store).unwrap().report(&id).unwrap();
    let fan_out = report.step("files_in_directory").unwrap();
    assert_eq!(fan_out.records[0].value.as_ref().map(|v| v.as_str()), Some("\"/data/a.txt\""));
    let clone = report.step("process_file[a_txt]").unwrap();
    assert_eq!(clone.values.len(), 1);
    assert_eq!(clone.values[0].0, "result");
    assert_eq!(clone.values[0].1.to_value()["lines"], 1);
    let summary = report.step("summarize_directory").unwrap();
    assert_eq!(summary.values[0].1.to_value(), serde_json::json!({"files": 1, "bytes": 4, "lines": 1}));
    // Each op's effective config is kept with its component digest.
    let db = rusqlite::Connection::open(store.join("runs.db")).unwrap();
    let config: String = db
        .query_row("SELECT config FROM run_components WHERE run_id = ?1 AND op = 'files_in_directory'", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&config).unwrap(),
        serde_json::json!({"path": "/data", "pattern": null, "recursive": false, "include_hidden": true})
    );
}

#[test]
fn gc_deletes_old_runs_but_keeps_running_failed_and_parent_runs_as_asked() {
    let ws = Workspace::new();
    let store = ws.path().join("store");
    let job = behave_job(&ws, &[("a.txt", b"ok\n"), ("b.txt", b"ok\n")]);
    let run = |args: &[&str]| {
        let (code, out, err) = with_store(&store, args);
        assert!(code == 0 || code == 1, "{err}");
        out
    };
    let id_of = |out: &str| serde_json::from_str::<Value>(out).unwrap()["run_id"].as_str().unwrap().to_owned();
    let ok = id_of(&run(&["run", &job, "--json"]));
    // A parent that succeeded and its re-execution that failed: with --keep-failed the child
    // stays, and so does its parent.
    let parent = id_of(&run(&["run", &job, "--json"]));
    std::fs::write(ws.path().join("cmds/b.txt"), b"fail:now bad").unwrap();
    let child = id_of(&run(&["reexecute", &parent, "--step", "behave[b_txt]", "--json"]));

    let (code, out, _) = with_store(&store, &["gc", "--older-than", "0s", "--keep-failed", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(out, "would delete 1 run(s) (3 steps); kept 1 older run(s) as the parent of a run that stays\n");
    let (_, listed, _) = with_store(&store, &["runs", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap().as_array().unwrap().len(),
        3,
        "a dry run deletes nothing"
    );

    let (code, out, err) = with_store(&store, &["gc", "--older-than", "0s", "--keep-failed"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "deleted 1 run(s) (3 steps); kept 1 older run(s) as the parent of a run that stays; the store went from "
        ),
        "{out}"
    );
    let (_, listed, _) = with_store(&store, &["runs", "--json"]);
    let ids: Vec<String> = serde_json::from_str::<Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [child.clone(), parent.clone()]);
    let (code, _, err) = with_store(&store, &["show", &ok]);
    assert_eq!(code, 2);
    assert!(err.contains(&ok), "{err}");
    // The child still shows, and still re-executes.
    let (code, shown, _) = with_store(&store, &["show", &child, "--json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["status"], "failure");

    // Young runs stay; then everything goes.
    let (_, out, _) = with_store(&store, &["gc", "--older-than", "1h"]);
    assert!(out.starts_with("deleted 0 run(s) (0 steps); the store went from "), "{out}");
    let (_, out, _) = with_store(&store, &["gc", "--older-than", "0s"]);
    assert!(out.starts_with("deleted 2 run(s) (4 steps); the store went from "), "{out}");
    let (_, listed, _) = with_store(&store, &["runs", "--json"]);
    assert_eq!(listed.trim(), "[]");
    let (code, _, err) = with_store(&store, &["gc", "--older-than", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'soon' for '--older-than <AGE>'"), "{err}");
}
