//! Observer payloads: the [`EndedStep`] an observer (the run store's recorder, the progress
//! display) is handed the moment a step ends, and the step's records as report rows, which the
//! run's final report uses too.

use std::sync::Arc;

use super::{Instance, InstanceId, RunState};
use crate::executor::report::{EndedStep, RecordReport, StepReport, millis};
use crate::runtime::digest;

impl RunState<'_> {
    /// Tell the observer that a worker started the current attempt of a step (not when it was
    /// handed out: a handed-out task may wait for a free worker).
    pub(crate) fn tell_started(&self, id: InstanceId, attempt: u32) {
        if let Some(observer) = self.observer {
            let instance = &self.instances[id];
            observer.step_started(instance.op, &instance.step_key, attempt);
        }
    }

    /// Hand the observer a finished step's report (a copy: the run keeps its own for the end).
    /// The digest of its inputs goes with it: nothing in the run needs it once the step is final.
    pub(super) fn tell_finished(&mut self, id: InstanceId) {
        let inputs_digest = self.instances[id].inputs_digest.take();
        let Some(observer) = self.observer else { return };
        let instance = &self.instances[id];
        let extra = instance.extra.as_deref();
        let report = StepReport {
            key: instance.step_key.clone(),
            op: self.plan.ops[instance.op].name.clone(),
            mapping_key: instance.keys.last().cloned(),
            status: instance.final_status(),
            error: instance.error.clone(),
            attempts: instance.attempts,
            previous_attempts: extra.map(|e| e.previous_attempts.clone()).unwrap_or_default(),
            duration_ms: millis(instance.duration),
            worker: instance.worker(),
            records: self.records_of(instance),
            // The log is shared, not copied: held once for the run, its report and the recorder.
            log: extra.map(|e| e.log.clone()).unwrap_or_default(),
            values: instance.outputs.clone(),
            output_metadata: extra.map(|e| e.output_metadata.clone()).unwrap_or_default(),
        };
        let ended = EndedStep {
            report,
            reused: instance.reused(),
            // What a resumed run checks before it reuses the clone: the value it was made from.
            record_digest: instance
                .record
                .and_then(|(fan, index)| self.fans[fan].values.get(index))
                .map(|v| digest(v.as_str().as_bytes())),
            // What a later run checks before it takes the step's result: the inputs it had.
            inputs_digest: inputs_digest.map(String::from),
            // Steps end in any order; this lets a store keep the report's.
            sort_key: std::iter::once(u32::try_from(instance.op).unwrap_or(u32::MAX))
                .chain(self.emission_path(id))
                .collect(),
        };
        observer.step_finished(instance.op, &Arc::new(ended));
    }

    /// Every record `instance` emitted, moved out of its fan-outs (which are left empty), for the
    /// run's report: a copy would hold every key and metadata entry of the run twice at the end.
    pub(super) fn take_records_of(&mut self, instance: &Instance) -> Vec<RecordReport> {
        let mut records = Vec::new();
        for &f in &instance.fans {
            let fan = &mut self.fans[f];
            let (keys, metadata, values) =
                (std::mem::take(&mut fan.keys), std::mem::take(&mut fan.metadata), std::mem::take(&mut fan.values));
            records.reserve_exact(keys.len());
            records.extend(keys.into_iter().zip(metadata).zip(values).map(|((mapping_key, metadata), value)| {
                RecordReport { output: fan.output.clone(), mapping_key, metadata, value: Some(value) }
            }));
        }
        records
    }

    /// Every record `instance` emitted, in emission order per output.
    pub(super) fn records_of(&self, instance: &Instance) -> Vec<RecordReport> {
        instance
            .fans
            .iter()
            .flat_map(|&f| {
                let fan = &self.fans[f];
                fan.keys.iter().zip(&fan.metadata).zip(&fan.values).map(|((key, metadata), value)| RecordReport {
                    output: fan.output.clone(),
                    mapping_key: key.clone(),
                    metadata: metadata.clone(),
                    value: Some(value.clone()),
                })
            })
            .collect()
    }
}
