//! Live pages: the server follows the store and streams each run's changes as server-sent
//! events.
//!
//! One thread polls SQLite's `data_version` a few times a second on a connection of its own (it
//! changes whenever any process commits), so a run started by any process, on any machine that
//! writes this store, shows live. Each stream then sends what changed, folded: per-op count
//! changes and the first steps that changed, at most [`MIN_GAP`] apart, so the event rate stays
//! bounded however fast clones end. Each event's id is the number of the store's last step
//! event it folds in: a page that reconnects (the browser sends `Last-Event-ID`, even to a
//! restarted server) gets exactly what came after, nothing missing or doubled. A page that
//! connects with no number first gets a snapshot of every count.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::db::ViewError;
use super::server::Shared;
use crate::store::{RunState, RunStore, StoreError};

/// How often the follower polls the store.
const POLL: Duration = Duration::from_millis(150);
/// How often streams look again even if nothing was written: a run whose process was killed
/// writes nothing, and only its lock says it is interrupted.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The least time between two events of one stream.
const MIN_GAP: Duration = Duration::from_millis(250);
/// How long a browser waits before it reconnects.
const RETRY: Duration = Duration::from_millis(500);

/// The store's follower: a counter that moves whenever the store may have changed (or a
/// heartbeat passed), and one that moves only when something was written.
pub(crate) struct Follower {
    changes: watch::Receiver<u64>,
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Follower {
    /// Start following the store in `dir`.
    pub fn start(dir: &Path) -> Result<Self, StoreError> {
        let store = RunStore::open(dir)?;
        let (sender, changes) = watch::channel(0u64);
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = writes.clone();
        std::thread::Builder::new()
            .name("sandmap-ui-follower".into())
            .spawn(move || follow(&store, &sender, &counted))
            .map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        Ok(Self { changes, writes })
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// How many times the follower saw the store written: a page polls it (cheap) before it
    /// asks for anything costly again.
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn follow(store: &RunStore, sender: &watch::Sender<u64>, writes: &std::sync::atomic::AtomicU64) {
    let mut seen = store.data_version().ok();
    let mut last_beat = std::time::Instant::now();
    loop {
        std::thread::sleep(POLL);
        let now = store.data_version().ok();
        let beat = last_beat.elapsed() >= HEARTBEAT;
        if now != seen {
            writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if now != seen || beat {
            seen = now;
            last_beat = std::time::Instant::now();
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
        if sender.is_closed() && sender.receiver_count() == 0 {
            // The server keeps a receiver for as long as it serves.
            return;
        }
    }
}

/// `?after=N`: the number the page's counts stand at (the page was rendered at it).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EventsQuery {
    pub after: Option<i64>,
}

struct Cursor {
    state: Shared,
    run: String,
    after: Option<i64>,
    last: Option<RunState>,
    changes: watch::Receiver<u64>,
    sent_any: bool,
}

/// `GET /api/runs/{id}/events`.
pub(crate) async fn events(
    State(state): State<Shared>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ViewError> {
    let run = state.db.with(move |store| Ok(store.resolve(&id)?)).await?;
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let after = resumed.or(q.after).filter(|n: &i64| *n >= 0);
    let changes = state.follower.subscribe();
    let cursor = Cursor { state, run, after, last: None, changes, sent_any: false };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if cursor.sent_any {
                tokio::time::sleep(MIN_GAP).await;
                // Wait for the store to change (or the heartbeat).
                if cursor.changes.changed().await.is_err() {
                    return None;
                }
            }
            match next_event(&mut cursor).await {
                Ok(Some(event)) => {
                    let event = if cursor.sent_any { event } else { event.retry(RETRY) };
                    cursor.sent_any = true;
                    return Some((Ok(event), cursor));
                }
                Ok(None) => cursor.sent_any = true,
                // The store is busy or gone for now: try again on the next change.
                Err(_) => cursor.sent_any = true,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next event of a stream, if anything changed.
async fn next_event(cursor: &mut Cursor) -> Result<Option<Event>, ViewError> {
    let run = cursor.run.clone();
    let after = cursor.after;
    let (state, batch, snapshot) = cursor
        .state
        .db
        .with(move |store| {
            let state = store.run_state(&run)?;
            Ok(match after {
                None => (state, None, Some(store.op_counts(&run)?)),
                Some(after) => (state, Some(store.events_after(&run, after)?), None),
            })
        })
        .await?;
    let status_changed = cursor.last.as_ref() != Some(&state);
    let run_json = json!({"status": state.status, "duration_ms": state.duration_ms, "error": state.error});
    cursor.last = Some(state);
    if let Some(snapshot) = snapshot {
        cursor.after = Some(snapshot.seq);
        let data = json!({"seq": snapshot.seq, "run": run_json, "ops": snapshot.ops});
        return Ok(Some(Event::default().event("snapshot").id(snapshot.seq.to_string()).data(data.to_string())));
    }
    let Some(batch) = batch else { return Ok(None) };
    if batch.is_empty() && !status_changed {
        return Ok(None);
    }
    cursor.after = Some(batch.seq);
    let data = json!({"seq": batch.seq, "run": run_json, "ops": batch.ops, "steps": batch.steps, "more": batch.more});
    Ok(Some(Event::default().event("delta").id(batch.seq.to_string()).data(data.to_string())))
}

/// `GET /api/version`: how many writes the viewer has seen, `{"writes": n}` (a page refreshes
/// its run list only when this moved).
pub(crate) async fn version(State(state): State<Shared>) -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "writes": state.follower.writes() }))
}
