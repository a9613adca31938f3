//! The step log: the op's stdout, stderr and `log` calls, captured in order, capped in size.
//!
//! Guest output never reaches the user's terminal raw: it is kept here and shown through
//! [`printable`], which escapes control characters (a guest's escape sequences must not drive
//! the user's tty).

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The op's stdout.
    Stdout,
    /// The op's stderr.
    Stderr,
    /// A `log` call at trace level.
    Trace,
    /// A `log` call at debug level.
    Debug,
    /// A `log` call at info level.
    Info,
    /// A `log` call at warn level.
    Warn,
    /// A `log` call at error level.
    Error,
}

impl LogSource {
    /// Its name, as serialized (`stdout`, `info`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One chunk of captured output (consecutive writes to one stream within [`MERGE_WITHIN_MS`]
/// are merged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Which stream or level.
    pub source: LogSource,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
    /// When it was written (its first write), in milliseconds since the Unix epoch; 0 for an
    /// entry recorded before sandmap kept the time.
    #[serde(default)]
    pub at_ms: u64,
}

/// Writes to one stream this close to the start of its last entry join it: a line written in
/// pieces stays one entry, and a time is never more than this far from a line's own.
pub const MERGE_WITHIN_MS: u64 = 1000;

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A finished step's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLog {
    /// What was kept, in order.
    pub entries: Vec<LogEntry>,
    /// Bytes the op wrote past the cap (dropped).
    pub truncated_bytes: u64,
}

impl StepLog {
    /// The last error-level line, if any (a panicking Rust op logs its panic message there).
    pub fn last_error(&self) -> Option<&str> {
        self.entries.iter().rev().find(|e| e.source == LogSource::Error).map(|e| e.text.trim_end())
    }
}

#[derive(Debug, Default)]
struct Buffer {
    log: StepLog,
    kept: u64,
    cap: u64,
}

/// What one log entry costs against `max_log_bytes` besides its text: about what the host holds
/// for it (the entry, its allocation, its row in the run record).
pub const ENTRY_OVERHEAD: u64 = 64;

/// The log of a running step, shared by its stdout, stderr and the `log` host function.
#[derive(Debug, Clone)]
pub struct LogCapture(Arc<Mutex<Buffer>>);

impl LogCapture {
    /// A capture that keeps at most `cap` bytes.
    pub fn new(cap: u64) -> Self {
        Self(Arc::new(Mutex::new(Buffer { cap, ..Buffer::default() })))
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means another writer panicked mid-append; the text is still usable.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Append `bytes` from `source`, keeping what fits under the cap. A write that starts a new
    /// entry also costs [`ENTRY_OVERHEAD`] against the cap, so that a million one-byte `log`
    /// calls are held to the cap like one large one.
    pub fn write(&self, source: LogSource, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let at_ms = now_ms();
        let mut buf = self.lock();
        let is_stream = matches!(source, LogSource::Stdout | LogSource::Stderr);
        let merges = is_stream
            && buf
                .log
                .entries
                .last()
                .is_some_and(|last| last.source == source && at_ms.saturating_sub(last.at_ms) < MERGE_WITHIN_MS);
        let overhead = if merges { 0 } else { ENTRY_OVERHEAD };
        let room = buf.cap.saturating_sub(buf.kept).saturating_sub(overhead);
        let keep = (bytes.len() as u64).min(room) as usize;
        buf.log.truncated_bytes += (bytes.len() - keep) as u64;
        if keep == 0 {
            return;
        }
        buf.kept += keep as u64 + overhead;
        let text = String::from_utf8_lossy(&bytes[..keep]);
        match buf.log.entries.last_mut() {
            Some(last) if merges => last.text.push_str(&text),
            _ => buf.log.entries.push(LogEntry { source, text: text.into_owned(), at_ms }),
        }
    }

    /// A stdout or stderr stream for the WASI context.
    pub fn stream(&self, source: LogSource) -> CapturedStream {
        CapturedStream { capture: self.clone(), source }
    }

    /// The log so far.
    pub fn snapshot(&self) -> StepLog {
        self.lock().log.clone()
    }
}

/// An op's stdout or stderr. Writes past the cap are accepted and dropped, so a chatty op is not
/// failed for its chatter (wasmtime-wasi's `MemoryOutputPipe` would trap it).
#[derive(Debug, Clone)]
pub struct CapturedStream {
    capture: LogCapture,
    source: LogSource,
}

/// How much the op may write per `check-write` permit.
const WRITE_PERMIT: usize = 64 * 1024;

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.write(self.source, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.capture.write(self.source, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl StdoutStream for CapturedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// `text` made safe for a terminal: control characters (ESC, BEL, CR, …) other than newline
/// and tab are shown as `\u{..}` escapes.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_order_merges_streams_and_cuts_at_the_cap() {
        let capture = LogCapture::new(3 * ENTRY_OVERHEAD + 10);
        capture.write(LogSource::Stdout, b"abc");
        capture.write(LogSource::Stdout, b"def");
        capture.write(LogSource::Info, b"hi");
        capture.write(LogSource::Stderr, b"0123456789");
        let log = capture.snapshot();
        let kept: Vec<(LogSource, &str)> = log.entries.iter().map(|e| (e.source, e.text.as_str())).collect();
        assert_eq!(kept, [(LogSource::Stdout, "abcdef"), (LogSource::Info, "hi"), (LogSource::Stderr, "01")]);
        assert_eq!(log.truncated_bytes, 8);
        // Each entry has the time of its first write, in order.
        assert!(log.entries[0].at_ms > 0);
        assert!(log.entries.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    }

    #[test]
    fn a_stream_written_later_starts_a_new_entry_with_its_own_time() {
        let capture = LogCapture::new(1 << 20);
        capture.write(LogSource::Stdout, b"first\n");
        std::thread::sleep(std::time::Duration::from_millis(MERGE_WITHIN_MS + 50));
        capture.write(LogSource::Stdout, b"second\n");
        let log = capture.snapshot();
        assert_eq!(log.entries.len(), 2);
        assert!(log.entries[1].at_ms >= log.entries[0].at_ms + MERGE_WITHIN_MS);
    }

    #[test]
    fn many_small_entries_are_held_to_the_cap() {
        let capture = LogCapture::new(1 << 20);
        for _ in 0..1_000_000 {
            capture.write(LogSource::Info, b"x");
        }
        let log = capture.snapshot();
        let kept = log.entries.len() as u64;
        assert_eq!(kept, (1 << 20) / (ENTRY_OVERHEAD + 1));
        assert_eq!(log.truncated_bytes, 1_000_000 - kept);
    }

    #[test]
    fn printable_escapes_terminal_control_sequences() {
        assert_eq!(printable("a\x1b[2Jb\n\tc\x07"), "a\\u{1b}[2Jb\n\tc\\u{7}");
    }
}
