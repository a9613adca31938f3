//! A ready instance turned into the [`StepSpec`] a worker runs: its inputs gathered from upstream
//! outputs (broadcast along its key path), the record it was cloned from, and the values of the
//! clones its collects gather, in emission order.

use std::sync::Arc;

use super::{Dep, InstanceId, RunState, Status};
use crate::executor::inputs_digest;
use crate::executor::report::StepStatus;
use crate::job::{Binding, PlannedInput};
use crate::runtime::LoadedOp;
use crate::step::StepSpec;
use crate::value::JsonText;

impl RunState<'_> {
    /// Take a ready instance and build its step; `None` if it was cancelled while it waited.
    pub(crate) fn start(&mut self, id: InstanceId, ops: &[Arc<LoadedOp>]) -> Option<StepSpec> {
        let plan = self.plan;
        if self.instances[id].status != Status::Ready {
            return None;
        }
        self.instances[id].status = Status::Running;
        let inputs = self.inputs_of(id);
        let instance = &self.instances[id];
        let op = &plan.ops[instance.op];
        let collect_failures = instance.extra.as_ref().map(|e| e.collect_failures.clone()).unwrap_or_default();
        let digest = match &instance.inputs_digest {
            Some(digest) => digest.clone(),
            None => inputs_digest(&inputs, &collect_failures).into(),
        };
        let spec = StepSpec {
            key: instance.step_key.clone(),
            op: op.name.clone(),
            mapping_key: instance.keys.last().cloned(),
            attempt: instance.attempts + 1,
            component: ops[op.job_index].digest.clone(),
            config: op.config.clone(),
            inputs,
            grants: op.grants.iter().map(|g| g.grant.clone()).collect(),
            limits: op.limits,
            outputs: op.outputs.clone(),
            collect_failures,
        };
        self.instances[id].inputs_digest = Some(digest);
        Some(spec)
    }

    /// The inputs of `id`, in its op's input order (an optional input nothing was produced for
    /// is absent).
    fn inputs_of(&self, id: InstanceId) -> Vec<(String, JsonText)> {
        let op = &self.plan.ops[self.instances[id].op];
        op.inputs.iter().filter_map(|input| Some((input.name.clone(), self.input_value(id, input)?))).collect()
    }

    /// The digest of what `id` receives now ([`inputs_digest`]).
    pub(super) fn inputs_digest_of(&self, id: InstanceId) -> String {
        let failures = self.instances[id].extra.as_ref().map(|e| e.collect_failures.as_slice()).unwrap_or_default();
        inputs_digest(&self.inputs_of(id), failures)
    }

    /// The value of `input` for `id`; `None` for an optional input nothing was produced for.
    fn input_value(&self, id: InstanceId, input: &PlannedInput) -> Option<JsonText> {
        let instance = &self.instances[id];
        match &input.binding {
            Binding::Plain { op: upstream, output } => {
                self.instance_at(*upstream, &instance.keys).and_then(|u| self.instances[u].output(output)).cloned()
            }
            Binding::Record { op: emitter, output } => self.record_at(id, *emitter, output).cloned(),
            Binding::Partner { op: partner, output, pairing } => self.partner_value(id, *partner, output, *pairing),
            Binding::CollectRecords { op: upstream, output } => Some(
                self.instance_at(*upstream, &instance.keys)
                    .and_then(|u| self.fan_index.get(&(u, output.clone())))
                    .map_or_else(|| JsonText::array([]), |&f| JsonText::array(&self.fans[f].values)),
            ),
            Binding::Collect { op: upstream, output, .. } => {
                let fan = instance.deps.iter().find_map(|d| match d {
                    Dep::Collect { fan, op, .. } if op == upstream => Some(*fan),
                    _ => None,
                });
                // Only the clones that succeeded: with `min_success`, the others are left out.
                let values: Vec<&JsonText> = fan
                    .map(|f| self.fans[f].children.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .map(|&c| &self.instances[c])
                    .filter(|c| c.op == *upstream && c.status == Status::Done(StepStatus::Success))
                    .filter_map(|c| c.output(output))
                    .collect();
                Some(JsonText::array(values))
            }
        }
    }

    /// The record of `emitter.output` that `id` descends from: its own, or, for an input mapped
    /// over an outer level of a nested map, an ancestor's.
    fn record_at(&self, id: InstanceId, emitter: usize, output: &str) -> Option<&JsonText> {
        let mut current = id;
        while let Some((fan, index)) = self.instances[current].record {
            let producer = self.fans[fan].producer;
            if self.instances[producer].op == emitter && self.fans[fan].output == output {
                return self.fans[fan].values.get(index);
            }
            current = producer;
        }
        None
    }
}
