//! Helpers shared by the integration tests: temporary job folders, running jobs in-process and
//! through the binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod browser;
pub mod nats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use sandmap::executor::{self, ExecOptions, RunReport};
use sandmap::job::JobError;
use sandmap::runtime::{Runtime, RuntimeConfig};
use serde_json::Value;

/// One runtime for all in-process tests of a test binary (as one `sandmap run` has one).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let settings = RuntimeConfig { cache_dir: Some(test_cache_dir()), ..RuntimeConfig::default() };
        Runtime::new(&settings).expect("runtime")
    })
}

/// The run store the binary's tests record into (inside the target folder).
pub fn test_store_dir() -> PathBuf {
    PathBuf::from(sandmap_test_programs::DIR).join("../../../sandmap-test-store")
}

/// The compile cache the tests share (inside the target folder, never the user's).
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(sandmap_test_programs::DIR).join("../../../sandmap-test-cache")
}

/// A temporary folder holding a job file and its data.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `files` (name, content) into the folder `sub`, creating it.
    pub fn files(&self, sub: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let dir = self.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        dir
    }

    /// Write the job file `job.toml`.
    pub fn job(&self, text: &str) -> PathBuf {
        let path = self.path().join("job.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Parse, load, plan.
    pub fn prepare(&self, text: &str) -> Result<executor::PreparedJob, JobError> {
        let path = self.job(text);
        executor::prepare(&path, &[PathBuf::from(sandmap_test_programs::DIR)], runtime())
    }

    /// Run in-process; panics if the job is invalid.
    pub fn run(&self, text: &str) -> RunReport {
        let prepared = self.prepare(text).unwrap_or_else(|e| panic!("invalid job: {e}"));
        executor::execute(&prepared.plan, &prepared.ops, runtime(), &ExecOptions::default())
    }

    /// The validation error of an invalid job.
    pub fn invalid(&self, text: &str) -> String {
        match self.prepare(text) {
            Ok(_) => panic!("the job was accepted"),
            Err(e) => e.to_string(),
        }
    }
}

/// The seed job over the folder `sample` of the job's folder.
pub const SEED_JOB: &str = r#"
name = "process_directory"

[ops.files_in_directory]
component = "files_in_directory"
config = { path = "/data" }
grants = [{ host = "sample", guest = "/data", access = "read" }]

[ops.process_file]
component = "process_file"
inputs = { path = { map = "files_in_directory" } }
grants = [{ host = "sample", guest = "/data" }]

[ops.summarize_directory]
component = "summarize_directory"
inputs = { results = { collect = "process_file" } }
"#;

/// The seed job without its collect: `process_file` is a leaf, so its per-key results are in
/// the report's outputs.
pub const MAP_ONLY_JOB: &str = r#"
name = "map_only"

[ops.files_in_directory]
component = "files_in_directory"
grants = [{ host = "sample", guest = "/data" }]

[ops.process_file]
component = "process_file"
inputs = { path = { map = "files_in_directory" } }
grants = [{ host = "sample", guest = "/data" }]
"#;

/// files_in_directory over `cmds/` → `behave` per file, with these grants for behave and any
/// further lines for its table (limits, retries). No collect: behave's results are outputs.
pub fn behave_map_job(behave_grants: &str, extra: &str) -> String {
    format!(
        r#"
name = "behave_job"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{{ host = "cmds", guest = "/data" }}]
[ops.behave]
component = "{behave}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{behave_grants}]
{extra}
"#,
        behave = sandmap_test_programs::BEHAVE
    )
}

/// behave over `commands` (one file each, `f00.txt`…), granted the files read-only, `marks/`
/// read-write and `gate/` read-only, with `extra` lines for its table; summarize_directory
/// collects the results. Runs are recorded in the job's own store.
pub fn gated_behave_job(commands: &[&str], extra: &str) -> StoredJob {
    let ws = Workspace::new();
    let names: Vec<String> = (0..commands.len()).map(|i| format!("f{i:02}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().zip(commands).map(|(n, c)| (n.as_str(), c.as_bytes())).collect();
    ws.files("cmds", &files);
    ws.files("marks", &[]);
    ws.files("gate", &[]);
    let grants = "{ host = \"cmds\", guest = \"/data\" }, { host = \"marks\", guest = \"/marks\", access = \"read-write\" }, \
                  { host = \"gate\", guest = \"/gate\" }";
    let job = behave_map_job(grants, extra)
        + "[ops.summarize_directory]\ncomponent = \"summarize_directory\"\ninputs = { results = { collect = \"behave\" } }\n";
    StoredJob::new(ws, &job)
}

#[allow(unused_imports)]
pub use nats::wait_for;

/// The chain job `files_in_directory` (over `cmds/`) → map `parse` (behave, granted `cmds/`
/// read-only and `marks/` read-write, plus `extra_grants`) → map `stat` (mapper) → collect
/// `summary` (mapper).
pub fn behave_chain_job(extra_grants: &str) -> String {
    format!(
        r#"
name = "chain"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{{ host = "cmds", guest = "/data" }}]
[ops.parse]
component = "{behave}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "cmds", guest = "/data" }}, {{ host = "marks", guest = "/marks", access = "read-write" }}{extra_grants}]
[ops.stat]
component = "mapper"
inputs = {{ x = {{ map = "parse" }} }}
[ops.summary]
component = "mapper"
inputs = {{ x = {{ collect = "stat" }} }}
"#,
        behave = sandmap_test_programs::BEHAVE
    )
}

/// The `sandmap` binary with the test plugins on its plugin path.
pub fn sandmap() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandmap"));
    command.env("SANDMAP_PLUGIN_PATH", sandmap_test_programs::DIR).env("SANDMAP_CACHE_DIR", test_cache_dir());
    // Runs are recorded; never into a .sandmap/ of the source tree.
    command.env("SANDMAP_HOME", test_store_dir());
    command
}

/// A process a test started, killed when dropped (a failed assertion must not leave a run
/// waiting at a gate forever).
pub struct Host(Option<std::process::Child>);

impl Host {
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// The process itself, no longer killed on drop (to collect its output).
    pub fn into_child(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl std::ops::Deref for Host {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A job file, its folder and the run store its runs go to, for tests that run a job more than
/// once (re-execution, resume).
pub struct StoredJob {
    pub ws: Workspace,
    pub store: PathBuf,
    pub job: String,
}

impl StoredJob {
    /// `job_text` written as the job file of `ws`; runs are recorded under `ws/store`.
    pub fn new(ws: Workspace, job_text: &str) -> Self {
        let job = ws.job(job_text).display().to_string();
        Self { store: ws.path().join("store"), ws, job }
    }

    /// Start `sandmap run JOB ARGS…` with this store in the background, its output discarded (a
    /// test that kills it or waits on its store). Killed when dropped, if it still runs.
    pub fn spawn_run(&self, args: &[&str]) -> Host {
        Host::new(
            sandmap()
                .env("SANDMAP_HOME", &self.store)
                .args(["run", &self.job])
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// Run the binary with this store; (exit code, stdout as JSON or null, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, Value, String) {
        let (code, stdout, stderr) = self.text(args);
        (code, serde_json::from_str(&stdout).unwrap_or(Value::Null), stderr)
    }

    /// Run the binary with this store; (exit code, stdout, stderr) as text.
    #[allow(dead_code)]
    pub fn text(&self, args: &[&str]) -> (i32, String, String) {
        let output = sandmap().env("SANDMAP_HOME", &self.store).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code().unwrap_or(-1), stdout, stderr)
    }
}

/// Run the binary; (exit code, stdout, stderr).
pub fn run_binary(args: &[&str]) -> (i32, String, String) {
    let output = sandmap().args(args).output().expect("run sandmap");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `sandmap run JOB --json`: (exit code, the JSON report).
pub fn run_json(job: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = run_binary(&["run", job.to_str().unwrap(), "--json"]);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, value)
}

/// The mapping key `files_in_directory` gives a file name (the guest SDK's `clean`, written
/// again here so that the tests check it rather than share it).
pub fn cleaned_key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// What `process_file` returns for `/data/NAME` holding `content`, computed natively.
pub fn process_file_result(name: &str, content: &[u8]) -> Value {
    serde_json::json!({
        "path": format!("/data/{name}"),
        "bytes": content.len(),
        "lines": content.iter().filter(|&&b| b == b'\n').count(),
        "sha256": sha256_hex(content),
    })
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn keys_of(report: &RunReport, op: &str) -> Vec<String> {
    report.steps.iter().filter(|s| s.op == op).map(|s| s.key.clone()).collect()
}

pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}

/// `sandmap logs` output without the time each line starts with (`2026-12-02T01:43:38.123Z `),
/// for tests that assert the rest exactly.
#[allow(dead_code)]
pub fn without_times(logs: &str) -> String {
    logs.lines()
        .map(|line| match line.split_once(' ') {
            Some((time, rest)) if time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T' => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}
