//! The run store: every run recorded in SQLite (bundled), at `.sandmap/runs.db` by default.
//!
//! Writes are transactional and the database is in WAL mode, so a process killed mid-write
//! leaves the store as it was before that transaction. The schema is versioned from the start:
//! `schema_version` holds the migrations applied, and opening a store applies the missing ones.

mod schema;

pub use schema::VERSION as SCHEMA_VERSION;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use crate::executor::{RunReport, RunStatus, StepReport, StepStatus};
use crate::runtime::StepLog;
use crate::value::JsonText;

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
    #[error("\"{prefix}\" matches {count} runs; give more of the run id")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many runs match.
        count: usize,
    },
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

/// A summary line of a stored run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The job file.
    pub job_file: String,
    /// `success`, `success_with_failures` or `failure`.
    pub status: String,
    /// Unix time the run was recorded, in milliseconds.
    pub recorded_at_ms: i64,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// Steps in the run.
    pub steps: i64,
    /// Steps that failed.
    pub failed: i64,
}

/// Filters for [`RunStore::runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this job.
    pub job: Option<String>,
    /// Only runs with this status.
    pub status: Option<String>,
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
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sqlite)?;
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

    /// Record a finished run, all of it or nothing, in one transaction.
    pub fn record(
        &mut self,
        job_file: &Path,
        job_text: &str,
        components: &[(String, String)],
        report: &RunReport,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sqlite)?;
        let recorded_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let outputs = serde_json::to_string(&report.outputs).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            what: "outputs",
            reason: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO runs (id, job, job_file, job_digest, status, error, recorded_at_ms, duration_ms, outputs,
                               parent_run_id, reused)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                report.run_id,
                report.job,
                job_file.display().to_string(),
                crate::runtime::digest(job_text.as_bytes()),
                status_str(report.status),
                report.error,
                recorded_at,
                report.duration_ms,
                outputs,
                report.parent_run_id,
                serde_json::to_string(&report.reused).unwrap_or_else(|_| "[]".into()),
            ],
        )
        .map_err(sqlite)?;
        {
            let mut component =
                tx.prepare("INSERT INTO run_components (run_id, op, digest) VALUES (?1, ?2, ?3)").map_err(sqlite)?;
            for (op, digest) in components {
                component.execute(params![report.run_id, op, digest]).map_err(sqlite)?;
            }
            let mut step = tx
                .prepare(
                    "INSERT INTO steps (run_id, seq, key, op, mapping_key, status, error, attempts, duration_ms,
                                        previous_attempts, log, outputs)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(sqlite)?;
            let mut record = tx
                .prepare(
                    "INSERT INTO records (run_id, step_key, seq, output, mapping_key, metadata, value)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sqlite)?;
            for (seq, s) in report.steps.iter().enumerate() {
                let attempts = serde_json::to_string(&s.previous_attempts).unwrap_or_else(|_| "[]".into());
                let log = serde_json::to_string(&s.log).unwrap_or_else(|_| "{}".into());
                // Values are valid JSON text already: joined, never re-parsed.
                let values: Vec<String> = s
                    .values
                    .iter()
                    .map(|(name, value)| format!("{}:{}", serde_json::Value::from(name.as_str()), value))
                    .collect();
                let values = format!("{{{}}}", values.join(","));
                step.execute(params![
                    report.run_id,
                    seq as i64,
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
                ])
                .map_err(sqlite)?;
                for (i, r) in s.records.iter().enumerate() {
                    let metadata =
                        serde_json::to_value(r).map(|v| v["metadata"].to_string()).unwrap_or_else(|_| "{}".into());
                    let value = r.value.as_ref().map(|v| v.as_str().to_owned());
                    record
                        .execute(params![report.run_id, s.key, i as i64, r.output, r.mapping_key, metadata, value])
                        .map_err(sqlite)?;
                }
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// Stored runs, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, StoreError> {
        let limit = if filter.limit == 0 { i64::MAX } else { i64::try_from(filter.limit).unwrap_or(i64::MAX) };
        let mut query = self
            .conn
            .prepare(
                "SELECT r.id, r.job, r.job_file, r.status, r.recorded_at_ms, r.duration_ms,
                        (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id),
                        (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id AND s.status = 'failure')
                 FROM runs r
                 WHERE (?1 IS NULL OR r.job = ?1) AND (?2 IS NULL OR r.status = ?2)
                 ORDER BY r.recorded_at_ms DESC, r.id DESC LIMIT ?3",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(params![filter.job, filter.status, limit], |row| {
                Ok(RunSummary {
                    run_id: row.get(0)?,
                    job: row.get(1)?,
                    job_file: row.get(2)?,
                    status: row.get(3)?,
                    recorded_at_ms: row.get(4)?,
                    duration_ms: row.get(5)?,
                    steps: row.get(6)?,
                    failed: row.get(7)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sqlite(e))
    }

    /// The full id of the run `id_or_prefix` names (a unique prefix is enough).
    pub fn resolve(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let pattern = format!("{}%", id_or_prefix.replace(['%', '_'], ""));
        let mut query =
            self.conn.prepare("SELECT id FROM runs WHERE id LIKE ?1 LIMIT 2").map_err(|e| self.sqlite(e))?;
        let ids: Vec<String> = query
            .query_map(params![pattern], |row| row.get(0))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))?;
        match ids.as_slice() {
            [] => Err(StoreError::NoSuchRun(id_or_prefix.to_owned())),
            [one] => Ok(one.clone()),
            _ => {
                let count: i64 = self
                    .conn
                    .query_row("SELECT COUNT(*) FROM runs WHERE id LIKE ?1", params![pattern], |row| row.get(0))
                    .map_err(|e| self.sqlite(e))?;
                Err(StoreError::Ambiguous {
                    prefix: id_or_prefix.to_owned(),
                    count: usize::try_from(count).unwrap_or(2),
                })
            }
        }
    }

    /// The job file and the component digest of each op, as recorded for run `id`.
    pub fn provenance(&self, id: &str) -> Result<(PathBuf, Vec<(String, String)>), StoreError> {
        let job_file: String = self
            .conn
            .query_row("SELECT job_file FROM runs WHERE id = ?1", params![id], |row| row.get(0))
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
        Ok((PathBuf::from(job_file), components))
    }

    /// A stored run, read back as the report `sandmap run` printed.
    pub fn report(&self, id_or_prefix: &str) -> Result<RunReport, StoreError> {
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
        let mut query = self
            .conn
            .prepare(
                "SELECT key, op, mapping_key, status, error, attempts, duration_ms, previous_attempts, log, outputs
                 FROM steps WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(params![id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, u32>(5)?,
                    row.get::<_, f64>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, String>(9)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut steps = Vec::new();
        for row in rows {
            let (key, op, mapping_key, status, error, attempts, duration_ms, previous, log, values) =
                row.map_err(|e| self.sqlite(e))?;
            let values: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&values).map_err(|e| self.corrupt("step outputs", e))?;
            steps.push(StepReport {
                values: values.into_iter().map(|(name, value)| (name, JsonText::from_value(&value))).collect(),
                records: self.records(&id, &key)?,
                previous_attempts: serde_json::from_str(&previous).map_err(|e| self.corrupt("attempt list", e))?,
                log: serde_json::from_str::<StepLog>(&log).map_err(|e| self.corrupt("step log", e))?,
                status: parse_step_status(&status).ok_or_else(|| self.corrupt("step status", &status))?,
                key,
                op,
                mapping_key,
                error,
                attempts,
                duration_ms,
            });
        }
        Ok(RunReport {
            run_id: id,
            job,
            status: parse_run_status(&status).ok_or_else(|| self.corrupt("run status", &status))?,
            error,
            steps,
            outputs,
            duration_ms,
            parent_run_id,
            reused,
        })
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
            let value = value.map(JsonText::parse).transpose().map_err(|e| self.corrupt("record value", e))?;
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&metadata).map_err(|e| self.corrupt("record metadata", e))?;
            let metadata = map
                .into_iter()
                .map(|(k, v)| Ok((k, serde_json::from_value(v).map_err(|e| self.corrupt("metadata value", e))?)))
                .collect::<Result<_, StoreError>>()?;
            out.push(crate::executor::RecordReport { output, mapping_key, metadata, value });
        }
        Ok(out)
    }
}

fn status_str(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Success => "success",
        RunStatus::SuccessWithFailures => "success_with_failures",
        RunStatus::Failure => "failure",
    }
}

fn parse_run_status(text: &str) -> Option<RunStatus> {
    [RunStatus::Success, RunStatus::SuccessWithFailures, RunStatus::Failure]
        .into_iter()
        .find(|s| status_str(*s) == text)
}

fn parse_step_status(text: &str) -> Option<StepStatus> {
    [StepStatus::Success, StepStatus::Failure, StepStatus::Abandoned, StepStatus::Skipped, StepStatus::Cancelled]
        .into_iter()
        .find(|s| s.as_str() == text)
}
