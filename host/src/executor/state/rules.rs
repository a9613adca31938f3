//! Dagster's rules, as pure functions of plain data: what an ended dependency makes of the step
//! waiting on it (runnable, skipped or abandoned), when a collect may run (`min_success`), what a
//! failed fan-out does to its unstarted clones, when an attempt is retried, the run's final status,
//! and the texts Dagster prints for each (`_core/execution/plan/active.py`).
//!
//! Nothing here sees the run's graph, wasm or I/O: the bookkeeping gathers the facts (statuses,
//! counts, settings) and these functions decide. So the rules are tested without running a step,
//! and any executor that gathers the same facts decides the same way.

use std::time::Duration;

use crate::executor::report::{RunStatus, StepStatus};
use crate::job::{MinSuccess, RetryPolicy};

/// How one dependency of a waiting step resolved, once what it waits on has ended. `C` names a
/// clone (the run's instance id; anything in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome<C> {
    /// Met: it no longer holds the step back.
    Met,
    /// A `min_success` collect is met without these failed or unexecuted clones.
    MetWithout(Vec<C>),
    /// It will never be met: the step does not run.
    Unmet(Unmet),
}

/// Why a dependency will never be met, with the upstream steps (or `step.output`s) to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unmet {
    /// Upstream was skipped, or an optional output was not produced.
    Skipped(Vec<String>),
    /// Upstream failed.
    Failed(Vec<String>),
    /// Upstream was not executed (abandoned or cancelled).
    NotExecuted(Vec<String>),
    /// The step cannot be made as the job says (a zipped clone with no partner record): it
    /// fails with this text.
    Invalid(String),
}

impl Unmet {
    /// The final status of the step it holds: a skip propagates as a skip (Dagster skips
    /// everything downstream of a missing optional output); anything else abandons the step.
    pub(super) fn status(&self) -> StepStatus {
        match self {
            Self::Skipped(_) => StepStatus::Skipped,
            Self::Failed(_) | Self::NotExecuted(_) => StepStatus::Abandoned,
            Self::Invalid(_) => StepStatus::Failure,
        }
    }

    /// Dagster's text for `step`, word for word (users grep their logs for it).
    pub(super) fn message(&self, step: &str) -> String {
        match self {
            Self::Skipped(deps) => format!("Skipping step {step} due to skipped dependencies: {}.", list(deps)),
            Self::Failed(deps) => format!("Dependencies for step {step} failed: {}. Not executing.", list(deps)),
            Self::NotExecuted(deps) => {
                format!("Dependencies for step {step} were not executed: {}. Not executing.", list(deps))
            }
            Self::Invalid(text) => text.clone(),
        }
    }
}

/// A dependency on one output of the step `upstream`, which ended `ended`. `supplied`: whether it
/// produced what the dependency reads (only looked at if it succeeded; for a collected dynamic
/// output see [`dynamic_output_supplied`]).
pub(super) fn after_step<C>(upstream: &str, ended: StepStatus, output: &str, supplied: bool) -> Outcome<C> {
    match ended {
        StepStatus::Success if supplied => Outcome::Met,
        StepStatus::Success => Outcome::Unmet(Unmet::Skipped(vec![format!("{upstream}.{output}")])),
        StepStatus::Failure => Outcome::Unmet(Unmet::Failed(vec![upstream.to_owned()])),
        StepStatus::Skipped => Outcome::Unmet(Unmet::Skipped(vec![upstream.to_owned()])),
        StepStatus::Abandoned | StepStatus::Cancelled => Outcome::Unmet(Unmet::NotExecuted(vec![upstream.to_owned()])),
    }
}

/// Whether a dynamic output with `records` records counts as produced: an optional one with none
/// was not (what reads it is skipped); a required one with none is the empty list.
pub(super) fn dynamic_output_supplied(records: usize, required: bool) -> bool {
    records > 0 || required
}

/// The fan-out a collect gathers from, once the step that emits it has ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct FanOut<'a> {
    /// The emitting step's key.
    pub(super) producer: &'a str,
    /// The dynamic output.
    pub(super) output: &'a str,
    /// How the emitting step ended.
    pub(super) ended: StepStatus,
    /// Whether the output is required.
    pub(super) required: bool,
    /// Records it emitted.
    pub(super) records: usize,
}

/// One clone a collect gathers from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Collected<'k, C> {
    /// Its id.
    pub(super) id: C,
    /// Its step key.
    pub(super) key: &'k str,
    /// Its final status (`None` if it has none yet).
    pub(super) ended: Option<StepStatus>,
    /// Whether it produced the collected output (only looked at if it succeeded).
    pub(super) supplied: bool,
}

/// A collect of output `output` of the clones of op `op` (its name) made from `fan`'s records,
/// once they have all ended. `clones`: in emission order; only read if the fan-out succeeded.
///
/// Dagster's fan-in rules: a fan-out that did not succeed leaves the collect nothing to run on; any
/// failed clone abandons the collect; skipped clones, and clones that did not produce the
/// (optional) output, are left out, and a collect all of whose sources are missing is skipped
/// (Dagster's `test_multi_out_map`). With `min_success`, enough successful clones let the collect
/// run without the rest.
pub(super) fn collect<'k, C>(
    fan: FanOut<'_>,
    op: &str,
    output: &str,
    clones: impl IntoIterator<Item = Collected<'k, C>>,
    min_success: Option<MinSuccess>,
) -> Outcome<C> {
    match fan.ended {
        StepStatus::Success => {}
        StepStatus::Failure => return Outcome::Unmet(Unmet::Failed(vec![fan.producer.to_owned()])),
        StepStatus::Skipped => {
            return Outcome::Unmet(Unmet::Skipped(vec![format!("{}.{}", fan.producer, fan.output)]));
        }
        StepStatus::Abandoned | StepStatus::Cancelled => {
            return Outcome::Unmet(Unmet::NotExecuted(vec![fan.producer.to_owned()]));
        }
    }
    if fan.records == 0 {
        return if dynamic_output_supplied(0, fan.required) {
            Outcome::Met
        } else {
            Outcome::Unmet(Unmet::Skipped(vec![format!("{}.{}", fan.producer, fan.output)]))
        };
    }
    Tally::of(clones, output).outcome(op, min_success)
}

/// How the clones a collect gathers ended.
struct Tally<C> {
    /// Clones counted, ended or not.
    total: usize,
    succeeded: usize,
    skipped: usize,
    /// The missing sources, in emission order: a skipped clone's key, or `key.output` for a
    /// clone that succeeded without the output. Named only if some clone did the latter (when
    /// every clone was skipped, the collect's source is named `op[?]`).
    absent: Vec<String>,
    /// Whether a clone succeeded without the output.
    unproduced: bool,
    /// Keys of the failed clones.
    failed: Vec<String>,
    /// Keys of the abandoned or cancelled clones.
    not_executed: Vec<String>,
    /// The failed and unexecuted clones, in emission order: what a `min_success` collect is told.
    missing: Vec<C>,
}

impl<C> Tally<C> {
    fn of<'k>(clones: impl IntoIterator<Item = Collected<'k, C>>, output: &str) -> Self {
        let mut tally = Self {
            total: 0,
            succeeded: 0,
            skipped: 0,
            absent: Vec::new(),
            unproduced: false,
            failed: Vec::new(),
            not_executed: Vec::new(),
            missing: Vec::new(),
        };
        for Collected { id, key, ended, supplied } in clones {
            tally.total += 1;
            match ended {
                Some(StepStatus::Failure) => {
                    tally.failed.push(key.to_owned());
                    tally.missing.push(id);
                }
                Some(StepStatus::Abandoned | StepStatus::Cancelled) => {
                    tally.not_executed.push(key.to_owned());
                    tally.missing.push(id);
                }
                Some(StepStatus::Skipped) => {
                    tally.skipped += 1;
                    tally.absent.push(key.to_owned());
                }
                Some(StepStatus::Success) if !supplied => {
                    tally.skipped += 1;
                    tally.unproduced = true;
                    tally.absent.push(format!("{key}.{output}"));
                }
                Some(StepStatus::Success) => tally.succeeded += 1,
                None => {}
            }
        }
        tally
    }

    fn outcome(self, op: &str, min_success: Option<MinSuccess>) -> Outcome<C> {
        if !self.missing.is_empty() && min_success_met(min_success, self.succeeded, self.total - self.skipped) {
            Outcome::MetWithout(self.missing)
        } else if !self.failed.is_empty() {
            Outcome::Unmet(Unmet::Failed(self.failed))
        } else if !self.not_executed.is_empty() {
            Outcome::Unmet(Unmet::NotExecuted(self.not_executed))
        } else if self.total > 0 && self.skipped == self.total {
            // Dagster skips a fan-in only when every one of its sources is missing.
            Outcome::Unmet(Unmet::Skipped(if self.unproduced { self.absent } else { vec![format!("{op}[?]")] }))
        } else {
            Outcome::Met
        }
    }
}

/// Whether `succeeded` of the `counted` clones (skipped ones are not counted: they were never
/// meant to give a value) let a collect with `min_success` run; never without the setting.
pub(super) fn min_success_met(min_success: Option<MinSuccess>, succeeded: usize, counted: usize) -> bool {
    min_success.is_some_and(|m| m.met(succeeded, counted))
}

/// Whether a fan-out that ended `ended` cancels its clones that have not started. Streaming
/// diverges from Dagster only in time: in Dagster a fan-out that fails leaves no clone to start,
/// so clones already running finish and the rest are cancelled.
pub(super) fn cancels_unstarted_clones(ended: StepStatus) -> bool {
    ended != StepStatus::Success
}

/// The error of a clone cancelled because its fan-out step `producer` did not succeed.
pub(super) fn cancelled_clone(producer: &str) -> String {
    format!("Fan-out step {producer} did not succeed before this clone started. Not executing.")
}

/// The delay before the next attempt of a step whose attempt number `attempts` (1 for the first)
/// just failed, or `None` if `policy` allows no more.
pub(super) fn retry_after(attempts: u32, policy: RetryPolicy) -> Option<Duration> {
    (attempts <= policy.max).then_some(policy.delay)
}

/// The run's status from its `failed` steps that no collect accepted and the `tolerated` ones a
/// `min_success` collect did.
pub(super) fn run_status(failed: usize, tolerated: usize) -> RunStatus {
    match (failed, tolerated) {
        (0, 0) => RunStatus::Success,
        (0, _) => RunStatus::SuccessWithFailures,
        _ => RunStatus::Failure,
    }
}

/// The run's error for `status`, Dagster's for a failure: `failed` are the keys of the failed
/// steps, `tolerated` the number of failures `min_success` collects accepted.
pub(super) fn run_error(job: &str, status: RunStatus, failed: &[String], tolerated: usize) -> Option<String> {
    match status {
        RunStatus::Failure => Some(format!("Execution of run for \"{job}\" failed. Steps failed: {}.", list(failed))),
        RunStatus::SuccessWithFailures => Some(format!(
            "Run for \"{job}\" succeeded with {tolerated} failed clone(s) left out by min_success collects."
        )),
        RunStatus::Success | RunStatus::Cancelled => None,
    }
}

/// `['a', 'b']`, as Dagster prints step lists.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|&s| s.to_owned()).collect()
    }

    fn unmet<C>(outcome: Outcome<C>) -> Unmet {
        match outcome {
            Outcome::Unmet(unmet) => unmet,
            Outcome::Met | Outcome::MetWithout(_) => panic!("expected an unmet dependency"),
        }
    }

    fn fan(ended: StepStatus, records: usize, required: bool) -> FanOut<'static> {
        FanOut { producer: "emit", output: "items", ended, required, records }
    }

    /// Clones `c0`, `c1`, … of op `p`, with ids 0, 1, ….
    fn clones(statuses: &[Option<StepStatus>]) -> Vec<(usize, String, Option<StepStatus>)> {
        statuses.iter().enumerate().map(|(i, &s)| (i, format!("p[c{i}]"), s)).collect()
    }

    fn collect_over(
        fan: FanOut<'_>,
        clones: &[(usize, String, Option<StepStatus>)],
        min_success: Option<MinSuccess>,
    ) -> Outcome<usize> {
        let clones = clones.iter().map(|(id, key, status)| Collected {
            id: *id,
            key: key.as_str(),
            ended: *status,
            supplied: true,
        });
        collect(fan, "p", "result", clones, min_success)
    }

    const OK: Option<StepStatus> = Some(StepStatus::Success);
    const FAILED: Option<StepStatus> = Some(StepStatus::Failure);
    const SKIPPED: Option<StepStatus> = Some(StepStatus::Skipped);
    const ABANDONED: Option<StepStatus> = Some(StepStatus::Abandoned);
    const CANCELLED: Option<StepStatus> = Some(StepStatus::Cancelled);

    #[test]
    fn a_succeeded_upstream_that_supplied_its_output_meets_the_dependency() {
        assert_eq!(after_step::<usize>("a", StepStatus::Success, "result", true), Outcome::Met);
    }

    #[test]
    fn a_missing_optional_output_skips_the_step_naming_the_output() {
        let outcome = unmet(after_step::<usize>("a[k]", StepStatus::Success, "maybe", false));
        assert_eq!(outcome, Unmet::Skipped(names(&["a[k].maybe"])));
        assert_eq!(outcome.status(), StepStatus::Skipped);
        assert_eq!(outcome.message("b[k]"), "Skipping step b[k] due to skipped dependencies: ['a[k].maybe'].");
    }

    #[test]
    fn what_was_supplied_does_not_matter_unless_the_upstream_succeeded() {
        for supplied in [true, false] {
            assert_eq!(
                unmet(after_step::<usize>("a", StepStatus::Failure, "r", supplied)),
                Unmet::Failed(names(&["a"]))
            );
            assert_eq!(
                unmet(after_step::<usize>("a", StepStatus::Skipped, "r", supplied)),
                Unmet::Skipped(names(&["a"]))
            );
        }
    }

    #[test]
    fn a_failed_upstream_abandons_the_step_with_dagsters_text() {
        let outcome = unmet(after_step::<usize>("a", StepStatus::Failure, "result", true));
        assert_eq!(outcome.status(), StepStatus::Abandoned);
        assert_eq!(outcome.message("b"), "Dependencies for step b failed: ['a']. Not executing.");
    }

    #[test]
    fn an_unexecuted_upstream_abandons_the_step() {
        for ended in [StepStatus::Abandoned, StepStatus::Cancelled] {
            let outcome = unmet(after_step::<usize>("a", ended, "result", true));
            assert_eq!(outcome, Unmet::NotExecuted(names(&["a"])));
            assert_eq!(outcome.status(), StepStatus::Abandoned);
            assert_eq!(outcome.message("b"), "Dependencies for step b were not executed: ['a']. Not executing.");
        }
    }

    #[test]
    fn a_skipped_upstream_skips_the_step_naming_the_step() {
        let outcome = unmet(after_step::<usize>("a", StepStatus::Skipped, "result", true));
        assert_eq!(outcome.status(), StepStatus::Skipped);
        assert_eq!(outcome.message("b"), "Skipping step b due to skipped dependencies: ['a'].");
    }

    #[test]
    fn messages_list_every_dependency_in_order() {
        let outcome = Unmet::Failed(names(&["p[x]", "p[y]"]));
        assert_eq!(outcome.message("sum"), "Dependencies for step sum failed: ['p[x]', 'p[y]']. Not executing.");
    }

    #[test]
    fn an_empty_dynamic_output_is_supplied_only_if_required() {
        assert!(dynamic_output_supplied(0, true));
        assert!(!dynamic_output_supplied(0, false));
        assert!(dynamic_output_supplied(3, false));
    }

    #[test]
    fn a_collect_of_clones_that_all_succeeded_runs() {
        assert_eq!(collect_over(fan(StepStatus::Success, 2, true), &clones(&[OK, OK]), None), Outcome::Met);
    }

    #[test]
    fn a_collect_whose_fan_out_did_not_succeed_does_not_run() {
        let all_ok = clones(&[OK]);
        let failed = unmet(collect_over(fan(StepStatus::Failure, 1, true), &all_ok, None));
        assert_eq!(failed, Unmet::Failed(names(&["emit"])));
        let skipped = unmet(collect_over(fan(StepStatus::Skipped, 1, true), &all_ok, None));
        assert_eq!(skipped, Unmet::Skipped(names(&["emit.items"])));
        for ended in [StepStatus::Abandoned, StepStatus::Cancelled] {
            let outcome = unmet(collect_over(fan(ended, 1, true), &all_ok, None));
            assert_eq!(outcome, Unmet::NotExecuted(names(&["emit"])));
        }
    }

    #[test]
    fn a_collect_over_no_record_gets_the_empty_list_or_is_skipped_if_optional() {
        assert_eq!(collect_over(fan(StepStatus::Success, 0, true), &[], None), Outcome::Met);
        let outcome = unmet(collect_over(fan(StepStatus::Success, 0, false), &[], None));
        assert_eq!(outcome, Unmet::Skipped(names(&["emit.items"])));
    }

    #[test]
    fn any_failed_clone_abandons_the_collect_naming_every_failed_one() {
        let outcome = unmet(collect_over(fan(StepStatus::Success, 4, true), &clones(&[OK, FAILED, OK, FAILED]), None));
        assert_eq!(outcome, Unmet::Failed(names(&["p[c1]", "p[c3]"])));
        assert_eq!(outcome.status(), StepStatus::Abandoned);
    }

    #[test]
    fn failed_clones_are_blamed_before_unexecuted_ones() {
        let outcome = unmet(collect_over(fan(StepStatus::Success, 3, true), &clones(&[ABANDONED, FAILED, OK]), None));
        assert_eq!(outcome, Unmet::Failed(names(&["p[c1]"])));
        let outcome = unmet(collect_over(fan(StepStatus::Success, 2, true), &clones(&[CANCELLED, OK]), None));
        assert_eq!(outcome, Unmet::NotExecuted(names(&["p[c0]"])));
    }

    #[test]
    fn a_fan_in_is_skipped_only_when_all_of_its_sources_are_missing() {
        assert_eq!(collect_over(fan(StepStatus::Success, 2, true), &clones(&[SKIPPED, OK]), None), Outcome::Met);
        let outcome = unmet(collect_over(fan(StepStatus::Success, 2, true), &clones(&[SKIPPED, SKIPPED]), None));
        assert_eq!(outcome, Unmet::Skipped(names(&["p[?]"])));
        assert_eq!(outcome.message("sum"), "Skipping step sum due to skipped dependencies: ['p[?]'].");
    }

    #[test]
    fn a_collect_of_an_optional_output_no_clone_produced_is_skipped_naming_each_source() {
        let over = |supplied: &[bool], statuses: &[Option<StepStatus>]| {
            let clones = statuses.iter().zip(supplied).enumerate().map(|(i, (&ended, &supplied))| Collected {
                id: i,
                key: ["m[1]", "m[2]", "m[3]"][i],
                ended,
                supplied,
            });
            collect(fan(StepStatus::Success, statuses.len(), true), "m", "c", clones, None)
        };
        // All missing: none produced it (Dagster's test_multi_out_map), or some were skipped too.
        let outcome = unmet(over(&[false, false, false], &[OK, OK, OK]));
        assert_eq!(
            outcome.message("echo_c"),
            "Skipping step echo_c due to skipped dependencies: ['m[1].c', 'm[2].c', 'm[3].c']."
        );
        let outcome = unmet(over(&[false, false, false], &[OK, SKIPPED, OK]));
        assert_eq!(outcome, Unmet::Skipped(names(&["m[1].c", "m[2]", "m[3].c"])));
        // Some produced it: the collect runs with what there is.
        assert_eq!(over(&[false, true, false], &[OK, OK, OK]), Outcome::Met);
    }

    #[test]
    fn a_collect_with_records_but_none_of_the_ops_clones_runs() {
        // The records cloned other ops only: nothing of this op is missing.
        assert_eq!(collect_over(fan(StepStatus::Success, 2, true), &[], None), Outcome::Met);
    }

    #[test]
    fn min_success_as_a_count_runs_the_collect_without_the_missing_clones() {
        let ran = clones(&[OK, FAILED, OK, CANCELLED]);
        let enough = Some(MinSuccess::Count(2));
        assert_eq!(collect_over(fan(StepStatus::Success, 4, true), &ran, enough), Outcome::MetWithout(vec![1, 3]));
        let too_many = Some(MinSuccess::Count(3));
        let outcome = unmet(collect_over(fan(StepStatus::Success, 4, true), &ran, too_many));
        assert_eq!(outcome, Unmet::Failed(names(&["p[c1]"])));
    }

    #[test]
    fn min_success_as_a_ratio_leaves_skipped_clones_out_of_the_count() {
        // 3 of the 4 clones that were meant to run succeeded (the skipped one is not counted).
        let ran = clones(&[OK, OK, SKIPPED, OK, FAILED]);
        let three_quarters = Some(MinSuccess::Ratio(0.75));
        assert_eq!(collect_over(fan(StepStatus::Success, 5, true), &ran, three_quarters), Outcome::MetWithout(vec![4]));
        let more = Some(MinSuccess::Ratio(0.8));
        assert!(matches!(collect_over(fan(StepStatus::Success, 5, true), &ran, more), Outcome::Unmet(_)));
    }

    #[test]
    fn min_success_changes_nothing_when_no_clone_is_missing() {
        let ran = clones(&[OK, SKIPPED]);
        assert_eq!(collect_over(fan(StepStatus::Success, 2, true), &ran, Some(MinSuccess::Count(5))), Outcome::Met);
    }

    #[test]
    fn min_success_is_never_met_without_the_setting() {
        assert!(!min_success_met(None, 10, 10));
        assert!(min_success_met(Some(MinSuccess::Count(0)), 0, 10));
        assert!(min_success_met(Some(MinSuccess::Ratio(0.5)), 5, 10));
        assert!(!min_success_met(Some(MinSuccess::Ratio(0.5)), 4, 10));
        // Nothing counted: a ratio of nothing is met.
        assert!(min_success_met(Some(MinSuccess::Ratio(1.0)), 0, 0));
    }

    #[test]
    fn only_a_fan_out_that_did_not_succeed_cancels_its_unstarted_clones() {
        assert!(!cancels_unstarted_clones(StepStatus::Success));
        for ended in [StepStatus::Failure, StepStatus::Abandoned, StepStatus::Skipped, StepStatus::Cancelled] {
            assert!(cancels_unstarted_clones(ended));
        }
        assert_eq!(
            cancelled_clone("emit"),
            "Fan-out step emit did not succeed before this clone started. Not executing."
        );
    }

    #[test]
    fn a_failed_attempt_is_retried_while_the_policy_allows() {
        let policy = RetryPolicy { max: 2, delay: Duration::from_millis(100) };
        assert_eq!(retry_after(1, policy), Some(Duration::from_millis(100)));
        assert_eq!(retry_after(2, policy), Some(Duration::from_millis(100)));
        assert_eq!(retry_after(3, policy), None);
        assert_eq!(retry_after(1, RetryPolicy::default()), None);
    }

    #[test]
    fn the_run_fails_if_any_failure_was_not_tolerated() {
        assert_eq!(run_status(0, 0), RunStatus::Success);
        assert_eq!(run_status(0, 3), RunStatus::SuccessWithFailures);
        assert_eq!(run_status(1, 0), RunStatus::Failure);
        assert_eq!(run_status(1, 3), RunStatus::Failure);
    }

    #[test]
    fn the_run_error_is_dagsters_for_a_failure() {
        let failed = names(&["a", "b[k]"]);
        assert_eq!(
            run_error("job", RunStatus::Failure, &failed, 0).as_deref(),
            Some("Execution of run for \"job\" failed. Steps failed: ['a', 'b[k]'].")
        );
        assert_eq!(
            run_error("job", RunStatus::SuccessWithFailures, &[], 2).as_deref(),
            Some("Run for \"job\" succeeded with 2 failed clone(s) left out by min_success collects.")
        );
        assert_eq!(run_error("job", RunStatus::Success, &[], 0), None);
    }
}
