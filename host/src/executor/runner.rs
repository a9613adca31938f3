//! The runner seam: the scheduler hands step attempts (plain [`StepSpec`]s) to a [`Runner`] and
//! reads back what they emitted and how they ended. [`LocalRunner`] runs them on a pool of
//! threads in this process; another runner may run them elsewhere (worker processes, machines),
//! since a step and everything it sends back is plain, serializable data.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::runtime::{Emission, LoadedOp, Runtime, StepEvents, StepFailure, StepLog, StepOutcome};
use crate::step::StepSpec;

/// Which step of the run a task is (the scheduler's own numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TaskId(pub u64);

/// One attempt of one step, to run.
#[derive(Debug, Clone)]
pub struct Task {
    /// Which step.
    pub id: TaskId,
    /// Everything needed to run it; its component is named by digest, and the runner resolves it.
    pub spec: StepSpec,
}

/// What a runner tells the scheduler.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum RunnerEvent {
    /// A worker started an attempt (it may have waited for one since it was submitted).
    Started {
        /// Which step.
        task: TaskId,
        /// Which of its attempts.
        attempt: u32,
    },
    /// A running attempt emitted this, and the host accepted it.
    Emitted {
        /// Which step.
        task: TaskId,
        /// Which of its attempts.
        attempt: u32,
        /// What it emitted.
        emission: Emission,
    },
    /// An attempt ended.
    Finished {
        /// Which step.
        task: TaskId,
        /// Which of its attempts.
        attempt: u32,
        /// How it went.
        outcome: StepOutcome,
        /// The worker that ran it, if it ran elsewhere (`None`: on this process's threads).
        worker: Option<String>,
    },
}

impl RunnerEvent {
    /// The step and attempt it is about.
    pub fn attempt(&self) -> (TaskId, u32) {
        match self {
            Self::Started { task, attempt }
            | Self::Emitted { task, attempt, .. }
            | Self::Finished { task, attempt, .. } => (*task, *attempt),
        }
    }
}

/// What waiting on a runner gave.
#[derive(Debug)]
pub enum Next {
    /// An event.
    Event(RunnerEvent),
    /// Nothing came before the time asked for.
    TimedOut,
    /// The runner stopped: nothing more will come.
    Stopped,
}

/// The runner stopped and takes no more tasks.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the runner has stopped")]
pub struct RunnerStopped;

/// Runs step attempts for the scheduler.
pub trait Runner {
    /// How many tasks to keep handed to it at once so that none of its workers idles.
    fn capacity(&self) -> usize;

    /// Hand it an attempt. It must later report the attempt `Finished` (having failed it, if it
    /// cannot run it), unless it stops.
    fn submit(&mut self, task: Task) -> Result<(), RunnerStopped>;

    /// The next event, waiting at most until `until` (`None`: as long as it takes).
    fn next(&mut self, until: Option<Instant>) -> Next;

    /// The run is cancelled: stop the attempts it runs as soon as they can be stopped. Each
    /// still reports `Finished` (failed with [`StepFailure::Cancelled`] if it was stopped).
    fn cancel(&mut self);
}

/// Tasks handed to the pool per worker: one running and one waiting, so that no worker idles
/// while the scheduler handles the event that freed it. A waiting task holds no sandbox: a
/// worker creates its Store (and takes a pool slot) only when it starts the task.
const QUEUED_PER_WORKER: usize = 2;

struct LocalTask {
    task: Task,
    op: Arc<LoadedOp>,
}

/// Runs steps on threads of this process, each in a fresh sandbox of `runtime`.
pub struct LocalRunner<'env> {
    runtime: &'env Runtime,
    tasks: Sender<LocalTask>,
    events: Receiver<RunnerEvent>,
    workers: usize,
    /// The loaded components, by digest.
    ops: HashMap<String, Arc<LoadedOp>>,
    /// Events made here, not by a worker (a task whose component is not loaded).
    pending: VecDeque<RunnerEvent>,
}

impl<'env> LocalRunner<'env> {
    /// Start `workers` threads in `scope`, running steps of the components `ops`. They end when
    /// the runner is dropped.
    pub fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        runtime: &'env Runtime,
        ops: &[Arc<LoadedOp>],
        workers: usize,
    ) -> Self {
        let workers = workers.max(1);
        let (task_tx, task_rx) = crossbeam_channel::unbounded::<LocalTask>();
        let (event_tx, event_rx) = crossbeam_channel::unbounded::<RunnerEvent>();
        for _ in 0..workers {
            let tasks = task_rx.clone();
            let events = event_tx.clone();
            scope.spawn(move || work(runtime, &tasks, &events));
        }
        let ops = ops.iter().map(|op| (op.digest.clone(), Arc::clone(op))).collect();
        Self { runtime, tasks: task_tx, events: event_rx, workers, ops, pending: VecDeque::new() }
    }
}

impl Runner for LocalRunner<'_> {
    fn cancel(&mut self) {
        self.runtime.cancel_running();
    }

    fn capacity(&self) -> usize {
        self.workers * QUEUED_PER_WORKER
    }

    fn submit(&mut self, task: Task) -> Result<(), RunnerStopped> {
        let Some(op) = self.ops.get(&task.spec.component).cloned() else {
            let failure = StepFailure::Sandbox(format!("component sha256:{} is not loaded", task.spec.component));
            self.pending.push_back(RunnerEvent::Finished {
                task: task.id,
                attempt: task.spec.attempt,
                outcome: StepOutcome { result: Err(failure), log: StepLog::default(), duration: Default::default() },
                worker: None,
            });
            return Ok(());
        };
        self.tasks.send(LocalTask { task, op }).map_err(|_| RunnerStopped)
    }

    fn next(&mut self, until: Option<Instant>) -> Next {
        if let Some(event) = self.pending.pop_front() {
            return Next::Event(event);
        }
        let received = match until {
            None => self.events.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(until) => self.events.recv_deadline(until),
        };
        match received {
            Ok(event) => Next::Event(event),
            Err(RecvTimeoutError::Timeout) => Next::TimedOut,
            Err(RecvTimeoutError::Disconnected) => Next::Stopped,
        }
    }
}

/// Streams an attempt's accepted emissions to the scheduler as they happen.
struct ChannelEvents {
    task: TaskId,
    attempt: u32,
    events: Sender<RunnerEvent>,
}

impl StepEvents for ChannelEvents {
    fn emitted(&mut self, emission: Emission) {
        // The scheduler outlives every worker, so a send can only fail if it has already
        // stopped, and then nobody is left to tell.
        let _ = self.events.send(RunnerEvent::Emitted { task: self.task, attempt: self.attempt, emission });
    }
}

fn work(runtime: &Runtime, tasks: &Receiver<LocalTask>, events: &Sender<RunnerEvent>) {
    for LocalTask { task, op } in tasks {
        let attempt = task.spec.attempt;
        if events.send(RunnerEvent::Started { task: task.id, attempt }).is_err() {
            return;
        }
        let sink = ChannelEvents { task: task.id, attempt, events: events.clone() };
        let outcome = runtime.run(&op, &task.spec, Box::new(sink));
        if events.send(RunnerEvent::Finished { task: task.id, attempt, outcome, worker: None }).is_err() {
            return;
        }
    }
}
