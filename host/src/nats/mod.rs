//! Many machines: a run's steps go to `sandmap worker`s over NATS JetStream.
//!
//! The layout on the server, created by whichever side comes first:
//! - **`SANDMAP_TASKS`**, a work-queue stream on `sandmap.tasks.<run>`: one message per step
//!   attempt, published by the coordinator with `Nats-Msg-Id = <run>:<step key>:<attempt>`, so a
//!   re-publish (a resumed coordinator, a retried publish) is stored once. Every worker pulls from
//!   one durable consumer, `sandmap-workers`, with explicit acks: a worker acks a task only after
//!   the step's result is stored, and sends in-progress acks while it runs.
//! - **`SANDMAP_EVENTS`**, a limits stream on `sandmap.events.<run>`: what workers tell of each
//!   delivery (started, each accepted emission, finished). Durable, so that a coordinator that
//!   died and resumes reads what was done while it was away.
//! - **Object Store buckets** `sandmap_components` (components, by sha256) and `sandmap_blobs`
//!   (messages too large to travel inline, by sha256).
//!
//! The coordinator ([`NatsRunner`]) is a [`crate::executor::Runner`]: the scheduler is the same
//! as for a local run. Workers ([`worker::Worker`]) are stateless apart from their compile cache.

mod blobs;
mod coordinator;
mod layout;
mod tracker;
pub mod wire;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

pub use coordinator::NatsRunner;
pub use layout::Bus;

/// How long a delivery may go without an in-progress ack before the server redelivers it: the
/// bound on how long a dead worker's step waits before another worker takes it.
pub const ACK_WAIT: Duration = Duration::from_secs(6);
/// How often a worker tells the server a step is still running (a third of [`ACK_WAIT`], so
/// that two heartbeats can be late without a redelivery).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Deliveries of one attempt that may be lost (a worker died or was cut off) before the attempt
/// fails with `worker lost`. A lost delivery is not an attempt: `retries` stays the op's policy.
pub const MAX_LOST_DELIVERIES: i64 = 3;
/// How long the server remembers a task's message id: a task re-published within it (a resumed
/// coordinator) is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);
/// How long a run's events stay on the server if its coordinator never comes back to clean up.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Messages at most this large travel inline; larger ones go through the blob bucket. Below
/// NATS's default 1 MiB max payload, with room for headers.
pub const INLINE_MAX: usize = 768 << 10;
/// The largest message a worker or coordinator accepts through the blob bucket.
pub const MAX_BLOB_BYTES: usize = 1 << 30;
/// The largest component a worker fetches.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// Where the server is, and how to log in to it.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://[user:pass@]host[:port]` (also `tls://`); several separated by commas.
    pub url: String,
    /// A `.creds` file (JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// The connection's name, shown by the server's monitoring.
    pub name: String,
}

/// What went wrong talking to NATS.
#[derive(Debug, Error)]
pub enum NatsError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot read the NATS credentials file {path}: {reason}")]
    Creds {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// JetStream refused or failed a request.
    #[error("NATS JetStream: {what}: {reason}")]
    JetStream {
        /// What was being done.
        what: String,
        /// Why.
        reason: String,
    },
    /// A message could not be read.
    #[error("a malformed message on {subject}: {reason}")]
    Malformed {
        /// Where it came from.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the NATS client's runtime: {0}")]
    Runtime(String),
}

impl NatsError {
    fn js(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::JetStream { what: what.into(), reason: reason.to_string() }
    }
}

/// One server URL split around its `user:password@` or `token@`: (`scheme://`, the userinfo,
/// `host:port…`).
pub(crate) fn split_userinfo(url: &str) -> (&str, Option<&str>, &str) {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => (&url[..scheme + 3], Some(&url[scheme + 3..at]), &url[at + 1..]),
        _ => ("", None, url),
    }
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| match split_userinfo(one) {
            (scheme, Some(userinfo), host) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}:***@{host}"),
                None => format!("{scheme}***@{host}"),
            },
            (_, None, _) => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A run id is a subject token: letters, digits, `-` and `_` only.
pub fn is_subject_token(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The subject a run's tasks are published on.
pub fn task_subject(run_id: &str) -> String {
    format!("sandmap.tasks.{run_id}")
}

/// The subject a run's events are published on.
pub fn event_subject(run_id: &str) -> String {
    format!("sandmap.events.{run_id}")
}

/// The message id of a task: a re-publish of the same attempt is stored once.
pub fn task_message_id(run_id: &str, step_key: &str, attempt: u32) -> String {
    format!("{run_id}:{step_key}:{attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("nats://u:secret@h:4222"), "nats://u:***@h:4222");
        assert_eq!(redact("nats://token@h"), "nats://***@h");
        assert_eq!(redact("nats://h:4222,nats://a:b@g"), "nats://h:4222,nats://a:***@g");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn run_ids_are_checked_before_they_become_subjects() {
        assert!(is_subject_token("0193d2c4-7b1e-7c3a-9f00-0123456789ab"));
        assert!(!is_subject_token("a.b"));
        assert!(!is_subject_token("a*"));
        assert!(!is_subject_token(">"));
        assert!(!is_subject_token(""));
    }
}
