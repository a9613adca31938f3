//! A real `nats-server -js` and `sandmap worker`s for tests and benchmarks: each server on a
//! free loopback port with its own store, each killed by pid when dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server -js` of this test.
pub struct Server {
    child: Option<Child>,
    binary: PathBuf,
    pub port: u16,
    /// The address it listens on.
    pub addr: String,
    store: tempfile::TempDir,
    extra: Vec<String>,
    log: PathBuf,
}

fn nats_server_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// A server, or `None` (said) where none is installed and none is required.
    pub fn start(extra: &[&str]) -> Option<Self> {
        Self::start_on("127.0.0.1", extra)
    }

    /// A server listening on `addr`.
    pub fn start_on(addr: &str, extra: &[&str]) -> Option<Self> {
        let Some(binary) = nats_server_binary() else {
            assert!(
                std::env::var("SANDMAP_REQUIRE_NATS").as_deref() != Ok("1"),
                "nats-server is not installed, and SANDMAP_REQUIRE_NATS=1"
            );
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
            return None;
        };
        let store = tempfile::tempdir().unwrap();
        let log = store.path().join("server.log");
        let mut server = Self {
            child: None,
            binary,
            port: free_port(),
            addr: addr.to_owned(),
            store,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            log,
        };
        server.launch();
        Some(server)
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(&self.binary)
            .args(["-a", &self.addr, "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path().join("js"))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let log = self.log.clone();
        let starts = std::fs::read_to_string(&log).unwrap_or_default().matches("Server is ready").count();
        wait_for("nats-server to be ready", || {
            let now = std::fs::read_to_string(&log).unwrap_or_default();
            (now.matches("Server is ready").count() > starts).then_some(())
        });
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.addr, self.port)
    }

    /// SIGKILL the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Start it again on the same port and store.
    pub fn restart(&mut self) {
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `sandmap worker` of this test, its stderr in a file.
pub struct Worker {
    pub child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Worker {
    /// `sandmap` is the binary to run, with its environment set.
    pub fn start(sandmap: Command, url: &str, name: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("worker.log");
        let mut sandmap = sandmap;
        let child = sandmap
            .args(["worker", url, "--name", name])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let worker = Self { child, log, _dir: dir };
        wait_for("the worker to connect", || worker.log().contains(" connected to ").then_some(()));
        worker
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `probe` until it gives a value (no timing is asserted; gives up after 2 minutes).
pub fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
