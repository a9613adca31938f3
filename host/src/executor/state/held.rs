//! Held records: while an attempt of an op with retries runs, its records are held back instead
//! of cloned, because a clone must not start from a record that a retry may not emit again. When
//! the attempt ends they are released (it succeeded), dropped (it is retried in a fresh sandbox)
//! or kept in the run record without clones (it failed for good).
//!
//! An op without retries streams: each record is released, and cloned, as it is emitted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::rules;
use super::{Extra, InstanceId, RunState, Status};
use crate::executor::report::{AttemptReport, StepStatus, millis};
use crate::job::RetryPolicy;
use crate::runtime::{Emission, StepFailure, StepOutcome};

/// Whether the steps of an op with `policy` hold their records until an attempt succeeds.
pub(super) fn holds_records(policy: RetryPolicy) -> bool {
    policy.max > 0
}

impl Extra {
    /// The extra part of an instance that holds its records, holding none yet.
    pub(super) fn holding() -> Self {
        Self { held_records: Some(Vec::new()), ..Self::default() }
    }
}

impl RunState<'_> {
    /// A running step emitted a record or an output.
    pub(crate) fn emitted(&mut self, id: InstanceId, emission: Emission, ready: &mut VecDeque<InstanceId>) {
        let held = self.instances[id].extra.as_mut().and_then(|e| e.held_records.as_mut());
        if let (Some(held), Emission::Record { .. }) = (held, &emission) {
            held.push(emission);
            return;
        }
        self.release(id, emission, ready);
    }

    /// A step attempt finished (on `worker`, if it ran elsewhere).
    ///
    /// Returns the delay before a retry, if the attempt failed and the op's retry policy allows
    /// another; the instance is then runnable again once the caller re-queues it.
    pub(crate) fn finished(
        &mut self,
        id: InstanceId,
        outcome: StepOutcome,
        worker: Option<String>,
        ready: &mut VecDeque<InstanceId>,
    ) -> Option<Duration> {
        let StepOutcome { result, log, duration } = outcome;
        let instance = &mut self.instances[id];
        if worker.is_some() {
            instance.extra().worker = worker;
        }
        instance.attempts += 1;
        instance.duration = duration;
        if !log.entries.is_empty() || log.truncated_bytes > 0 {
            instance.extra().log = Arc::new(log);
        } else if let Some(extra) = instance.extra.as_mut() {
            extra.log = Arc::new(log);
        }
        let held = self.take_held(id);
        match result {
            Ok(()) => self.succeeded(id, held, ready),
            // Stopped by a cancel: not retried; what it emitted stays in the run record.
            Err(failure @ StepFailure::Cancelled) => {
                self.ended_unsuccessfully(id, StepStatus::Cancelled, &failure, held)
            }
            Err(failure) => {
                let retries = self.plan.ops[self.instances[id].op].retries;
                if let Some(delay) = rules::retry_after(self.instances[id].attempts, retries) {
                    self.retry(id, &failure, duration, held.len());
                    return Some(delay);
                }
                self.ended_unsuccessfully(id, StepStatus::Failure, &failure, held);
            }
        }
        self.drain(ready);
        None
    }

    /// The records held for the attempt that just ended (none for an op that does not hold).
    fn take_held(&mut self, id: InstanceId) -> Vec<Emission> {
        let extra = self.instances[id].extra.as_mut();
        extra.and_then(|e| e.held_records.as_mut()).map(std::mem::take).unwrap_or_default()
    }

    /// The attempt succeeded: its held records are released (and cloned), in emission order.
    fn succeeded(&mut self, id: InstanceId, held: Vec<Emission>, ready: &mut VecDeque<InstanceId>) {
        for record in held {
            self.release(id, record, ready);
        }
        self.terminate(id, StepStatus::Success, None);
    }

    /// Retry in a fresh sandbox: this attempt's outputs and `records` held records are dropped,
    /// and the attempt is kept in the step's report.
    fn retry(&mut self, id: InstanceId, failure: &StepFailure, duration: Duration, records: usize) {
        let instance = &mut self.instances[id];
        let attempt = instance.attempts;
        // The attempt's log goes with it; the next attempt logs afresh.
        let log = std::mem::take(&mut instance.extra().log);
        instance.extra().previous_attempts.push(AttemptReport {
            attempt,
            error: failure.to_string(),
            duration_ms: millis(duration),
            records,
            log,
        });
        instance.outputs.clear();
        instance.extra().output_metadata.clear();
        instance.status = Status::Ready;
    }

    /// The step failed for good (or was cancelled): records emitted before the failure stay in
    /// the run record, with no clone.
    fn ended_unsuccessfully(&mut self, id: InstanceId, status: StepStatus, failure: &StepFailure, held: Vec<Emission>) {
        for record in held {
            if let Emission::Record { output, key, value, metadata } = record {
                self.append_record(id, &output, key, value, metadata);
            }
        }
        self.terminate(id, status, Some(failure.to_string()));
    }
}
