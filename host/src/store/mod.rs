//! The run store: every run recorded in SQLite (bundled), at `.sandmap/runs.db` by default.
//!
//! Writes are transactional and the database is in WAL mode, so a process killed mid-write
//! leaves the store as it was before that transaction. The schema is versioned from the start:
//! `schema_version` holds the migrations applied, and opening a store applies the missing ones.

mod gc;
mod recorder;
mod schema;
mod step_detail;
mod views;

pub use gc::{GcPolicy, GcReport};
pub use recorder::Recorder;

pub use schema::VERSION as SCHEMA_VERSION;
pub use step_detail::{InputDetail, RecordDetail, StepDetail, step_detail};
pub use views::{
    ComponentRow, EventBatch, HISTOGRAM_BINS, MAX_PAGE as MAX_STEP_PAGE, OpCounts, OpSpan, RunHead, RunState,
    StepOrder, StepPage, StepQuery, StepRow,
};

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use crate::executor::{EndedStep, RunReport, RunStatus, StepReport, StepStatus};
use crate::job::JobModel;
use crate::runtime::StepLog;
use crate::value::{JsonText, Metadata, metadata_json};

/// Why the run store could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The folder could not be created.
    #[error("run store {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused.
    #[error("run store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// A record in the store could not be read back.
    #[error("run store {path}: a stored {what} is not valid: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What was being read.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// No run matches.
    #[error("no run {0} in the store")]
    NoSuchRun(String),
    /// Several runs match a prefix.
    #[error(
        "\"{prefix}\" matches {count} runs; give more of the run id (its last 12 characters, as sandmap prints it)"
    )]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many runs match.
        count: usize,
    },
    /// Another process holds the run's lock.
    #[error("run {0} is still running (its process holds the run lock)")]
    StillRunning(String),
    /// A store was expected and none was found.
    #[error(
        "no run store found (looked for .sandmap/ here and in every parent folder); run a job first or pass --store"
    )]
    NotFound,
}

/// Where the store lives: `--store DIR`, else `$SANDMAP_HOME`, else the nearest `.sandmap/` in
/// this folder or a parent (as git finds `.git`), else `./.sandmap` (created on first write).
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_owned();
    }
    if let Some(home) = std::env::var_os("SANDMAP_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors().map(|dir| dir.join(".sandmap")).find(|dir| dir.is_dir()).unwrap_or_else(|| cwd.join(".sandmap"))
}

/// How a recorded run stands: ended as an execution ends, or, known only to the store, still
/// running or interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedStatus {
    /// It ended.
    Ended(RunStatus),
    /// Its process holds its run lock.
    Running,
    /// Its process died before the run ended; `sandmap resume` finishes it.
    Interrupted,
}

impl RecordedStatus {
    /// Every status, for parsing and listing.
    pub const ALL: [Self; 6] = [
        Self::Ended(RunStatus::Success),
        Self::Ended(RunStatus::SuccessWithFailures),
        Self::Ended(RunStatus::Failure),
        Self::Ended(RunStatus::Cancelled),
        Self::Running,
        Self::Interrupted,
    ];

    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ended(status) => status.as_str(),
            Self::Running => "running",
            Self::Interrupted => "interrupted",
        }
    }

    /// The status its word names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl From<RunStatus> for RecordedStatus {
    fn from(status: RunStatus) -> Self {
        Self::Ended(status)
    }
}

impl serde::Serialize for RecordedStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A summary line of a stored run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The job file.
    pub job_file: String,
    /// Its [`RecordedStatus`], as a word.
    pub status: String,
    /// Unix time the run was recorded, in milliseconds.
    pub recorded_at_ms: i64,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// Steps in the run.
    pub steps: i64,
    /// Steps that failed.
    pub failed: i64,
    /// For a re-execution: the run it re-executes.
    pub parent_run_id: Option<String>,
}

/// Filters for [`RunStore::runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this job.
    pub job: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
    /// Only runs recorded before this Unix time, in milliseconds (the next page of a list).
    pub before: Option<i64>,
    /// At most this many (newest first).
    pub limit: usize,
}

/// An open run store.
pub struct RunStore {
    conn: Connection,
    path: PathBuf,
}

impl RunStore {
    /// Open (creating folder and database if needed) the store in `dir`, migrating its schema.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        Self::open_file(dir.join("runs.db"))
    }

    /// Open an existing store in `dir`; [`StoreError::NotFound`] if there is none.
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        let file = dir.join("runs.db");
        if !file.is_file() {
            return Err(StoreError::NotFound);
        }
        Self::open_file(file)
    }

    fn open_file(path: PathBuf) -> Result<Self, StoreError> {
        let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        // First: another process may be opening (creating, migrating) the store at this moment.
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        schema::migrate(&mut conn).map_err(sqlite)?;
        Ok(Self { conn, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn corrupt(&self, what: &'static str, reason: impl ToString) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), what, reason: reason.to_string() }
    }

    /// Start recording a run: its row, `running` until [`RunStore::finish`], and the digest of
    /// each op's component.
    pub fn begin(&mut self, run: &RunStart<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sqlite)?;
        tx.execute(
            "INSERT INTO runs (id, job, job_file, job_digest, status, error, recorded_at_ms, duration_ms, outputs,
                               parent_run_id, reused, overrides, selection, job_model)
             VALUES (?1, ?2, ?3, ?4, 'running', NULL, ?5, 0, '{}', ?6, '[]', ?7, ?8, ?9)",
            params![
                run.run_id,
                run.job,
                run.job_file.display().to_string(),
                crate::runtime::digest(run.job_text.as_bytes()),
                now_ms(),
                run.parent_run_id,
                serde_json::to_string(run.overrides).unwrap_or_else(|_| "[]".into()),
                run.selection,
                run.job_model,
            ],
        )
        .map_err(sqlite)?;
        {
            let mut component = tx
                .prepare("INSERT INTO run_components (run_id, op, digest, config) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sqlite)?;
            for (op, digest) in run.components {
                let config = run.configs.iter().find(|(name, _)| name == op).map(|(_, c)| c.as_str());
                component.execute(params![run.run_id, op, digest, config]).map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// Record ended steps of a running run, all of them or none, in one transaction. `first_seq`
    /// numbers them in the order they ended; they are read back in report order (each step's
    /// `sort_key`), then that. `replacing`: a step may be recorded already (a resumed run
    /// settles again what the dead one had abandoned), and its row and records are replaced.
    ///
    /// The batch's step events are written in the same transaction, in order: a viewer that has
    /// read an ended step's event finds its row.
    pub(crate) fn append_steps(
        &mut self,
        run_id: &str,
        first_seq: i64,
        batch: &recorder::Batch,
        replacing: bool,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sqlite)?;
        {
            // A new run writes each step once: a plain INSERT. `OR REPLACE` (for a resumed run) makes
            // SQLite keep a statement journal for every row, in case the replace must be undone:
            // a tenth of the writer's time on a 10,000-clone run (perf).
            let mut step = tx.prepare_cached(if replacing { REPLACE_STEP } else { INSERT_STEP }).map_err(sqlite)?;
            let mut forget =
                tx.prepare_cached("DELETE FROM records WHERE run_id = ?1 AND step_key = ?2").map_err(sqlite)?;
            let mut record = tx
                .prepare_cached(
                    "INSERT INTO records (run_id, step_key, seq, output, mapping_key, metadata, value)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sqlite)?;
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO step_events (run_id, step_key, op, attempt, from_status, to_status, at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sqlite)?;
            for e in batch.events.iter().filter(|e| e.from_status.is_some() || e.to_status.is_some()) {
                event
                    .execute(params![run_id, e.step_key, e.op, e.attempt, e.from_status, e.to_status, e.at_ms])
                    .map_err(sqlite)?;
            }
            for (offset, timed) in batch.steps.iter().enumerate() {
                let ended = &*timed.step;
                let s = &ended.report;
                // Most steps have none of these: constants spare the serializer and the allocator
                // on the writer's hot path (the writer shares two cores with the workers).
                let attempts: Cow<'static, str> = if s.previous_attempts.is_empty() {
                    Cow::Borrowed("[]")
                } else {
                    Cow::Owned(serde_json::to_string(&s.previous_attempts).unwrap_or_else(|_| "[]".into()))
                };
                let log: Cow<'static, str> = if s.log.entries.is_empty() && s.log.truncated_bytes == 0 {
                    Cow::Borrowed(EMPTY_LOG)
                } else {
                    Cow::Owned(serde_json::to_string(&s.log).unwrap_or_else(|_| EMPTY_LOG.into()))
                };
                let values = values_object(&s.values);
                let output_metadata: Cow<'static, str> = if s.output_metadata.is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    let map: serde_json::Map<String, serde_json::Value> = s
                        .output_metadata
                        .iter()
                        .map(|(output, metadata)| (output.clone(), serde_json::Value::Object(metadata_json(metadata))))
                        .collect();
                    Cow::Owned(serde_json::Value::Object(map).to_string())
                };
                step.execute(params![
                    run_id,
                    first_seq + offset as i64,
                    s.key,
                    s.op,
                    s.mapping_key,
                    s.status.as_str(),
                    s.error,
                    s.attempts,
                    s.duration_ms,
                    attempts,
                    log,
                    values,
                    ended.reused,
                    ended.record_digest,
                    sort_key(&ended.sort_key),
                    ended.inputs_digest,
                    s.worker,
                    output_metadata,
                    timed.started_at_ms,
                    timed.ended_at_ms,
                ])
                .map_err(sqlite)?;
                if replacing {
                    forget.execute(params![run_id, s.key]).map_err(sqlite)?;
                }
                for (i, r) in s.records.iter().enumerate() {
                    let metadata: Cow<'static, str> = if r.metadata.is_empty() {
                        Cow::Borrowed("{}")
                    } else {
                        Cow::Owned(serde_json::Value::Object(metadata_json(&r.metadata)).to_string())
                    };
                    let value = r.value.as_ref().map(JsonText::as_str);
                    record
                        .execute(params![run_id, s.key, i as i64, r.output, r.mapping_key, metadata, value])
                        .map_err(sqlite)?;
                }
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// For a run being resumed: the steps its dead process had started and not ended stop
    /// running, as the event log counts them: back to the status their row records (a step
    /// settled again after an earlier resume), or to nothing.
    pub(crate) fn close_open_steps(&mut self, run_id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO step_events (run_id, step_key, op, attempt, from_status, to_status, at_ms)
                 SELECT e.run_id, e.step_key, e.op, e.attempt, 'running',
                        (SELECT s.status FROM steps s WHERE s.run_id = e.run_id AND s.key = e.step_key), ?2
                 FROM step_events e
                 WHERE e.run_id = ?1 AND e.to_status = 'running' AND NOT EXISTS
                     (SELECT 1 FROM step_events l WHERE l.run_id = e.run_id AND l.step_key = e.step_key AND l.seq > e.seq)
                 ORDER BY e.seq",
                params![run_id, at_ms],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// For a run being resumed: the status of each step it recorded that did not succeed or fail
    /// (those it settles again).
    pub(crate) fn settled_statuses(
        &self,
        run_id: &str,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut query = self
            .conn
            .prepare("SELECT key, status FROM steps WHERE run_id = ?1 AND reused = 0 AND status NOT IN ('success', 'failure')")
            .map_err(|e| self.sqlite(e))?;
        query
            .query_map(params![run_id], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// End a run whose steps are recorded: its status, outputs and time. `resumed`: the run was
    /// resumed, and keeps the list of steps it reused from its parent (the steps it took from
    /// before it was interrupted are its own).
    pub fn finish(&mut self, report: &RunReport, resumed: bool) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
        let outputs = serde_json::to_string(&report.outputs).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            what: "outputs",
            reason: e.to_string(),
        })?;
        let tx = self.conn.transaction().map_err(sqlite)?;
        let reused = if resumed {
            // What it took from its parent: before it was interrupted and since (the steps it
            // took from before the interruption are its own).
            let mut query = tx
                .prepare("SELECT key FROM steps WHERE run_id = ?1 AND reused = 1 ORDER BY sort_key, seq")
                .map_err(sqlite)?;
            let keys = query
                .query_map(params![report.run_id], |row| row.get::<_, String>(0))
                .map_err(sqlite)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sqlite)?;
            serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into())
        } else {
            serde_json::to_string(&report.reused).unwrap_or_else(|_| "[]".into())
        };
        tx.execute(
            "UPDATE runs SET status = ?2, error = ?3, duration_ms = ?4, outputs = ?5, reused = ?6 WHERE id = ?1",
            params![report.run_id, report.status.as_str(), report.error, report.duration_ms, outputs, reused],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// Hold the lock that says run `run_id` is running, for as long as the lock lives; an error
    /// if another process holds it. The operating system releases it when the process dies,
    /// however it dies: that is how `resume` tells an interrupted run from a running one.
    pub fn lock_run(&self, run_id: &str) -> Result<RunLock, StoreError> {
        let path = self.lock_path(run_id)?;
        let dir = self.lock_dir();
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let file = std::fs::File::create(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        // A viewer probing whether the run is live holds the lock for an instant: a few tries
        // tell that from another process running it.
        let mut tries = 0;
        let locked = loop {
            match file.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(30));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {
                // The pid, for `sandmap cancel`; the lock itself is what says the run is live.
                use std::io::Write;
                let mut file = file;
                let _ = writeln!(file, "{}", std::process::id());
                Ok(RunLock { file, path })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::StillRunning(run_id.to_owned())),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
        }
    }

    /// The process running run `run_id`, if one is (it holds the run's lock).
    pub fn running_pid(&self, run_id: &str) -> Option<u32> {
        if !self.is_running(run_id) {
            return None;
        }
        let path = self.lock_path(run_id).ok()?;
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Whether a live process is running run `run_id` (holds its lock).
    pub fn is_running(&self, run_id: &str) -> bool {
        let Ok(path) = self.lock_path(run_id) else { return false };
        let Ok(file) = std::fs::File::open(path) else { return false };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    fn lock_dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join("running")
    }

    /// `running/<id>.lock`, for a run id that is a UUID: an id read from an edited database
    /// must not name a file elsewhere.
    fn lock_path(&self, run_id: &str) -> Result<PathBuf, StoreError> {
        match uuid::Uuid::try_parse(run_id) {
            Ok(id) if id.hyphenated().to_string() == run_id => Ok(self.lock_dir().join(format!("{run_id}.lock"))),
            _ => Err(self.corrupt("run id", format!("{run_id:?} is not a UUID"))),
        }
    }

    /// The status of a stored run: a `running` run whose process died is `interrupted`.
    fn live_status(&self, id: &str, stored: &str) -> String {
        if stored == "running" && !self.is_running(id) { "interrupted".into() } else { stored.to_owned() }
    }

    /// Every step run `id` recorded as ended, the ones it reused from its parent included.
    pub fn ended_steps(&self, id: &str) -> Result<Vec<EndedStep>, StoreError> {
        self.steps(id, true)
    }

    /// Stored runs, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let limit = if filter.limit == 0 { i64::MAX } else { i64::try_from(filter.limit).unwrap_or(i64::MAX) };
        let mut query = self
            .conn
            .prepare(
                "SELECT r.id, r.job, r.job_file, r.status, r.recorded_at_ms, r.duration_ms,
                        (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.reused = 0),
                        (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.reused = 0 AND s.status = 'failure'),
                        r.parent_run_id
                 FROM runs r
                 WHERE (?1 IS NULL OR r.job = ?1) AND (?2 IS NULL OR r.status = ?2)
                       AND (?3 IS NULL OR r.recorded_at_ms < ?3)
                 ORDER BY r.recorded_at_ms DESC, r.id DESC",
            )
            .map_err(|e| self.sqlite(e))?;
        // Running and interrupted runs are both stored as `running`: which is which, only the
        // run lock tells.
        let stored_status = filter.status.as_deref().map(|s| if s == "interrupted" { "running" } else { s });
        let rows = query
            .query_map(params![filter.job, stored_status, filter.before], |row| {
                Ok(RunSummary {
                    run_id: row.get(0)?,
                    job: row.get(1)?,
                    job_file: row.get(2)?,
                    status: row.get(3)?,
                    recorded_at_ms: row.get(4)?,
                    duration_ms: row.get(5)?,
                    steps: row.get(6)?,
                    failed: row.get(7)?,
                    parent_run_id: row.get(8)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        let mut runs = Vec::new();
        for row in rows {
            let mut run = row.map_err(|e| self.sqlite(e))?;
            run.status = self.live_status(&run.run_id, &run.status);
            if filter.status.as_ref().is_none_or(|wanted| *wanted == run.status) {
                runs.push(run);
            }
            if runs.len() as i64 >= limit {
                break;
            }
        }
        Ok(runs)
    }

    /// The full id of the run `id_or_part` names: the whole id, a unique prefix, or a unique tail
    /// (the short form sandmap prints, [`crate::executor::short_run_id`]).
    pub fn resolve(&self, id_or_part: &str) -> Result<String, StoreError> {
        // Ids are hex and dashes: anything else names no run (and cannot act as a LIKE wildcard).
        let part = id_or_part.to_ascii_lowercase();
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NoSuchRun(id_or_part.to_owned()));
        }
        let (prefix, tail) = (format!("{part}%"), format!("%{part}"));
        let mut query = self
            .conn
            .prepare("SELECT id FROM runs WHERE id LIKE ?1 OR id LIKE ?2 LIMIT 2")
            .map_err(|e| self.sqlite(e))?;
        let ids: Vec<String> = query
            .query_map(params![prefix, tail], |row| row.get(0))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))?;
        match ids.as_slice() {
            [] => Err(StoreError::NoSuchRun(id_or_part.to_owned())),
            [one] => Ok(one.clone()),
            _ => {
                let count: i64 = self
                    .conn
                    .query_row(
                        "SELECT COUNT(*) FROM runs WHERE id LIKE ?1 OR id LIKE ?2",
                        params![prefix, tail],
                        |row| row.get(0),
                    )
                    .map_err(|e| self.sqlite(e))?;
                Err(StoreError::Ambiguous { prefix: id_or_part.to_owned(), count: usize::try_from(count).unwrap_or(2) })
            }
        }
    }

    /// Where run `id` came from: its job file (and digest), overrides and component digests.
    pub fn provenance(&self, id: &str) -> Result<Provenance, StoreError> {
        type Row = (String, String, String, Option<String>, Option<String>, Option<String>);
        let (job_file, job_digest, overrides, selection, job_model, parent_run_id): Row = self
            .conn
            .query_row(
                "SELECT job_file, job_digest, overrides, selection, job_model, parent_run_id FROM runs WHERE id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)),
            )
            .map_err(|e| self.sqlite(e))?;
        let mut query = self
            .conn
            .prepare("SELECT op, digest FROM run_components WHERE run_id = ?1 ORDER BY op")
            .map_err(|e| self.sqlite(e))?;
        let components = query
            .query_map(params![id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        Ok(Provenance {
            job_file: PathBuf::from(job_file),
            job_digest,
            overrides: serde_json::from_str(&overrides).map_err(|e| self.corrupt("override list", e))?,
            components,
            selection,
            // A model that does not parse is treated as absent: `resume` then compares the file's
            // digest, as for a run recorded before sandmap kept it.
            job_model: job_model.and_then(|text| serde_json::from_str(&text).ok()),
            parent_run_id,
        })
    }

    /// A stored run, read back as the report `sandmap run` printed.
    pub fn report(&self, id_or_prefix: &str) -> Result<RunReport<RecordedStatus>, StoreError> {
        let id = self.resolve(id_or_prefix)?;
        let head = self
            .conn
            .query_row(
                "SELECT job, status, error, duration_ms, outputs, parent_run_id, reused FROM runs WHERE id = ?1",
                params![id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, f64>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))?
            .ok_or_else(|| StoreError::NoSuchRun(id.clone()))?;
        let (job, status, error, duration_ms, outputs, parent_run_id, reused) = head;
        let reused: Vec<String> = serde_json::from_str(&reused).map_err(|e| self.corrupt("reused list", e))?;
        let outputs: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&outputs).map_err(|e| self.corrupt("outputs", e))?;
        let steps = self.steps(&id, false)?.into_iter().map(|ended| ended.report).collect();
        let status = self.live_status(&id, &status);
        Ok(RunReport {
            status: RecordedStatus::parse(&status).ok_or_else(|| self.corrupt("run status", &status))?,
            run_id: id,
            job,
            error,
            steps,
            outputs,
            duration_ms,
            parent_run_id,
            reused,
        })
    }

    /// The steps recorded for run `id`, in their recorded order; those reused from a parent run
    /// only if `with_reused`.
    fn steps(&self, id: &str, with_reused: bool) -> Result<Vec<EndedStep>, StoreError> {
        self.steps_where(id, "(?2 OR reused = 0)", vec![with_reused.into()])
    }

    /// Step `key` of run `id` and every step of the ops `ops` (what a step's detail reads its
    /// inputs from), without loading the rest of a large run.
    pub fn steps_around(&self, id: &str, key: &str, ops: &[String]) -> Result<Vec<EndedStep>, StoreError> {
        let mut steps = self.steps_where(id, "key = ?2", vec![key.to_owned().into()])?;
        for op in ops {
            steps.extend(self.steps_where(
                id,
                "op = ?2 AND key <> ?3",
                vec![op.clone().into(), key.to_owned().into()],
            )?);
        }
        Ok(steps)
    }

    /// The steps of run `id` that `condition` selects, over parameters `?2`… from `extra`.
    fn steps_where(
        &self,
        id: &str,
        condition: &str,
        extra: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<EndedStep>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(&format!(
                "SELECT key, op, mapping_key, status, error, attempts, duration_ms, previous_attempts, log, outputs,
                        record_digest, reused, inputs_digest, worker, output_metadata
                 FROM steps WHERE run_id = ?1 AND {condition} ORDER BY sort_key, seq"
            ))
            .map_err(|e| self.sqlite(e))?;
        let mut all: Vec<rusqlite::types::Value> = vec![id.to_owned().into()];
        all.extend(extra);
        let rows = query
            .query_map(rusqlite::params_from_iter(all), |row| {
                Ok((
                    (
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, u32>(5)?,
                    ),
                    (
                        row.get::<_, f64>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, String>(8)?,
                        row.get::<_, String>(9)?,
                        row.get::<_, Option<String>>(10)?,
                        row.get::<_, bool>(11)?,
                        row.get::<_, Option<String>>(12)?,
                        row.get::<_, Option<String>>(13)?,
                        row.get::<_, String>(14)?,
                    ),
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut steps = Vec::new();
        for row in rows {
            let (
                (key, op, mapping_key, status, error, attempts),
                (duration_ms, previous, log, values, record_digest, reused, inputs_digest, worker, output_metadata),
            ) = row.map_err(|e| self.sqlite(e))?;
            let output_metadata: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&output_metadata).map_err(|e| self.corrupt("output metadata", e))?;
            let output_metadata = output_metadata
                .into_iter()
                .map(|(output, entries)| Ok((output, self.metadata(entries)?)))
                .collect::<Result<_, StoreError>>()?;
            let report = StepReport {
                values: stored_values(&values).map_err(|e| self.corrupt("step outputs", e))?,
                records: self.records(id, &key)?,
                previous_attempts: serde_json::from_str(&previous).map_err(|e| self.corrupt("attempt list", e))?,
                log: serde_json::from_str::<StepLog>(&log)
                    .map(std::sync::Arc::new)
                    .map_err(|e| self.corrupt("step log", e))?,
                status: parse_step_status(&status).ok_or_else(|| self.corrupt("step status", &status))?,
                key,
                op,
                mapping_key,
                error,
                attempts,
                duration_ms,
                worker,
                output_metadata,
            };
            // The sort key only orders rows in the query above.
            steps.push(EndedStep { report, reused, record_digest, inputs_digest, sort_key: Vec::new() });
        }
        Ok(steps)
    }

    /// Metadata as stored: `{key: {type, value}}`, in the order it was attached.
    fn metadata(&self, stored: serde_json::Value) -> Result<Metadata, StoreError> {
        let serde_json::Value::Object(map) = stored else {
            return Err(self.corrupt("metadata", "not an object"));
        };
        map.into_iter()
            .map(|(k, v)| Ok((k, serde_json::from_value(v).map_err(|e| self.corrupt("metadata value", e))?)))
            .collect()
    }

    fn records(&self, run: &str, step: &str) -> Result<Vec<crate::executor::RecordReport>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT output, mapping_key, metadata, value FROM records WHERE run_id = ?1 AND step_key = ?2 ORDER BY seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(params![run, step], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (output, mapping_key, metadata, value) = row.map_err(|e| self.sqlite(e))?;
            let value = value.map(JsonText::parse_stored).transpose().map_err(|e| self.corrupt("record value", e))?;
            let metadata = serde_json::from_str(&metadata).map_err(|e| self.corrupt("record metadata", e))?;
            let metadata = self.metadata(metadata)?;
            out.push(crate::executor::RecordReport { output, mapping_key, metadata, value });
        }
        Ok(out)
    }
}

/// A step's plain outputs as stored (`{name: value}`, each value the text the op emitted), read
/// back with every value's text exactly as it was written: a re-execution compares the digest
/// of what a step receives with the one recorded, so a value must not come back re-serialized
/// (`1.0e2` as `100.0`, a large integer rounded).
fn stored_values(text: &str) -> Result<Vec<(String, JsonText)>, serde_json::Error> {
    struct Values;
    impl<'de> serde::de::Visitor<'de> for Values {
        type Value = Vec<(String, JsonText)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of output values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut values = Vec::new();
            while let Some((name, value)) = map.next_entry::<String, Box<serde_json::value::RawValue>>()? {
                let value = JsonText::parse_stored(value.get().to_owned()).map_err(serde::de::Error::custom)?;
                values.push((name, value));
            }
            Ok(values)
        }
    }
    let mut input = serde_json::Deserializer::from_str(text);
    let values = serde::Deserializer::deserialize_map(&mut input, Values)?;
    input.end()?;
    Ok(values)
}

/// The most levels of arrays and objects the store wraps around a value it keeps: a mapped
/// op's dynamic output in a run's outputs is `{op: {output: {clone key: {record key: value}}}}`
/// (4); a step's outputs are `{output: value}` (1); a record's JSON metadata is
/// `{name: {"type": "json", "value": value}}` (2).
const MAX_STORE_WRAPPING: usize = 4;

// Everything the host accepts, wrapped as the store keeps it, must read back with serde_json.
const _: () = assert!(crate::value::MAX_VALUE_DEPTH + MAX_STORE_WRAPPING <= crate::value::SERDE_JSON_MAX_DEPTH);

/// The row of an ended step (see `append_steps`).
macro_rules! step_row {
    ($verb:literal) => {
        concat!(
            $verb,
            " INTO steps (run_id, seq, key, op, mapping_key, status, error, attempts, duration_ms,
                          previous_attempts, log, outputs, reused, record_digest, sort_key, inputs_digest,
                          worker, output_metadata, started_at_ms, ended_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
        )
    };
}
const INSERT_STEP: &str = step_row!("INSERT");
const REPLACE_STEP: &str = step_row!("INSERT OR REPLACE");

/// How an empty step log is stored (as serde writes a default [`StepLog`]).
const EMPTY_LOG: &str = r#"{"entries":[],"truncated_bytes":0}"#;

/// A step's plain outputs as one JSON object, `{"name":value,…}`. The values are valid JSON text
/// already: joined, never re-parsed.
fn values_object(values: &[(String, JsonText)]) -> String {
    let mut object = String::from("{");
    for (i, (name, value)) in values.iter().enumerate() {
        if i > 0 {
            object.push(',');
        }
        object.push_str(&serde_json::Value::from(name.as_str()).to_string());
        object.push(':');
        object.push_str(value.as_str());
    }
    object.push('}');
    object
}

/// A step's place in report order as a BLOB that SQLite compares as the key compares: each
/// number big-endian. `None` (NULL, sorting first, then by `seq`) for a step without one.
fn sort_key(key: &[u32]) -> Option<Vec<u8>> {
    (!key.is_empty()).then(|| key.iter().flat_map(|n| n.to_be_bytes()).collect())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a recorded run came from.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The job file (canonical path).
    pub job_file: PathBuf,
    /// The sha256 of the job file's text when the run started.
    pub job_digest: String,
    /// The `--set` overrides the run was started with.
    pub overrides: Vec<String>,
    /// Each op's component digest.
    pub components: Vec<(String, String)>,
    /// For a re-execution: what it selected, as JSON (`session::Selection`).
    pub selection: Option<String>,
    /// The planned job it started from; `None` for a run recorded before sandmap kept it.
    pub job_model: Option<JobModel>,
    /// For a re-execution: the run it re-executes.
    pub parent_run_id: Option<String>,
}

/// What the store keeps of a run as it starts.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    /// The run's id.
    pub run_id: &'a str,
    /// The job's name.
    pub job: &'a str,
    /// The job file, by its canonical path (a re-execution or resume finds it from any folder).
    pub job_file: &'a Path,
    /// The job file's text, whose digest is kept (resume refuses a job file that changed).
    pub job_text: &'a str,
    /// Each op's component digest.
    pub components: &'a [(String, String)],
    /// Each op's effective config (JSON, defaults and overrides applied).
    pub configs: &'a [(String, String)],
    /// For a re-execution: the run it re-executes.
    pub parent_run_id: Option<&'a str>,
    /// The `--set` overrides the run was started with.
    pub overrides: &'a [String],
    /// For a re-execution: what it selected, as JSON (`session::Selection`).
    pub selection: Option<&'a str>,
    /// The planned job, as JSON ([`crate::job::JobModel`]): what `resume` compares.
    pub job_model: Option<&'a str>,
}

/// The lock a running run holds (a locked file under the store's `running/`); removed when
/// dropped.
#[derive(Debug)]
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove the file before the lock goes with it: a stale file would still read as
        // "not running" (unlocked), so a failure here only leaves clutter.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn parse_step_status(text: &str) -> Option<StepStatus> {
    [StepStatus::Success, StepStatus::Failure, StepStatus::Abandoned, StepStatus::Skipped, StepStatus::Cancelled]
        .into_iter()
        .find(|s| s.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_uuid_names_a_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(dir.path()).unwrap();
        let id = crate::executor::new_run_id();
        let lock = store.lock_run(&id).unwrap();
        assert!(store.is_running(&id));
        assert!(matches!(store.lock_run(&id), Err(StoreError::StillRunning(_))));
        drop(lock);
        assert!(!store.is_running(&id));
        for hostile in
            ["../../etc/x", "", "01a20f7a-fbb3-76e1-bf3d-4fb4981965ca/../x", "01A20F7A-FBB3-76E1-BF3D-4FB4981965CA"]
        {
            assert!(matches!(store.lock_run(hostile), Err(StoreError::Corrupt { what: "run id", .. })), "{hostile}");
            assert!(!store.is_running(hostile));
        }
        assert_eq!(std::fs::read_dir(dir.path().join("running")).unwrap().count(), 0);
    }

    #[test]
    fn step_outputs_read_back_as_the_texts_that_were_stored() {
        // As an op may write them (a Python op's json.dumps puts spaces in): not re-serialized.
        let stored = r#"{"a":1e2,"b":[1, 2],"big":123456789012345678901234567890,"s":"x\u0041"}"#;
        let values = stored_values(stored).unwrap();
        let texts: Vec<(&str, &str)> = values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            texts,
            [("a", "1e2"), ("b", "[1, 2]"), ("big", "123456789012345678901234567890"), ("s", r#""x\u0041""#)]
        );
        assert!(stored_values(r#"{"a":1} x"#).is_err());
        assert!(stored_values("[1]").is_err());
    }

    #[test]
    fn the_empty_log_constant_is_what_serde_writes() {
        assert_eq!(serde_json::to_string(&StepLog::default()).unwrap(), EMPTY_LOG);
    }

    #[test]
    fn plain_outputs_are_joined_into_one_object_with_names_escaped() {
        let value = |text: &str| JsonText::parse(text.to_owned()).unwrap();
        assert_eq!(values_object(&[]), "{}");
        let values = [("result".to_owned(), value(r#"{"a": [1, 2]}"#)), ("odd\"name".to_owned(), value("3"))];
        let object = values_object(&values);
        assert_eq!(object, r#"{"result":{"a": [1, 2]},"odd\"name":3}"#);
        let parsed: serde_json::Value = serde_json::from_str(&object).unwrap();
        assert_eq!(parsed["odd\"name"], 3);
    }
}
