//! Pruning the run store: runs that ended before a cutoff are deleted (with their steps, records
//! and components), then the database is vacuumed. A run that is still running is never
//! deleted, nor is the parent (at any depth) of a run that stays: a re-execution's lineage stays
//! whole.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::params;

use super::{RunStore, StoreError};

/// What to prune.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    /// Runs recorded before this Unix time (milliseconds) are candidates.
    pub before_ms: i64,
    /// Keep runs that failed, were cancelled or were interrupted (they may be re-executed or
    /// resumed).
    pub keep_failed: bool,
    /// Only say what would go.
    pub dry_run: bool,
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Runs deleted.
    pub runs: usize,
    /// Their steps.
    pub steps: usize,
    /// Old enough, but kept as the parent of a run that stays.
    pub kept_as_parents: usize,
    /// Bytes of the database (and its write-ahead log) before.
    pub bytes_before: u64,
    /// And after.
    pub bytes_after: u64,
}

/// How many parents `id` has above it.
fn depth<'a>(parents: &HashMap<&'a str, &'a str>, mut id: &'a str) -> usize {
    let mut n = 0;
    // Bounded: an edited database could hold a cycle.
    while let Some(&parent) = parents.get(id)
        && n <= parents.len()
    {
        n += 1;
        id = parent;
    }
    n
}

fn store_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path.to_owned(), wal].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

impl RunStore {
    /// Delete the runs `policy` selects, then vacuum.
    pub fn gc(&mut self, policy: GcPolicy) -> Result<GcReport, StoreError> {
        let bytes_before = store_bytes(&self.path);
        let all: Vec<(String, Option<String>, String, i64)> = {
            let mut query = self
                .conn
                .prepare("SELECT id, parent_run_id, status, recorded_at_ms FROM runs")
                .map_err(|e| self.sqlite(e))?;
            let rows = query
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                .map_err(|e| self.sqlite(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))?
        };
        let parents: HashMap<&str, &str> =
            all.iter().filter_map(|(id, parent, _, _)| Some((id.as_str(), parent.as_deref()?))).collect();
        let mut doomed: HashSet<&str> = all
            .iter()
            .filter(|(id, _, status, recorded)| {
                let status = self.live_status(id, status);
                let kept_for_failure =
                    policy.keep_failed && matches!(status.as_str(), "failure" | "cancelled" | "interrupted");
                *recorded < policy.before_ms && status != "running" && !kept_for_failure
            })
            .map(|(id, ..)| id.as_str())
            .collect();
        let candidates = doomed.len();
        for (id, ..) in &all {
            if doomed.contains(id.as_str()) {
                continue;
            }
            let mut at = id.as_str();
            for _ in 0..=parents.len() {
                let Some(&parent) = parents.get(at) else { break };
                doomed.remove(parent);
                at = parent;
            }
        }
        let kept_as_parents = candidates - doomed.len();
        let mut steps = 0usize;
        for id in &doomed {
            let count: i64 = self
                .conn
                .query_row("SELECT COUNT(*) FROM steps WHERE run_id = ?1 AND reused = 0", params![id], |r| r.get(0))
                .map_err(|e| self.sqlite(e))?;
            steps += usize::try_from(count).unwrap_or(0);
        }
        if !policy.dry_run && !doomed.is_empty() {
            let path = self.path.clone();
            let sqlite = |source| StoreError::Sqlite { path: path.clone(), source };
            // Deepest first: every child of a doomed run is doomed too (a kept run keeps its
            // parents), and a run row goes only after the rows that name it as their parent.
            let mut order: Vec<&str> = doomed.iter().copied().collect();
            order.sort_by_key(|id| std::cmp::Reverse(depth(&parents, id)));
            let tx = self.conn.transaction().map_err(sqlite)?;
            for id in &order {
                for statement in [
                    "DELETE FROM records WHERE run_id = ?1",
                    "DELETE FROM step_events WHERE run_id = ?1",
                    "DELETE FROM steps WHERE run_id = ?1",
                    "DELETE FROM run_components WHERE run_id = ?1",
                    "DELETE FROM runs WHERE id = ?1",
                ] {
                    tx.execute(statement, params![id]).map_err(sqlite)?;
                }
            }
            tx.commit().map_err(sqlite)?;
            self.conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);").map_err(sqlite)?;
        }
        Ok(GcReport { runs: doomed.len(), steps, kept_as_parents, bytes_before, bytes_after: store_bytes(&self.path) })
    }
}
