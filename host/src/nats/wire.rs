//! What travels on the bus: a task (one step attempt, for a worker) and the events a worker
//! sends back about one delivery of it. JSON; everything read from the bus is untrusted and is
//! parsed into these types or refused, never trusted half-way.

use serde::{Deserialize, Serialize};

use crate::runtime::{Emission, StepOutcome};
use crate::step::StepSpec;

/// Header: the run a task belongs to (also readable when the body is not).
pub const RUN_HEADER: &str = "Sandmap-Run";
/// Header: the task's step key.
pub const STEP_HEADER: &str = "Sandmap-Step";
/// Header: the task's attempt.
pub const ATTEMPT_HEADER: &str = "Sandmap-Attempt";

/// A task's body: the step to run, plain data (its component by digest).
#[derive(Debug, Serialize, Deserialize)]
pub struct TaskBody {
    /// The step attempt.
    pub spec: StepSpec,
}

/// What a worker tells of one delivery of a task.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventMessage {
    /// The step key.
    pub key: String,
    /// The attempt.
    pub attempt: u32,
    /// The task message's sequence in the tasks stream.
    pub task_sequence: u64,
    /// Which delivery of the task's message (1 for the first): a redelivery is not an attempt.
    pub delivery: u64,
    /// The worker's name.
    pub worker: String,
    /// What happened.
    pub event: Event,
}

/// What happened in a delivery.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker started the step.
    Started,
    /// The step emitted this, the worker's host accepted it; `index` counts from 0 within the
    /// delivery, so the coordinator can compare a redelivery with what it already accepted.
    Emitted {
        /// Its place among this delivery's emissions.
        index: u64,
        /// What was emitted.
        emission: Emission,
    },
    /// The step ended, after `emitted` emissions.
    Finished {
        /// How many emissions this delivery sent before it.
        emitted: u64,
        /// How it went.
        outcome: StepOutcome,
    },
    /// The task was delivered this many times without a result: the worker gives up on it.
    Lost {
        /// Deliveries so far.
        deliveries: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_event_is_refused() {
        for text in [
            "",
            "{}",
            r#"{"key":"a","attempt":1,"delivery":1,"worker":"w","event":{"event":"exploded"}}"#,
            r#"{"key":"a","attempt":-1,"delivery":1,"worker":"w","event":{"event":"started"}}"#,
            r#"{"key":"a","attempt":1,"delivery":1,"worker":"w","event":{"event":"emitted","index":0,"emission":{"kind":"output","output":"result","value":"{","metadata":[]}}}"#,
        ] {
            assert!(serde_json::from_str::<EventMessage>(text).is_err(), "{text}");
        }
        let good = r#"{"key":"a","attempt":1,"task_sequence":9,"delivery":2,"worker":"w","event":{"event":"lost","deliveries":4}}"#;
        assert!(matches!(serde_json::from_str::<EventMessage>(good).unwrap().event, Event::Lost { deliveries: 4 }));
    }
}
