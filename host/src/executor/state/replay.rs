//! Replay of reused steps: in a re-execution or a resumed run, a step whose earlier result stands
//! (`executor/reuse.rs` decides which) is not run. Its outputs are taken as they were and its
//! records replayed in the earlier emission order, which re-creates its clones (each reused or
//! run in turn) and keeps every collect in the original order.

use std::collections::VecDeque;

use super::{FanId, InstanceId, RunState, Status, held};
use crate::executor::ReusedStep;
use crate::executor::report::StepStatus;
use crate::runtime::{Emission, digest};

impl<'p> RunState<'p> {
    /// The earlier result of the step `key` made from `record`, if it stands: a clone's only if
    /// its record has the value it was made from then (a fan-out that ran again may emit the same
    /// key with another value).
    pub(super) fn reused_for(&self, key: &str, record: Option<(FanId, usize)>) -> Option<&'p ReusedStep> {
        let reused = self.reuse?.steps.get(key)?;
        let same_record = match (&reused.record_digest, record) {
            (Some(earlier), Some((fan, index))) => {
                self.fans[fan].values.get(index).is_some_and(|v| digest(v.as_str().as_bytes()) == *earlier)
            }
            _ => true,
        };
        same_record.then_some(reused)
    }

    /// Take the new instance `id` as it ended before: its outputs, its records, its status. A
    /// failure stands too (a resumed run does not retry what already ended).
    pub(super) fn replay(&mut self, id: InstanceId, reused: &'p ReusedStep, ready: &mut VecDeque<InstanceId>) {
        let instance = &mut self.instances[id];
        instance.outputs = reused.values.clone();
        instance.status = Status::Running;
        instance.extra().reused = true;
        match &reused.error {
            None => {
                for (output, key, value, metadata) in reused.records.iter().cloned() {
                    self.release(id, Emission::Record { output, key, value, metadata }, ready);
                }
                self.terminate(id, StepStatus::Success, None);
            }
            Some(error) => {
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
                self.terminate(id, StepStatus::Failure, Some(error.clone()));
            }
        }
    }
}
