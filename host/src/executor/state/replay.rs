//! Replay of reused steps: in a re-execution or a resumed run, a step whose earlier result stands
//! (`executor/reuse.rs` decides which) is not run. It is taken when it is ready, and only if it
//! still fits: a clone only for the record value it was made from, and any result only for the
//! inputs it had. Its outputs are taken as they were and its records replayed in the earlier
//! emission order, which re-creates its clones (each reused or run in turn) and keeps every
//! collect in the original order.
//!
//! Also here: a clone a re-execution's selection names one by one that does not come into being
//! (the fan-out ran again without its key) fails, naming it.

use std::collections::VecDeque;

use super::{FanId, InstanceId, RunState, Status, held};
use crate::executor::ReusedStep;
use crate::executor::report::StepStatus;
use crate::runtime::Emission;

impl<'p> RunState<'p> {
    /// The earlier run's step `id`, if there is one made from the same record (a fan-out that
    /// ran again may emit the same key with another value).
    pub(super) fn reused_for(&self, id: InstanceId) -> Option<&'p ReusedStep> {
        let instance = &self.instances[id];
        let reused = self.reuse?.steps.get(&instance.step_key)?;
        let record = instance.record.and_then(|(fan, index)| self.fans[fan].values.get(index));
        reused.made_from(record).then_some(reused)
    }

    /// Every dependency of `id` is met: take its earlier result if one stands for the record
    /// and inputs it has now, else queue it to run.
    pub(super) fn make_ready(&mut self, id: InstanceId, ready: &mut VecDeque<InstanceId>) {
        if let Some(reused) = self.reused_for(id) {
            if !reused.is_result() {
                // Not executed there and not selected now: it stays so (and received nothing).
                self.replay(id, reused, ready);
                return;
            }
            let digest = self.inputs_digest_of(id);
            let same = reused.same_inputs(&digest);
            self.instances[id].inputs_digest = Some(digest.into());
            if same {
                self.replay(id, reused, ready);
                return;
            }
        }
        self.instances[id].status = Status::Ready;
        ready.push_back(id);
    }

    /// Take the new instance `id` as it ended before: its outputs, its records, its status. A
    /// failure stands too (a resumed run does not retry what already ended, a re-execution what
    /// it did not select), and a step that was not executed there stays so.
    fn replay(&mut self, id: InstanceId, reused: &'p ReusedStep, ready: &mut VecDeque<InstanceId>) {
        let instance = &mut self.instances[id];
        instance.outputs = reused.values.clone();
        if !reused.output_metadata.is_empty() {
            instance.extra().output_metadata = reused.output_metadata.clone();
        }
        instance.status = Status::Running;
        instance.extra().reused = true;
        match reused.status {
            StepStatus::Success => {
                for (output, key, value, metadata) in reused.records.iter().cloned() {
                    self.release(id, Emission::Record { output, key, value, metadata }, ready);
                }
                self.terminate(id, StepStatus::Success, None);
            }
            StepStatus::Failure => {
                // As it happened: a fan-out's clones started from each record as it came (and
                // the ones that ended before the failure stand, the others are cancelled),
                // unless the op has retries, whose records were held and never cloned.
                let held = held::holds_records(self.plan.ops[self.instances[id].op].retries);
                for (output, key, value, metadata) in reused.records.iter().cloned() {
                    if held {
                        self.append_record(id, &output, key, value, metadata);
                    } else {
                        self.release(id, Emission::Record { output, key, value, metadata }, ready);
                    }
                }
                self.terminate(id, StepStatus::Failure, reused.error.clone());
            }
            not_executed => self.terminate(id, not_executed, reused.error.clone()),
        }
    }

    /// A fan-out that ran again (in a re-execution) and ended without a key the selection names
    /// one by one: that clone fails, naming the key (and so the run fails). Nothing else changes:
    /// the other clones and the collects over them go by the keys the fan-out emitted.
    pub(super) fn fail_unemitted(&mut self, fan: FanId) {
        let Some(reuse) = self.reuse else { return };
        let producer = self.fans[fan].producer;
        if reuse.named.is_empty() || self.instances[producer].reused() {
            return;
        }
        let producer_op = self.instances[producer].op;
        let output = self.fans[fan].output.clone();
        let clone_ops = self.clones_of.get(&(producer_op, output.clone())).cloned().unwrap_or_default();
        for named in &reuse.named {
            let Some(op) = clone_ops.iter().copied().find(|&op| self.plan.ops[op].name == named.op) else { continue };
            let (Some((key, outer)), producer_keys) = (named.keys.split_last(), &self.instances[producer].keys) else {
                continue;
            };
            if outer != producer_keys.as_slice() || self.by_key.contains_key(&named.key) {
                continue;
            }
            let message = format!(
                "Step selection refers to step {}, but step {} ran again and did not emit mapping key \"{key}\" on \
                 output \"{output}\" this time",
                named.key, self.instances[producer].step_key
            );
            let id = self.create(op, named.keys.clone(), None);
            self.terminate(id, StepStatus::Failure, Some(message));
        }
    }

    /// At the end of a re-execution: a step its selection names one by one that never came
    /// into being (a fan-out above it did not emit its key, or failed first) fails, naming it.
    pub(super) fn fail_never_created(&mut self) {
        for named in self.reuse.map(|r| r.named.as_slice()).unwrap_or_default() {
            let op = self.plan.ops.iter().position(|op| op.name == named.op);
            if let Some(op) = op.filter(|_| !self.by_key.contains_key(&named.key)) {
                let id = self.create(op, named.keys.clone(), None);
                let message = format!(
                    "Step selection refers to step {}, which this re-execution never created: a fan-out step above it \
                     did not emit its key",
                    named.key
                );
                self.terminate(id, StepStatus::Failure, Some(message));
            }
        }
    }
}
