//! The run's graph bookkeeping: the step instances and fan-outs of a run, how instances come into
//! being (one per unmapped op, one clone per record of a mapped op's fan-out) and how to find
//! them again. The scheduler in `executor/mod.rs` drives it through [`RunState`].
//!
//! The other jobs live in submodules, each working on the same [`RunState`]:
//! - [`readiness`]: dependency counting, waking waiters, propagating final statuses;
//! - [`rules`]: Dagster's rules as pure functions (what a failure abandons, what a missing optional
//!   output skips, `min_success`, the run's status, Dagster's texts);
//! - [`replay`]: steps taken from an earlier run (re-execution, resume) instead of run;
//! - [`held`]: the records of an op with retries, held until an attempt succeeds;
//! - [`inputs`]: a ready instance turned into the [`crate::step::StepSpec`] a worker runs;
//! - [`payload`]: the ended step handed to the observer;
//! - [`assemble`]: the run's report at the end.
//!
//! Every structure is indexed (by id, key or fan-out) so that a run of N clones costs O(N)
//! bookkeeping: nothing here rescans the instances while the run goes.

mod assemble;
mod held;
mod inputs;
mod partners;
mod payload;
mod readiness;
mod replay;
mod rules;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::report::{AttemptReport, StepStatus};
use crate::job::{MinSuccess, Plan};
use crate::keys::step_key;
use crate::runtime::{Emission, StepLog};
use crate::step::CollectFailure;
use crate::value::{JsonText, Metadata};

/// Index of a step instance in the run.
pub(crate) type InstanceId = usize;
/// Index of a fan-out in the run.
type FanId = usize;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Some dependency is still open.
    Waiting,
    /// Runnable, in the ready queue.
    Ready,
    /// Handed to a worker.
    Running,
    /// Final.
    Done(StepStatus),
}

/// What a step dependency needs from its upstream step.
#[derive(Debug, Clone)]
enum Need {
    /// The value of a plain output.
    Output(String),
    /// All records of a dynamic output (a collect over it).
    Records(String),
}

/// One dependency of an instance.
#[derive(Debug, Clone)]
enum Dep {
    /// An upstream step must finish.
    Step { instance: InstanceId, need: Need },
    /// A fan-out must close and every clone of `op` under it finish.
    Collect { fan: FanId, op: usize, output: String, input: String, min_success: Option<MinSuccess> },
    /// The record of a partner fan-out that pairs with the clone's own (zip, join).
    Partner { fan: FanId, at: partners::PairAt, pairing: crate::job::Pairing },
}

/// One step of the run: an unmapped op's, or a clone of a mapped op.
///
/// There is one per clone, so its size is the run's footprint per clone; and `into_report` turns
/// each into a [`super::StepReport`] in place, so it must stay at least as large as one (see
/// `assemble`'s size test).
struct Instance {
    op: usize,
    keys: Vec<String>,
    step_key: String,
    status: Status,
    open_deps: usize,
    deps: Vec<Dep>,
    /// The record that cloned it: (fan, index in the fan).
    record: Option<(FanId, usize)>,
    /// The fan-out it is a clone under.
    fan_parent: Option<FanId>,
    /// Fan-outs it produces (one per dynamic output it emitted to or that is awaited).
    fans: Vec<FanId>,
    /// Plain outputs produced (a step has few: a Vec beats a map in size and speed).
    outputs: Vec<(String, JsonText)>,
    error: Option<String>,
    attempts: u32,
    duration: Duration,
    /// Creation order (the instance's id), kept for ordering the report.
    seq: u32,
    /// The digest of its inputs, once it had them (`reuse::inputs_digest`): recorded, so that a
    /// later run takes its result only for the same inputs.
    inputs_digest: Option<Box<str>>,
    /// What most clones never need, out of line to keep the per-clone footprint small.
    extra: Option<Box<Extra>>,
}

/// The rarely used part of an instance.
#[derive(Default)]
struct Extra {
    /// For an op with retries: this attempt's records, released when it succeeds (a clone must
    /// not start from a record a retry may not emit again).
    held_records: Option<Vec<Emission>>,
    /// Clones its `min_success` collects run without.
    collect_failures: Vec<CollectFailure>,
    previous_attempts: Vec<AttemptReport>,
    log: Arc<StepLog>,
    /// Taken from the parent run of a re-execution instead of run.
    reused: bool,
    /// The remote worker that ran its last attempt (none: it ran on this process's threads).
    worker: Option<String>,
    /// Metadata of its plain outputs, for the outputs that have some.
    output_metadata: Vec<(String, Metadata)>,
}

impl Instance {
    /// Where its last attempt ran, for its report.
    fn worker(&self) -> Option<String> {
        match self.extra.as_deref().and_then(|e| e.worker.clone()) {
            Some(worker) => Some(worker),
            None if self.attempts > 0 && !self.reused() => Some("local".to_owned()),
            None => None,
        }
    }

    /// The value of its plain output `name`, if it produced one.
    fn output(&self, name: &str) -> Option<&JsonText> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Its final status, if it has one.
    fn ended(&self) -> Option<StepStatus> {
        match self.status {
            Status::Done(status) => Some(status),
            _ => None,
        }
    }

    /// Its status in a report: a step that never reached a final one was not executed.
    fn final_status(&self) -> StepStatus {
        self.ended().unwrap_or(StepStatus::Abandoned)
    }

    /// Whether it was taken from an earlier run instead of run.
    fn reused(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.reused)
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// The records of one dynamic output of one step, and the clones made from them.
struct Fan {
    producer: InstanceId,
    output: String,
    required: bool,
    keys: Vec<String>,
    values: Vec<JsonText>,
    metadata: Vec<Metadata>,
    /// `None` while the producer runs; its final status once it is done.
    closed: Option<StepStatus>,
    /// Clones made from this fan's records, in emission order.
    children: Vec<InstanceId>,
    /// Unfinished clones per op.
    unfinished: HashMap<usize, usize>,
    /// Collects waiting on every clone of `op`: (op, waiting instance, dependency index).
    waiters: Vec<(usize, InstanceId, usize)>,
    /// For a fan-out some op zips or joins with: the clones waiting on its records.
    partner: Option<Box<partners::PartnerSide>>,
}

/// Everything the scheduler knows of a run while it goes.
pub(crate) struct RunState<'p> {
    plan: &'p Plan,
    instances: Vec<Instance>,
    by_key: HashMap<String, InstanceId>,
    fans: Vec<Fan>,
    fan_index: HashMap<(InstanceId, String), FanId>,
    step_waiters: HashMap<InstanceId, Vec<(InstanceId, usize)>>,
    /// Ops cloned per record of (op, dynamic output), in plan order.
    clones_of: HashMap<(usize, String), Vec<usize>>,
    /// Instances that just reached a final status and whose dependents are not told yet.
    terminated: VecDeque<InstanceId>,
    /// Records whose clones' failures a `min_success` collect accepted.
    tolerated: HashSet<(FanId, usize)>,
    /// For a re-execution or a resumed run: the earlier results.
    reuse: Option<&'p super::Reuse>,
    observer: Option<&'p dyn super::RunObserver>,
    /// The run was cancelled: nothing more starts.
    cancelling: bool,
    /// The plan's zipped and joined ops, one entry per partner.
    paired: Vec<partners::PairedOp>,
    /// Pairings already settled: (index in `paired`, the mapped-over fan-out).
    settled_pairings: HashSet<(usize, FanId)>,
}

impl<'p> RunState<'p> {
    /// The bookkeeping of a run of `plan`, before any step exists.
    pub(crate) fn new(
        plan: &'p Plan,
        reuse: Option<&'p super::Reuse>,
        observer: Option<&'p dyn super::RunObserver>,
    ) -> Self {
        let mut clones_of: HashMap<(usize, String), Vec<usize>> = HashMap::new();
        for (i, op) in plan.ops.iter().enumerate() {
            if let Some(level) = op.scope.last() {
                clones_of.entry((level.op, level.output.clone())).or_default().push(i);
            }
        }
        Self {
            plan,
            instances: Vec::new(),
            by_key: HashMap::new(),
            fans: Vec::new(),
            fan_index: HashMap::new(),
            step_waiters: HashMap::new(),
            clones_of,
            terminated: VecDeque::new(),
            tolerated: HashSet::new(),
            reuse,
            observer,
            cancelling: false,
            paired: partners::paired_ops(plan),
            settled_pairings: HashSet::new(),
        }
    }

    /// The run is cancelled: steps that will not run now end `cancelled`.
    pub(crate) fn begin_cancel(&mut self) {
        self.cancelling = true;
    }

    /// Create one step for every unmapped op: every one first, then each waits on its
    /// dependencies (a reused fan-out replays its records at once, and its clones may read any
    /// root).
    pub(crate) fn create_roots(&mut self, ready: &mut VecDeque<InstanceId>) {
        let roots: Vec<InstanceId> = (0..self.plan.ops.len())
            .filter(|&op| self.plan.ops[op].scope.is_empty())
            .map(|op| self.create(op, Vec::new(), None))
            .collect();
        for id in roots {
            self.wait_for_dependencies(id, ready);
        }
        self.drain(ready);
    }

    /// After the last step: a step a re-execution's selection names that never came into being
    /// fails, naming it; anything still waiting could never run (a bug guard, not a path any plan
    /// takes).
    /// After a cancel: every step that did not end is cancelled.
    pub(crate) fn cancel_leftovers(&mut self) {
        for id in 0..self.instances.len() {
            if !matches!(self.instances[id].status, Status::Done(_)) {
                self.terminate(id, StepStatus::Cancelled, Some("the run was cancelled before it ran".into()));
            }
        }
        while let Some(id) = self.terminated.pop_front() {
            self.tell_finished(id);
        }
    }

    pub(crate) fn abandon_leftovers(&mut self) {
        self.fail_never_created();
        for id in 0..self.instances.len() {
            if !matches!(self.instances[id].status, Status::Done(_)) {
                self.terminate(id, StepStatus::Abandoned, Some("never became runnable".into()));
            }
        }
        while let Some(id) = self.terminated.pop_front() {
            self.tell_finished(id);
        }
    }

    /// The step of `op` on the key path `keys` (cut to the op's depth: a broadcast from an outer
    /// level), if it exists.
    fn instance_at(&self, op: usize, keys: &[String]) -> Option<InstanceId> {
        let depth = self.plan.ops[op].scope.len();
        self.by_key.get(&step_key(&self.plan.ops[op].name, &keys[..depth.min(keys.len())])).copied()
    }

    /// Whether `op` declares `output` required (an output it does not declare counts as one).
    fn output_required(&self, op: usize, output: &str) -> bool {
        self.plan.ops[op].outputs.iter().find(|o| o.name == output).is_none_or(|o| o.required)
    }

    /// The fan-out of `producer`'s dynamic `output`, created (empty) on first use: by its first
    /// record, or by the first collect that waits on it.
    fn fan_for(&mut self, producer: InstanceId, output: &str) -> FanId {
        if let Some(&fan) = self.fan_index.get(&(producer, output.to_owned())) {
            return fan;
        }
        let required = self.output_required(self.instances[producer].op, output);
        let id = self.fans.len();
        self.fans.push(Fan {
            producer,
            output: output.to_owned(),
            required,
            keys: Vec::new(),
            values: Vec::new(),
            metadata: Vec::new(),
            closed: self.instances[producer].ended(),
            children: Vec::new(),
            unfinished: HashMap::new(),
            waiters: Vec::new(),
            partner: None,
        });
        self.fan_index.insert((producer, output.to_owned()), id);
        self.instances[producer].fans.push(id);
        self.pair_fans(id);
        id
    }

    /// Create the step of `op` on the key path `keys` (cloned from `record`, for a mapped op),
    /// waiting: [`Self::wait_for_dependencies`] wires it once the steps created with it exist
    /// too (then it is ready, taken from the earlier run, or settled at once if a dependency is
    /// already lost).
    fn create(&mut self, op: usize, keys: Vec<String>, record: Option<(FanId, usize)>) -> InstanceId {
        let key = step_key(&self.plan.ops[op].name, &keys);
        if let Some(observer) = self.observer {
            observer.step_created(op);
        }
        self.push_instance(op, keys, key, record)
    }

    /// Add a new, waiting instance and index it (by key, and under its fan-out).
    fn push_instance(
        &mut self,
        op: usize,
        keys: Vec<String>,
        key: String,
        record: Option<(FanId, usize)>,
    ) -> InstanceId {
        let id = self.instances.len();
        let fan_parent = record.map(|(fan, _)| fan);
        if let Some(fan) = fan_parent {
            self.fans[fan].children.push(id);
            *self.fans[fan].unfinished.entry(op).or_insert(0) += 1;
        }
        self.by_key.insert(key.clone(), id);
        self.instances.push(Instance {
            op,
            keys,
            step_key: key,
            status: Status::Waiting,
            open_deps: 0,
            deps: Vec::new(),
            record,
            fan_parent,
            fans: Vec::new(),
            outputs: Vec::new(),
            error: None,
            attempts: 0,
            duration: Duration::ZERO,
            seq: u32::try_from(id).unwrap_or(u32::MAX),
            inputs_digest: None,
            extra: held::holds_records(self.plan.ops[op].retries).then(|| Box::new(Extra::holding())),
        });
        id
    }

    /// Record an emission and, for a record, create its clones.
    fn release(&mut self, id: InstanceId, emission: Emission, ready: &mut VecDeque<InstanceId>) {
        match emission {
            Emission::Output { output, value, metadata } => {
                let instance = &mut self.instances[id];
                instance.outputs.retain(|(name, _)| *name != output);
                // Held aside: most outputs have none, and an instance stays small without.
                if let Some(extra) = instance.extra.as_deref_mut() {
                    extra.output_metadata.retain(|(name, _)| *name != output);
                }
                if !metadata.is_empty() {
                    instance.extra().output_metadata.push((output.clone(), metadata));
                }
                // Most steps produce one output: a first `push` would make room for four.
                instance.outputs.reserve_exact(1);
                instance.outputs.push((output, value));
            }
            Emission::Record { output, key, value, metadata } => {
                let (fan, index) = self.append_record(id, &output, key.clone(), value, metadata);
                self.partner_arrived(fan, index, &key, ready);
                let op = self.instances[id].op;
                let clones = self.clones_of.get(&(op, output)).cloned().unwrap_or_default();
                // Every clone of the record first, then each waits (one replayed at once may read
                // a sibling).
                let created: Vec<InstanceId> = clones
                    .into_iter()
                    .map(|clone_op| {
                        // At its exact size: it is held for the whole run, one per clone.
                        let parent = &self.instances[id].keys;
                        let mut keys = Vec::with_capacity(parent.len() + 1);
                        keys.extend_from_slice(parent);
                        keys.push(key.clone());
                        self.create(clone_op, keys, Some((fan, index)))
                    })
                    .collect();
                for clone in created {
                    self.wait_for_dependencies(clone, ready);
                }
                self.drain(ready);
            }
        }
    }

    /// Add a record to `id`'s fan-out for `output`, without cloning anything from it; its (fan,
    /// index).
    fn append_record(
        &mut self,
        id: InstanceId,
        output: &str,
        key: String,
        value: JsonText,
        metadata: Metadata,
    ) -> (FanId, usize) {
        let fan = self.fan_for(id, output);
        let records = &mut self.fans[fan];
        records.keys.push(key);
        records.values.push(value);
        records.metadata.push(metadata);
        (fan, records.keys.len() - 1)
    }

    /// The indices, in emission order, of the records `id` descends from, outermost first.
    fn emission_path(&self, id: InstanceId) -> Vec<u32> {
        let mut path = Vec::new();
        let mut current = id;
        while let Some((fan, index)) = self.instances[current].record {
            path.push(u32::try_from(index).unwrap_or(u32::MAX));
            current = self.fans[fan].producer;
        }
        path.reverse();
        path
    }
}
