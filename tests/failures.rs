//! A failing, crashing or limit-hitting op fails its own step with a clear error; the other
//! clones run, the run record keeps what was produced, and the run fails.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::Workspace;
use sandmap::executor::{RunReport, RunStatus, StepStatus};
use serde_json::{Value, json};

/// files_in_directory over `cmds/` → behave per file (with `limits`) → summarize_directory.
fn behave_job(limits: &str) -> String {
    behave_map_job(limits)
        + "[ops.summarize_directory]\ncomponent = \"summarize_directory\"\ninputs = { results = { collect = \"behave\" } }\n"
}

/// [`behave_job`] without its collect: behave is a leaf, its per-key results in the outputs.
fn behave_map_job(limits: &str) -> String {
    common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", &format!("limits = {{ {limits} }}"))
}

/// Run behave over a.txt = "ok", b.txt = `command`, c.txt = "ok".
fn run_with(command: &str, limits: &str) -> RunReport {
    let ws = Workspace::new();
    ws.files("cmds", &[("a.txt", b"ok\n"), ("b.txt", command.as_bytes()), ("c.txt", b"ok\n")]);
    ws.run(&behave_job(limits))
}

/// The bad clone failed with `expected` (a prefix), the good ones succeeded, the collect was
/// abandoned and the run failed naming the bad clone.
fn assert_only_b_failed(report: &RunReport, expected: &str) {
    let b = report.step("behave[b_txt]").unwrap();
    assert_eq!(b.status, StepStatus::Failure);
    let error = b.error.as_deref().unwrap();
    assert!(error.starts_with(expected), "expected {expected:?}, got {error:?}");
    for key in ["behave[a_txt]", "behave[c_txt]"] {
        assert_eq!(report.step(key).unwrap().status, StepStatus::Success, "{key}");
    }
    let summary = report.step("summarize_directory").unwrap();
    assert_eq!(summary.status, StepStatus::Abandoned);
    assert_eq!(
        summary.error.as_deref(),
        Some("Dependencies for step summarize_directory failed: ['behave[b_txt]']. Not executing.")
    );
    assert_eq!(report.status, RunStatus::Failure);
    assert_eq!(
        report.error.as_deref(),
        Some("Execution of run for \"behave_job\" failed. Steps failed: ['behave[b_txt]'].")
    );
}

#[test]
fn all_good_clones_collect() {
    let report = run_with("ok\n", "");
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(report.output("summarize_directory", "result"), Some(&json!({"files": 3, "bytes": 9, "lines": 3})));
}

#[test]
fn an_op_error_fails_only_its_clone() {
    assert_only_b_failed(&run_with("fail:boom on b", ""), "boom on b");
}

#[test]
fn a_panic_is_a_crash_with_the_panic_message() {
    let report = run_with("panic", "");
    assert_only_b_failed(&report, "op crashed: ");
    let error = report.step("behave[b_txt]").unwrap().error.clone().unwrap();
    assert!(error.contains("told to panic by /data/b.txt"), "{error}");
}

#[test]
fn an_unreachable_trap_is_a_crash() {
    let report = run_with("trap", "");
    assert_only_b_failed(&report, "op crashed: ");
    assert!(report.step("behave[b_txt]").unwrap().error.as_deref().unwrap().contains("unreachable"));
}

#[test]
fn an_infinite_loop_hits_the_time_limit() {
    assert_only_b_failed(&run_with("loop", "timeout = \"300 ms\""), "exceeded time limit 300 ms");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    assert_only_b_failed(&run_with("oom", "memory = \"64 MiB\""), "exceeded memory limit 64 MiB");
}

#[test]
fn unbounded_recursion_overflows_the_wasm_stack() {
    assert_only_b_failed(&run_with("recurse", ""), "op crashed: stack overflow (wasm stack limit 512 KiB)");
}

#[test]
fn a_value_over_max_value_bytes() {
    assert_only_b_failed(
        &run_with("big:2000000", "max_value_bytes = \"1 MiB\""),
        "exceeded max_value_bytes limit 1 MiB (output \"result\" got a value of 2000002 bytes)",
    );
}

#[test]
fn every_clone_gets_a_fresh_instance() {
    let ws = Workspace::new();
    let files: Vec<(String, &[u8])> = (0..20).map(|i| (format!("f{i}.txt"), &b"count"[..])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    ws.files("cmds", &files);
    let job = behave_map_job("");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    let results = report.output("behave", "result").unwrap().as_object().unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.values().all(|v| v == &json!(1)), "{results:?}");
}

#[test]
fn a_clone_reads_its_mapping_key() {
    let ws = Workspace::new();
    ws.files("cmds", &[("a-1.txt", b"ok")]);
    let job = behave_map_job("");
    let report = ws.run(&job);
    assert_eq!(report.output("behave", "result").unwrap()["a_1_txt"]["mapping_key"], json!("a_1_txt"));
}

#[test]
fn an_op_sees_only_its_grants() {
    let report = run_with("read:/etc/passwd", "");
    assert_only_b_failed(&report, "read /etc/passwd: ");
    let report = run_with("read:/data/../../etc/passwd", "");
    assert_only_b_failed(&report, "read /data/../../etc/passwd: ");
}

#[test]
fn a_read_grant_is_read_only() {
    let ws = Workspace::new();
    let cmds = ws.files("cmds", &[("a.txt", b"ok\n"), ("b.txt", b"write:/data/a.txt"), ("c.txt", b"ok\n")]);
    let report = ws.run(&behave_job(""));
    assert_only_b_failed(&report, "write /data/a.txt: ");
    assert_eq!(std::fs::read(cmds.join("a.txt")).unwrap(), b"ok\n");
}

#[test]
fn no_env_and_no_args() {
    let ws = Workspace::new();
    ws.files("cmds", &[("a.txt", b"env")]);
    let job = behave_map_job("");
    // SAFETY of the test: a variable set in the host process must not reach the guest.
    let report = ws.run(&job);
    assert_eq!(report.output("behave", "result").unwrap()["a_txt"], json!({"vars": [], "args": []}));
}

#[test]
fn stdout_is_captured_into_the_step_log_and_capped() {
    let ws = Workspace::new();
    ws.files("cmds", &[("b.txt", b"print:3000000")]);
    let report = ws.run(&behave_map_job("max_log_bytes = \"1 MiB\""));
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    assert_eq!(report.step("behave[b_txt]").unwrap().error, None);
    let log = &report.step("behave[b_txt]").unwrap().log;
    let kept: usize = log.entries.iter().map(|e| e.text.len()).sum();
    // One stdout entry: its text and the 64 bytes an entry costs against the cap.
    assert_eq!(log.entries.len(), 1);
    assert_eq!(kept, (1 << 20) - 64);
    assert_eq!(log.truncated_bytes, 3_000_000 - ((1 << 20) - 64));
}

/// files_in_directory-free fan-out: emit_script with `script`, mapped into behave-free
/// summarize via collect of the records themselves.
fn emit_job(script: &str) -> String {
    format!(
        r#"
name = "emit_job"
[ops.emit]
component = "{emit}"
config = {{ {script} }}
[ops.total]
component = "{join2}"
inputs = {{ a = {{ collect = "emit" }}, b = {{ collect = "emit" }} }}
"#,
        emit = sandmap_test_programs::EMIT_SCRIPT,
        join2 = sandmap_test_programs::JOIN2
    )
}

fn emit_failure(script: &str) -> (String, Vec<String>) {
    let ws = Workspace::new();
    let report = ws.run(&emit_job(script));
    assert_eq!(report.status, RunStatus::Failure);
    let emit = report.step("emit").unwrap();
    assert_eq!(emit.status, StepStatus::Failure);
    assert_eq!(report.step("total").unwrap().status, StepStatus::Abandoned);
    (emit.error.clone().unwrap(), emit.records.iter().map(|r| r.mapping_key.clone()).collect())
}

#[test]
fn an_op_that_ignores_a_refusal_is_stopped_and_the_refusal_reported() {
    let (error, kept) = emit_failure(
        r#"ignore_refusals = true, script = [{ emit = "a", value = 1 }, { emit = "a", value = 2 }, { emit = "b", value = 3 }]"#,
    );
    assert_eq!(error, "op \"emit\" emitted a DynamicOutput with mapping_key \"a\" on output \"result\" multiple times");
    assert_eq!(kept, ["a"]);
}

#[test]
fn too_many_emits() {
    let ws = Workspace::new();
    let script: Vec<String> = (0..5).map(|i| format!("{{ emit = \"k{i}\", value = {i} }}")).collect();
    let job = emit_job(&format!("script = [{}]", script.join(", ")))
        .replace("[ops.total]", "limits = { max_emits = 3 }\n[ops.total]");
    let report = ws.run(&job);
    let emit = report.step("emit").unwrap();
    assert_eq!(emit.error.as_deref(), Some("exceeded max_emits limit 3"));
    assert_eq!(emit.records.len(), 3);
}

#[test]
fn collecting_records_directly_gives_them_in_emission_order() {
    let ws = Workspace::new();
    let report = ws.run(&emit_job(
        r#"script = [{ emit = "zeta", value = 1 }, { emit = "alpha", value = 2 }, { emit = "mike", value = { x = 3 } }]"#,
    ));
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(report.output("total", "result"), Some(&json!({"a": [1, 2, {"x": 3}], "b": [1, 2, {"x": 3}]})));
}

/// An in-process runtime with a pool of 2 slots (1 step + 1 for definitions), whose slots are
/// reset by the dirty-page scan if `scan_dirty_pages` and the host allows it.
fn one_step_runtime(scan_dirty_pages: bool) -> sandmap::runtime::Runtime {
    let settings = sandmap::runtime::RuntimeConfig {
        max_concurrent: 1,
        cache_dir: Some(common::test_cache_dir()),
        pooling: true,
        fuel: false,
        scan_dirty_pages,
    };
    sandmap::runtime::Runtime::new(&settings).unwrap()
}

#[test]
fn runs_sharing_a_runtime_wait_for_pool_slots_instead_of_failing() {
    // A pool of 2 slots (1 step + 1 for definitions), 4 runs of 10 clones at once.
    let runtime = one_step_runtime(false);
    let ws = Workspace::new();
    let files: Vec<(String, &[u8])> = (0..10).map(|i| (format!("f{i}.txt"), &b"ok\n"[..])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    ws.files("cmds", &files);
    let job = ws.job(&behave_job(""));
    let dirs = [std::path::PathBuf::from(sandmap_test_programs::DIR)];
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let prepared = sandmap::executor::prepare(&job, &dirs, &runtime).unwrap();
                    let options = sandmap::executor::ExecOptions { max_concurrent: 2, ..Default::default() };
                    sandmap::executor::execute(&prepared.plan, &prepared.ops, &runtime, &options)
                })
            })
            .collect();
        for run in runs {
            let report = run.join().unwrap();
            assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
            assert_eq!(
                report.output("summarize_directory", "result"),
                Some(&json!({"files": 10, "bytes": 30, "lines": 10}))
            );
        }
    });
}

#[test]
fn a_damaged_or_foreign_compile_cache_entry_is_rebuilt_not_trusted() {
    use sandmap::runtime::{Runtime, RuntimeConfig};
    let dir = tempfile::tempdir().unwrap();
    let settings = |fuel| RuntimeConfig {
        max_concurrent: 1,
        cache_dir: Some(dir.path().to_owned()),
        pooling: false,
        fuel,
        scan_dirty_pages: false,
    };
    let bytes = std::fs::read(sandmap_test_programs::NOOP).unwrap();
    let entries = || {
        let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    };
    // Two engine configurations, two entries for the same component.
    let cold = Runtime::new(&settings(false)).unwrap().load(&bytes, "noop").unwrap();
    let plain = entries();
    // A warm load takes the definition kept in the entry: the same as the one read cold.
    let warm = Runtime::new(&settings(false)).unwrap().load(&bytes, "noop").unwrap();
    assert_eq!((warm.definition.name.as_str(), &warm.definition), ("noop", &cold.definition));
    assert_eq!(entries(), plain);
    assert_eq!(plain.len(), 1);
    Runtime::new(&settings(true)).unwrap().load(&bytes, "noop").unwrap();
    let both = entries();
    assert_eq!(both.len(), 2);
    let metered = both.iter().find(|p| !plain.contains(p)).unwrap().clone();
    let metered_bytes = std::fs::read(&metered).unwrap();

    // Damaged: a flipped byte fails the checksum; the entry is rebuilt.
    let mut damaged = metered_bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    std::fs::write(&metered, &damaged).unwrap();
    let op = Runtime::new(&settings(true)).unwrap().load(&bytes, "noop").unwrap();
    assert_eq!(op.definition.name, "noop");
    assert_eq!(std::fs::read(&metered).unwrap(), metered_bytes);

    // Foreign: the other configuration's entry, sound checksum and all, under this one's name.
    std::fs::copy(&plain[0], &metered).unwrap();
    let op = Runtime::new(&settings(true)).unwrap().load(&bytes, "noop").unwrap();
    assert_eq!(op.definition.name, "noop");
    assert_eq!(std::fs::read(&metered).unwrap(), metered_bytes, "wasmtime refused it and it was rebuilt");
}

/// Twelve clones of `residue:64` (see the behave op), whose results must all be fresh.
fn residue_files(ws: &Workspace) {
    let files: Vec<(String, &[u8])> = (0..12).map(|i| (format!("f{i:02}.txt"), &b"residue:64"[..])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    ws.files("cmds", &files);
}

/// Each clone saw no page an earlier clone marked, and its own 64 marks plus the static's one.
fn assert_fresh(results: &serde_json::Map<String, Value>, how: &str) {
    assert_eq!(results.len(), 12);
    for (key, result) in results {
        assert_eq!(result, &json!({"before": 0, "after": 65}), "{key} ({how})");
    }
}

#[test]
fn no_clone_sees_memory_an_earlier_clone_left_in_its_pool_slot() {
    // One worker: every clone runs in the same pool slot. Each grows its memory, scans all of
    // it for pages an earlier clone marked, then marks 64 disjoint pages (more dirty runs than
    // one reset scan reports at once, at an offset its key picks) and a page of its `.bss`.
    let ws = Workspace::new();
    residue_files(&ws);
    let job = ws.job(&behave_map_job(""));
    let (code, stdout, stderr) = common::run_binary(&["run", job.to_str().unwrap(), "--json", "--max-concurrent", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_fresh(report["outputs"]["behave"]["result"].as_object().unwrap(), "slots reset by zeroing");
}

#[test]
fn slots_reset_by_the_opt_in_dirty_page_scan_are_fresh_too() {
    // The embedder's opt-in (`scan_dirty_pages`): where the host allows it, slots are reset by
    // PAGEMAP_SCAN; elsewhere by zeroing. Either way, no clone sees another's pages.
    let runtime = one_step_runtime(true);
    let how = if runtime.scans_dirty_pages() { "dirty-page scan" } else { "zeroing: this host has swap" };
    let ws = Workspace::new();
    residue_files(&ws);
    let job = ws.job(&behave_map_job(""));
    let dirs = [std::path::PathBuf::from(sandmap_test_programs::DIR)];
    let prepared = sandmap::executor::prepare(&job, &dirs, &runtime).unwrap();
    let options = sandmap::executor::ExecOptions { max_concurrent: 1, ..Default::default() };
    let report = sandmap::executor::execute(&prepared.plan, &prepared.ops, &runtime, &options);
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    assert_fresh(report.output("behave", "result").unwrap().as_object().unwrap(), how);
}
