//! Hostile ops, round 2: every resource an op can make the host spend is bounded per step. Each
//! test runs the `hostile` test plugin (raw bindings, past the SDK's checks) as one clone of a
//! 20-way map through the binary, and checks that the hostile clone alone is blamed, with the
//! limit named, while the other 19 clones succeed and their results are kept.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Workspace, sandmap};
use serde_json::{Value, json};

/// How long any run here may take before the test calls it stalled (the longest bound a test
/// sets is a 1 s timeout; a definition's is 10 s).
const STALLED: Duration = Duration::from_secs(120);

/// Run `command` to its end, killing it and failing the test if it stalls; (exit code, stdout,
/// stderr).
fn finish(mut command: Command) -> (i32, String, String) {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    // A watchdog: the output is read to its end below (a full pipe would block the child).
    let watchdog = std::thread::spawn(move || {
        let stalled = finished.recv_timeout(STALLED).is_err();
        if stalled {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        stalled
    });
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(!watchdog.join().unwrap(), "the host stalled: killed after {:?}", started.elapsed());
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// files_in_directory over `cmds/` (19 files holding `sibling`, and `a_hostile.txt` holding
/// `command`, first in emission order) → `hostile` per file, with `limits` for hostile, which
/// also has `/work` read-write.
fn setup(command: &str, sibling: &str, limits: &str) -> (Workspace, String) {
    let ws = Workspace::new();
    let names: Vec<String> = (0..19).map(|i| format!("f{i:02}.txt")).collect();
    let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), sibling.as_bytes())).collect();
    files.push(("a_hostile.txt", command.as_bytes()));
    ws.files("cmds", &files);
    ws.files("work", &[]);
    let job = ws.job(&format!(
        r#"
name = "hostile_job"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{{ host = "cmds", guest = "/data" }}]
[ops.hostile]
component = "{hostile}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "cmds", guest = "/data" }}, {{ host = "work", guest = "/work", access = "read-write" }}]
limits = {{ {limits} }}
"#,
        hostile = sandmap_test_programs::HOSTILE
    ));
    let job = job.display().to_string();
    (ws, job)
}

/// Run the job with `command` in its hostile clone (and `sibling` in the others); the report,
/// after checking that the 19 other clones succeeded with their results kept.
fn one_in_twenty_with(command: &str, sibling: &str, limits: &str, expected_exit: i32) -> Value {
    let (ws, job) = setup(command, sibling, limits);
    let mut run = sandmap();
    run.env("SANDMAP_HOME", ws.path().join("store")).args(["run", &job, "--json", "--max-concurrent", "2"]);
    let (code, stdout, stderr) = finish(run);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(code, expected_exit, "{stderr}");
    let results = &report["outputs"]["hostile"]["result"];
    for i in 0..19 {
        let key = format!("f{i:02}_txt");
        assert_eq!(step(&report, &format!("hostile[{key}]"))["status"], "success", "{key}");
        assert_eq!(results[&key], json!({"said": "ok", "mapping_key": key}), "{key}'s result is kept");
    }
    report
}

fn one_in_twenty(command: &str, limits: &str, expected_exit: i32) -> Value {
    one_in_twenty_with(command, "ok", limits, expected_exit)
}

fn step<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key}"))
}

/// The hostile clone failed alone, with exactly `error`.
fn assert_blamed(command: &str, limits: &str, error: &str) -> Value {
    let report = one_in_twenty(command, limits, 1);
    let hostile = step(&report, "hostile[a_hostile_txt]");
    assert_eq!(hostile["status"], "failure");
    assert_eq!(hostile["error"], error);
    assert_eq!(
        report["error"],
        "Execution of run for \"hostile_job\" failed. Steps failed: ['hostile[a_hostile_txt]']."
    );
    report
}

#[test]
fn open_files_are_capped_per_step_and_the_op_is_told_as_by_emfile() {
    assert_blamed(
        "hold_files:100000",
        "",
        "exceeded max_open_files limit 256 (the op then failed: open #257 of /data/a_hostile.txt: \
         Quota exceeded (os error 19))",
    );
}

#[test]
fn a_clone_hoarding_descriptors_holds_only_its_own_share() {
    // The other clones start only once it holds all it could get, and run while it keeps them.
    let report = one_in_twenty_with("hoard_files:300:/work/hoarded", "await:/work/hoarded", "max_open_files = 40", 0);
    // 40 opened, one closed for the marker and opened again: its 40, and not one more.
    assert_eq!(report["outputs"]["hostile"]["result"]["a_hostile_txt"], json!({"held": 40}));
}

#[test]
fn max_open_files_beyond_the_process_limit_is_refused() {
    let (_ws, job) = setup("ok", "ok", "max_open_files = 100000000");
    let mut validate = sandmap();
    validate.args(["validate", &job]);
    let (code, _, stderr) = finish(validate);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "op \"hostile\": limits.max_open_files: 100000000 open files per step do not fit this process's \
             open-file limit (RLIMIT_NOFILE) shared between its concurrent steps: at most"
        ),
        "{stderr}"
    );
}

#[test]
fn a_sleep_inside_a_host_call_ends_at_the_timeout() {
    let report = assert_blamed("sleep:30", "timeout = \"1 s\"", "exceeded time limit 1 s");
    let took = step(&report, "hostile[a_hostile_txt]")["duration_ms"].as_f64().unwrap();
    assert!((1000.0..10_000.0).contains(&took), "the 30 s sleep was cut at 1 s, not waited out: {took} ms");
}

#[test]
fn hashing_in_the_host_counts_against_the_timeout() {
    let report = assert_blamed("digest_flood:64", "timeout = \"1 s\"", "exceeded time limit 1 s");
    let took = step(&report, "hostile[a_hostile_txt]")["duration_ms"].as_f64().unwrap();
    assert!((1000.0..10_000.0).contains(&took), "the flood was stopped at its 1 s timeout: {took} ms");
}

#[test]
fn a_hash_of_more_than_one_host_call_carries_is_split_by_the_sdk() {
    // wasmtime refuses a call that copies more than 128 MiB; the SDK's `update` splits 300 MiB.
    let report = one_in_twenty("digest_once:300", "memory = \"512 MiB\"", 0);
    let zeros = vec![0u8; 300 << 20];
    assert_eq!(report["outputs"]["hostile"]["result"]["a_hostile_txt"], json!(common::sha256_hex(&zeros)));
}

#[test]
fn host_hashers_are_bounded_like_every_handle() {
    assert_blamed("hasher_hoard", "", "exceeded WASI handles limit 10000");
}

#[test]
fn an_endless_sleep_does_not_stall_the_run() {
    assert_blamed("sleep:max", "timeout = \"500 ms\"", "exceeded time limit 500 ms");
}

#[test]
fn a_definition_that_sleeps_is_stopped_at_the_definition_time_limit() {
    let ws = Workspace::new();
    let job = ws.job(&format!("name = \"j\"\n[ops.a]\ncomponent = \"{}\"\n", sandmap_test_programs::DEF_SLEEP));
    let job = job.display().to_string();
    let expected =
        format!("{}: cannot read the op's definition: exceeded time limit 10 s", sandmap_test_programs::DEF_SLEEP);
    // Both at once: each waits out the 10 s limit.
    let commands: Vec<Vec<String>> =
        vec![vec!["validate".into(), job.clone()], vec!["inspect".into(), sandmap_test_programs::DEF_SLEEP.into()]];
    let handles: Vec<_> = commands
        .into_iter()
        .map(|args| {
            std::thread::spawn(move || {
                let mut command = sandmap();
                command.args(&args);
                finish(command)
            })
        })
        .collect();
    for handle in handles {
        let (code, _, stderr) = handle.join().unwrap();
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&expected), "{stderr}");
    }
}

/// A folder of 3,000 files with 200-byte names, beside the commands (`cmds/big`).
fn big_folder(ws: &Workspace) {
    let big = ws.path().join("cmds/big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..3_000 {
        std::fs::write(big.join(format!("{i:05}{}", "n".repeat(195))), "").unwrap();
    }
}

/// Listings a step keeps open are bounded in host memory (each whole listing is held by the
/// host): a clone holding ~770 KB listings of one folder again and again is refused past 64 MiB
/// with `insufficient-memory`, as by `ENOMEM`, long before its 256 open files run out; and a
/// listing dropped gives its share back, so listing the folder again and again is fine.
#[test]
fn listings_held_open_are_bounded_and_a_dropped_one_gives_its_share_back() {
    for (command, refused) in [("hold_listings:200:/data/big", true), ("list_again:200:/data/big", false)] {
        let (ws, job) = setup(command, "ok", "");
        big_folder(&ws);
        let mut run = sandmap();
        run.env("SANDMAP_HOME", ws.path().join("store")).args(["run", &job, "--json", "--max-concurrent", "2"]);
        let (code, stdout, stderr) = finish(run);
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
        let hostile = step(&report, "hostile[a_hostile_txt]");
        for i in 0..19 {
            assert_eq!(step(&report, &format!("hostile[f{i:02}_txt]"))["status"], "success", "{command}");
        }
        if refused {
            assert_eq!(code, 1, "{stderr}");
            assert_eq!(hostile["status"], "failure");
            let error = hostile["error"].as_str().unwrap();
            let held: u32 = error
                .split("listing #")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{error}"));
            assert!((60..120).contains(&held), "{error}");
            assert!(error.ends_with(&format!("listing #{held} of /data/big: Out of memory (os error 48)")), "{error}");
        } else {
            assert_eq!(code, 0, "{stderr}");
            assert_eq!(report["outputs"]["hostile"]["result"]["a_hostile_txt"], json!({"listed": 200}));
        }
    }
}

#[test]
fn a_million_tiny_log_entries_are_held_to_max_log_bytes() {
    let report = one_in_twenty("logs:1000000", "", 0);
    let log = &step(&report, "hostile[a_hostile_txt]")["log"];
    // Each entry costs its byte and 64 bytes of overhead against the 1 MiB cap.
    let kept = (1u64 << 20) / 65;
    assert_eq!(log["entries"].as_array().unwrap().len() as u64, kept);
    assert_eq!(log["truncated_bytes"], json!(1_000_000 - kept));
}

#[test]
fn what_one_step_emits_is_capped_in_total() {
    // 16 MiB records (each within max_value_bytes): the fourth takes the step past 64 MiB.
    assert_blamed(
        "records:64:16777216",
        "",
        "exceeded max_output_bytes limit 64 MiB (the step's records and outputs reached 67108872 bytes at \
         output \"records\")",
    );
}

#[test]
fn metadata_counts_against_max_value_bytes() {
    assert_blamed(
        "metadata:2:10485760",
        "",
        "exceeded max_value_bytes limit 16 MiB (output \"result\" got a value of 15 bytes with 20971524 bytes \
         of metadata)",
    );
}

#[test]
fn a_mapping_key_longer_than_255_bytes_is_refused() {
    assert_blamed(
        "long_key:8388608",
        "",
        &format!(
            "op \"hostile\": a mapping key of 8388608 bytes (\"{}…\") is too long: exceeded max_key_bytes limit \
             255 bytes",
            "k".repeat(32)
        ),
    );
    let report = one_in_twenty("long_key:255", "", 0);
    let records = step(&report, "hostile[a_hostile_txt]")["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["mapping_key"], format!("{}0", "k".repeat(254)));
}
