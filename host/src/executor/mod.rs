//! The executor joins a [`Plan`] and the [`Runtime`]: it turns planned ops into steps as
//! dynamic records stream in, runs them on a pool of worker threads, and gathers collects in
//! emission order.
//!
//! Scheduling is event-driven: each step knows how many of its dependencies are still open and
//! each fan-out (one dynamic output of one step) counts its unfinished clones per consuming op,
//! so a run of N clones costs O(N) bookkeeping, never a rescan. A clone becomes runnable the
//! moment its record is emitted, while its fan-out step is still running (streaming fan-out).

mod observer;
mod prepare;
mod report;
mod reuse;
mod state;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

pub use observer::RunObserver;
pub use prepare::{PreparedJob, prepare, prepare_parsed, prepare_protecting};
pub use report::{AttemptReport, EndedStep, RecordReport, RunReport, RunStatus, StepReport, StepStatus};
pub use reuse::{Reuse, ReuseError, ReusedStep};

use crate::job::Plan;
use crate::runtime::{Emission, LoadedOp, Runtime, StepEvents, StepOutcome};
use crate::step::StepSpec;
use state::{InstanceId, RunState};

/// How to execute.
#[derive(Clone)]
pub struct ExecOptions {
    /// The run's id (a fresh, time-ordered UUID by default; a resumed run keeps its own).
    pub run_id: String,
    /// Steps running at once (and so sandboxes alive at once).
    pub max_concurrent: usize,
    /// For a re-execution or a resumed run: the results to take instead of running those steps.
    pub reuse: Option<Arc<Reuse>>,
    /// Told about each step as it comes, starts and ends.
    pub observer: Option<Arc<dyn RunObserver>>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            run_id: new_run_id(),
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reuse: None,
            observer: None,
        }
    }
}

impl std::fmt::Debug for ExecOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecOptions")
            .field("run_id", &self.run_id)
            .field("max_concurrent", &self.max_concurrent)
            .field("reuse", &self.reuse.as_ref().map(|r| r.steps.len()))
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A unique, time-ordered run id (UUID v7), so that ids sort by start time.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Tasks handed to workers per worker: one running and one waiting.
const QUEUED_PER_WORKER: usize = 2;

/// What workers tell the scheduler.
enum WorkerEvent {
    Emitted(InstanceId, Emission),
    Finished(InstanceId, StepOutcome),
}

struct Task {
    instance: InstanceId,
    op: Arc<LoadedOp>,
    spec: StepSpec,
}

/// Streams a step's accepted emissions to the scheduler.
struct ChannelEvents {
    instance: InstanceId,
    events: Sender<WorkerEvent>,
}

impl StepEvents for ChannelEvents {
    fn emitted(&mut self, emission: Emission) {
        // The scheduler outlives every worker, so a send can only fail if it has already
        // stopped, and then nobody is left to tell.
        let _ = self.events.send(WorkerEvent::Emitted(self.instance, emission));
    }
}

/// Run `plan`. `ops[i]` is the loaded component of the job's op `i` (job-file order, as in
/// [`crate::job::PlannedOp::job_index`]).
pub fn execute(plan: &Plan, ops: &[Arc<LoadedOp>], runtime: &Runtime, options: &ExecOptions) -> RunReport {
    let started = Instant::now();
    hold_grants(plan, runtime);
    let workers = options.max_concurrent.max(1);
    let (task_tx, task_rx) = crossbeam_channel::unbounded::<Task>();
    let (event_tx, event_rx) = crossbeam_channel::unbounded::<WorkerEvent>();
    let mut state = RunState::new(plan, options.reuse.as_deref(), options.observer.as_deref());

    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tasks = task_rx.clone();
            let events = event_tx.clone();
            scope.spawn(move || worker(runtime, tasks, events));
        }
        drop(event_tx);
        schedule(&mut state, plan, ops, workers, &task_tx, &event_rx);
        // Closing the task channel lets the workers finish.
        drop(task_tx);
    });

    state.into_report(options.run_id.clone(), started.elapsed())
}

/// Hand the runtime the grant directories opened when the plan was validated, so that every
/// sandbox sees those, whatever happened to their paths since.
fn hold_grants(plan: &Plan, runtime: &Runtime) {
    for held in plan.ops.iter().flat_map(|op| &op.grants) {
        if let Err(error) = runtime.hold_grant(&held.grant, held.handle()) {
            // Only out of descriptors: the sandbox then opens the grant by its path.
            tracing::warn!("cannot hold grant {}: {error}", held.grant.host.display());
        }
    }
}

fn worker(runtime: &Runtime, tasks: Receiver<Task>, events: Sender<WorkerEvent>) {
    for task in tasks {
        let sink = ChannelEvents { instance: task.instance, events: events.clone() };
        let outcome = runtime.run(&task.op, &task.spec, Box::new(sink));
        if events.send(WorkerEvent::Finished(task.instance, outcome)).is_err() {
            return;
        }
    }
}

fn schedule(
    state: &mut RunState,
    plan: &Plan,
    ops: &[Arc<LoadedOp>],
    workers: usize,
    tasks: &Sender<Task>,
    events: &Receiver<WorkerEvent>,
) {
    let mut in_flight = 0usize;
    let mut ready: VecDeque<InstanceId> = VecDeque::new();
    // Retries waiting out their delay: (due, instance).
    let mut delayed: Vec<(Instant, InstanceId)> = Vec::new();
    state.create_roots(&mut ready);
    loop {
        let now = Instant::now();
        delayed.retain(|&(due, id)| {
            if due <= now {
                ready.push_back(id);
            }
            due > now
        });
        // Keep a next task waiting for each worker, so none idles while the scheduler handles
        // the event that freed it. A queued task holds no sandbox: a worker creates its Store
        // (and takes a pool slot) only when it starts the task.
        while in_flight < workers * QUEUED_PER_WORKER {
            let Some(instance) = ready.pop_front() else { break };
            // A clone cancelled while it waited (its fan-out failed) is dropped here.
            let Some(spec) = state.start(instance, ops) else { continue };
            let op = ops[plan.ops[state.op_of(instance)].job_index].clone();
            if tasks.send(Task { instance, op, spec }).is_err() {
                return;
            }
            in_flight += 1;
        }
        let next_due = delayed.iter().map(|&(due, _)| due).min();
        let event = match (in_flight, next_due) {
            (0, None) => break,
            (0, Some(due)) => {
                std::thread::sleep(due.saturating_duration_since(now));
                continue;
            }
            (_, None) => events.recv().ok(),
            (_, Some(due)) => match events.recv_timeout(due.saturating_duration_since(now)) {
                Ok(event) => Some(event),
                Err(_) => continue,
            },
        };
        let Some(event) = event else { break };
        match event {
            WorkerEvent::Emitted(instance, emission) => state.emitted(instance, emission, &mut ready),
            WorkerEvent::Finished(instance, outcome) => {
                in_flight -= 1;
                if let Some(delay) = state.finished(instance, outcome, &mut ready) {
                    delayed.push((Instant::now() + delay, instance));
                }
            }
        }
    }
    state.abandon_leftovers();
}
