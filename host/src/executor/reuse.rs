//! Re-execution: the results of a parent run that a new run takes instead of running the step
//! again (Dagster's re-execution from failure and by step selection, case 23, without its bugs
//! with dynamic steps).
//!
//! The parent is read whole: the steps it ran and the ones it took from its own parent, which
//! are recorded into each run as it takes them. So a step R2 took from R1 is a step of R2, and a
//! re-execution of R2 sees it there, at any depth of re-execution.
//!
//! Which steps run again is decided on the parent's steps: `--from-failure`, every step that
//! did not succeed and everything downstream of it; `--step`, exactly the steps selected (with
//! Dagster's `+` and `*` levels). Every other step of the parent is taken as it was, whatever
//! its status (a failure that was not selected stands), but a result only while it still fits:
//! a clone only if its record has the value it was made from, and any step only if it receives
//! exactly the inputs it had (the executor checks both when the step is ready, see
//! [`ReusedStep::made_from`] and [`ReusedStep::same_inputs`]). Otherwise it runs.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use super::report::{EndedStep, RunStatus, StepReport, StepStatus};
use super::selection::{Selector, StepGraph};
use crate::job::Plan;
use crate::step::CollectFailure;
use crate::value::{JsonText, Metadata};

/// What a reused step produced in the earlier run.
#[derive(Debug, Clone)]
pub struct ReusedStep {
    /// How it ended there: `Success` and `Failure` are results (a failure stands: a resumed run
    /// does not retry what already ended, and a re-execution does not retry what it did not
    /// select); any other status is a step that was not executed and is not selected now.
    pub status: StepStatus,
    /// Its error, or why it was not executed.
    pub error: Option<String>,
    /// Its plain outputs.
    pub values: Vec<(String, JsonText)>,
    /// Their metadata, for the outputs that have some.
    pub output_metadata: Vec<(String, Metadata)>,
    /// Its records, in the earlier run's emission order: (output, key, value, metadata).
    pub records: Vec<(String, String, JsonText, Metadata)>,
    /// For a clone: the sha256 of the record value it was made from. A clone is reused only from
    /// the same value: a fan-out that runs again may emit the same key with another value.
    pub record_digest: Option<String>,
    /// The digest of the inputs it ran with ([`inputs_digest`]); `None` for a step that never
    /// started, or one recorded by a sandmap that did not keep it.
    pub inputs_digest: Option<String>,
}

impl ReusedStep {
    /// Whether this earlier step is the one cloned now from `record` (its value there).
    pub fn made_from(&self, record: Option<&JsonText>) -> bool {
        match (&self.record_digest, record) {
            (Some(earlier), Some(value)) => crate::runtime::digest(value.as_str().as_bytes()) == *earlier,
            _ => true,
        }
    }

    /// Whether this earlier step ended with a result (succeeded or failed), rather than not
    /// being executed.
    pub fn is_result(&self) -> bool {
        matches!(self.status, StepStatus::Success | StepStatus::Failure)
    }

    /// Whether a step now receiving inputs of digest `digest` may take this earlier step: a
    /// result only for the same inputs; a step not executed there (and not selected now) stays
    /// so whatever it would receive.
    pub fn same_inputs(&self, digest: &str) -> bool {
        !self.is_result() || self.inputs_digest.as_deref().is_none_or(|earlier| earlier == digest)
    }
}

/// A step a `--step` selection names by its full key (`op[k]`, no `?`): it must come into being
/// in the re-execution, else the run fails naming it (a fan-out that ran again may no longer
/// emit its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedStep {
    /// Its step key.
    pub key: String,
    /// Its op.
    pub op: String,
    /// Its mapping keys, outermost first.
    pub keys: Vec<String>,
}

/// The parent results a re-execution reuses, by step key.
#[derive(Debug, Clone, Default)]
pub struct Reuse {
    /// The run the results come from.
    pub parent: String,
    /// Step key → its parent results.
    pub steps: HashMap<String, ReusedStep>,
    /// Steps the selection names one by one.
    pub named: Vec<NamedStep>,
}

/// A recorded run as a re-execution reads it.
#[derive(Debug, Clone, Copy)]
pub struct ParentRun<'a> {
    /// Its id.
    pub run_id: &'a str,
    /// Its status.
    pub status: RunStatus,
    /// Every step it holds: the ones it ran and the ones it took from its own parent.
    pub steps: &'a [EndedStep],
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
    /// A `--step` selection that is not one.
    #[error("Invalid step selection \"{selection}\": {reason}")]
    InvalidSelection {
        /// The selection as given.
        selection: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored record without its value (recorded by an older sandmap).
    #[error("run {0} was recorded without its values; it cannot be re-executed")]
    NoValues(String),
}

impl Reuse {
    /// Run again every step of `parent` that did not succeed (failed, abandoned, cancelled,
    /// skipped) and everything downstream of one (a `min_success` collect that ran without a
    /// failed clone, too); take every other step, and the clones that never came into being
    /// run.
    pub fn from_failure(parent: &ParentRun<'_>, plan: &Plan) -> Result<Self, ReuseError> {
        if parent.status == RunStatus::Success {
            return Err(ReuseError::NotFailed(parent.run_id.to_owned()));
        }
        let graph = graph_of(parent, plan);
        let unfinished: Vec<usize> =
            (0..parent.steps.len()).filter(|&i| parent.steps[i].report.status != StepStatus::Success).collect();
        let rerun: HashSet<usize> = graph.downstream(&unfinished, usize::MAX).into_iter().collect();
        Self::keeping(parent, &rerun, Vec::new())
    }

    /// Run again exactly the steps `selection` names (Dagster's syntax, see
    /// [`super::selection`]) and take every other step of `parent` as it was.
    pub fn selecting(parent: &ParentRun<'_>, selection: &[String], plan: &Plan) -> Result<Self, ReuseError> {
        let graph = graph_of(parent, plan);
        let mut rerun: HashSet<usize> = HashSet::new();
        let mut named: Vec<NamedStep> = Vec::new();
        for text in selection {
            let selector = Selector::parse(text)?;
            let matched: Vec<usize> =
                (0..parent.steps.len()).filter(|&i| selector.matches(&parent.steps[i].report.key)).collect();
            if matched.is_empty() {
                return Err(ReuseError::UnknownStep(selector.name.clone()));
            }
            if let Some((op, keys)) = selector.exact()
                && !keys.is_empty()
                && !named.iter().any(|n| n.key == selector.name)
            {
                named.push(NamedStep { key: selector.name.clone(), op: op.to_owned(), keys });
            }
            rerun.extend(graph.upstream(&matched, selector.up));
            rerun.extend(graph.downstream(&matched, selector.down));
        }
        Self::keeping(parent, &rerun, named)
    }

    /// Resume an interrupted run: every step that ended before the host died (succeeded or
    /// failed) stands, and so does every step it had taken from its parent; `ended` are those
    /// steps as recorded.
    pub fn resuming(run_id: &str, ended: &[EndedStep]) -> Result<Self, ReuseError> {
        let mut steps = HashMap::new();
        for step in ended {
            if step.reused || matches!(step.report.status, StepStatus::Success | StepStatus::Failure) {
                steps.insert(step.report.key.clone(), reused_step(run_id, step)?);
            }
        }
        Ok(Self { parent: run_id.to_owned(), steps, named: Vec::new() })
    }

    /// This re-execution's plan, with what `resumed` (the re-execution itself, interrupted)
    /// recorded taking precedence: what the interrupted run ended stands, and what it had not
    /// come to yet is taken from its parent as planned.
    pub fn overlaid_by(mut self, resumed: Reuse) -> Self {
        self.parent = resumed.parent;
        self.steps.extend(resumed.steps);
        self.named.extend(resumed.named);
        self
    }

    fn keeping(parent: &ParentRun<'_>, rerun: &HashSet<usize>, named: Vec<NamedStep>) -> Result<Self, ReuseError> {
        let mut steps = HashMap::new();
        for (i, step) in parent.steps.iter().enumerate() {
            if !rerun.contains(&i) {
                steps.insert(step.report.key.clone(), reused_step(parent.run_id, step)?);
            }
        }
        Ok(Self { parent: parent.run_id.to_owned(), steps, named })
    }
}

fn graph_of(parent: &ParentRun<'_>, plan: &Plan) -> StepGraph {
    let keys: Vec<&str> = parent.steps.iter().map(|s| s.report.key.as_str()).collect();
    StepGraph::new(plan, &keys)
}

fn reused_step(run_id: &str, ended: &EndedStep) -> Result<ReusedStep, ReuseError> {
    let step: &StepReport = &ended.report;
    let mut records = Vec::with_capacity(step.records.len());
    for record in &step.records {
        let value = record.value.clone().ok_or_else(|| ReuseError::NoValues(run_id.to_owned()))?;
        records.push((record.output.clone(), record.mapping_key.clone(), value, record.metadata.clone()));
    }
    Ok(ReusedStep {
        status: step.status,
        error: match step.status {
            StepStatus::Failure => Some(step.error.clone().unwrap_or_default()),
            _ => step.error.clone(),
        },
        values: step.values.clone(),
        output_metadata: step.output_metadata.clone(),
        records,
        record_digest: ended.record_digest.clone(),
        inputs_digest: ended.inputs_digest.clone(),
    })
}

/// The sha256 of what a step receives: each input's name and value text (in the op's input
/// order; an optional input with no value is absent), then the clones its `min_success`
/// collects run without. Every part is length-prefixed, so no two different inputs give the
/// same bytes.
pub fn inputs_digest(inputs: &[(String, JsonText)], collect_failures: &[CollectFailure]) -> String {
    fn part(hasher: &mut Sha256, text: &str) {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    let mut hasher = Sha256::new();
    hasher.update((inputs.len() as u64).to_le_bytes());
    for (name, value) in inputs {
        part(&mut hasher, name);
        part(&mut hasher, value.as_str());
    }
    hasher.update((collect_failures.len() as u64).to_le_bytes());
    for failure in collect_failures {
        part(&mut hasher, &failure.input);
        part(&mut hasher, &failure.step_key);
        part(&mut hasher, &failure.error);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> JsonText {
        JsonText::parse(text.to_owned()).unwrap()
    }

    #[test]
    fn the_inputs_digest_tells_names_values_and_failures_apart() {
        let a = inputs_digest(&[("x".into(), value("1"))], &[]);
        assert_eq!(a, inputs_digest(&[("x".into(), value("1"))], &[]));
        assert_ne!(a, inputs_digest(&[("x".into(), value("2"))], &[]));
        assert_ne!(a, inputs_digest(&[("y".into(), value("1"))], &[]));
        assert_ne!(a, inputs_digest(&[], &[]));
        // Moving a boundary between name and value changes the digest.
        assert_ne!(
            inputs_digest(&[("ab".into(), value("1")), ("c".into(), value("2"))], &[]),
            inputs_digest(&[("a".into(), value("1")), ("bc".into(), value("2"))], &[])
        );
        let failure = CollectFailure { input: "x".into(), step_key: "a[k]".into(), error: "boom".into() };
        assert_ne!(a, inputs_digest(&[("x".into(), value("1"))], &[failure]));
    }

    #[test]
    fn a_reused_step_stands_only_for_its_record_and_inputs() {
        let step = ReusedStep {
            status: StepStatus::Success,
            error: None,
            values: Vec::new(),
            output_metadata: Vec::new(),
            records: Vec::new(),
            record_digest: Some(crate::runtime::digest(b"1")),
            inputs_digest: Some("abc".into()),
        };
        assert!(step.made_from(Some(&value("1"))));
        assert!(!step.made_from(Some(&value("2"))));
        assert!(step.same_inputs("abc") && !step.same_inputs("abd"));
        let not_executed = ReusedStep { status: StepStatus::Abandoned, ..step.clone() };
        assert!(not_executed.same_inputs("abd"));
        let older = ReusedStep { record_digest: None, inputs_digest: None, ..step };
        assert!(older.made_from(Some(&value("2"))) && older.same_inputs("anything"));
    }
}
