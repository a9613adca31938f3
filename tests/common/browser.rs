//! A real headless Chromium, driven through Debian's chromedriver with fantoccini, and the
//! `sandmap ui` server it looks at. Both are killed when their guards drop: after a failed
//! assertion an orphaned chromedriver or Chromium would hold the test's pipes open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the browser tests need their programs.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn find(program: &str, fallback: &str) -> Option<PathBuf> {
    if Path::new(fallback).is_file() {
        return Some(fallback.into());
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (said on stderr) when this machine lacks them. With
/// `SANDMAP_REQUIRE_BROWSER=1` (CI) a missing browser is a failure instead.
fn programs() -> Option<(PathBuf, PathBuf)> {
    match (find("chromedriver", CHROMEDRIVER), find("chromium", CHROMIUM)) {
        (Some(driver), Some(browser)) => Some((driver, browser)),
        _ => {
            assert!(
                std::env::var("SANDMAP_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "SANDMAP_REQUIRE_BROWSER=1 but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED: the run viewer's browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process in a process group of its own, killed with its whole group when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        // The whole group: chromedriver and the Chromium it started. (Never `kill -KILL -PGID`
        // through procps' kill, which reads the group as an option on some versions.)
        if let Some(pgid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser session, spoken to in WebDriver's JSON over HTTP. Hand-written rather than through
/// fantoccini: its dependencies change features that the host's build shares (syn, url), which
/// made `cargo test --release` compile wasmtime and cranelift a second time (5 more minutes);
/// the tests need seven WebDriver commands.
pub struct Browser {
    driver_addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    _driver: Group,
}

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// A fresh headless Chromium, or `None` if this machine has none (see [`programs`]).
    pub fn start() -> Option<Self> {
        let (driver, chromium) = programs()?;
        // A free port can be taken by another test's chromedriver before this one binds it (the
        // loser exits, and the winner goes when its test ends): a chromedriver that is not alive
        // once its port answers, or a session that fails, is started again on another port.
        let mut last = String::new();
        for _ in 0..4 {
            match Self::try_start(&driver, &chromium) {
                Ok(browser) => return Some(browser),
                Err(why) => last = why,
            }
        }
        panic!("cannot start Chromium through chromedriver: {last}");
    }

    fn try_start(driver: &Path, chromium: &Path) -> Result<Self, String> {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start chromedriver: {e}"))?;
        let mut driver = Group(child);
        let driver_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(driver_addr).is_err() {
            if Instant::now() >= deadline {
                return Err(format!("chromedriver did not listen on {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        if !matches!(driver.0.try_wait(), Ok(None)) {
            return Err(format!("chromedriver on {port} exited (its port was taken)"));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", format!("--user-data-dir={}", profile.path().display()), "--window-size=1280,900",
                ],
            },
        }}});
        let session = try_command(driver_addr, "POST", "/session", Some(&capabilities))?;
        let session = session["sessionId"].as_str().ok_or_else(|| format!("no session: {session}"))?.to_owned();
        Ok(Self { driver_addr, session, _profile: profile, _driver: driver })
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        command(self.driver_addr, method, &format!("/session/{}{path}", self.session), body)
    }

    /// Load `url` and wait for the page to load.
    pub fn goto(&self, url: &str) {
        self.send("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Reload the page.
    pub fn reload(&self) {
        self.send("POST", "/refresh", Some(&json!({})));
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.send("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    /// Run `script` (a function body: `return …`) in the page; its value.
    pub fn js(&self, script: &str) -> Value {
        self.send("POST", "/execute/sync", Some(&json!({ "script": script, "args": [] })))
    }

    /// Poll `script` until it returns something truthy (gives up after 60 s, saying `what`).
    pub fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let value = self.js(script);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(Instant::now() < deadline, "gave up waiting for {what}; last: {value}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `css` selects, as a user would (WebDriver's click, not a script's).
    pub fn click(&self, css: &str) {
        let found = self.send("POST", "/element", Some(&json!({ "using": "css selector", "value": css })));
        let id = found[ELEMENT].as_str().unwrap_or_else(|| panic!("no {css}: {found}")).to_owned();
        self.send("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    /// Save a screenshot under `target/ui-screens/NAME.png`, for people to look at.
    pub fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self.send("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The script errors and CSP violations the page's own script recorded (none, in a sound page).
    pub fn page_errors(&self) -> Value {
        self.js("return window.__sandmapErrors || []")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium and chromedriver go with the process group either way.
        let _ = std::panic::catch_unwind(|| self.send("DELETE", "", None));
    }
}

/// One WebDriver command; its `value`, or a panic naming WebDriver's error.
fn command(driver: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    try_command(driver, method, path, body).unwrap_or_else(|why| panic!("{why}"))
}

/// One WebDriver command; its `value`, or WebDriver's error.
fn try_command(driver: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_empty() { &[] } else { &[("Content-Type", "application/json")] };
    let (status, _, text) = http(driver, method, path, headers, &body);
    let answer: Value =
        serde_json::from_str(&text).map_err(|_| format!("WebDriver {method} {path}: {status} {text}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if !(200..300).contains(&status) || value.get("error").is_some() {
        return Err(format!("WebDriver {method} {path}: {status} {}", value.get("message").unwrap_or(&value)));
    }
    Ok(value)
}

/// A `sandmap ui` server over a store, killed when dropped.
pub struct Ui {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Ui {
    /// Serve `store` on a free loopback port.
    pub fn start(store: &Path) -> Self {
        Self::start_on(store, "127.0.0.1:0")
    }

    /// Serve `store` on `listen`.
    pub fn start_on(store: &Path, listen: &str) -> Self {
        let mut child = super::sandmap()
            .args(["ui", "--listen", listen, "--store"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sandmap ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"));
        Self { child: Some(child), addr }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Its memory (resident set, in bytes).
    pub fn rss(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    }

    /// Stop it (as `kill -9` would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.1 request to `addr` (no client library: the tests need to send what a browser
/// would not); (status, headers as lowercase text, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    // Status 0 for a server that is not there (a caller may try another).
    let Ok(mut stream) = TcpStream::connect(addr) else { return (0, String::new(), String::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new(), String::new());
    }
    // Read until the body is complete (by its length, or its last chunk): a server may keep the
    // connection open whatever the request said.
    let mut response = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(done) = complete(&response) {
            response.truncate(done);
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, head, body)
}

/// The length of a whole response in `bytes`, once it is all there.
fn complete(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    if let Some(length) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        let length: usize = length.trim().parse().ok()?;
        return (bytes.len() >= end + length).then_some(end + length);
    }
    if head.contains("transfer-encoding: chunked") {
        let body = &bytes[end..];
        return body.windows(5).position(|w| w == b"0\r\n\r\n").map(|p| end + p + 5);
    }
    None
}

/// A chunked body's content.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The server-sent events a stream sends within `for_how_long` (each event's lines).
pub fn sse_events(addr: SocketAddr, path: &str, for_how_long: Duration) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let deadline = Instant::now() + for_how_long;
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked transfer: the chunk-size lines are not part of any event.
    body.split("\n\n")
        .map(|e| {
            e.lines()
                .filter(|l| l.starts_with("event:") || l.starts_with("id:") || l.starts_with("data:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|e| e.contains("event:"))
        .collect()
}
