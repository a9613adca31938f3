//! The coordinator's account of one step attempt in flight on the bus: which deliveries of it
//! started where, which emissions it accepted, and when it ended. Turns what workers tell
//! (possibly twice, late, or from a delivery presumed lost) into the events the scheduler sees,
//! each once. Pure: no I/O, so its rules are unit-tested without a server.
//!
//! The rules:
//! - The first `Started` of any delivery is the attempt's start; later ones name more workers.
//! - Emissions are compared by their place in the delivery: record `i` of a redelivery must be
//!   record `i` of what was accepted ("non-deterministic fan-out" otherwise), and is applied
//!   only once. Each new one is checked against the step's outputs and limits first: a worker's
//!   message is untrusted input.
//! - The first `Finished` counts; anything after it is late and ignored.
//! - `Lost` (a worker saw the task delivered too often) fails the attempt with `worker lost`,
//!   naming the workers that had started it.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::definition::OutputDefinition;
use crate::executor::{RunnerEvent, TaskId};
use crate::keys::validate_mapping_key;
use crate::runtime::{Emission, StepFailure, StepLog, StepOutcome};
use crate::step::{Limits, StepSpec};

use super::wire::{Event, EventMessage};

/// One attempt on the bus.
pub struct Flight {
    task: TaskId,
    key: String,
    attempt: u32,
    outputs: Arc<[OutputDefinition]>,
    limits: Limits,
    /// Hashes of the accepted emissions, in order.
    accepted: Vec<u64>,
    keys: HashSet<(usize, String)>,
    produced: Vec<bool>,
    /// Per delivery (the task message's stream sequence, and its delivery count): the worker
    /// and how many emissions it has sent. Two copies of one attempt (a re-publish after the
    /// server's duplicate window) are told apart by their sequence.
    deliveries: BTreeMap<(u64, u64), (String, u64)>,
    /// Records per output, against `max_fan_out`; all emissions, against `max_emits`.
    records: Vec<u64>,
    emitted: u64,
    started: bool,
    ended: bool,
}

impl Flight {
    /// An attempt just handed to the bus.
    pub fn new(task: TaskId, spec: &StepSpec) -> Self {
        Self {
            task,
            key: spec.key.clone(),
            attempt: spec.attempt,
            outputs: spec.outputs.clone(),
            limits: spec.limits,
            accepted: Vec::new(),
            keys: HashSet::new(),
            produced: vec![false; spec.outputs.len()],
            deliveries: BTreeMap::new(),
            records: vec![0; spec.outputs.len()],
            emitted: 0,
            started: false,
            ended: false,
        }
    }

    /// Which attempt it is.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether its result has been taken.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The workers that started a delivery of it, in the order they did.
    pub fn workers(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for (worker, _) in self.deliveries.values() {
            if !seen.contains(&worker.as_str()) {
                seen.push(worker);
            }
        }
        seen
    }

    /// Apply what a worker told; the event for the scheduler, if any.
    pub fn apply(&mut self, message: EventMessage) -> Option<RunnerEvent> {
        let EventMessage { task_sequence, delivery, worker, event, .. } = message;
        let copy = (task_sequence, delivery);
        if self.ended {
            tracing::info!(
                "ignored a late event of step {} attempt {} (delivery {delivery}, worker {worker}): it already ended",
                self.key,
                self.attempt
            );
            return None;
        }
        let (task, attempt) = (self.task, self.attempt);
        match event {
            Event::Started => {
                self.deliveries.entry(copy).or_insert_with(|| (worker, 0));
                if self.started {
                    return None;
                }
                self.started = true;
                Some(RunnerEvent::Started { task, attempt })
            }
            Event::Emitted { index, emission } => {
                let sent = &mut self.deliveries.entry(copy).or_insert_with(|| (worker.clone(), 0)).1;
                if index != *sent {
                    tracing::warn!(
                        "ignored emission {index} of step {} delivery {delivery} (worker {worker}): expected {sent}",
                        self.key
                    );
                    return None;
                }
                *sent += 1;
                let hash = emission_hash(&emission);
                let place = usize::try_from(index).unwrap_or(usize::MAX);
                if let Some(&earlier) = self.accepted.get(place) {
                    if earlier == hash {
                        return None;
                    }
                    return self.fail(format!(
                        "non-deterministic fan-out: step {} attempt {attempt} was delivered again (delivery {delivery}, \
                         worker {worker}) and its emission {} ({}) differs from the one accepted from an earlier \
                         delivery; a step that is redelivered must emit the same records in the same order",
                        self.key,
                        index + 1,
                        describe(&emission)
                    ));
                }
                if let Err(reason) = self.check(&emission) {
                    return self.fail(format!(
                        "worker {worker} sent an emission of step {} that is refused: {reason}",
                        self.key
                    ));
                }
                self.accepted.push(hash);
                Some(RunnerEvent::Emitted { task, attempt, emission })
            }
            Event::Finished { emitted, outcome } => {
                let sent = self.deliveries.get(&copy).map_or(0, |(_, sent)| *sent);
                if sent != emitted {
                    return self.fail(format!(
                        "worker {worker} finished step {} after {emitted} emissions, but {sent} of them arrived",
                        self.key
                    ));
                }
                if outcome.result.is_ok() && (emitted as usize) < self.accepted.len() {
                    return self.fail(format!(
                        "non-deterministic fan-out: step {} attempt {attempt} was delivered again (delivery {delivery}, \
                         worker {worker}) and emitted {emitted} records and outputs, where an earlier delivery had \
                         emitted {}; a step that is redelivered must emit the same records in the same order",
                        self.key,
                        self.accepted.len()
                    ));
                }
                if outcome.result.is_ok()
                    && let Some(missing) =
                        self.outputs.iter().zip(&self.produced).find(|(o, p)| o.required && !o.dynamic && !**p)
                {
                    return self.fail(format!(
                        "worker {worker} reported step {} a success without its required output \"{}\"",
                        self.key, missing.0.name
                    ));
                }
                self.ended = true;
                Some(RunnerEvent::Finished { task, attempt, outcome, worker: Some(worker) })
            }
            Event::Lost { deliveries } => {
                let workers = self.workers();
                let tried = if workers.is_empty() {
                    "no worker started it".to_owned()
                } else {
                    format!("workers tried: {}", workers.join(", "))
                };
                self.fail(format!(
                    "worker lost: step {} attempt {attempt} was delivered {deliveries} times and no worker finished it \
                     ({tried})",
                    self.key
                ))
            }
        }
    }

    /// End the attempt with `reason`.
    pub fn fail(&mut self, reason: String) -> Option<RunnerEvent> {
        self.end_with(StepFailure::Remote(reason))
    }

    /// End the attempt with `failure`, here (no worker reported it).
    pub fn end_with(&mut self, failure: StepFailure) -> Option<RunnerEvent> {
        self.ended = true;
        let outcome = StepOutcome { result: Err(failure), log: StepLog::default(), duration: Default::default() };
        Some(RunnerEvent::Finished { task: self.task, attempt: self.attempt, outcome, worker: None })
    }

    /// What the worker's host checked already, checked again: the step's outputs, its keys and
    /// its value limit.
    fn check(&mut self, emission: &Emission) -> Result<(), String> {
        let (name, value, dynamic) = match emission {
            Emission::Record { output, value, .. } => (output, value, true),
            Emission::Output { output, value, .. } => (output, value, false),
        };
        let index = self
            .outputs
            .iter()
            .position(|o| o.name == *name)
            .ok_or_else(|| format!("output \"{name}\" does not exist"))?;
        if self.outputs[index].dynamic != dynamic {
            return Err(format!("output \"{name}\" is not {}", if dynamic { "dynamic" } else { "plain" }));
        }
        self.emitted += 1;
        if self.emitted > self.limits.max_emits {
            return Err(format!("more than max_emits {}", self.limits.max_emits));
        }
        if dynamic {
            self.records[index] += 1;
            if self.records[index] > self.limits.max_fan_out {
                return Err(format!("more than max_fan_out {} records on output \"{name}\"", self.limits.max_fan_out));
            }
        }
        if value.len() as u64 > self.limits.max_value_bytes {
            return Err(format!("a value of {} bytes on output \"{name}\" is over max_value_bytes", value.len()));
        }
        match emission {
            Emission::Record { key, .. } => {
                validate_mapping_key(key).map_err(|e| e.to_string())?;
                if !self.keys.insert((index, key.clone())) {
                    return Err(format!("mapping_key \"{key}\" on output \"{name}\" came twice"));
                }
            }
            Emission::Output { .. } => {
                if std::mem::replace(&mut self.produced[index], true) {
                    return Err(format!("output \"{name}\" came twice"));
                }
            }
        }
        Ok(())
    }
}

fn emission_hash(emission: &Emission) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    match serde_json::to_vec(emission) {
        Ok(bytes) => bytes.hash(&mut hasher),
        // Only a non-string map key could fail, and an emission has none.
        Err(_) => format!("{emission:?}").hash(&mut hasher),
    }
    hasher.finish()
}

fn describe(emission: &Emission) -> String {
    match emission {
        Emission::Record { output, key, .. } => format!("record \"{key}\" of output \"{output}\""),
        Emission::Output { output, .. } => format!("output \"{output}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::JsonText;

    fn spec() -> StepSpec {
        StepSpec {
            key: "files".into(),
            op: "files".into(),
            mapping_key: None,
            attempt: 1,
            component: "00".into(),
            config: JsonText::parse("{}").unwrap(),
            inputs: vec![],
            grants: vec![],
            limits: Limits::default(),
            outputs: Arc::from(vec![OutputDefinition {
                name: "result".into(),
                description: String::new(),
                dynamic: true,
                required: true,
            }]),
            collect_failures: vec![],
        }
    }

    fn message(delivery: u64, worker: &str, event: Event) -> EventMessage {
        EventMessage { key: "files".into(), attempt: 1, task_sequence: 1, delivery, worker: worker.into(), event }
    }

    fn record(index: u64, key: &str, value: &str) -> Event {
        Event::Emitted {
            index,
            emission: Emission::Record {
                output: "result".into(),
                key: key.into(),
                value: JsonText::parse(value).unwrap(),
                metadata: vec![],
            },
        }
    }

    fn finished(emitted: u64) -> Event {
        Event::Finished {
            emitted,
            outcome: StepOutcome { result: Ok(()), log: StepLog::default(), duration: Default::default() },
        }
    }

    fn error(event: Option<RunnerEvent>) -> String {
        match event {
            Some(RunnerEvent::Finished { outcome: StepOutcome { result: Err(failure), .. }, .. }) => {
                failure.to_string()
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_redelivery_that_repeats_the_records_adds_only_what_is_new() {
        let mut flight = Flight::new(TaskId(7), &spec());
        assert!(matches!(flight.apply(message(1, "a", Event::Started)), Some(RunnerEvent::Started { .. })));
        assert!(matches!(flight.apply(message(1, "a", record(0, "x", "1"))), Some(RunnerEvent::Emitted { .. })));
        // Worker a dies; b gets delivery 2 and emits x again, then y.
        assert!(flight.apply(message(2, "b", Event::Started)).is_none());
        assert!(flight.apply(message(2, "b", record(0, "x", "1"))).is_none());
        assert!(matches!(flight.apply(message(2, "b", record(1, "y", "2"))), Some(RunnerEvent::Emitted { .. })));
        let done = flight.apply(message(2, "b", finished(2)));
        assert!(matches!(done, Some(RunnerEvent::Finished { worker: Some(ref w), .. }) if w == "b"));
        // a comes back from a network cut: late, ignored.
        assert!(flight.apply(message(1, "a", finished(1))).is_none());
        assert_eq!(flight.workers(), ["a", "b"]);
    }

    #[test]
    fn a_redelivery_that_emits_other_records_fails_the_step() {
        let mut flight = Flight::new(TaskId(1), &spec());
        flight.apply(message(1, "a", record(0, "x", "1")));
        let failure = error(flight.apply(message(2, "b", record(0, "x", "2"))));
        assert!(
            failure.starts_with(
                "non-deterministic fan-out: step files attempt 1 was delivered again (delivery 2, worker b)"
            ),
            "{failure}"
        );
        assert!(flight.ended());
    }

    #[test]
    fn a_redelivery_that_emits_fewer_records_fails_the_step() {
        let mut flight = Flight::new(TaskId(1), &spec());
        flight.apply(message(1, "a", record(0, "x", "1")));
        flight.apply(message(1, "a", record(1, "y", "1")));
        flight.apply(message(2, "b", record(0, "x", "1")));
        let failure = error(flight.apply(message(2, "b", finished(1))));
        assert!(
            failure.contains("emitted 1 records and outputs, where an earlier delivery had emitted 2"),
            "{failure}"
        );
    }

    #[test]
    fn lost_deliveries_name_the_workers_tried() {
        let mut flight = Flight::new(TaskId(1), &spec());
        flight.apply(message(1, "a", Event::Started));
        flight.apply(message(2, "b", Event::Started));
        let failure = error(flight.apply(message(4, "c", Event::Lost { deliveries: 4 })));
        assert_eq!(
            failure,
            "worker lost: step files attempt 1 was delivered 4 times and no worker finished it (workers tried: a, b)"
        );
    }

    #[test]
    fn emissions_the_outputs_do_not_allow_are_refused() {
        let mut flight = Flight::new(TaskId(1), &spec());
        flight.apply(message(1, "a", record(0, "x", "1")));
        let failure = error(flight.apply(message(1, "a", record(1, "x", "2"))));
        assert_eq!(
            failure,
            "worker a sent an emission of step files that is refused: mapping_key \"x\" on output \"result\" came twice"
        );
        let mut flight = Flight::new(TaskId(1), &spec());
        let failure = error(flight.apply(message(1, "a", record(0, "bad key!", "1"))));
        assert!(failure.starts_with("worker a sent an emission of step files that is refused: "), "{failure}");
        let mut flight = Flight::new(TaskId(1), &spec());
        let plain = Event::Emitted {
            index: 0,
            emission: Emission::Output {
                output: "nope".into(),
                value: JsonText::parse("1").unwrap(),
                metadata: vec![],
            },
        };
        let failure = error(flight.apply(message(1, "a", plain)));
        assert!(failure.ends_with("output \"nope\" does not exist"), "{failure}");
    }

    #[test]
    fn a_finish_whose_emissions_went_missing_fails_rather_than_losing_them() {
        let mut flight = Flight::new(TaskId(1), &spec());
        flight.apply(message(1, "a", record(0, "x", "1")));
        let failure = error(flight.apply(message(1, "a", finished(3))));
        assert_eq!(failure, "worker a finished step files after 3 emissions, but 1 of them arrived");
    }
}
