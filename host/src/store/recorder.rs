//! Recording a run while it runs: each step is written the moment it ends, by a thread of its
//! own, so that a host killed mid-run leaves every ended step in the store (for `resume`) and
//! the scheduler never waits on the disk.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{RunLock, RunStart, RunStore, StoreError};
use crate::executor::{EndedStep, RunObserver, RunReport};

/// Steps written per transaction at most: a commit per step would cost a WAL frame each, and a
/// batch as large as the backlog keeps up with any run; the cap bounds one transaction.
const MAX_BATCH: usize = 4096;

/// An ended step; `None` tells the writer to stop.
type Message = Option<std::sync::Arc<EndedStep>>;

/// A [`RunObserver`] that records each ended step into the run store.
pub struct Recorder {
    /// The database file, to name in errors.
    path: std::path::PathBuf,
    resumed: bool,
    /// For a resumed run: the steps recorded before it was interrupted that it takes as they are
    /// (written once only).
    recorded: std::collections::HashSet<String>,
    sender: Sender<Message>,
    writer: std::sync::Mutex<Option<JoinHandle<Result<RunStore, StoreError>>>>,
    _lock: RunLock,
}

impl Recorder {
    /// Start recording run `run.run_id` into `store`: its row is written now, with status
    /// `running`, and the run lock is held until [`Recorder::finish`].
    pub fn start(mut store: RunStore, run: &RunStart<'_>) -> Result<Self, StoreError> {
        let lock = store.lock_run(run.run_id)?;
        store.begin(run)?;
        Ok(Self::spawn(store, run.run_id, false, 0, lock, Default::default()))
    }

    /// Go on recording interrupted run `run_id`, whose lock `lock` this process now holds. Steps
    /// taken from before the interruption are already recorded and are not written again.
    pub fn resume(store: RunStore, run_id: &str, lock: RunLock) -> Result<Self, StoreError> {
        let next_seq: i64 = store
            .conn
            .query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM steps WHERE run_id = ?1",
                rusqlite::params![run_id],
                |r| r.get(0),
            )
            .map_err(|e| store.sqlite(e))?;
        // A cancelled run goes on: it is running again.
        store
            .conn
            .execute("UPDATE runs SET status = 'running' WHERE id = ?1", rusqlite::params![run_id])
            .map_err(|e| store.sqlite(e))?;
        // The steps a resume takes as they are (`Reuse::resuming`); the others it settles again,
        // and writes again.
        let recorded = {
            let mut query = store
                .conn
                .prepare("SELECT key FROM steps WHERE run_id = ?1 AND (reused = 1 OR status IN ('success', 'failure'))")
                .map_err(|e| store.sqlite(e))?;
            query
                .query_map(rusqlite::params![run_id], |row| row.get::<_, String>(0))
                .map_err(|e| store.sqlite(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| store.sqlite(e))?
        };
        Ok(Self::spawn(store, run_id, true, next_seq, lock, recorded))
    }

    fn spawn(
        store: RunStore,
        run_id: &str,
        resumed: bool,
        next_seq: i64,
        lock: RunLock,
        recorded: std::collections::HashSet<String>,
    ) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let (id, path) = (run_id.to_owned(), store.path().to_owned());
        let writer = std::thread::spawn(move || write_steps(store, &id, next_seq, resumed, &receiver));
        Self { path, resumed, recorded, sender, writer: std::sync::Mutex::new(Some(writer)), _lock: lock }
    }

    /// Write what is still queued, then end the run with `report` (status, outputs, order).
    pub fn finish(&self, report: &RunReport) -> Result<(), StoreError> {
        let _ = self.sender.send(None);
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        let Some(writer) = writer else { return Ok(()) };
        let mut store = writer.join().map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            what: "recording",
            reason: "the recording thread panicked".into(),
        })??;
        store.finish(report, self.resumed)
    }
}

impl RunObserver for Recorder {
    fn step_finished(&self, _op: usize, step: &std::sync::Arc<EndedStep>) {
        // A resumed run takes the steps it recorded before it was interrupted as they are; what
        // it takes from its parent only now (a re-execution interrupted before it came to them)
        // is written like any step.
        if self.resumed && step.reused && self.recorded.contains(&step.report.key) {
            return;
        }
        // The writer only stops when told to, so a send fails only if it has failed already,
        // and `finish` reports that.
        let _ = self.sender.send(Some(std::sync::Arc::clone(step)));
    }
}

/// The recording thread: waits for a step, then writes it with everything queued behind it.
fn write_steps(
    mut store: RunStore,
    run_id: &str,
    mut next_seq: i64,
    resumed: bool,
    receiver: &Receiver<Message>,
) -> Result<RunStore, StoreError> {
    let mut batch = Vec::new();
    loop {
        let mut stop = false;
        match receiver.recv() {
            Ok(Some(step)) => batch.push(step),
            Ok(None) | Err(_) => stop = true,
        }
        while !stop && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Some(step)) => batch.push(step),
                Ok(None) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            store.append_steps(run_id, next_seq, &batch, resumed)?;
            next_seq += batch.len() as i64;
            batch.clear();
        }
        if stop {
            return Ok(store);
        }
    }
}
