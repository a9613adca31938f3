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
mod runner;
pub mod selection;
mod state;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

pub use observer::RunObserver;
pub use prepare::{PreparedJob, prepare, prepare_parsed, prepare_protecting};
pub use report::{AttemptReport, EndedStep, RecordReport, RunReport, RunStatus, StepReport, StepStatus};
pub use reuse::{NamedStep, ParentRun, Reuse, ReuseError, ReusedStep, inputs_digest};
pub use runner::{LocalRunner, Next, Runner, RunnerEvent, RunnerStopped, Task, TaskId};

use crate::job::Plan;
use crate::runtime::{LoadedOp, Runtime};
use state::{InstanceId, RunState};

/// Tells a run to stop: set once (Ctrl-C, SIGTERM, `sandmap cancel`), never unset. The
/// scheduler then starts nothing more, has the runner stop what runs, and ends the run
/// `cancelled`.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Cancel the run.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How often the scheduler looks at its [`Cancel`] while it waits.
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

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
    /// Set to cancel the run.
    pub cancel: Cancel,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            run_id: new_run_id(),
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            reuse: None,
            observer: None,
            cancel: Cancel::default(),
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

/// How many characters of a run id people see: its random tail.
pub const SHORT_ID_LEN: usize = 12;

/// The form of a run id printed for people: its last [`SHORT_ID_LEN`] characters. A UUID v7
/// starts with the time, so a prefix is shared by every run of the same minute; its tail is
/// random (48 bits: unique in practice, as Docker's 12-character ids are). The store accepts it
/// back ([`crate::store::Store::resolve`]); `--json` keeps the whole id.
/// Any other id (one a test or a hostile message made up) is shown whole.
pub fn short_run_id(id: &str) -> &str {
    // The hyphenated form sandmap makes (36 ASCII characters): the tail is its random part.
    if id.len() == 36 && uuid::Uuid::try_parse(id).is_ok() { &id[id.len() - SHORT_ID_LEN..] } else { id }
}

/// Run `plan` on this process's threads. `ops[i]` is the loaded component of the job's op `i`
/// (job-file order, as in [`crate::job::PlannedOp::job_index`]).
pub fn execute(plan: &Plan, ops: &[Arc<LoadedOp>], runtime: &Runtime, options: &ExecOptions) -> RunReport {
    hold_grants(plan, runtime);
    std::thread::scope(|scope| {
        let mut runner = LocalRunner::start(scope, runtime, ops, options.max_concurrent);
        execute_with(plan, ops, &mut runner, options)
        // The runner drops here, which ends its threads; the scope waits for them.
    })
}

/// Run `plan` with its steps run by `runner`.
pub fn execute_with(plan: &Plan, ops: &[Arc<LoadedOp>], runner: &mut dyn Runner, options: &ExecOptions) -> RunReport {
    let started = Instant::now();
    let mut state = RunState::new(plan, options.reuse.as_deref(), options.observer.as_deref());
    schedule(&mut state, ops, runner, &options.cancel);
    state.into_report(options.run_id.clone(), started.elapsed(), options.cancel.is_cancelled())
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

fn schedule(state: &mut RunState, ops: &[Arc<LoadedOp>], runner: &mut dyn Runner, cancel: &Cancel) {
    // The attempt each handed-out step is on: an event for any other (late, or doubled by a
    // runner that redelivers) is ignored, never applied twice.
    let mut in_flight: HashMap<TaskId, u32> = HashMap::new();
    let mut ready: VecDeque<InstanceId> = VecDeque::new();
    // Retries waiting out their delay: (due, instance).
    let mut delayed: Vec<(Instant, InstanceId)> = Vec::new();
    state.create_roots(&mut ready);
    let mut stopping = false;
    loop {
        if !stopping && cancel.is_cancelled() {
            // Nothing more starts; what runs is stopped and reports itself cancelled.
            stopping = true;
            state.begin_cancel();
            runner.cancel();
            ready.clear();
            delayed.clear();
        }
        let now = Instant::now();
        delayed.retain(|&(due, id)| {
            if due <= now {
                ready.push_back(id);
            }
            due > now
        });
        while !stopping && in_flight.len() < runner.capacity() {
            let Some(instance) = ready.pop_front() else { break };
            // A clone cancelled while it waited (its fan-out failed) is dropped here.
            let Some(spec) = state.start(instance, ops) else { continue };
            let id = TaskId(instance as u64);
            in_flight.insert(id, spec.attempt);
            if runner.submit(Task { id, spec }).is_err() {
                return state.abandon_leftovers();
            }
        }
        let next_due = delayed.iter().map(|&(due, _)| due).min();
        if in_flight.is_empty() {
            match next_due {
                None => break,
                Some(due) => {
                    std::thread::sleep(due.saturating_duration_since(now).min(CANCEL_CHECK));
                    continue;
                }
            }
        }
        // Woken at least every CANCEL_CHECK, so that a cancel is seen while steps run.
        let wake = Some(next_due.map_or(now + CANCEL_CHECK, |due| due.min(now + CANCEL_CHECK)));
        let event = match runner.next(wake) {
            Next::Event(event) => event,
            Next::TimedOut => continue,
            Next::Stopped => break,
        };
        let (task, attempt) = event.attempt();
        if in_flight.get(&task) != Some(&attempt) {
            tracing::warn!("ignored an event of step {} attempt {attempt}: not running", task.0);
            continue;
        }
        let instance = task.0 as InstanceId;
        if stopping && let RunnerEvent::Emitted { .. } = event {
            // A cancelled run clones nothing more.
            continue;
        }
        match event {
            RunnerEvent::Started { attempt, .. } => state.tell_started(instance, attempt),
            RunnerEvent::Emitted { emission, .. } => state.emitted(instance, emission, &mut ready),
            RunnerEvent::Finished { outcome, worker, .. } => {
                in_flight.remove(&task);
                if let Some(delay) = state.finished(instance, outcome, worker, &mut ready) {
                    delayed.push((Instant::now() + delay, instance));
                }
            }
        }
    }
    if stopping {
        state.cancel_leftovers();
    }
    state.abandon_leftovers();
}
