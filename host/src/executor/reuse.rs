//! Re-execution: the results of a parent run that a new run takes instead of running the step
//! again (Dagster's re-execution from failure, case 23, without its bugs with dynamic steps).

use std::collections::{HashMap, HashSet};

use super::report::{EndedStep, RunReport, StepReport, StepStatus};
use crate::value::{JsonText, Metadata};

/// What a reused step produced in the earlier run.
#[derive(Debug, Clone)]
pub struct ReusedStep {
    /// Its plain outputs.
    pub values: Vec<(String, JsonText)>,
    /// Its records, in the earlier run's emission order: (output, key, value, metadata).
    pub records: Vec<(String, String, JsonText, Metadata)>,
    /// `Some(error)`: the step failed, and the failure stands (a resumed run does not retry what
    /// already ended; `reexecute --from-failure` does).
    pub error: Option<String>,
    /// For a clone: the sha256 of the record value it was made from. A clone is reused only from
    /// the same value: a fan-out that runs again (it was killed before it ended) may emit the
    /// same key with another value.
    pub record_digest: Option<String>,
}

/// The parent results a re-execution reuses, by step key.
#[derive(Debug, Clone, Default)]
pub struct Reuse {
    /// The run the results come from.
    pub parent: String,
    /// Step key → its parent results.
    pub steps: HashMap<String, ReusedStep>,
}

/// Why a re-execution cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReuseError {
    /// `--from-failure` on a run that did not fail.
    #[error("Cannot reexecute from failure a run that is not failed: run {0} succeeded")]
    NotFailed(String),
    /// A `--step` selection that names no step of the parent.
    #[error("Step selection refers to unknown step: {0}")]
    UnknownStep(String),
    /// A stored record without its value (recorded by an older sandmap).
    #[error("run {0} was recorded without its values; it cannot be re-executed")]
    NoValues(String),
}

/// The parts of a step key: `b[k][j]` → (`b`, [`k`, `j`]).
fn split_key(key: &str) -> (&str, Vec<&str>) {
    let op_end = key.find('[').unwrap_or(key.len());
    let keys = key[op_end..].trim_start_matches('[').trim_end_matches(']');
    let keys = if keys.is_empty() { Vec::new() } else { keys.split("][").collect() };
    (&key[..op_end], keys)
}

impl Reuse {
    /// Reuse every step that succeeded in `parent`: only failed, abandoned, cancelled and
    /// skipped steps (and clones that never came into being) run again.
    pub fn from_failure(parent: &RunReport) -> Result<Self, ReuseError> {
        if parent.status == super::RunStatus::Success {
            return Err(ReuseError::NotFailed(parent.run_id.clone()));
        }
        Self::keeping(parent, |_| true)
    }

    /// Run again the steps `selection` names and reuse every other successful step. A selection
    /// is a step key (`op`, `op[k]`), `op[?]` (every key of the op), and either with a trailing
    /// `*` for everything downstream of it too.
    pub fn selecting(
        parent: &RunReport,
        selection: &[String],
        downstream_of: impl Fn(&str, &str) -> bool,
    ) -> Result<Self, ReuseError> {
        let mut rerun: HashSet<String> = HashSet::new();
        for selector in selection {
            let (pattern, with_downstream) = match selector.strip_suffix('*') {
                Some(p) => (p, true),
                None => (selector.as_str(), false),
            };
            let (op, keys) = split_key(pattern);
            let matched: Vec<&str> = parent
                .steps
                .iter()
                .map(|s| s.key.as_str())
                .filter(|key| {
                    let (step_op, step_keys) = split_key(key);
                    step_op == op
                        && step_keys.len() == keys.len()
                        && keys.iter().zip(&step_keys).all(|(a, b)| *a == "?" || a == b)
                })
                .collect();
            if matched.is_empty() {
                return Err(ReuseError::UnknownStep(selector.clone()));
            }
            for key in matched {
                rerun.insert(key.to_owned());
                if with_downstream {
                    let (_, selected_keys) = split_key(key);
                    for step in &parent.steps {
                        let (step_op, step_keys) = split_key(&step.key);
                        // Downstream in the graph and on the same key path (a prefix either way:
                        // a chained clone, or a collect over it).
                        let related = step_keys.iter().zip(&selected_keys).all(|(a, b)| a == b);
                        if related && downstream_of(op, step_op) {
                            rerun.insert(step.key.clone());
                        }
                    }
                }
            }
        }
        Self::keeping(parent, |key| !rerun.contains(key))
    }

    /// Resume an interrupted run: every step that ended before the host died (succeeded or
    /// failed) stands; `ended` are those steps as recorded, reused ones included.
    pub fn resuming(run_id: &str, ended: &[EndedStep]) -> Result<Self, ReuseError> {
        let mut steps = HashMap::new();
        for step in ended.iter().filter(|s| matches!(s.report.status, StepStatus::Success | StepStatus::Failure)) {
            steps.insert(step.report.key.clone(), reused_step(run_id, &step.report, step.record_digest.clone())?);
        }
        Ok(Self { parent: run_id.to_owned(), steps })
    }

    fn keeping(parent: &RunReport, keep: impl Fn(&str) -> bool) -> Result<Self, ReuseError> {
        let mut steps = HashMap::new();
        for step in parent.steps.iter().filter(|s| s.status == StepStatus::Success && keep(&s.key)) {
            steps.insert(step.key.clone(), reused_step(&parent.run_id, step, None)?);
        }
        Ok(Self { parent: parent.run_id.clone(), steps })
    }
}

fn reused_step(run_id: &str, step: &StepReport, record_digest: Option<String>) -> Result<ReusedStep, ReuseError> {
    let mut records = Vec::with_capacity(step.records.len());
    for record in &step.records {
        let value = record.value.clone().ok_or_else(|| ReuseError::NoValues(run_id.to_owned()))?;
        records.push((record.output.clone(), record.mapping_key.clone(), value, record.metadata.clone()));
    }
    Ok(ReusedStep {
        values: step.values.clone(),
        records,
        error: (step.status == StepStatus::Failure).then(|| step.error.clone().unwrap_or_default()),
        record_digest,
    })
}

impl Reuse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_keys_split_into_op_and_keys() {
        assert_eq!(split_key("emit"), ("emit", vec![]));
        assert_eq!(split_key("process_file[a_txt]"), ("process_file", vec!["a_txt"]));
        assert_eq!(split_key("b[k][j]"), ("b", vec!["k", "j"]));
        assert_eq!(split_key("b[?]"), ("b", vec!["?"]));
    }
}
