//! Untrusted ops, round 2 (issue #11): every resource an op can reach through what it declares
//! is bounded. Hostile definitions (a million inputs, a schema of 2^40 subschemas, 2 MiB of
//! text) are refused at once by `validate`, `run` and `inspect`; no grant may reach into
//! sandmap's own data, either way round or through a symlink; a value accepted at the depth
//! limit is stored and read back, one level deeper is refused; and a component named by
//! thousands of ops is read and loaded once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{StoredJob, Workspace, run_binary, sandmap};
use serde_json::{Value, json};

/// Far more than the host needs now (well under a second) and far less than it took before
/// (minutes): a regression to quadratic or exponential work fails this.
const FAST: Duration = Duration::from_secs(30);

fn canonical(path: &str) -> String {
    Path::new(path).canonicalize().unwrap().display().to_string()
}

/// A job of one op `a` naming `component`; the error `validate` and `run` give for it.
fn one_op_job(ws: &Workspace, component: &str) -> String {
    ws.job(&format!("name = \"j\"\n[ops.a]\ncomponent = \"{component}\"\n")).display().to_string()
}

/// `validate`, `run` and `inspect` of `component` all exit 2, fast, with the definition error
/// `reason`, naming the job file (line 3, column 13: the component's value), the op and the
/// component file.
fn refused_everywhere(component: &str, reason: &str) {
    let ws = Workspace::new();
    let job = one_op_job(&ws, component);
    let file = canonical(component);
    let in_job = format!("error: {job}:3:13: op \"a\": component: {file}: cannot read the op's definition: {reason}\n");
    let store = ws.path().join("store").display().to_string();
    for args in [vec!["validate", &job], vec!["run", &job, "--store", &store]] {
        let started = Instant::now();
        let (code, stdout, stderr) = run_binary(&args);
        assert!(started.elapsed() < FAST, "{args:?} took {:?}", started.elapsed());
        assert_eq!((code, stdout.as_str(), stderr.as_str()), (2, "", in_job.as_str()), "{args:?}");
    }
    let started = Instant::now();
    let (code, stdout, stderr) = run_binary(&["inspect", component]);
    assert!(started.elapsed() < FAST, "inspect took {:?}", started.elapsed());
    let inspected = format!("error: {file}: cannot read the op's definition: {reason}\n");
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (2, "", inspected.as_str()));
}

#[test]
fn a_million_inputs_are_refused_by_validate_run_and_inspect() {
    refused_everywhere(
        sandmap_test_programs::DEF_MANY_INPUTS,
        "it declares 1000000 inputs; an op may declare at most 256 (the inputs limit)",
    );
}

#[test]
fn a_schema_of_2_to_the_40_subschemas_is_refused_by_validate_run_and_inspect() {
    refused_everywhere(
        sandmap_test_programs::DEF_DEEP_SCHEMA,
        "the config schema nests deeper than 64 levels with its $refs followed (the schema depth limit)",
    );
}

#[test]
fn a_definition_of_2_mib_is_refused_by_validate_run_and_inspect() {
    // 2 MiB of description, the name "def_huge", the schema "{}" and the output "result".
    refused_everywhere(
        sandmap_test_programs::DEF_HUGE,
        "it holds 2097168 bytes of names, descriptions and config schema; a definition may hold at most 1 MiB \
         (the definition size limit)",
    );
}

#[test]
fn inspect_and_run_help_list_the_fixed_limits() {
    use sandmap::definition::{MAX_DEFINITION_BYTES, MAX_INPUTS, MAX_OUTPUTS};
    use sandmap::job::config::{MAX_EXPANDED_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
    let (code, stdout, _) = run_binary(&["inspect", "process_file", "--json"]);
    assert_eq!(code, 0);
    let inspected: Value = serde_json::from_str(&stdout).unwrap();
    let expected = json!({
        "inputs": MAX_INPUTS,
        "outputs": MAX_OUTPUTS,
        "definition_bytes": "1 MiB",
        "config_schema_depth": MAX_SCHEMA_DEPTH,
        "expanded_config_schema_bytes": "1 MiB",
        "value_depth": sandmap::value::MAX_VALUE_DEPTH,
    });
    assert_eq!(inspected["fixed_limits"], expected);
    assert_eq!((MAX_DEFINITION_BYTES, MAX_EXPANDED_SCHEMA_BYTES), (1 << 20, 1 << 20));
    let (_, stdout, _) = run_binary(&["inspect", "process_file"]);
    assert!(
        stdout.contains(
            "\nfixed limits  inputs 256, outputs 256, definition_bytes 1 MiB, config_schema_depth 64, \
             expanded_config_schema_bytes 1 MiB, value_depth 64\n"
        ),
        "{stdout}"
    );
    let (code, help, _) = run_binary(&["run", "--help"]);
    assert_eq!(code, 0);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains(&format!(
            "values and JSON metadata at most {} levels deep; a definition at most {MAX_INPUTS} inputs, {MAX_OUTPUTS} \
             outputs and 1 MiB, its config schema at most {MAX_SCHEMA_DEPTH} levels and 1 MiB with its $refs expanded.",
            sandmap::value::MAX_VALUE_DEPTH
        )),
        "{help}"
    );
}

/// `count` ops: `op0` emits one record, each further op maps over the one before (a chained
/// map), written to the file in reverse order (`op{count-1}` first).
fn reversed_chain(count: usize) -> String {
    let mut text = String::from("name = \"chain\"\n");
    for i in (1..count).rev() {
        text.push_str(&format!("[ops.op{i}]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"op{}\" }} }}\n", i - 1));
    }
    text.push_str("[ops.op0]\ncomponent = \"emit_range\"\nconfig = { n = 1 }\n");
    text
}

#[test]
fn a_reversed_chain_of_10000_ops_is_planned_in_order() {
    let ws = Workspace::new();
    let prepared = ws.prepare(&reversed_chain(10_000)).unwrap();
    let names: Vec<&str> = prepared.plan.ops.iter().map(|op| op.name.as_str()).collect();
    let expected: Vec<String> = (0..10_000).map(|i| format!("op{i}")).collect();
    assert_eq!(names, expected, "each op after the one it reads from");
    let job = ws.job(&reversed_chain(10_000)).display().to_string();
    let (code, stdout, stderr) = run_binary(&["validate", &job]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{job}: job \"chain\" is valid: 10000 ops (9999 mapped)\n"));
}

#[test]
fn two_thousand_ops_naming_one_component_share_one_loaded_op() {
    let ws = Workspace::new();
    // One file reached by three names: its path, a symlink to it, and a copy (same digest).
    std::os::unix::fs::symlink(sandmap_test_programs::EMIT_RANGE, ws.path().join("link.wasm")).unwrap();
    std::fs::copy(sandmap_test_programs::EMIT_RANGE, ws.path().join("copy.wasm")).unwrap();
    let names = [sandmap_test_programs::EMIT_RANGE, "link.wasm", "copy.wasm", "emit_range"];
    let mut text = String::from("name = \"many\"\n");
    for i in 0..2_000 {
        text.push_str(&format!("[ops.op{i}]\ncomponent = \"{}\"\nconfig = {{ n = 1 }}\n", names[i % names.len()]));
    }
    let prepared = ws.prepare(&text).unwrap();
    assert_eq!(prepared.ops.len(), 2_000);
    assert!(prepared.ops.iter().all(|op| Arc::ptr_eq(op, &prepared.ops[0])), "one LoadedOp for every op");
    let outputs = &prepared.plan.ops[0].outputs;
    assert!(prepared.plan.ops.iter().all(|op| Arc::ptr_eq(&op.outputs, outputs)), "one output list for every op");

    let job = ws.job(&text).display().to_string();
    let (code, stdout, stderr) = run_binary(&["validate", &job]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{job}: job \"many\" is valid: 2000 ops (0 mapped)\n"));
    let store = ws.path().join("store").display().to_string();
    let (code, stdout, stderr) = run_binary(&["run", &job, "--json", "--store", &store]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2_000);
    assert!(steps.iter().all(|s| s["status"] == "success"));
    assert_eq!(report["outputs"]["op1999"]["result"], json!({"k0": 0}));
}

// ---- grants inside sandmap's own data ----

/// The message for a grant of `host` that `relation` ("contains" / "is inside") sandmap's
/// `what` at `folder`, with the hint `how`.
fn grant_refused(job: &str, host: &Path, relation: &str, what: &str, folder: &Path, how: &str) -> String {
    format!(
        "error: {job}:4:11: op \"a\": grants[0].host: {} {relation} sandmap's own data (the {what} {}); an op must \
         not see it. Keep the {what} elsewhere with {how}\n",
        host.display(),
        folder.canonicalize().unwrap().display()
    )
}

/// A job whose op `a` is granted `host` read-write.
fn granting(ws: &Workspace, host: &Path) -> String {
    let text = format!(
        "name = \"j\"\n[ops.a]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{}\", guest = \"/data\", access = \"read-write\" }}]\n",
        host.display()
    );
    ws.job(&text).display().to_string()
}

/// `sandmap COMMAND JOB` with the run store `store` and the compile cache `cache`.
fn with_dirs(command: &str, job: &str, store: &Path, cache: &Path) -> (i32, String, String) {
    let output =
        sandmap().env("SANDMAP_HOME", store).env("SANDMAP_CACHE_DIR", cache).args([command, job]).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A workspace with a run store (and its `running/` folder, where live runs' locks are) and a
/// compile cache of its own.
fn data_dirs() -> (Workspace, PathBuf, PathBuf) {
    let ws = Workspace::new();
    let store = ws.files("data/store/running", &[]).parent().unwrap().to_owned();
    let cache = ws.files("data/cache/sub", &[]).parent().unwrap().to_owned();
    (ws, store, cache)
}

#[test]
fn a_grant_inside_the_run_store_is_refused() {
    let (ws, store, cache) = data_dirs();
    let running = store.join("running");
    let job = granting(&ws, &running);
    for command in ["validate", "run"] {
        let (code, stdout, stderr) = with_dirs(command, &job, &store, &cache);
        let expected = grant_refused(&job, &running, "is inside", "run store", &store, "--store or SANDMAP_HOME");
        assert_eq!((code, stdout.as_str(), stderr.as_str()), (2, "", expected.as_str()), "{command}");
    }
}

#[test]
fn a_grant_containing_the_run_store_is_refused() {
    let (ws, store, cache) = data_dirs();
    let data = ws.path().join("data");
    // The cache is in `data` too: the store is checked first only because the cache is not.
    let elsewhere = ws.files("cache_elsewhere", &[]);
    let job = granting(&ws, &data);
    let (code, _, stderr) = with_dirs("run", &job, &store, &elsewhere);
    assert_eq!(code, 2);
    assert_eq!(stderr, grant_refused(&job, &data, "contains", "run store", &store, "--store or SANDMAP_HOME"));
    // With both inside it, the compile cache is named first.
    let (_, _, stderr) = with_dirs("validate", &job, &store, &cache);
    assert_eq!(stderr, grant_refused(&job, &data, "contains", "compile cache", &cache, "SANDMAP_CACHE_DIR"));
}

#[test]
fn a_grant_inside_the_compile_cache_is_refused() {
    let (ws, store, cache) = data_dirs();
    let sub = cache.join("sub");
    let job = granting(&ws, &sub);
    for command in ["validate", "run"] {
        let (code, _, stderr) = with_dirs(command, &job, &store, &cache);
        assert_eq!(code, 2, "{command}");
        assert_eq!(stderr, grant_refused(&job, &sub, "is inside", "compile cache", &cache, "SANDMAP_CACHE_DIR"));
    }
}

#[test]
fn a_grant_containing_the_compile_cache_is_refused() {
    let (ws, _, cache) = data_dirs();
    let parent = ws.path().join("data");
    // The run store elsewhere, so that only the cache is in the grant.
    let other_store = ws.path().join("other_store");
    let job = granting(&ws, &parent);
    let (code, _, stderr) = with_dirs("validate", &job, &other_store, &cache);
    assert_eq!(code, 2);
    assert_eq!(stderr, grant_refused(&job, &parent, "contains", "compile cache", &cache, "SANDMAP_CACHE_DIR"));
}

#[test]
fn grants_are_compared_through_symlinks() {
    let (ws, store, cache) = data_dirs();
    // A grant through a symlink into the store's running/ folder.
    let link = ws.path().join("innocent");
    std::os::unix::fs::symlink(store.join("running"), &link).unwrap();
    let job = granting(&ws, &link);
    let (code, _, stderr) = with_dirs("run", &job, &store, &cache);
    assert_eq!(code, 2);
    assert_eq!(stderr, grant_refused(&job, &link, "is inside", "run store", &store, "--store or SANDMAP_HOME"));
    // The store and the cache named through symlinks, the grants by their real paths.
    let store_link = ws.path().join("store_link");
    let cache_link = ws.path().join("cache_link");
    std::os::unix::fs::symlink(&store, &store_link).unwrap();
    std::os::unix::fs::symlink(&cache, &cache_link).unwrap();
    let running = store.join("running");
    let job = granting(&ws, &running);
    let (code, _, stderr) = with_dirs("validate", &job, &store_link, &cache_link);
    assert_eq!(code, 2);
    assert_eq!(stderr, grant_refused(&job, &running, "is inside", "run store", &store, "--store or SANDMAP_HOME"));
    let sub = cache.join("sub");
    let job = granting(&ws, &sub);
    let (code, _, stderr) = with_dirs("validate", &job, &store_link, &cache_link);
    assert_eq!(code, 2);
    assert_eq!(stderr, grant_refused(&job, &sub, "is inside", "compile cache", &cache, "SANDMAP_CACHE_DIR"));
    // A folder beside them (its name starts like theirs) is fine.
    let beside = ws.files("data/store_beside", &[]);
    let job = granting(&ws, &beside);
    let (code, stdout, stderr) = with_dirs("validate", &job, &store_link, &cache_link);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, format!("{job}: job \"j\" is valid: 1 ops (0 mapped)\n"));
}

// ---- values at the depth limit ----

/// `[[…[1]…]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// files_in_directory over `cmds/` → deep_value per file: `ok` files and the named commands.
fn deep_job(ok: usize, commands: &[(&str, String)]) -> StoredJob {
    let ws = Workspace::new();
    let names: Vec<String> = (0..ok).map(|i| format!("f{i:02}.txt")).collect();
    let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"ok\n"[..])).collect();
    files.extend(commands.iter().map(|(name, command)| (*name, command.as_bytes())));
    ws.files("cmds", &files);
    let job = format!(
        "name = \"deep\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\n\
         grants = [{{ host = \"cmds\", guest = \"/data\" }}]\n[ops.behave]\ncomponent = \"{}\"\n\
         inputs = {{ path = {{ map = \"files_in_directory\" }} }}\ngrants = [{{ host = \"cmds\", guest = \"/data\" }}]\n",
        sandmap_test_programs::DEEP_VALUE
    );
    StoredJob::new(ws, &job)
}

fn step<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key}"))
}

fn keys(report: &Value) -> Vec<&str> {
    report["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect()
}

/// The good clones' results, all there.
fn assert_ok_kept(report: &Value, ok: usize) {
    for i in 0..ok {
        let key = format!("f{i:02}_txt");
        assert_eq!(report["outputs"]["behave"]["result"][&key], json!({"said": "ok"}), "{key}");
    }
}

#[test]
fn a_value_at_the_depth_limit_is_recorded_and_read_back() {
    let limit = sandmap::value::MAX_VALUE_DEPTH;
    assert_eq!(limit, 64);
    let commands = [
        ("deep.txt", format!("value:{limit}")),
        ("meta.txt", format!("metadata:{limit}")),
        ("boom.txt", "fail:boom".to_owned()),
    ];
    let s = deep_job(17, &commands);
    let (code, run, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(run["status"], "failure");
    assert_eq!(step(&run, "behave[boom_txt]")["error"], "boom");
    assert_eq!(step(&run, "behave[deep_txt]")["status"], "success");
    // The deepest the store wraps a value: a mapped op's dynamic output, per clone, per record.
    assert_eq!(run["outputs"]["behave"]["records"]["deep_txt"]["v"], nested(limit));
    assert_eq!(run["outputs"]["behave"]["result"]["deep_txt"], nested(limit));
    let meta = &step(&run, "behave[meta_txt]")["records"][0]["metadata"]["m"];
    assert_eq!(*meta, json!({"type": "json", "value": nested(limit)}));
    assert_ok_kept(&run, 17);
    let id = run["run_id"].as_str().unwrap();

    let (code, shown, stderr) = s.run(&["show", id, "--json"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(shown, run, "show --json reads back exactly what run --json printed");
    let (code, logs, stderr) = {
        let output = sandmap().env("SANDMAP_HOME", &s.store).args(["logs", id, "behave[deep_txt]"]).output().unwrap();
        (output.status.code(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
    };
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert_eq!(common::without_times(&logs), "behave[deep_txt] info: emitting value 64 levels deep\n");

    // From failure: the failed clone again, every other step (the deep ones too) read back.
    let (code, again, stderr) = s.run(&["reexecute", id, "--from-failure", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(keys(&again), ["behave[boom_txt]"]);
    assert_eq!(again["reused"].as_array().unwrap().len(), 20);
    assert_eq!(again["outputs"]["behave"]["records"]["deep_txt"]["v"], nested(limit));
    assert_eq!(again["outputs"]["behave"]["result"]["deep_txt"], nested(limit));
    // By step: the deep clone runs again, alone, and stores the same (the failed one was not
    // selected: its failure stands, and the run still fails).
    let (code, by_step, stderr) = s.run(&["reexecute", id, "--step", "behave[deep_txt]", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(keys(&by_step), ["behave[deep_txt]"]);
    assert_eq!(step(&by_step, "behave[deep_txt]")["status"], "success");
    assert_eq!(by_step["reused"].as_array().unwrap().len(), 20);
    assert!(by_step["reused"].as_array().unwrap().contains(&json!("behave[boom_txt]")));
    assert_eq!(by_step["outputs"]["behave"]["records"]["deep_txt"]["v"], nested(limit));
    let (code, shown, _) = s.run(&["show", by_step["run_id"].as_str().unwrap(), "--json"]);
    assert_eq!((code, &shown), (0, &by_step));
}

#[test]
fn one_level_deeper_is_refused_and_the_other_clones_kept() {
    let deeper = sandmap::value::MAX_VALUE_DEPTH + 1;
    let commands = [("deep.txt", format!("value:{deeper}")), ("meta.txt", format!("metadata:{deeper}"))];
    let s = deep_job(18, &commands);
    let (code, run, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1, "{stderr}");
    // The record comes first, then the result: the record is what is refused.
    assert_eq!(step(&run, "behave[deep_txt]")["error"], "exceeded value depth limit 64 levels (output \"records\")");
    assert_eq!(step(&run, "behave[meta_txt]")["error"], "exceeded value depth limit 64 levels (metadata \"m\")");
    assert_ok_kept(&run, 18);
    let id = run["run_id"].as_str().unwrap();
    let (code, shown, _) = s.run(&["show", id, "--json"]);
    assert_eq!((code, &shown), (0, &run));
    let (code, again, stderr) = s.run(&["reexecute", id, "--from-failure", "--json"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(keys(&again), ["behave[deep_txt]", "behave[meta_txt]"]);
    assert_eq!(step(&again, "behave[deep_txt]")["error"], step(&run, "behave[deep_txt]")["error"]);
    assert_ok_kept(&again, 18);
}
