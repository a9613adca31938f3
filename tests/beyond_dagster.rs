//! What sandmap does past Dagster: streaming fan-out, partial success (`min_success`), the
//! fan-out limit, and per-op retries.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workspace, keys_of};
use sandmap::executor::{RunStatus, StepStatus};
use serde_json::json;

fn ws_with_work() -> Workspace {
    let ws = Workspace::new();
    ws.files("work", &[]);
    ws
}

const WORK_GRANT: &str = "grants = [{ host = \"work\", guest = \"/work\", access = \"read-write\" }]";

/// A fan-out running `script` (granted /work read-write, 20 s), mapped into `mapper` (also
/// granted /work), collected by `total`.
fn streaming_job(script: &str) -> String {
    format!(
        r#"
name = "streaming"
[ops.emit]
component = "emit_script"
config = {{ script = [{script}] }}
{WORK_GRANT}
limits = {{ timeout = "20 s" }}
[ops.per_key]
component = "mapper"
inputs = {{ x = {{ map = "emit" }} }}
{WORK_GRANT}
[ops.total]
component = "mapper"
inputs = {{ x = {{ collect = "per_key" }} }}
"#
    )
}

#[test]
fn a_clone_finishes_before_its_fan_out_op_returns() {
    // The fan-out op emits `a`, then waits until `mapper[a]` has written /work/a_done. Without
    // streaming this would never finish (the 20 s timeout would fail it): its success is the
    // proof of overlap, with no timing assertion.
    let ws = ws_with_work();
    let report = ws.run(&streaming_job(
        r#"{ emit = "a", value = { touch = "/work/a_done", v = 1 } }, { wait_for = "/work/a_done" }, { emit = "b", value = { v = 2 } }"#,
    ));
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    assert_eq!(keys_of(&report, "per_key"), ["per_key[a]", "per_key[b]"]);
    assert_eq!(report.output("total", "result").unwrap().as_array().unwrap().len(), 2);
}

#[test]
fn a_fan_out_that_fails_after_a_clone_finished_fails_the_run_and_collects_nothing() {
    let ws = ws_with_work();
    let report = ws.run(&streaming_job(
        r#"{ emit = "a", value = { touch = "/work/a_done" } }, { wait_for = "/work/a_done" }, { emit = "b", value = 2 }, { fail = "late failure" }"#,
    ));
    assert_eq!(report.status, RunStatus::Failure);
    assert_eq!(report.step("per_key[a]").unwrap().status, StepStatus::Success, "it ran before the failure");
    let b = report.step("per_key[b]").unwrap().status;
    assert!(b == StepStatus::Success || b == StepStatus::Cancelled, "{b:?}");
    assert_eq!(
        report.step("total").unwrap().error.as_deref(),
        Some("Dependencies for step total failed: ['emit']. Not executing.")
    );
    assert_eq!(report.step("emit").unwrap().records.len(), 2);
}

fn five_clones(fail: &[usize], min_success: &str) -> String {
    let records: Vec<String> = (0..5)
        .map(|i| {
            let value = if fail.contains(&i) { format!("{{ fail = \"clone {i} fails\" }}") } else { i.to_string() };
            format!("{{ emit = \"k{i}\", value = {value} }}")
        })
        .collect();
    format!(
        "name = \"partial\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = {{ script = [{}] }}\n\
         [ops.per_key]\ncomponent = \"mapper\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n\
         [ops.after]\ncomponent = \"mapper\"\ninputs = {{ x = {{ map = \"per_key\" }} }}\n\
         [ops.total]\ncomponent = \"join2\"\ninputs = {{ a = {{ collect = \"after\"{min_success} }}, b = {{ collect = \"after\"{min_success} }} }}\n",
        records.join(", ")
    )
}

#[test]
fn min_success_count_lets_the_collect_run_with_the_successful_clones() {
    let ws = Workspace::new();
    let report = ws.run(&five_clones(&[1], ", min_success = 4"));
    assert_eq!(report.status, RunStatus::SuccessWithFailures);
    assert_eq!(
        report.error.as_deref(),
        Some("Run for \"partial\" succeeded with 1 failed clone(s) left out by min_success collects.")
    );
    assert_eq!(report.step("per_key[k1]").unwrap().status, StepStatus::Failure);
    assert_eq!(report.step("after[k1]").unwrap().status, StepStatus::Abandoned);
    let total = report.output("total", "result").unwrap();
    assert_eq!(total["a"], json!([0, 2, 3, 4]));
    assert_eq!(
        total["failures"],
        json!([
            {"input": "a", "step_key": "after[k1]", "error": "Dependencies for step after[k1] failed: ['per_key[k1]']. Not executing."},
            {"input": "b", "step_key": "after[k1]", "error": "Dependencies for step after[k1] failed: ['per_key[k1]']. Not executing."},
        ])
    );
}

#[test]
fn min_success_ratio_not_met_abandons_the_collect() {
    let ws = Workspace::new();
    let report = ws.run(&five_clones(&[1, 3], ", min_success = 0.9"));
    assert_eq!(report.status, RunStatus::Failure);
    assert_eq!(report.step("total").unwrap().status, StepStatus::Abandoned);
    let report = ws.run(&five_clones(&[1], ", min_success = 0.8"));
    assert_eq!(report.status, RunStatus::SuccessWithFailures);
}

#[test]
fn min_success_on_the_records_of_a_dynamic_output_is_rejected() {
    let ws = Workspace::new();
    let job = "name = \"j\"\n[ops.emit]\ncomponent = \"emit_script\"\n[ops.t]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"emit\", min_success = 2 } }\n";
    assert!(ws.invalid(job).ends_with(
        "op \"t\": inputs.x: min_success applies to collecting a mapped op's output; the records of emit:result cannot fail"
    ));
    let job = "name = \"j\"\n[ops.emit]\ncomponent = \"emit_script\"\n[ops.t]\ncomponent = \"mapper\"\ninputs = { x = { map = \"emit\", min_success = 2 } }\n";
    assert!(ws.invalid(job).ends_with("op \"t\": inputs.x: min_success belongs to a collect, not a map"));
    let job = "name = \"j\"\n[ops.emit]\ncomponent = \"emit_script\"\n[ops.t]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"emit\", min_success = 1.5 } }\n";
    assert!(ws.invalid(job).contains("min_success must be a count (>= 1) or a ratio in (0, 1], not 1.5"));
}

#[test]
fn max_fan_out_stops_a_fan_out_that_grows_too_wide() {
    let ws = Workspace::new();
    let records: Vec<String> = (0..5).map(|i| format!("{{ emit = \"k{i}\", value = {i} }}")).collect();
    let job = format!(
        "name = \"wide\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = {{ script = [{}] }}\nlimits = {{ max_fan_out = 3 }}\n",
        records.join(", ")
    );
    let report = ws.run(&job);
    let emit = report.step("emit").unwrap();
    assert_eq!(emit.error.as_deref(), Some("exceeded max_fan_out limit 3 (records on output \"result\")"));
    assert_eq!(emit.records.len(), 3);
}

#[test]
fn a_failed_clone_is_retried_in_a_fresh_sandbox() {
    let ws = Workspace::new();
    let job = "name = \"retry\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = { script = [{ emit = \"a\", value = { fail_before_attempt = 3, v = 1 } }] }\n\
               [ops.per_key]\ncomponent = \"mapper\"\ninputs = { x = { map = \"emit\" } }\nretries = { max = 3, delay_ms = 10 }\n";
    let report = ws.run(job);
    assert_eq!(report.status, RunStatus::Success);
    let step = report.step("per_key[a]").unwrap();
    assert_eq!(step.attempts, 3);
    let earlier: Vec<&str> = step.previous_attempts.iter().map(|a| a.error.as_str()).collect();
    assert_eq!(earlier, ["attempt 1 fails on purpose", "attempt 2 fails on purpose"]);
}

#[test]
fn retries_run_out() {
    let ws = Workspace::new();
    let job = "name = \"retry\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = { script = [{ emit = \"a\", value = { fail_before_attempt = 9 } }] }\n\
               [ops.per_key]\ncomponent = \"mapper\"\ninputs = { x = { map = \"emit\" } }\nretries = { max = 1 }\n";
    let report = ws.run(job);
    assert_eq!(report.status, RunStatus::Failure);
    let step = report.step("per_key[a]").unwrap();
    assert_eq!(step.attempts, 2);
    assert_eq!(step.error.as_deref(), Some("attempt 2 fails on purpose"));
}

#[test]
fn a_retried_fan_out_starts_clones_only_from_its_successful_attempt() {
    let ws = Workspace::new();
    let job = "name = \"retry\"\n[ops.emit]\ncomponent = \"emit_script\"\n\
               config = { script = [{ emit = \"a\", value = 1 }, { emit = \"b\", value = 2 }], succeed_on_attempt = 3 }\n\
               retries = { max = 2 }\n\
               [ops.per_key]\ncomponent = \"mapper\"\ninputs = { x = { map = \"emit\" } }\n\
               [ops.total]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"per_key\" } }\n";
    let report = ws.run(job);
    assert_eq!(report.status, RunStatus::Success, "{:?}", report.error);
    let emit = report.step("emit").unwrap();
    assert_eq!(emit.attempts, 3);
    assert_eq!(emit.previous_attempts.iter().map(|a| a.records).collect::<Vec<_>>(), [2, 2]);
    assert_eq!(keys_of(&report, "per_key"), ["per_key[a]", "per_key[b]"]);
    assert_eq!(report.output("total", "result"), Some(&json!([1, 2])));
}
