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

/// How often a batch is committed at most while steps keep ending. Committed as soon as the queue
/// was empty, a 10,000-clone run wrote a transaction every few steps, each rewriting the same
/// b-tree pages into the WAL: the writer took a quarter of the run's CPU, which two workers on
/// two cores needed. A step that ended is on disk within this (a `kill -9` loses at most this
/// much, which `resume` runs again); the last batch is written at once when the run ends.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// What the scheduler hands the writer.
enum Message {
    /// An attempt of a step started (`op` is the op's index in the plan).
    Started { op: usize, key: String, attempt: u32, at_ms: i64 },
    /// A step ended.
    Ended { step: std::sync::Arc<EndedStep>, at_ms: i64 },
    /// Write what is queued and stop.
    Stop,
}

/// A [`RunObserver`] that records each ended step into the run store.
pub struct Recorder {
    /// The database file, to name in errors.
    path: std::path::PathBuf,
    resumed: bool,
    /// For a resumed run: the steps recorded before it was interrupted that it takes as they are
    /// (written once only).
    recorded: std::collections::HashSet<String>,
    sender: Sender<Message>,
    /// Set by `finish`: the writer no longer naps (its wake-up from `unpark` may have been used
    /// up by the channel's own blocking `recv`, which parks the same thread).
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writer: std::sync::Mutex<Option<JoinHandle<Result<RunStore, StoreError>>>>,
    _lock: RunLock,
}

impl Recorder {
    /// Start recording run `run.run_id` into `store`: its row is written now, with status
    /// `running`, and the run lock is held until [`Recorder::finish`].
    pub fn start(mut store: RunStore, run: &RunStart<'_>) -> Result<Self, StoreError> {
        let lock = store.lock_run(run.run_id)?;
        store.begin(run)?;
        let ops = run.configs.iter().map(|(op, _)| op.clone()).collect();
        let events = EventLog { ops, ..EventLog::default() };
        Ok(Self::spawn(store, run.run_id, false, 0, lock, Default::default(), events))
    }

    /// Go on recording interrupted run `run_id`, whose lock `lock` this process now holds. Steps
    /// taken from before the interruption are already recorded and are not written again.
    /// `ops`: the plan's op names, in plan order.
    pub fn resume(mut store: RunStore, run_id: &str, lock: RunLock, ops: Vec<String>) -> Result<Self, StoreError> {
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
        // Steps the dead process had started and not ended stop running (their event says so);
        // the steps it ended that this run settles again start from their recorded status.
        store.close_open_steps(run_id, super::now_ms())?;
        let settled = store.settled_statuses(run_id)?;
        let events = EventLog { ops, settled, ..EventLog::default() };
        Ok(Self::spawn(store, run_id, true, next_seq, lock, recorded, events))
    }

    fn spawn(
        store: RunStore,
        run_id: &str,
        resumed: bool,
        next_seq: i64,
        lock: RunLock,
        recorded: std::collections::HashSet<String>,
        events: EventLog,
    ) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let (id, path) = (run_id.to_owned(), store.path().to_owned());
        let stopping = std::sync::Arc::<std::sync::atomic::AtomicBool>::default();
        let writer = {
            let stopping = std::sync::Arc::clone(&stopping);
            std::thread::spawn(move || write_steps(store, &id, next_seq, resumed, events, &receiver, &stopping))
        };
        Self { path, resumed, recorded, sender, stopping, writer: std::sync::Mutex::new(Some(writer)), _lock: lock }
    }

    /// Write what is still queued, then end the run with `report` (status, outputs, order).
    pub fn finish(&self, report: &RunReport) -> Result<(), StoreError> {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.sender.send(Message::Stop);
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        let Some(writer) = writer else { return Ok(()) };
        // It may be asleep in its batch window: the last batch is written now, not after it.
        writer.thread().unpark();
        let mut store = writer.join().map_err(|_| StoreError::Corrupt {
            path: self.path.clone(),
            what: "recording",
            reason: "the recording thread panicked".into(),
        })??;
        store.finish(report, self.resumed)
    }
}

impl RunObserver for Recorder {
    fn step_started(&self, op: usize, key: &str, attempt: u32) {
        let _ = self.sender.send(Message::Started { op, key: key.to_owned(), attempt, at_ms: super::now_ms() });
    }

    fn step_finished(&self, _op: usize, step: &std::sync::Arc<EndedStep>) {
        // A resumed run takes the steps it recorded before it was interrupted as they are; what
        // it takes from its parent only now (a re-execution interrupted before it came to them)
        // is written like any step.
        if self.resumed && step.reused && self.recorded.contains(&step.report.key) {
            return;
        }
        // The writer only stops when told to, so a send fails only if it has failed already,
        // and `finish` reports that.
        let _ = self.sender.send(Message::Ended { step: std::sync::Arc::clone(step), at_ms: super::now_ms() });
    }
}

/// The status each step stands at for the event log, where the rows of `steps` do not say it:
/// the steps started and not yet ended (with when they first started), and for a resumed run
/// the recorded steps it settles again. Bounded by the steps in flight, not by the run's size.
#[derive(Default)]
struct EventLog {
    /// The plan's op names, by index.
    ops: Vec<String>,
    /// Started and not ended: key → when its first attempt started.
    running: std::collections::HashMap<String, i64>,
    /// A resumed run's recorded steps that may end again: key → recorded status.
    settled: std::collections::HashMap<String, String>,
    /// First attempts started in the batch being gathered: key → its event's place in the batch.
    /// A step that starts and ends within one batch was never seen running by anyone: its two
    /// events become one (nothing → its status), which halves the events of a fast fan-out.
    unwritten_starts: std::collections::HashMap<String, usize>,
}

impl EventLog {
    fn started(&mut self, op: usize, key: String, attempt: u32, at_ms: i64, batch: &mut Batch) {
        let op = self.ops.get(op).cloned().unwrap_or_default();
        let from = if self.running.contains_key(&key) { Some("running".to_owned()) } else { self.settled.remove(&key) };
        self.running.entry(key.clone()).or_insert(at_ms);
        if attempt == 1 && from.is_none() {
            self.unwritten_starts.insert(key.clone(), batch.events.len());
        }
        batch.events.push(StepEvent {
            step_key: key,
            op,
            attempt,
            from_status: from,
            to_status: Some("running".into()),
            at_ms,
        });
    }

    /// The batch was written: its starts are visible now.
    fn written(&mut self) {
        self.unwritten_starts.clear();
    }

    fn ended(&mut self, step: std::sync::Arc<EndedStep>, at_ms: i64, batch: &mut Batch) {
        let key = &step.report.key;
        let (mut from, started_at_ms) = match self.running.remove(key) {
            Some(started) => (Some("running".to_owned()), Some(started)),
            None => (self.settled.remove(key), None),
        };
        if let Some(place) = self.unwritten_starts.remove(key)
            && step.report.attempts == 1
            && let Some(start) = batch.events.get_mut(place)
        {
            // Dropped when written; the step's row keeps when it started.
            start.to_status = None;
            from = None;
        }
        batch.events.push(StepEvent {
            step_key: key.clone(),
            op: step.report.op.clone(),
            attempt: step.report.attempts,
            from_status: from,
            to_status: Some(step.report.status.as_str().to_owned()),
            at_ms,
        });
        // A step taken from the parent run did not run here: it has no times of its own.
        let ended_at_ms = (!step.reused).then_some(at_ms);
        batch.steps.push(TimedStep { step, started_at_ms, ended_at_ms });
    }
}

/// One change of a step's status, as the viewer follows it: `from` → `to` (`None`: not counted;
/// an event with neither is not written).
#[derive(Debug, Clone)]
pub(crate) struct StepEvent {
    pub step_key: String,
    pub op: String,
    pub attempt: u32,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub at_ms: i64,
}

/// An ended step with when it started (its first attempt) and ended, if it ran in this run.
pub(crate) struct TimedStep {
    pub step: std::sync::Arc<EndedStep>,
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
}

/// What one transaction writes.
#[derive(Default)]
pub(crate) struct Batch {
    pub steps: Vec<TimedStep>,
    pub events: Vec<StepEvent>,
}

impl Batch {
    fn len(&self) -> usize {
        self.steps.len() + self.events.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The recording thread: waits for a message, then writes it with everything queued behind it.
fn write_steps(
    mut store: RunStore,
    run_id: &str,
    mut next_seq: i64,
    resumed: bool,
    mut log: EventLog,
    receiver: &Receiver<Message>,
    stopping: &std::sync::atomic::AtomicBool,
) -> Result<RunStore, StoreError> {
    let mut batch = Batch::default();
    // When the batch being gathered began to gather: when the last commit began.
    let mut opened = std::time::Instant::now();
    loop {
        let mut stop = false;
        let mut take = |message, batch: &mut Batch, stop: &mut bool| match message {
            Message::Started { op, key, attempt, at_ms } => log.started(op, key, attempt, at_ms, batch),
            Message::Ended { step, at_ms } => log.ended(step, at_ms, batch),
            Message::Stop => *stop = true,
        };
        match receiver.recv() {
            Ok(message) => take(message, &mut batch, &mut stop),
            Err(_) => stop = true,
        }
        // The rest of the batch window is slept, not waited in `recv`: a writer blocked in `recv`
        // is woken by every send (a futex wake and a context switch on both sides, twice per
        // clone), which on two cores took CPU the workers needed. Asleep, it is not woken: a send
        // only queues, and `finish` stops the naps and unparks it to write the last batch at
        // once. The window opened when the last commit began, so a writer busy committing never
        // naps, and a backlog is written without one.
        if !stop
            && !stopping.load(std::sync::atomic::Ordering::SeqCst)
            && receiver.len() < MAX_BATCH
            && let Some(rest) = (opened + COMMIT_EVERY).checked_duration_since(std::time::Instant::now())
        {
            std::thread::park_timeout(rest);
        }
        while !stop && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(message) => take(message, &mut batch, &mut stop),
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => stop = true,
            }
        }
        if !batch.is_empty() {
            opened = std::time::Instant::now();
            store.append_steps(run_id, next_seq, &batch, resumed)?;
            log.written();
            next_seq += batch.steps.len() as i64;
            batch = Batch::default();
        }
        if stop {
            return Ok(store);
        }
    }
}
