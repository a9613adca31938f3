//! What a run did: the report `sandmap run` prints (and, with `--json`, serializes).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::runtime::StepLog;
use crate::value::{JsonText, Metadata};

/// A step's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Ran and produced its outputs.
    Success,
    /// Ran and failed.
    Failure,
    /// Not run: an upstream step failed or was not executed (Dagster's "abandoned").
    Abandoned,
    /// Not run: an upstream optional output was not produced (Dagster's "skipped").
    Skipped,
    /// Not run: its fan-out step failed before this clone started.
    Cancelled,
}

impl StepStatus {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Abandoned => "abandoned",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How an execution ended. (What a run store knows beside, that a run is still running or was
/// interrupted, is the store's: `store::RecordedStatus`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No step failed.
    Success,
    /// Some clones failed, and every failure was accepted by a `min_success` collect.
    SuccessWithFailures,
    /// At least one step failed.
    Failure,
    /// It was cancelled (Ctrl-C, SIGTERM, `sandmap cancel`): what ended stands, and
    /// `sandmap resume` runs the rest.
    Cancelled,
}

impl RunStatus {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::SuccessWithFailures => "success_with_failures",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One record a step emitted (values are in the outputs or the consumers' inputs).
#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    /// The dynamic output.
    pub output: String,
    /// Its mapping key.
    pub mapping_key: String,
    /// Metadata attached to it.
    #[serde(serialize_with = "metadata_map")]
    pub metadata: Metadata,
    /// Its value (kept in the run store; not part of `--json`, which would repeat every value).
    #[serde(skip)]
    pub value: Option<JsonText>,
}

fn metadata_map<S: serde::Serializer>(metadata: &Metadata, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(metadata.len()))?;
    for (key, value) in metadata {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

/// An attempt of a step that was retried.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AttemptReport {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Why it failed.
    pub error: String,
    /// Its wall time, in milliseconds.
    pub duration_ms: f64,
    /// Records it emitted (dropped with it).
    pub records: usize,
    /// What it logged (empty for an attempt recorded before sandmap kept it).
    #[serde(default)]
    pub log: Arc<StepLog>,
}

/// One step of the run.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// `op`, `op[key]`, `op[key][key2]`.
    pub key: String,
    /// The op's name in the job.
    pub op: String,
    /// The innermost mapping key of a mapped clone.
    pub mapping_key: Option<String>,
    /// Final status.
    pub status: StepStatus,
    /// Why it failed or was not run.
    pub error: Option<String>,
    /// Attempts made (0 if it never ran).
    pub attempts: u32,
    /// The failed attempts before the last one, when the step was retried. Like every key of
    /// a step, present even when empty: a script's schema must not change with the data.
    pub previous_attempts: Vec<AttemptReport>,
    /// Wall time of its last attempt, in milliseconds.
    pub duration_ms: f64,
    /// Where its last attempt ran: a worker's name, `local` (this process), or none if it did
    /// not run in this run.
    pub worker: Option<String>,
    /// Dynamic records it emitted, in emission order.
    pub records: Vec<RecordReport>,
    /// Its captured log (shared with the run's own state and its observers, never copied).
    pub log: Arc<StepLog>,
    /// The values of the plain outputs it produced (kept in the run store; not part of `--json`).
    #[serde(skip)]
    pub values: Vec<(String, JsonText)>,
    /// The metadata the op attached to its plain outputs, `{output: {key: value}}` in `--json`
    /// (only outputs that have some; the key is always there).
    #[serde(serialize_with = "output_metadata_map")]
    pub output_metadata: Vec<(String, Metadata)>,
}

fn output_metadata_map<S: serde::Serializer>(outputs: &[(String, Metadata)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    struct Entries<'a>(&'a Metadata);
    impl serde::Serialize for Entries<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            metadata_map(self.0, s)
        }
    }
    let mut map = s.serialize_map(Some(outputs.len()))?;
    for (output, metadata) in outputs {
        map.serialize_entry(output, &Entries(metadata))?;
    }
    map.end()
}

/// A step as it ended, as a [`super::RunObserver`] is told of it: its report, and what a store
/// needs to resume the run. (Not in [`StepReport`]: the run's report is collected in place from
/// the run's own step records, which needs a report no larger than one of those.)
#[derive(Debug, Clone)]
pub struct EndedStep {
    /// The step's report.
    pub report: StepReport,
    /// Its result was taken from an earlier run (a re-execution's parent, or the interrupted run
    /// being resumed) instead of being run.
    pub reused: bool,
    /// For a clone: the sha256 of the record value it was made from, so that a resumed run
    /// reuses the clone only for the same value.
    pub record_digest: Option<String>,
    /// The digest of the inputs the step ran with (`reuse::inputs_digest`): a later run takes
    /// its result only for the same inputs. `None` for a step that never started.
    pub inputs_digest: Option<String>,
    /// Where the step stands in the report: its op's place in the plan, then the emission index
    /// of each record it descends from, so that a store keeps report order although steps end in
    /// any order.
    pub sort_key: Vec<u32>,
}

/// A run's report: of an execution that ended (`S` = [`RunStatus`]), or read back from a run
/// store, whose status may also be running or interrupted.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport<S = RunStatus> {
    /// Unique, time-ordered run id.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// How it ended (or, read back from a store, how it stands).
    pub status: S,
    /// For a failed run: which steps failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every step that came into being, in the order it did.
    pub steps: Vec<StepReport>,
    /// Outputs of every op no other op consumes: `{op: {output: value}}`. A mapped op's value is
    /// an object keyed by mapping key (nested keys joined with `/`), in emission order; so is a
    /// dynamic output's.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// For a re-execution: the run it re-executes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    /// For a re-execution: the parent's steps whose results it reused instead of running them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reused: Vec<String>,
}

impl<S> RunReport<S> {
    /// The same report with its status mapped.
    pub fn with_status<T>(self, status: impl FnOnce(S) -> T) -> RunReport<T> {
        let Self { run_id, job, status: old, error, steps, outputs, duration_ms, parent_run_id, reused } = self;
        RunReport { run_id, job, status: status(old), error, steps, outputs, duration_ms, parent_run_id, reused }
    }

    /// The step with this key.
    pub fn step(&self, key: &str) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.key == key)
    }

    /// `outputs[op][output]`.
    pub fn output(&self, op: &str, output: &str) -> Option<&serde_json::Value> {
        self.outputs.get(op)?.get(output)
    }
}

pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
