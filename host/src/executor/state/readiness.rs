//! How an instance becomes ready or final: its dependencies are counted when it is created, each
//! one resolves when what it waits on ends (a step, or a fan-out and every clone of an op under
//! it), and a final status travels to the dependents until nothing changes.
//!
//! Each dependency is resolved once, when its waiter is woken: a step's waiters are kept per
//! step, a collect's per fan-out and op, and a fan-out counts its unfinished clones per op, so
//! nothing is rescanned. What a resolved dependency means is [`super::rules`]' to say.

use std::collections::VecDeque;

use super::rules::{self, FanOut, Outcome, Unmet};
use super::{Dep, FanId, InstanceId, Need, RunState, Status};
use crate::executor::report::StepStatus;
use crate::job::Binding;
use crate::step::CollectFailure;

impl RunState<'_> {
    /// Count `id`'s dependencies and wait on the open ones: ready if none is, settled (skipped or
    /// abandoned) if one is already lost.
    pub(super) fn wait_for_dependencies(&mut self, id: InstanceId, ready: &mut VecDeque<InstanceId>) {
        self.instances[id].deps = self.dependencies(id);
        for index in 0..self.instances[id].deps.len() {
            match self.resolve(id, &self.instances[id].deps[index]) {
                None => self.wait_on(id, index),
                Some(outcome) => {
                    if !self.accept(id, index, outcome) {
                        return;
                    }
                }
            }
        }
        if self.instances[id].open_deps == 0 {
            self.make_ready(id, ready);
        }
    }

    /// What `id` waits on, from its op's inputs: the upstream steps on its key path, and the
    /// fan-outs whose clones its collects gather.
    fn dependencies(&mut self, id: InstanceId) -> Vec<Dep> {
        let plan = self.plan;
        let op = &plan.ops[self.instances[id].op];
        let keys = self.instances[id].keys.clone();
        let mut deps = Vec::new();
        for input in &op.inputs {
            match &input.binding {
                Binding::Record { .. } => {}
                Binding::Partner { op: partner, output, pairing } => {
                    if let Some((fan, at)) = self.partner_of(id, *partner, output, *pairing) {
                        deps.push(Dep::Partner { fan, at, pairing: *pairing });
                    }
                }
                Binding::Plain { op: upstream, output } => {
                    if let Some(instance) = self.instance_at(*upstream, &keys) {
                        deps.push(Dep::Step { instance, need: Need::Output(output.clone()) });
                    }
                }
                Binding::CollectRecords { op: upstream, output } => {
                    if let Some(instance) = self.instance_at(*upstream, &keys) {
                        deps.push(Dep::Step { instance, need: Need::Records(output.clone()) });
                    }
                }
                Binding::Collect { op: upstream, output, min_success } => {
                    if let Some(level) = plan.ops[*upstream].scope.last()
                        && let Some(producer) = self.instance_at(level.op, &keys)
                    {
                        let fan = self.fan_for(producer, &level.output);
                        deps.push(Dep::Collect {
                            fan,
                            op: *upstream,
                            output: output.clone(),
                            input: input.name.clone(),
                            min_success: *min_success,
                        });
                    }
                }
            }
        }
        deps
    }

    /// Register `waiter` to be woken when its open dependency `dep` may resolve.
    fn wait_on(&mut self, waiter: InstanceId, dep: usize) {
        self.instances[waiter].open_deps += 1;
        match self.instances[waiter].deps[dep] {
            Dep::Step { instance, .. } => self.step_waiters.entry(instance).or_default().push((waiter, dep)),
            Dep::Collect { fan, op, .. } => self.fans[fan].waiters.push((op, waiter, dep)),
            Dep::Partner { fan, ref at, .. } => {
                let at = at.clone();
                self.wait_for_partner(fan, at, waiter, dep);
            }
        }
    }

    /// `None` while the dependency is open; else the facts, judged by the rules.
    fn resolve(&self, waiter: InstanceId, dep: &Dep) -> Option<Outcome<InstanceId>> {
        match dep {
            Dep::Step { instance, need } => {
                let upstream = &self.instances[*instance];
                let ended = upstream.ended()?;
                let (output, supplied) = match need {
                    Need::Output(output) => (output, upstream.output(output).is_some()),
                    Need::Records(output) => {
                        (output, ended == StepStatus::Success && self.records_supplied(*instance, output))
                    }
                };
                Some(rules::after_step(&upstream.step_key, ended, output, supplied))
            }
            Dep::Partner { fan, at, pairing } => self.resolve_partner(*fan, at, *pairing, waiter),
            Dep::Collect { fan: fan_id, op, output, min_success, .. } => {
                // A zipped or joined op's partner may still fail a step of it.
                if self.partners_open(*fan_id, *op) {
                    return None;
                }
                let fan = &self.fans[*fan_id];
                let ended = fan.closed?;
                if fan.unfinished.get(op).copied().unwrap_or(0) > 0 {
                    return None;
                }
                let fan_out = FanOut {
                    producer: &self.instances[fan.producer].step_key,
                    output: &fan.output,
                    ended,
                    required: fan.required,
                    records: fan.keys.len(),
                };
                let clones = fan.children.iter().map(|&id| (id, &self.instances[id])).filter(|(_, c)| c.op == *op);
                // What each clone gave: a clone that succeeded without the collected (optional)
                // output is a missing source, as a skipped one is.
                let clones = clones.map(|(id, c)| rules::Collected {
                    id,
                    key: c.step_key.as_str(),
                    ended: c.ended(),
                    supplied: c.output(output).is_some(),
                });
                Some(rules::collect(fan_out, &self.plan.ops[*op].name, output, clones, *min_success))
            }
        }
    }

    /// Whether `producer`'s dynamic `output` counts as produced for a collect of its records.
    fn records_supplied(&self, producer: InstanceId, output: &str) -> bool {
        let records = self.fan_index.get(&(producer, output.to_owned())).map_or(0, |&f| self.fans[f].keys.len());
        rules::dynamic_output_supplied(records, self.output_required(self.instances[producer].op, output))
    }

    /// Take a resolved dependency: `true` if it is met (with or without failed clones), else the
    /// waiter is skipped or abandoned.
    fn accept(&mut self, waiter: InstanceId, dep: usize, outcome: Outcome<InstanceId>) -> bool {
        match outcome {
            Outcome::Met => true,
            Outcome::MetWithout(missing) => {
                self.tolerate(waiter, dep, missing);
                true
            }
            Outcome::Unmet(unmet) => {
                self.settle(waiter, &unmet);
                false
            }
        }
    }

    /// A `min_success` collect of `waiter` runs without the `missing` clones: their failures no
    /// longer fail the run, and the op is told which clones are missing.
    fn tolerate(&mut self, waiter: InstanceId, dep: usize, missing: Vec<InstanceId>) {
        let input = match &self.instances[waiter].deps[dep] {
            Dep::Collect { input, .. } => input.clone(),
            Dep::Step { .. } | Dep::Partner { .. } => String::new(),
        };
        for id in missing {
            if let Some(record) = self.instances[id].record {
                self.tolerated.insert(record);
            }
            let missing = &self.instances[id];
            let failure = CollectFailure {
                input: input.clone(),
                step_key: missing.step_key.clone(),
                error: missing.error.clone().unwrap_or_default(),
            };
            self.instances[waiter].extra().collect_failures.push(failure);
        }
    }

    /// Put `id` in its final state for a dependency that will never be met.
    fn settle(&mut self, id: InstanceId, unmet: &Unmet) {
        let message = unmet.message(&self.instances[id].step_key);
        if matches!(unmet, Unmet::Invalid(_)) {
            // Failed for what it could not receive, not for what it did: a later run must not
            // take that failure as its result once the pair exists (no inputs digest matches).
            self.instances[id].inputs_digest = Some(super::partners::UNPAIRED.into());
        }
        self.terminate(id, unmet.status(), Some(message));
    }

    /// Give `id` its final status (the first one stands) and queue it for [`Self::drain`].
    pub(super) fn terminate(&mut self, id: InstanceId, status: StepStatus, error: Option<String>) {
        if matches!(self.instances[id].status, Status::Done(_)) {
            return;
        }
        // Once the run is cancelled, what does not run (a dependency was cancelled) is cancelled
        // too, not abandoned or skipped: a resume runs it.
        let (status, error) = if self.cancelling && matches!(status, StepStatus::Abandoned | StepStatus::Skipped) {
            (StepStatus::Cancelled, Some("the run was cancelled before it ran".to_owned()))
        } else {
            (status, error)
        };
        // Not executed in the earlier run and not now, the same way: taken as it was.
        if !matches!(status, StepStatus::Success | StepStatus::Failure)
            && self.reused_for(id).is_some_and(|earlier| earlier.status == status)
        {
            self.instances[id].extra().reused = true;
        }
        let instance = &mut self.instances[id];
        instance.status = Status::Done(status);
        instance.error = error;
        self.terminated.push_back(id);
    }

    /// Tell the dependents of every newly final instance, until nothing changes.
    pub(super) fn drain(&mut self, ready: &mut VecDeque<InstanceId>) {
        while let Some(id) = self.terminated.pop_front() {
            let Status::Done(status) = self.instances[id].status else { continue };
            self.tell_finished(id);
            for fan in self.instances[id].fans.clone() {
                self.close_fan(fan, status, ready);
            }
            for (waiter, dep) in self.step_waiters.remove(&id).unwrap_or_default() {
                self.notify(waiter, dep, ready);
            }
            if let Some(fan) = self.instances[id].fan_parent {
                let op = self.instances[id].op;
                if let Some(count) = self.fans[fan].unfinished.get_mut(&op) {
                    *count = count.saturating_sub(1);
                }
                self.fire_fan(fan, Some(op), ready);
            }
        }
    }

    /// The producer of `fan` ended `status`: no more records come, and if it did not succeed its
    /// clones that have not started never will.
    fn close_fan(&mut self, fan: FanId, status: StepStatus, ready: &mut VecDeque<InstanceId>) {
        self.fans[fan].closed = Some(status);
        if rules::cancels_unstarted_clones(status) {
            let message = rules::cancelled_clone(&self.instances[self.fans[fan].producer].step_key);
            for index in 0..self.fans[fan].children.len() {
                let child = self.fans[fan].children[index];
                if matches!(self.instances[child].status, Status::Waiting | Status::Ready) {
                    self.terminate(child, StepStatus::Cancelled, Some(message.clone()));
                }
            }
        } else {
            self.fail_unemitted(fan);
        }
        self.partner_closed(fan, ready);
        self.settle_pairings(fan, ready);
        self.fire_fan(fan, None, ready);
    }

    /// Wake the collects of `fan` (only those over `op`, if given) that can now resolve.
    pub(super) fn fire_fan(&mut self, fan: FanId, op: Option<usize>, ready: &mut VecDeque<InstanceId>) {
        if self.fans[fan].closed.is_none() {
            return;
        }
        let waiters = std::mem::take(&mut self.fans[fan].waiters);
        // A collect over a zipped or joined op also waits for the op's partners to end.
        let (fire, keep): (Vec<_>, Vec<_>) = waiters.into_iter().partition(|(waiting_op, _, _)| {
            op.is_none_or(|o| o == *waiting_op)
                && self.fans[fan].unfinished.get(waiting_op).copied().unwrap_or(0) == 0
                && !self.partners_open(fan, *waiting_op)
        });
        self.fans[fan].waiters = keep;
        for (_, waiter, dep) in fire {
            self.notify(waiter, dep, ready);
        }
    }

    /// Dependency `dep` of `waiter` may have resolved: take it, and queue the waiter once it has
    /// no open dependency left.
    pub(super) fn notify(&mut self, waiter: InstanceId, dep: usize, ready: &mut VecDeque<InstanceId>) {
        if self.instances[waiter].status != Status::Waiting {
            return;
        }
        let Some(outcome) = self.resolve(waiter, &self.instances[waiter].deps[dep]) else { return };
        if self.accept(waiter, dep, outcome) {
            let instance = &mut self.instances[waiter];
            instance.open_deps -= 1;
            if instance.open_deps == 0 {
                self.make_ready(waiter, ready);
            }
        }
    }
}
