//! The hostile-plugin suite: ops nobody reviewed, doing their worst. For each kind, one clone of
//! fifty is hostile: it fails alone with a clear message, the other 49 complete and their
//! results are kept, the host does not fall, and the files outside the grants are unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Workspace;
use sandmap::executor::{RunReport, RunStatus, StepStatus};
use serde_json::json;

/// Every file under `dir` with its bytes (symlinks as their targets), to compare before and after.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_symlink() {
            out.insert(path.clone(), std::fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes());
        } else if meta.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Every file is as it was: the op neither reached outside its grants nor wrote to a read-only one.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<&PathBuf> =
        before.keys().chain(after.keys()).filter(|path| before.get(*path) != after.get(*path)).collect();
    assert!(changed.is_empty(), "host files changed: {changed:?}");
}

/// A workspace with `cmds/` (the grant: 49 `ok` files, one hostile `x_hostile.txt`, and symlinks
/// pointing out of it) and `outside/` (never granted, holding a secret).
fn setup(command: &str) -> Workspace {
    let ws = Workspace::new();
    ws.files("outside", &[("secret.txt", b"the secret")]);
    let names: Vec<String> = (0..49).map(|i| format!("f{i:02}.txt")).collect();
    let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"ok\n"[..])).collect();
    files.push(("x_hostile.txt", command.as_bytes()));
    let cmds = ws.files("cmds", &files);
    let outside = ws.path().join("outside");
    std::os::unix::fs::symlink(outside.join("secret.txt"), cmds.join("abs_link")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", cmds.join("rel_link")).unwrap();
    std::os::unix::fs::symlink(&outside, cmds.join("dir_link")).unwrap();
    ws.files("work", &[]);
    ws
}

/// files_in_directory → behave per file, behave also granted `/work` read-write; `extra` adds to
/// behave's table.
fn job(extra: &str) -> String {
    common::behave_map_job(
        "{ host = \"cmds\", guest = \"/data\" }, { host = \"work\", guest = \"/work\", access = \"read-write\" }",
        extra,
    )
}

/// Run one hostile clone among 49 good ones and check everything the suite promises; return
/// the hostile clone's error.
fn one_in_fifty(command: &str, extra: &str) -> (String, RunReport) {
    let ws = setup(command);
    let text = job(extra);
    ws.job(&text);
    let before = snapshot(ws.path());
    let report = ws.run(&text);
    assert_unchanged(&before, &snapshot(ws.path()));
    let hostile = report.step("behave[x_hostile_txt]").unwrap();
    let error = hostile.error.clone().unwrap_or_default();
    let results = report.output("behave", "result").unwrap().as_object().unwrap();
    for i in 0..49 {
        let key = format!("f{i:02}_txt");
        assert_eq!(report.step(&format!("behave[{key}]")).unwrap().status, StepStatus::Success, "{key}");
        assert_eq!(results[&key]["said"], json!("ok"), "{key}'s result is kept");
    }
    (error, report)
}

fn assert_fails(command: &str, extra: &str, expected: &str) -> RunReport {
    let (error, report) = one_in_fifty(command, extra);
    assert_eq!(report.step("behave[x_hostile_txt]").unwrap().status, StepStatus::Failure, "{command}");
    assert!(error.contains(expected), "{command}: expected {expected:?} in {error:?}");
    assert_eq!(report.status, RunStatus::Failure);
    assert_eq!(report.output("behave", "result").unwrap().as_object().unwrap().len(), 49);
    report
}

#[test]
fn infinite_loop() {
    assert_fails("loop", "limits = { timeout = \"300 ms\" }", "exceeded time limit 300 ms");
}

#[test]
fn memory_bomb() {
    assert_fails("oom", "limits = { memory = \"64 MiB\" }", "exceeded memory limit 64 MiB");
}

#[test]
fn deep_recursion() {
    assert_fails("recurse", "", "op crashed: stack overflow (wasm stack limit 512 KiB)");
}

#[test]
fn unreachable_trap() {
    assert_fails("trap", "", "op crashed: wasm trap: wasm `unreachable` instruction executed");
}

#[test]
fn panic() {
    assert_fails("panic", "", "told to panic by /data/x_hostile.txt");
}

#[test]
fn read_etc_passwd() {
    assert_fails("read:/etc/passwd", "", "read /etc/passwd: ");
}

#[test]
fn dot_dot_escapes() {
    assert_fails("read:/data/../outside/secret.txt", "", "read /data/../outside/secret.txt: ");
    assert_fails("read:/data/../../../../etc/passwd", "", "read /data/../../../../etc/passwd: ");
    assert_fails("read:../outside/secret.txt", "", "read ../outside/secret.txt: ");
}

#[test]
fn absolute_paths_outside_every_grant() {
    assert_fails("read:/outside/secret.txt", "", "read /outside/secret.txt: ");
    assert_fails("read:/", "", "read /: ");
}

#[test]
fn symlinks_pointing_out_of_the_grant() {
    assert_fails("read:/data/abs_link", "", "read /data/abs_link: ");
    assert_fails("read:/data/rel_link", "", "read /data/rel_link: ");
    assert_fails("read:/data/dir_link/secret.txt", "", "read /data/dir_link/secret.txt: ");
}

#[test]
fn trailing_slash_paths() {
    // The GHSA-vqjp-4c8c-hfgg pattern: a trailing slash must not make a symlink followable.
    assert_fails("read:/data/dir_link/", "", "read /data/dir_link/: ");
    assert_fails("read:/data/abs_link/", "", "read /data/abs_link/: ");
    assert_fails("read:/data/dir_link//secret.txt", "", "read /data/dir_link//secret.txt: ");
}

/// A FIFO in a grant is refused when it is opened, however it is named (a plain name, a path
/// through a folder, a symlink to it): opening one blocks until a writer comes, inside a host call
/// where no deadline reaches. If the refusal ever fails, a watchdog opens each FIFO for writing
/// after 20 s, so the clone reads nothing and succeeds and this test fails instead of hanging.
#[test]
fn fifos_are_refused_at_open_however_they_are_named() {
    for (command, fifo) in [
        ("read:/data/fifo", "fifo"),
        ("read:/data/sub/fifo", "sub/fifo"),
        ("read:/data/to_fifo", "fifo"),
        ("read:/data/./fifo", "fifo"),
    ] {
        let ws = setup(command);
        let cmds = ws.path().join("cmds");
        std::fs::create_dir(cmds.join("sub")).unwrap();
        for at in ["fifo", "sub/fifo"] {
            rustix::fs::mknodat(rustix::fs::CWD, cmds.join(at), rustix::fs::FileType::Fifo, 0o600.into(), 0).unwrap();
        }
        std::os::unix::fs::symlink("fifo", cmds.join("to_fifo")).unwrap();
        let path = cmds.join(fifo);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(20));
            drop(std::fs::OpenOptions::new().write(true).open(path));
        });
        let text = job("limits = { timeout = \"60 s\" }");
        ws.job(&text);
        let report = ws.run(&text);
        let hostile = report.step("behave[x_hostile_txt]").unwrap();
        assert_eq!(hostile.status, StepStatus::Failure, "{command}");
        let expected = format!("{}: Permission denied", command.trim_start_matches("read:"));
        assert!(hostile.error.as_deref().unwrap_or_default().contains(&expected), "{command}: {:?}", hostile.error);
        assert_eq!(report.output("behave", "result").unwrap().as_object().unwrap().len(), 49, "{command}");
    }
}

#[test]
fn write_into_a_read_only_grant() {
    assert_fails("write:/data/f00.txt", "", "write /data/f00.txt: ");
    assert_fails("write:/data/new.txt", "", "write /data/new.txt: ");
}

#[test]
fn create_a_file_outside_a_read_write_grant() {
    assert_fails("write:/work/../outside/new.txt", "", "write /work/../outside/new.txt: ");
    assert_fails("write:/work/../cmds/new.txt", "", "write /work/../cmds/new.txt: ");
    assert_fails("write:/new.txt", "", "write /new.txt: ");
}

#[test]
fn a_read_write_grant_is_writable_inside() {
    let ws = setup("write:/work/made.txt");
    let report = ws.run(&job(""));
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    assert_eq!(std::fs::read(ws.path().join("work/made.txt")).unwrap(), b"written by behave");
}

#[test]
fn env_vars_and_args_are_empty() {
    // SAFETY: set before any thread of this test reads the environment; the variable only needs
    // to exist in the host process to show it does not reach the guest.
    unsafe { std::env::set_var("SANDMAP_TEST_SECRET", "hunter2") };
    let (error, report) = one_in_fifty("env", "");
    assert_eq!(error, "");
    let results = report.output("behave", "result").unwrap();
    assert_eq!(results["x_hostile_txt"], json!({"vars": [], "args": []}));
}

#[test]
fn open_a_socket() {
    let report = assert_fails("connect:127.0.0.1:9", "", "connect 127.0.0.1:9: ");
    let error = report.step("behave[x_hostile_txt]").unwrap().error.clone().unwrap();
    assert!(
        error.to_lowercase().contains("denied")
            || error.to_lowercase().contains("not permitted")
            || error.contains("unsupported"),
        "{error}"
    );
}

#[test]
fn dns_lookup() {
    assert_fails("dns:localhost", "", "look up localhost: ");
}

#[test]
fn a_value_over_max_value_bytes() {
    assert_fails(
        "big:3000000",
        "limits = { max_value_bytes = \"1 MiB\" }",
        "exceeded max_value_bytes limit 1 MiB (output \"result\" got a value of 3000002 bytes)",
    );
}

#[test]
fn a_value_that_is_not_json() {
    assert_fails("raw_output:{not json", "", "op \"behave\" emitted a value for output \"result\" that is not JSON: ");
    assert_fails("raw_output:", "", "that is not JSON");
    assert_fails(
        &format!("raw_output:{}", "[".repeat(10_000)),
        "",
        "exceeded value depth limit 64 levels (output \"result\")",
    );
}

#[test]
fn metadata_that_is_not_json() {
    assert_fails("raw_metadata:{bad", "", "op \"behave\": metadata \"m\" is not JSON: ");
}

#[test]
fn a_huge_log_is_cut_and_the_cut_counted() {
    let (error, report) = one_in_fifty("log:5000000", "limits = { max_log_bytes = \"1 MiB\" }");
    assert_eq!(error, "");
    let log = &report.step("behave[x_hostile_txt]").unwrap().log;
    let kept: usize = log.entries.iter().map(|e| e.text.len()).sum();
    // 1,000-byte log lines, each costing 64 bytes more against the cap: 985 whole lines
    // (985 × 1,064 = 1,048,040 bytes) and 536 − 64 = 472 bytes of the next.
    assert_eq!(log.entries.len(), 986);
    assert_eq!(kept, 985 * 1000 + 472);
    assert_eq!(log.truncated_bytes, 5_000_000 - (985 * 1000 + 472));
}

#[test]
fn terminal_escape_sequences_are_kept_as_data() {
    let (error, report) = one_in_fifty("ansi", "");
    assert_eq!(error, "\u{1b}[31mred\u{1b}[0m", "the record keeps the raw text; the CLI escapes it (tests/cli.rs)");
    assert_eq!(report.step("behave[x_hostile_txt]").unwrap().log.entries[0].text, "\u{1b}[2J\u{1b}]0;owned\u{7}");
}

#[test]
fn a_million_emits_stop_at_max_emits() {
    let ws = Workspace::new();
    let report = ws.run(&format!(
        "name = \"flood\"\n[ops.emit]\ncomponent = \"{}\"\nconfig = {{ n = 1000000 }}\n[ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n",
        sandmap_test_programs::EMIT_RANGE
    ));
    let emit = report.step("emit").unwrap();
    assert_eq!(emit.error.as_deref(), Some("exceeded max_emits limit 100000"));
    assert_eq!(emit.records.len(), 100_000);
}

#[test]
fn a_grant_swapped_for_a_symlink_after_validation_still_shows_the_original() {
    let ws = setup("read:/data/f00.txt");
    let job = job("");
    let prepared = ws.prepare(&job).unwrap();
    let cmds = ws.path().join("cmds");
    std::fs::rename(&cmds, ws.path().join("cmds_moved")).unwrap();
    std::os::unix::fs::symlink(ws.path().join("outside"), &cmds).unwrap();
    let report = sandmap::executor::execute(&prepared.plan, &prepared.ops, common::runtime(), &Default::default());
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    let results = report.output("behave", "result").unwrap();
    assert_eq!(results["x_hostile_txt"], json!("ok\n"), "read through the held handle");
    assert!(results.get("secret_txt").is_none());
}

#[test]
fn components_that_are_not_ops_are_rejected_with_the_op_and_file_named() {
    let ws = Workspace::new();
    let mut random = vec![0u8; 4096];
    let mut x: u32 = 0x9e37_79b9;
    for b in random.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut random_component = b"\0asm\x0d\0\x01\0".to_vec();
    random_component.extend_from_slice(&random);
    std::fs::write(ws.path().join("random.wasm"), &random).unwrap();
    std::fs::write(ws.path().join("random_component.wasm"), &random_component).unwrap();
    let cases: &[(&str, &str)] = &[
        ("random.wasm", "is not a WebAssembly component"),
        ("random_component.wasm", "is not a valid component"),
        (sandmap_test_programs::IMPORTS_UNKNOWN, "imports something sandmap does not provide"),
        (sandmap_test_programs::NOT_AN_OP, "is not a sandmap op"),
    ];
    for (component, expected) in cases {
        let error = ws.invalid(&format!("name = \"j\"\n[ops.x]\ncomponent = \"{component}\"\n"));
        assert!(error.contains("op \"x\": component: ") && error.contains(expected), "{component}: {error}");
        assert!(error.contains(component.rsplit('/').next().unwrap()), "{error}");
    }
}

#[test]
fn a_grant_containing_the_compile_cache_is_rejected() {
    let ws = Workspace::new();
    let cache = common::test_cache_dir();
    let parent = cache.canonicalize().unwrap().parent().unwrap().to_owned();
    let error = ws.invalid(&format!(
        "name = \"j\"\n[ops.x]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{}\", guest = \"/data\" }}]\n",
        parent.display()
    ));
    assert!(error.contains("op \"x\": grants[0].host: ") && error.contains("contains sandmap's own data"), "{error}");
}

#[test]
fn network_true_is_refused() {
    let ws = Workspace::new();
    let error = ws.invalid("name = \"j\"\n[ops.x]\ncomponent = \"files_in_directory\"\nnetwork = true\n");
    assert!(
        error.ends_with("op \"x\": network: ops get no network access; only network = false is accepted"),
        "{error}"
    );
    ws.files("d", &[]);
    assert!(ws.prepare("name = \"j\"\n[ops.x]\ncomponent = \"files_in_directory\"\nnetwork = false\ngrants = [{ host = \"d\", guest = \"/data\" }]\n").is_ok());
}

#[test]
fn fuel_stops_a_loop_and_needs_a_metering_runtime() {
    let ws = setup("loop");
    let job = ws.job(&job("limits = { fuel = 5000000, timeout = \"20 s\" }"));
    // The in-process test runtime does not meter fuel: the job is refused, naming the field.
    let error = ws.invalid(&std::fs::read_to_string(&job).unwrap());
    assert!(
        error.ends_with("op \"behave\": limits.fuel: this runtime does not meter fuel (RuntimeConfig::fuel)"),
        "{error}"
    );
    // The CLI turns metering on for a job that sets fuel.
    let (code, report) = common::run_json(&job);
    assert_eq!(code, 1);
    let steps = report["steps"].as_array().unwrap();
    let hostile = steps.iter().find(|s| s["key"] == "behave[x_hostile_txt]").unwrap();
    assert_eq!(hostile["error"], "exceeded fuel limit 5000000");
    let ok = steps.iter().filter(|s| s["op"] == "behave" && s["status"] == "success").count();
    assert_eq!(ok, 49);
}
