//! Report assembly: at the end of the run, the bookkeeping becomes the [`RunReport`] — the run's
//! status (Dagster's rules, in [`super::rules`]), the outputs of the ops nothing consumes, and
//! every step's report in Dagster's order, collected in place from the instances.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{Instance, InstanceId, RunState, Status, rules};
use crate::executor::report::{RunReport, RunStatus, StepReport, StepStatus, millis};
use crate::value::JsonText;

impl RunState<'_> {
    /// The run's report, consuming the bookkeeping.
    pub(crate) fn into_report(mut self, run_id: String, duration: Duration, cancelled: bool) -> RunReport {
        let (status, error) = self.status();
        let (status, error) = if cancelled {
            let ended = self.instances.iter().filter(|i| i.ended().is_some_and(|s| s != StepStatus::Cancelled)).count();
            (
                RunStatus::Cancelled,
                Some(format!("Run for \"{}\" was cancelled after {ended} steps ended.", self.plan.job)),
            )
        } else {
            (status, error)
        };
        let outputs = self.leaf_outputs();
        let (steps, reused) = self.step_reports();
        RunReport {
            run_id,
            job: self.plan.job.clone(),
            status,
            error,
            steps,
            outputs,
            duration_ms: millis(duration),
            parent_run_id: self.reuse.map(|r| r.parent.clone()),
            reused,
        }
    }

    /// The run's status and error, from its failed steps and those a collect tolerated.
    fn status(&self) -> (RunStatus, Option<String>) {
        let (mut failed, mut tolerated) = (Vec::new(), 0usize);
        for (id, instance) in self.instances.iter().enumerate() {
            if instance.status == Status::Done(StepStatus::Failure) {
                if self.is_tolerated(id) {
                    tolerated += 1;
                } else {
                    failed.push(instance.step_key.clone());
                }
            }
        }
        let status = rules::run_status(failed.len(), tolerated);
        (status, rules::run_error(&self.plan.job, status, &failed, tolerated))
    }

    /// Whether a `min_success` collect accepted the failure of `id` (or of the clone it was
    /// made under).
    fn is_tolerated(&self, mut id: InstanceId) -> bool {
        while let Some((fan, index)) = self.instances[id].record {
            if self.tolerated.contains(&(fan, index)) {
                return true;
            }
            id = self.fans[fan].producer;
        }
        false
    }

    /// The report of every step that ran (or was not run) in this run, and the keys of those
    /// taken from an earlier one.
    ///
    /// Breadth-first by op, as Dagster lists steps: every clone of an op before the next op. Each
    /// op's steps in emission order, outermost level first: `b[k0][j1]` before `b[k1][j0]`
    /// whichever inner fan-out ran first (creation order would depend on timing).
    fn step_reports(&mut self) -> (Vec<StepReport>, Vec<String>) {
        let paths: Vec<Vec<u32>> = (0..self.instances.len()).map(|id| self.emission_path(id)).collect();
        let mut reused = Vec::new();
        let mut instances = std::mem::take(&mut self.instances);
        // In place: a stable sort's scratch buffer would cost half the instances again.
        instances.sort_unstable_by(|a, b| (a.op, &paths[a.seq as usize]).cmp(&(b.op, &paths[b.seq as usize])));
        // `into_iter().filter().map().collect()` reuses the instances' buffer for the reports (see
        // the size test below): no second buffer the size of the run.
        let steps = instances
            .into_iter()
            .filter(|i| {
                let was_reused = i.reused();
                if was_reused {
                    reused.push(i.step_key.clone());
                }
                !was_reused
            })
            .map(|i| self.step_report(i))
            .collect();
        (steps, reused)
    }

    /// `instance`'s report, its parts moved rather than copied (its records too: nothing reads
    /// the fan-outs once the report is being assembled).
    fn step_report(&mut self, instance: Instance) -> StepReport {
        let records = self.take_records_of(&instance);
        let status = instance.final_status();
        let worker = instance.worker();
        let extra = instance.extra.map(|e| *e).unwrap_or_default();
        StepReport {
            key: instance.step_key,
            op: self.plan.ops[instance.op].name.clone(),
            mapping_key: instance.keys.last().cloned(),
            status,
            error: instance.error,
            attempts: instance.attempts,
            previous_attempts: extra.previous_attempts,
            duration_ms: millis(instance.duration),
            worker,
            records,
            log: extra.log,
            values: instance.outputs,
            output_metadata: extra.output_metadata,
        }
    }

    /// `{op: {output: value}}` for every op nothing consumes; mapped ops and dynamic outputs
    /// give objects keyed by mapping key (nested keys joined with `/`), in emission order.
    fn leaf_outputs(&self) -> Map<String, Value> {
        let mut all = Map::new();
        for (op_index, op) in self.plan.ops.iter().enumerate() {
            if !op.consumed {
                all.insert(op.name.clone(), Value::Object(self.outputs_of(op_index)));
            }
        }
        all
    }

    /// `{output: value}` of the op `op_index` (per mapping key, for a mapped op).
    fn outputs_of(&self, op_index: usize) -> Map<String, Value> {
        let op = &self.plan.ops[op_index];
        let mut outputs = Map::new();
        let mut ids: Vec<InstanceId> =
            (0..self.instances.len()).filter(|&i| self.instances[i].op == op_index).collect();
        if !op.scope.is_empty() {
            ids.sort_by_cached_key(|&id| self.emission_path(id));
        }
        for instance in ids.iter().map(|&id| &self.instances[id]) {
            if instance.status != Status::Done(StepStatus::Success) {
                continue;
            }
            for def in op.outputs.iter() {
                let value = if def.dynamic {
                    Value::Object(self.records_by_key(instance, &def.name))
                } else {
                    match instance.output(&def.name) {
                        Some(value) => value.to_value(),
                        None => continue,
                    }
                };
                if op.scope.is_empty() {
                    outputs.insert(def.name.clone(), value);
                } else if let Value::Object(per_key) =
                    outputs.entry(def.name.clone()).or_insert_with(|| Value::Object(Map::new()))
                {
                    per_key.insert(instance.keys.join("/"), value);
                }
            }
        }
        outputs
    }

    /// `{mapping key: value}` of the records `instance` emitted to `output`, in emission order.
    fn records_by_key(&self, instance: &Instance, output: &str) -> Map<String, Value> {
        self.fan_index
            .get(&(self.by_key[&instance.step_key], output.to_owned()))
            .map(|&f| {
                let fan = &self.fans[f];
                fan.keys.iter().cloned().zip(fan.values.iter().map(JsonText::to_value)).collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `into_report` collects the steps' reports in place, in the buffer of the run's step
    /// records: only while a report is no larger than a record (else a second buffer the size of
    /// the run is allocated, ~370 bytes more per clone at the peak).
    #[test]
    fn a_step_report_fits_where_its_instance_was() {
        assert!(std::mem::size_of::<StepReport>() <= std::mem::size_of::<Instance>());
        assert_eq!(std::mem::align_of::<StepReport>(), std::mem::align_of::<Instance>());
    }
}
