//! What a viewer reads of the store without loading a whole run: a run's head, each op's count
//! of steps per status as of an event number, the events since a number (folded into count
//! changes), one page of an op's clones, and each op's time span with a histogram of its clone
//! durations. Every query is bounded by its page or by the number of ops, so a run of 100,000
//! clones costs a viewer what a run of ten does, but for the scans SQLite does itself.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{RunStore, StoreError};
use crate::job::JobModel;

/// A run as a viewer heads its page: everything but its steps.
#[derive(Debug, Clone, Serialize)]
pub struct RunHead {
    /// The full run id.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The job file it ran from.
    pub job_file: String,
    /// Its status as a word (`running` and `interrupted` told apart by the run lock).
    pub status: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Unix time it started, in milliseconds.
    pub recorded_at_ms: i64,
    /// Its wall time, in milliseconds (0 until it ends).
    pub duration_ms: f64,
    /// The outputs of the ops nothing consumes.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// For a re-execution: the run it re-executes.
    pub parent_run_id: Option<String>,
    /// The re-executions of this run, newest first.
    pub children: Vec<String>,
    /// The `--set` overrides it started with.
    pub overrides: Vec<String>,
    /// For a re-execution: what it selected, as recorded (JSON).
    pub selection: Option<String>,
    /// Each op's component digest and effective config (JSON), in plan order when known.
    pub components: Vec<ComponentRow>,
    /// The planned job, when the run recorded it.
    #[serde(skip)]
    pub job_model: Option<JobModel>,
}

/// One op's component and config in a run.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentRow {
    /// The op.
    pub op: String,
    /// Its component's sha256.
    pub digest: String,
    /// Its effective config (JSON text), when recorded.
    pub config: Option<String>,
}

/// How a run stands, as a follower checks it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunState {
    /// Its status as a word.
    pub status: String,
    /// Its wall time, in milliseconds (0 until it ends).
    pub duration_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
}

/// Each op's number of steps per status, as of event `seq`: `{op: {status: count}}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCounts {
    /// The last event counted.
    pub seq: i64,
    /// Counts by op, then status; zero counts are left out.
    pub ops: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The events of a run after some number, folded: how each op's counts changed, and the first
/// steps that changed (a page's rows to update).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventBatch {
    /// The last event folded in (the number to continue after).
    pub seq: i64,
    /// Count changes by op, then status (negative for steps that left a status).
    pub ops: BTreeMap<String, BTreeMap<String, i64>>,
    /// The first steps that changed, in event order: (key, op, status now).
    pub steps: Vec<(String, String, Option<String>)>,
    /// More steps changed than `steps` lists.
    pub more: bool,
}

impl EventBatch {
    /// Whether no event came.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.steps.is_empty()
    }
}

/// How a page of clones is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOrder {
    /// As the records were emitted (report order).
    #[default]
    Emission,
    /// Longest first.
    Duration,
    /// Most attempts first.
    Attempts,
    /// Failed steps first, then emission order.
    FailedFirst,
}

impl StepOrder {
    /// Every order, for parsing and listing.
    pub const ALL: [Self; 4] = [Self::Emission, Self::Duration, Self::Attempts, Self::FailedFirst];

    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Emission => "emission",
            Self::Duration => "duration",
            Self::Attempts => "attempts",
            Self::FailedFirst => "failed_first",
        }
    }

    /// The order its word names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Emission => "sort_key, seq",
            Self::Duration => "duration_ms DESC, sort_key, seq",
            Self::Attempts => "attempts DESC, sort_key, seq",
            Self::FailedFirst => "status <> 'failure', sort_key, seq",
        }
    }
}

/// Which of an op's steps a page lists.
#[derive(Debug, Clone, Default)]
pub struct StepQuery {
    /// The op.
    pub op: String,
    /// Only steps with this status (`running`: those started and not ended).
    pub status: Option<String>,
    /// Only clones whose mapping key starts with this.
    pub prefix: Option<String>,
    /// The order.
    pub order: StepOrder,
    /// Rows to pass over (the `next` of the page before).
    pub offset: usize,
    /// Rows at most.
    pub limit: usize,
}

/// One step in a page.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Its key.
    pub key: String,
    /// Its innermost mapping key.
    pub mapping_key: Option<String>,
    /// Its status.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time of its last attempt, in milliseconds (0 while it runs).
    pub duration_ms: f64,
    /// When its first attempt started (Unix ms), if it ran in this run.
    pub started_at_ms: Option<i64>,
    /// When it ended (Unix ms), if it ran in this run.
    pub ended_at_ms: Option<i64>,
    /// Where its last attempt ran.
    pub worker: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Taken from the parent run.
    pub reused: bool,
}

/// One page of an op's steps.
#[derive(Debug, Clone, Serialize)]
pub struct StepPage {
    /// The rows.
    pub rows: Vec<StepRow>,
    /// Steps matching the query in all.
    pub total: usize,
    /// The offset of the next page, if there is one.
    pub next: Option<usize>,
}

/// One op's place on a run's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct OpSpan {
    /// The op.
    pub op: String,
    /// When its first step started (Unix ms).
    pub first_start_ms: Option<i64>,
    /// When its last step ended (Unix ms).
    pub last_end_ms: Option<i64>,
    /// Steps that ran in this run.
    pub steps: usize,
    /// The shortest step, in milliseconds.
    pub min_ms: f64,
    /// The longest step, in milliseconds.
    pub max_ms: f64,
    /// Steps per duration bin: [`HISTOGRAM_BINS`] equal bins from `min_ms` to `max_ms`.
    pub histogram: Vec<usize>,
}

/// Bins of an op's duration histogram.
pub const HISTOGRAM_BINS: usize = 20;

/// The most steps an [`EventBatch`] lists one by one.
const BATCH_STEPS: usize = 100;

/// The largest page a viewer may ask for.
pub const MAX_PAGE: usize = 200;

/// Where the keys that start with `prefix` end: keys compare as bytes, so every key with the
/// prefix sorts from the prefix to the prefix followed by the largest character.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

fn fold(
    ops: &mut BTreeMap<String, BTreeMap<String, i64>>,
    op: String,
    from: Option<String>,
    to: Option<String>,
    n: i64,
) {
    let counts = ops.entry(op).or_default();
    if let Some(to) = to {
        *counts.entry(to).or_default() += n;
    }
    if let Some(from) = from {
        *counts.entry(from).or_default() -= n;
    }
}

fn without_zeros(mut ops: BTreeMap<String, BTreeMap<String, i64>>) -> BTreeMap<String, BTreeMap<String, i64>> {
    for counts in ops.values_mut() {
        counts.retain(|_, n| *n != 0);
    }
    ops.retain(|_, counts| !counts.is_empty());
    ops
}

impl RunStore {
    /// SQLite's `data_version`: it changes when another connection commits, so a follower can
    /// poll it (cheap) and query only when something was written.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA data_version", [], |row| row.get(0)).map_err(|e| self.sqlite(e))
    }

    /// The number of the store's last event (0 for none); event numbers grow across the store.
    pub fn last_event(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM step_events", [], |row| row.get(0))
            .map_err(|e| self.sqlite(e))
    }

    /// Run `id`'s head: everything but its steps.
    pub fn run_head(&self, id: &str) -> Result<RunHead, StoreError> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            i64,
            f64,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT job, job_file, status, error, recorded_at_ms, duration_ms, outputs, parent_run_id, overrides,
                        selection, job_model
                 FROM runs WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        let (
            job,
            job_file,
            status,
            error,
            recorded_at_ms,
            duration_ms,
            outputs,
            parent_run_id,
            overrides,
            selection,
            job_model,
        ) = row.ok_or_else(|| StoreError::NoSuchRun(id.to_owned()))?;
        let children = self.children(id)?;
        let mut query = self
            .conn
            .prepare("SELECT op, digest, config FROM run_components WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.sqlite(e))?;
        let components = query
            .query_map(params![id], |r| Ok(ComponentRow { op: r.get(0)?, digest: r.get(1)?, config: r.get(2)? }))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        Ok(RunHead {
            status: self.live_status(id, &status),
            run_id: id.to_owned(),
            job,
            job_file,
            error,
            recorded_at_ms,
            duration_ms,
            outputs: serde_json::from_str(&outputs).map_err(|e| self.corrupt("outputs", e))?,
            parent_run_id,
            children,
            overrides: serde_json::from_str(&overrides).map_err(|e| self.corrupt("override list", e))?,
            selection,
            components,
            // As `provenance` reads it: a model that does not parse is treated as absent.
            job_model: job_model.and_then(|text| serde_json::from_str(&text).ok()),
        })
    }

    /// The re-executions of run `id`, newest first.
    pub fn children(&self, id: &str) -> Result<Vec<String>, StoreError> {
        self.strings("SELECT id FROM runs WHERE parent_run_id = ?1 ORDER BY recorded_at_ms DESC", id)
    }

    /// Run `id`'s status (live), wall time and error: what a follower checks each time.
    pub fn run_state(&self, id: &str) -> Result<RunState, StoreError> {
        let (status, duration_ms, error): (String, f64, Option<String>) = self
            .conn
            .query_row("SELECT status, duration_ms, error FROM runs WHERE id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(|e| self.sqlite(e))?
            .ok_or_else(|| StoreError::NoSuchRun(id.to_owned()))?;
        Ok(RunState { status: self.live_status(id, &status), duration_ms, error })
    }

    /// When step `key` of run `id` first started and when it ended (Unix ms), if it ran here.
    pub fn step_times(&self, id: &str, key: &str) -> Result<(Option<i64>, Option<i64>), StoreError> {
        self.conn
            .query_row(
                "SELECT started_at_ms, ended_at_ms FROM steps WHERE run_id = ?1 AND key = ?2",
                params![id, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.sqlite(e))
    }

    /// The distinct job names in the store, sorted.
    pub fn job_names(&self) -> Result<Vec<String>, StoreError> {
        let mut query =
            self.conn.prepare_cached("SELECT DISTINCT job FROM runs ORDER BY job").map_err(|e| self.sqlite(e))?;
        query
            .query_map([], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))
    }

    fn strings(&self, sql: &str, id: &str) -> Result<Vec<String>, StoreError> {
        let mut query = self.conn.prepare_cached(sql).map_err(|e| self.sqlite(e))?;
        query
            .query_map(params![id], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Run `id`'s steps per op and status, as of its latest event.
    pub fn op_counts(&self, id: &str) -> Result<OpCounts, StoreError> {
        // One read transaction: the counts and the number they stand at are of one moment.
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sqlite(e))?;
        let seq: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM step_events WHERE run_id = ?1", params![id], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        let batch = self.fold_events(id, 0, seq)?;
        drop(tx);
        Ok(OpCounts { seq, ops: batch.ops })
    }

    /// Run `id`'s events after number `after`, folded (up to its latest event).
    pub fn events_after(&self, id: &str, after: i64) -> Result<EventBatch, StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.sqlite(e))?;
        let last: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM step_events WHERE run_id = ?1", params![id], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        if last <= after {
            return Ok(EventBatch { seq: after, ..EventBatch::default() });
        }
        let mut batch = self.fold_events(id, after, last)?;
        let mut query = tx
            .prepare_cached(
                "SELECT step_key, op, to_status FROM step_events WHERE run_id = ?1 AND seq > ?2 AND seq <= ?3
                 ORDER BY seq LIMIT ?4",
            )
            .map_err(|e| self.sqlite(e))?;
        let steps = query
            .query_map(params![id, after, last, BATCH_STEPS as i64 + 1], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        batch.more = steps.len() > BATCH_STEPS;
        batch.steps = steps.into_iter().take(BATCH_STEPS).collect();
        Ok(batch)
    }

    /// The count changes of run `id`'s events in `(after, upto]`.
    fn fold_events(&self, id: &str, after: i64, upto: i64) -> Result<EventBatch, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT op, from_status, to_status, COUNT(*) FROM step_events
                 WHERE run_id = ?1 AND seq > ?2 AND seq <= ?3 GROUP BY op, from_status, to_status",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(params![id, after, upto], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?, r.get(3)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut ops = BTreeMap::new();
        for row in rows {
            let (op, from, to, n) = row.map_err(|e| self.sqlite(e))?;
            fold(&mut ops, op, from, to, n);
        }
        Ok(EventBatch { seq: upto, ops: without_zeros(ops), ..EventBatch::default() })
    }

    /// One page of run `id`'s steps of an op.
    pub fn step_page(&self, id: &str, q: &StepQuery) -> Result<StepPage, StoreError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        if q.status.as_deref() == Some("running") {
            return self.running_page(id, q, limit);
        }
        // Only the filters given, so that SQLite can pick an index for them (a statement with
        // `?x IS NULL OR …` is planned for both cases and narrows by neither).
        let mut filter = String::from("run_id = ?1 AND op = ?2");
        let mut params: Vec<rusqlite::types::Value> = vec![id.to_owned().into(), q.op.clone().into()];
        if let Some(status) = &q.status {
            params.push(status.clone().into());
            filter.push_str(&format!(" AND status = ?{}", params.len()));
        }
        if let Some(prefix) = &q.prefix {
            params.push(prefix.clone().into());
            params.push(prefix_end(prefix).into());
            filter.push_str(&format!(" AND mapping_key >= ?{} AND mapping_key < ?{}", params.len() - 1, params.len()));
        }
        let total: i64 = self
            .conn
            .query_row(
                &format!("SELECT COUNT(*) FROM steps WHERE {filter}"),
                rusqlite::params_from_iter(params.iter()),
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))?;
        let sql = format!(
            "SELECT key, mapping_key, status, attempts, duration_ms, started_at_ms, ended_at_ms, worker, error, reused
             FROM steps WHERE {filter} ORDER BY {} LIMIT {limit} OFFSET {}",
            q.order.sql(),
            i64::try_from(q.offset).unwrap_or(i64::MAX)
        );
        let mut query = self.conn.prepare_cached(&sql).map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                Ok(StepRow {
                    key: r.get(0)?,
                    mapping_key: r.get(1)?,
                    status: r.get(2)?,
                    attempts: r.get(3)?,
                    duration_ms: r.get(4)?,
                    started_at_ms: r.get(5)?,
                    ended_at_ms: r.get(6)?,
                    worker: r.get(7)?,
                    error: r.get(8)?,
                    reused: r.get(9)?,
                })
            })
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        let total = usize::try_from(total).unwrap_or(0);
        let shown = q.offset.saturating_add(rows.len());
        let next = (shown < total && !rows.is_empty()).then_some(shown);
        Ok(StepPage { rows, total, next })
    }

    /// The steps of an op started and not ended (their last event says `running`).
    fn running_page(&self, id: &str, q: &StepQuery, limit: usize) -> Result<StepPage, StoreError> {
        let live = self.is_running(id);
        let upper = q.prefix.as_deref().map(prefix_end);
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT e.step_key, e.attempt, (SELECT MIN(f.at_ms) FROM step_events f
                                                 WHERE f.run_id = e.run_id AND f.step_key = e.step_key
                                                   AND f.to_status = 'running')
                 FROM step_events e
                 WHERE e.run_id = ?1 AND e.op = ?2 AND e.to_status = 'running'
                   AND NOT EXISTS (SELECT 1 FROM step_events l
                                   WHERE l.run_id = e.run_id AND l.step_key = e.step_key AND l.seq > e.seq)
                 ORDER BY e.seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = query
            .query_map(params![id, q.op], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, Option<i64>>(2)?))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut matching = Vec::new();
        for row in rows {
            let (key, attempt, started) = row.map_err(|e| self.sqlite(e))?;
            let mapping_key = crate::keys::key_path(&key, &q.op).and_then(|path| path.last().map(|k| (*k).to_owned()));
            if let (Some(prefix), Some(upper)) = (&q.prefix, &upper) {
                let k = mapping_key.as_deref().unwrap_or("");
                if !(k >= prefix.as_str() && k < upper.as_str()) {
                    continue;
                }
            }
            matching.push(StepRow {
                key,
                mapping_key,
                // A step its dead process was running is running no more.
                status: if live { "running" } else { "interrupted" }.into(),
                attempts: attempt,
                duration_ms: 0.0,
                started_at_ms: started,
                ended_at_ms: None,
                worker: None,
                error: None,
                reused: false,
            });
        }
        let total = matching.len();
        let rows: Vec<StepRow> = matching.into_iter().skip(q.offset).take(limit).collect();
        let shown = q.offset.saturating_add(rows.len());
        let next = (shown < total && !rows.is_empty()).then_some(shown);
        Ok(StepPage { rows, total, next })
    }

    /// When each attempt of step `key` of run `id` started (Unix ms), in attempt order.
    pub fn attempt_starts(&self, id: &str, key: &str) -> Result<Vec<(u32, Option<i64>)>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT attempt, at_ms FROM step_events WHERE run_id = ?1 AND step_key = ?2 AND to_status = 'running'
                 ORDER BY seq",
            )
            .map_err(|e| self.sqlite(e))?;
        query
            .query_map(params![id, key], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.sqlite(e))
    }

    /// Each op's time span and duration histogram, for the steps that ran in run `id`.
    pub fn timeline(&self, id: &str) -> Result<Vec<OpSpan>, StoreError> {
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT op, MIN(started_at_ms), MAX(ended_at_ms), COUNT(*), MIN(duration_ms), MAX(duration_ms)
                 FROM steps WHERE run_id = ?1 AND reused = 0 AND ended_at_ms IS NOT NULL
                 GROUP BY op ORDER BY MIN(sort_key)",
            )
            .map_err(|e| self.sqlite(e))?;
        let spans = query
            .query_map(params![id], |r| {
                Ok(OpSpan {
                    op: r.get(0)?,
                    first_start_ms: r.get(1)?,
                    last_end_ms: r.get(2)?,
                    steps: r.get::<_, i64>(3).map(|n| usize::try_from(n).unwrap_or(0))?,
                    min_ms: r.get(4)?,
                    max_ms: r.get(5)?,
                    histogram: vec![0; HISTOGRAM_BINS],
                })
            })
            .map_err(|e| self.sqlite(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sqlite(e))?;
        let mut bins = self
            .conn
            .prepare_cached(
                "SELECT MIN(CAST((duration_ms - ?3) * ?5 / ?4 AS INTEGER), ?5 - 1), COUNT(*)
                 FROM steps WHERE run_id = ?1 AND op = ?2 AND reused = 0 AND ended_at_ms IS NOT NULL
                 GROUP BY 1",
            )
            .map_err(|e| self.sqlite(e))?;
        let mut out = Vec::with_capacity(spans.len());
        for mut span in spans {
            let width = (span.max_ms - span.min_ms).max(f64::MIN_POSITIVE);
            let rows = bins
                .query_map(params![id, span.op, span.min_ms, width, HISTOGRAM_BINS as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(|e| self.sqlite(e))?;
            for row in rows {
                let (bin, n) = row.map_err(|e| self.sqlite(e))?;
                if let Some(slot) = usize::try_from(bin).ok().and_then(|b| span.histogram.get_mut(b)) {
                    *slot += usize::try_from(n).unwrap_or(0);
                }
            }
            out.push(span);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_moves_a_step_from_one_status_to_the_next() {
        let mut ops = BTreeMap::new();
        fold(&mut ops, "a".into(), None, Some("running".into()), 3);
        fold(&mut ops, "a".into(), Some("running".into()), Some("success".into()), 2);
        fold(&mut ops, "a".into(), Some("running".into()), None, 1);
        fold(&mut ops, "b".into(), None, Some("skipped".into()), 1);
        let ops = without_zeros(ops);
        assert_eq!(serde_json::to_value(&ops).unwrap(), serde_json::json!({"a": {"success": 2}, "b": {"skipped": 1}}));
    }
}
