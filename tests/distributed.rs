//! Many machines: jobs run with `--executor nats://…` on `sandmap worker`s, through a real
//! `nats-server -js` that each test starts on a free loopback port with its own store, and
//! kills (by pid) when it ends.
//!
//! Without `nats-server` a test says SKIPPED and passes; with SANDMAP_REQUIRE_NATS=1 (CI) it
//! fails instead. The cut-link test needs root and network namespaces (SANDMAP_REQUIRE_NETNS=1
//! where `.ci/run` found them to work).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::nats::{Server, Worker, wait_for};
use common::{StoredJob, Workspace, sandmap};
use serde_json::Value;

fn gated(commands: &[&str], extra: &str) -> StoredJob {
    common::gated_behave_job(commands, extra)
}

/// The step keys of a gated job of `n` clones, in report order.
fn gated_keys(n: usize) -> Vec<String> {
    let mut keys = vec!["files_in_directory".to_owned()];
    keys.extend((0..n).map(|i| format!("behave[f{i:02}_txt]")));
    keys.push("summarize_directory".into());
    keys
}

/// Executions recorded in `marks/` per clone key.
fn marks(dir: &Path, key: &str) -> usize {
    (1..).take_while(|n| dir.join(format!("{key}.{n}")).exists()).count()
}

fn total_marks(s: &StoredJob) -> usize {
    std::fs::read_dir(s.ws.path().join("marks")).map_or(0, |d| d.count())
}

fn open_gate(s: &StoredJob) {
    std::fs::write(s.ws.path().join("gate/open"), b"").unwrap();
}

/// (key, status, error) of every step of a report.
fn outcomes(report: &Value) -> Vec<(String, String, Value)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned(), s["error"].clone()))
        .collect()
}

fn step_keys(report: &Value) -> Vec<String> {
    report["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_owned()).collect()
}

fn workers_of(report: &Value, op: &str) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == op)
        .map(|s| s["worker"].as_str().unwrap_or("none").to_owned())
        .collect()
}

fn latest_run(s: &StoredJob) -> Option<String> {
    let (_, runs, _) = s.run(&["runs", "--json"]);
    runs.as_array()?.first()?["run_id"].as_str().map(str::to_owned)
}

#[test]
fn the_seed_job_through_two_workers_gives_what_a_local_run_gives() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let w1 = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "2"]);
    let w2 = Worker::start(sandmap(), &url, "w2", &["--max-concurrent", "2"]);
    let ws = Workspace::new();
    let files: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("file {i:02}.txt"), format!("line\n{}\n", "x".repeat(i)).into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), c.as_slice())).collect();
    ws.files("sample", &refs);
    let s = StoredJob::new(ws, common::SEED_JOB);

    let (code, local, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, remote, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(remote["status"], "success");
    assert_eq!(remote["outputs"], local["outputs"]);
    assert_eq!(outcomes(&remote), outcomes(&local));
    assert_eq!(step_keys(&remote).len(), 42);
    assert!(workers_of(&local, "process_file").iter().all(|w| w == "local"));
    let remote_workers = workers_of(&remote, "process_file");
    assert!(remote_workers.iter().all(|w| w == "w1" || w == "w2"), "{remote_workers:?}");
    // What is recorded is what was printed.
    let (_, shown, _) = s.run(&["show", remote["run_id"].as_str().unwrap(), "--json"]);
    assert_eq!(shown["outputs"], local["outputs"]);
    assert_eq!(workers_of(&shown, "process_file"), remote_workers);

    // Both workers take clones: each holds one that waits at the gate while the other starts.
    let g = gated(&["mark:/marks\nawait:/gate/open\n"; 4], "");
    drop((w1, w2));
    let _w1 = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "1"]);
    let _w2 = Worker::start(sandmap(), &url, "w2", &["--max-concurrent", "1"]);
    let mut host = g.spawn_run(&["--executor", &url]);
    wait_for("both workers to start a clone", || (total_marks(&g) == 2).then_some(()));
    open_gate(&g);
    assert!(host.wait().unwrap().success());
    let id = latest_run(&g).unwrap();
    let (_, shown, _) = g.run(&["show", &id, "--json"]);
    let mut seen = workers_of(&shown, "behave");
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["w1", "w2"]);
}

#[test]
fn a_worker_killed_while_its_clones_run_loses_nothing() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let mut doomed = Worker::start(sandmap(), &url, "doomed", &["--max-concurrent", "2"]);
    let survivor = Worker::start(sandmap(), &url, "survivor", &["--max-concurrent", "2"]);
    let s = gated(&["mark:/marks\nawait:/gate/open\n"; 6], "");
    let mut host = s.spawn_run(&["--executor", &url]);
    // Both workers hold two clones each at the gate; two wait on the server.
    wait_for("four clones to start", || (total_marks(&s) == 4).then_some(()));
    doomed.kill();
    open_gate(&s);
    assert!(host.wait().unwrap().success());

    let id = latest_run(&s).unwrap();
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "success");
    let expected = gated_keys(6);
    assert_eq!(step_keys(&shown), expected, "each step is recorded once");
    assert!(workers_of(&shown, "behave").iter().all(|w| w == "survivor"));
    // The two clones the dead worker held ran again on the survivor; the others ran once.
    let counts: Vec<usize> = (0..6).map(|i| marks(&s.ws.path().join("marks"), &format!("f{i:02}_txt"))).collect();
    assert_eq!(counts.iter().filter(|&&n| n == 2).count(), 2, "{counts:?}");
    assert_eq!(counts.iter().filter(|&&n| n == 1).count(), 4, "{counts:?}");
    assert_eq!(shown["outputs"]["summarize_directory"]["result"]["files"], 6);
    drop(survivor);
}

#[test]
fn the_server_killed_and_restarted_mid_run_loses_and_doubles_nothing() {
    let Some(mut server) = Server::start(&[]) else { return };
    let url = server.url();
    let _w1 = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "2"]);
    let _w2 = Worker::start(sandmap(), &url, "w2", &["--max-concurrent", "2"]);
    let s = gated(&["mark:/marks\nawait:/gate/open\n"; 8], "");
    let mut host = s.spawn_run(&["--executor", &url]);
    wait_for("four clones to start", || (total_marks(&s) == 4).then_some(()));
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    open_gate(&s);
    assert!(host.wait().unwrap().success());

    let id = latest_run(&s).unwrap();
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "success");
    let expected = gated_keys(8);
    assert_eq!(step_keys(&shown), expected);
    assert_eq!(shown["outputs"]["summarize_directory"]["result"]["files"], 8);
}

#[test]
fn a_coordinator_killed_mid_run_is_resumed_without_running_a_step_twice() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let _w1 = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "2"]);
    let s = gated(&["mark:/marks\nawait:/gate/open\n"; 6], "");
    let mut host = s.spawn_run(&["--executor", &url]);
    wait_for("two clones to start", || (total_marks(&s) == 2).then_some(()));
    let id = wait_for("the run to be recorded", || latest_run(&s));
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    // The worker goes on with what was published: it finishes all six while no coordinator runs.
    open_gate(&s);
    wait_for("the worker to finish all six clones", || {
        (_w1.log().matches("ok     behave[").count() == 6).then_some(())
    });

    let (code, resumed, stderr) = s.run(&["resume", &id, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(resumed["status"], "success");
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    let expected = gated_keys(6);
    assert_eq!(step_keys(&shown), expected, "each step is recorded once");
    // No clone ran twice: the resumed coordinator took what the worker had done meanwhile.
    let counts: Vec<usize> = (0..6).map(|i| marks(&s.ws.path().join("marks"), &format!("f{i:02}_txt"))).collect();
    assert_eq!(counts, [1; 6]);
    assert_eq!(shown["outputs"]["summarize_directory"]["result"]["files"], 6);
}

#[test]
fn a_worker_without_a_grants_folder_fails_the_step_naming_it() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let ws = Workspace::new();
    let sample = ws.files("sample", &[(("a.txt"), b"a\n".as_slice())]);
    let s = StoredJob::new(ws, common::SEED_JOB);
    let sample = sample.canonicalize().unwrap();
    let missing = s.ws.path().join("not-here");
    let mount = format!("{}={}", sample.display(), missing.display());
    let mut worker = Worker::start(sandmap(), &url, "w-nogrant", &["--mount", &mount]);
    let (code, report, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 1, "{stderr}");
    let fan_out = &report["steps"][0];
    assert_eq!(fan_out["key"], "files_in_directory");
    assert_eq!(fan_out["status"], "failure");
    let error = fan_out["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "worker w-nogrant cannot run step files_in_directory: grant /data needs the folder {} (here {}), which this \
             worker does not have (",
            sample.display(),
            missing.display()
        )),
        "{error}"
    );
    assert!(
        error.ends_with(&format!("share it at the same path or map it with --mount {}=LOCAL_PATH", sample.display())),
        "{error}"
    );
    assert!(worker.alive());

    // A worker that allows grants only elsewhere refuses it, naming where it resolves.
    drop(worker);
    let elsewhere = s.ws.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let worker = Worker::start(sandmap(), &url, "w-fenced", &["--allow-dir", elsewhere.to_str().unwrap()]);
    let (code, report, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        report["steps"][0]["error"],
        format!(
            "worker w-fenced cannot run step files_in_directory: grant /data needs the folder {}, which is outside this \
             worker's --allow-dir and --mount folders (it resolves to {})",
            sample.display(),
            sample.display()
        )
    );

    // Mapped to where the folder is, the same worker-side rule runs the job.
    drop(worker);
    let copy = s.ws.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(copy.join("a.txt"), b"a\n").unwrap();
    let mount = format!("{}={}", sample.display(), copy.display());
    let _worker = Worker::start(sandmap(), &url, "w-mapped", &["--mount", &mount]);
    let (code, report, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["outputs"]["summarize_directory"]["result"]["files"], 1);
}

#[test]
fn hostile_ops_are_contained_on_a_worker_as_they_are_locally() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let mut worker = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "2"]);
    let commands = [
        "ok\n",
        "loop\n",
        "oom\n",
        "trap\n",
        "panic\n",
        "recurse\n",
        "read:/etc/passwd\n",
        "write:/data/planted\n",
        "env\n",
        "connect:127.0.0.1:22\n",
        "fail:told to\n",
        "big:70000000\n",
    ];
    let s = gated(&commands, "limits = { timeout = \"1 s\", memory = \"32 MiB\" }");
    let (code, local, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 1, "{stderr}");
    let (code, remote, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(outcomes(&remote), outcomes(&local));
    assert_eq!(remote["outputs"], local["outputs"]);
    let failed = outcomes(&remote).iter().filter(|(_, status, _)| status == "failure").count();
    assert!(failed >= 8, "{:?}", outcomes(&remote));
    assert!(!s.ws.path().join("cmds/planted").exists());
    // The worker lives on and runs the next job.
    assert!(worker.alive());
    let ok = gated(&["ok\n"; 3], "");
    let (code, report, stderr) = ok.run(&["run", &ok.job, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["outputs"]["summarize_directory"]["result"]["files"], 3);
}

#[test]
fn python_and_javascript_ops_run_on_a_worker() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let _worker = Worker::start(sandmap(), &url, "w1", &[]);
    for lang in [sandmap_test_programs::polyglot::PYTHON, sandmap_test_programs::polyglot::JS] {
        if let Some(reason) = lang.skipped {
            assert!(
                std::env::var("SANDMAP_REQUIRE_POLYGLOT").as_deref() != Ok("1"),
                "the {} ops were not built: {reason}",
                lang.name
            );
            eprintln!("SKIPPED: the {} ops were not built: {reason}", lang.name);
            continue;
        }
        let ws = Workspace::new();
        ws.files("sample", &[("a.txt", b"one\ntwo\n".as_slice()), ("b c.md", b"# x\n".as_slice())]);
        let job = common::SEED_JOB
            .replace(
                "component = \"files_in_directory\"",
                &format!("component = \"{}/files_in_directory.wasm\"", lang.dir),
            )
            .replace("component = \"process_file\"", &format!("component = \"{}/process_file.wasm\"", lang.dir));
        let s = StoredJob::new(ws, &job);
        let (code, local, stderr) = s.run(&["run", &s.job, "--json"]);
        assert_eq!(code, 0, "{}: {stderr}", lang.name);
        let (code, remote, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
        assert_eq!(code, 0, "{}: {stderr}", lang.name);
        assert_eq!(remote["outputs"], local["outputs"], "{}", lang.name);
        assert_eq!(outcomes(&remote), outcomes(&local), "{}", lang.name);
        assert!(workers_of(&remote, "process_file").iter().all(|w| w == "w1"));
    }
}

#[test]
fn wrong_credentials_are_refused_with_a_clear_error() {
    let Some(server) = Server::start(&["--user", "sandmap", "--pass", "right-one"]) else { return };
    let bad = format!("nats://sandmap:wrong@127.0.0.1:{}", server.port);
    let good = format!("nats://sandmap:right-one@127.0.0.1:{}", server.port);
    let expected = format!(
        "error: cannot connect to NATS at nats://sandmap:***@127.0.0.1:{}: authorization violation: the server refused \
         these credentials (check the URL's user:password, the token or --nats-creds)\n",
        server.port
    );

    let output = sandmap().args(["worker", &bad]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr), expected);

    let s = gated(&["ok\n"; 2], "");
    let (code, _, stderr) = s.run(&["run", &s.job, "--json", "--executor", &bad]);
    assert_eq!(code, 2);
    assert!(stderr.ends_with(&expected), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password is never printed: {stderr}");
    let (_, runs, _) = s.run(&["runs", "--json"]);
    assert_eq!(runs.as_array().map_or(0, Vec::len), 0, "nothing was recorded");

    let _worker = Worker::start(sandmap(), &good, "w1", &[]);
    let (code, report, stderr) = s.run(&["run", &s.job, "--json", "--executor", &good]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["outputs"]["summarize_directory"]["result"]["files"], 2);
}

#[test]
fn malformed_task_messages_fail_cleanly_and_the_worker_lives_on() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let mut worker = Worker::start(sandmap(), &url, "w1", &[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let run = "0000-hostile-run";
    let events = runtime.block_on(async {
        use async_nats::HeaderMap;
        use futures_util::StreamExt;
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let with = |step: &str, attempt: &str, blob: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert("Sandmap-Run", run);
            headers.insert("Sandmap-Step", step);
            headers.insert("Sandmap-Attempt", attempt);
            if let Some(blob) = blob {
                headers.insert("Sandmap-Blob", blob);
            }
            headers
        };
        let spec = serde_json::json!({"spec": {
            "key": "nocomp", "op": "x", "mapping_key": null, "attempt": 1, "component": "ab".repeat(32),
            "config": "{}", "inputs": [], "grants": [], "limits": {
                "memory_bytes": 1, "timeout": {"secs": 1, "nanos": 0}, "max_value_bytes": 1, "max_emits": 1,
                "max_log_bytes": 1, "max_fan_out": 1, "max_output_bytes": 1, "max_open_files": 1, "fuel": null},
            "outputs": [], "collect_failures": []}});
        let sends: Vec<(&str, HeaderMap, Vec<u8>)> = vec![
            ("sandmap.tasks.nothing", HeaderMap::new(), b"garbage".to_vec()),
            ("sandmap.tasks.x", with("k", "1", None).tap_run("bad.run"), b"{}".to_vec()),
            ("sandmap.tasks.x", with("json", "1", None), b"{not json".to_vec()),
            (
                "sandmap.tasks.x",
                with("deep", "1", None),
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            ),
            ("sandmap.tasks.x", with("blob", "1", Some("00")), Vec::new()),
            ("sandmap.tasks.x", with("blob2", "1", Some(&"cd".repeat(32))), Vec::new()),
            ("sandmap.tasks.x", with("other", "1", None), serde_json::to_vec(&spec).unwrap()),
            ("sandmap.tasks.x", with("nocomp", "1", None), serde_json::to_vec(&spec).unwrap()),
            ("sandmap.tasks.x", with("attempt", "not a number", None), b"{}".to_vec()),
        ];
        for (subject, headers, body) in sends {
            js.publish_with_headers(subject, headers, body.into()).await.unwrap().await.unwrap();
        }
        // The worker tells of each one it could name, on the run's events subject.
        let stream = js.get_stream("SANDMAP_EVENTS").await.unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("sandmap.events.{run}"),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut told = Vec::new();
        while told.len() < 6 {
            let message =
                tokio::time::timeout(Duration::from_secs(60), messages.next()).await.unwrap().unwrap().unwrap();
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            told.push((event["key"].as_str().unwrap().to_owned(), event["event"]["outcome"]["result"]["Err"].clone()));
        }
        told
    });
    let error = |key: &str| -> String {
        let (_, err) =
            events.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no event for {key}: {events:?}"));
        assert_eq!(err["kind"], "remote", "{err}");
        err["detail"].as_str().map_or_else(|| err.to_string(), str::to_owned)
    };
    let json = error("json");
    assert!(json.starts_with("worker w1 refused the task of step json: malformed: "), "{json}");
    let deep = error("deep");
    assert!(deep.starts_with("worker w1 refused the task of step deep: malformed: "), "{deep}");
    assert_eq!(error("blob"), "worker w1 cannot read the task of step blob: \"00\" is not a sha256 digest");
    assert!(
        error("blob2").starts_with(
            "worker w1 cannot read the task of step blob2: object sha256:cdcdcdcdcdcd is not in the bucket"
        )
    );
    assert_eq!(error("other"), "worker w1 refused the task of step other: its body names another step or attempt");
    assert!(error("nocomp").starts_with("worker w1 cannot get the component of step nocomp (sha256:abababababab): "));
    assert!(worker.alive(), "{}", worker.log());
    let log = worker.log();
    assert!(log.contains("failed json (run 0000-hostile-run, attempt"), "{log}");

    // And it goes on running real work.
    let s = gated(&["ok\n"; 2], "");
    let (code, report, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["outputs"]["summarize_directory"]["result"]["files"], 2);
}

/// Replace the run header (to send one that is not a subject token).
trait TapRun {
    fn tap_run(self, run: &str) -> Self;
}

impl TapRun for async_nats::HeaderMap {
    fn tap_run(mut self, run: &str) -> Self {
        self.insert("Sandmap-Run", run);
        self
    }
}

/// A network namespace with a veth pair to this one: a "host" of its own on 10.231.N.2, seen
/// from here at 10.231.N.1. Removed when dropped.
struct Netns {
    name: String,
    host_side: String,
    subnet: u32,
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip").args(args).status().is_ok_and(|s| s.success())
}

impl Netns {
    fn create() -> Option<Self> {
        let subnet = std::process::id() % 250 + 1;
        let ns = Self { name: format!("sandmap{subnet}"), host_side: format!("smh{subnet}"), subnet };
        let worker_side = format!("smw{subnet}");
        let here = format!("10.231.{subnet}.1/24");
        let there = format!("10.231.{subnet}.2/24");
        let ok = ip(&["netns", "add", &ns.name])
            && ip(&["link", "add", &ns.host_side, "type", "veth", "peer", "name", &worker_side])
            && ip(&["link", "set", &worker_side, "netns", &ns.name])
            && ip(&["addr", "add", &here, "dev", &ns.host_side])
            && ip(&["link", "set", &ns.host_side, "up"])
            && ip(&["netns", "exec", &ns.name, "ip", "addr", "add", &there, "dev", &worker_side])
            && ip(&["netns", "exec", &ns.name, "ip", "link", "set", &worker_side, "up"])
            && ip(&["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"]);
        ok.then_some(ns)
    }

    fn here(&self) -> String {
        format!("10.231.{}.1", self.subnet)
    }

    fn link(&self, up: bool) {
        assert!(ip(&["link", "set", &self.host_side, if up { "up" } else { "down" }]));
    }

    /// `sandmap` run inside the namespace.
    fn sandmap(&self) -> std::process::Command {
        let template = sandmap();
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(template.get_program());
        for (key, value) in template.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_side]);
        ip(&["netns", "del", &self.name]);
    }
}

#[test]
fn a_worker_cut_off_mid_step_has_its_late_result_ignored() {
    let required = std::env::var("SANDMAP_REQUIRE_NETNS").as_deref() == Ok("1");
    if !rustix::process::geteuid().is_root() {
        assert!(!required, "SANDMAP_REQUIRE_NETNS=1, but a network namespace needs root");
        eprintln!("SKIPPED: a worker on its own network namespace needs root");
        return;
    }
    let Some(netns) = Netns::create() else {
        assert!(!required, "SANDMAP_REQUIRE_NETNS=1, but `ip netns add` and a veth pair failed");
        eprintln!("SKIPPED: cannot create a network namespace with a veth pair (ip netns add)");
        return;
    };
    let Some(server) = Server::start_on(&netns.here(), &[]) else { return };
    let url = server.url();
    let cut = Worker::start(netns.sandmap(), &url, "cut-off", &["--max-concurrent", "4"]);
    let s = gated(&["mark:/marks\nawait:/gate/open\n"; 5], "");
    let mut host = s.spawn_run(&["--executor", &url]);
    wait_for("the worker to start four clones", || (total_marks(&s) == 4).then_some(()));
    // Cut mid-step: the four finish on the far side, but their results cannot get here, and
    // the server redelivers them once their heartbeats stop.
    netns.link(false);
    open_gate(&s);
    std::thread::sleep(super_ack_wait());
    // Another worker, here, takes the redeliveries and the fifth clone.
    let _here = Worker::start(sandmap(), &url, "here", &["--max-concurrent", "2"]);
    wait_for("the redelivered clones to run here", || (total_marks(&s) == 9).then_some(()));
    // The link comes back: the cut-off worker's results are stored late, after the ones of
    // the redeliveries, and ignored.
    netns.link(true);
    wait_for("the cut-off worker to send its late results", || {
        (cut.log().matches("ok     behave[").count() == 4).then_some(())
    });
    assert!(host.wait().unwrap().success());
    let id = latest_run(&s).unwrap();
    let (_, shown, _) = s.run(&["show", &id, "--json"]);
    assert_eq!(shown["status"], "success");
    let expected = gated_keys(5);
    assert_eq!(step_keys(&shown), expected, "each step is recorded once");
    assert_eq!(shown["outputs"]["summarize_directory"]["result"]["files"], 5);
    assert!(workers_of(&shown, "behave").iter().all(|w| w == "here"), "{shown}");
    drop(cut);
}

/// Longer than the server's ack wait: a delivery without heartbeats is redelivered by then.
fn super_ack_wait() -> Duration {
    sandmap::nats::ACK_WAIT + Duration::from_secs(1)
}

#[test]
fn a_worker_told_to_stop_finishes_its_step_and_a_second_signal_hands_it_back() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let term = |worker: &Worker| {
        rustix::process::kill_process(rustix::process::Pid::from_child(&worker.child), rustix::process::Signal::TERM)
            .unwrap();
    };

    // One SIGTERM: it pulls nothing more, finishes the step it runs, and exits 0.
    let mut first = Worker::start(sandmap(), &url, "first", &["--max-concurrent", "1"]);
    let s = gated(&["mark:/marks\nawait:/gate/open\n"; 2], "");
    let mut host = s.spawn_run(&["--executor", &url]);
    wait_for("a clone to start", || (total_marks(&s) == 1).then_some(()));
    term(&first);
    wait_for("the worker to say it stops", || {
        first.log().contains("stopping; finishing 1 running steps").then_some(())
    });
    open_gate(&s);
    let status = wait_for("the worker to exit", || first.child.try_wait().unwrap());
    assert!(status.success(), "{}", first.log());
    assert_eq!(first.log().matches("ok     behave[").count(), 1, "{}", first.log());
    // The other clone waits for a worker; one that starts runs it, and the run ends.
    let _next = Worker::start(sandmap(), &url, "next", &[]);
    assert!(host.wait().unwrap().success());
    let (_, shown, _) = s.run(&["show", &latest_run(&s).unwrap(), "--json"]);
    let mut seen = workers_of(&shown, "behave");
    seen.sort();
    assert_eq!(seen, ["first", "next"]);

    // Two: the running step is handed back at once and runs elsewhere.
    drop(_next);
    let second = Worker::start(sandmap(), &url, "second", &["--max-concurrent", "1"]);
    let g = gated(&["mark:/marks\nawait:/gate/open\n"], "");
    let mut host = g.spawn_run(&["--executor", &url]);
    wait_for("the clone to start", || (total_marks(&g) == 1).then_some(()));
    term(&second);
    wait_for("the worker to say it stops", || second.log().contains("stopping;").then_some(()));
    term(&second);
    wait_for("the worker to hand its step back", || second.log().contains("handed back 1 running steps").then_some(()));
    let _taker = Worker::start(sandmap(), &url, "taker", &[]);
    wait_for("the step to start again elsewhere", || (total_marks(&g) == 2).then_some(()));
    open_gate(&g);
    assert!(host.wait().unwrap().success());
    let (_, shown, _) = g.run(&["show", &latest_run(&g).unwrap(), "--json"]);
    assert_eq!(workers_of(&shown, "behave"), ["taker"]);
}

#[test]
fn values_too_large_for_a_message_travel_through_the_object_store() {
    let Some(server) = Server::start(&[]) else { return };
    let url = server.url();
    let _worker = Worker::start(sandmap(), &url, "w1", &["--max-concurrent", "2"]);
    // Three clones of 2 MB results (each event over the inline size), collected into one input
    // of 6 MB (a task over it too).
    let ws = Workspace::new();
    ws.files(
        "cmds",
        &[
            ("a.txt", b"big:2000000\n".as_slice()),
            ("b.txt", b"big:2000001\n".as_slice()),
            ("c.txt", b"big:2000002\n".as_slice()),
        ],
    );
    // `mapper` returns its input: the 6 MB list comes back as its output, another large event.
    let job = common::behave_map_job("{ host = \"cmds\", guest = \"/data\" }", "")
        + "[ops.all]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"behave\" } }\n";
    let s = StoredJob::new(ws, &job);
    let (code, local, stderr) = s.run(&["run", &s.job, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, remote, stderr) = s.run(&["run", &s.job, "--json", "--executor", &url]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcomes(&remote), outcomes(&local));
    assert_eq!(workers_of(&remote, "all"), ["w1"]);
    // The values came back whole.
    let all = remote["outputs"]["all"]["result"].as_array().unwrap();
    assert_eq!(all.iter().map(|v| v.as_str().unwrap().len()).collect::<Vec<_>>(), [2_000_000, 2_000_001, 2_000_002]);
    assert_eq!(remote["outputs"], local["outputs"]);
    // And they did go through the bucket: it holds objects besides the components.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let blobs = runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = js.get_stream("OBJ_sandmap_blobs").await.unwrap();
        stream.get_info().await.unwrap().state.messages
    });
    assert!(blobs > 0, "no message went through the blob bucket");
}
