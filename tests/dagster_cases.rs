//! Dagster's observed dynamic-mapping behaviour (`docs/dagster-semantics.md`), case by case.
//! Each test names the case it checks. Cases checked elsewhere: 14, 15 and 16 (job validation,
//! `tests/validation.rs`); 23 (re-execution) belongs to the run store. Not applicable: 22
//! (sandmap values are untyped JSON; the nearest check, a value that is not JSON, is in the
//! hostile suite) and the Python-only parts of 11, 15 and 21 (lambdas, iteration, `return`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Workspace, keys_of};
use sandmap::executor::{RunReport, RunStatus, StepStatus};
use serde_json::{Value, json};

/// `[ops.emit]` running `emit_script` (or another `emit_*` op) with this script.
fn emit(component: &str, script: &str) -> String {
    format!("name = \"case\"\n[ops.emit]\ncomponent = \"{component}\"\nconfig = {{ script = [{script}] }}\n")
}

fn records(keys_values: &[(&str, Value)]) -> String {
    keys_values
        .iter()
        .map(|(k, v)| format!("{{ emit = \"{k}\", value = {} }}", toml_value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON value as a TOML inline value.
fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k} = {}", toml_value(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn op(name: &str, component: &str, inputs: &str) -> String {
    format!("[ops.{name}]\ncomponent = \"{component}\"\ninputs = {{ {inputs} }}\n")
}

fn status(report: &RunReport, key: &str) -> StepStatus {
    report.step(key).unwrap_or_else(|| panic!("no step {key}")).status
}

fn error(report: &RunReport, key: &str) -> String {
    report.step(key).unwrap().error.clone().unwrap_or_default()
}

#[test]
fn case_01_mapping_keys_are_validated_when_emitted() {
    let ws = Workspace::new();
    // Dagster sets no length; sandmap's limit is 255 bytes (README, "Differences from Dagster").
    let long = "k".repeat(255);
    let too_long = "k".repeat(256);
    let too_long_error = format!(
        "a mapping key of 256 bytes (\"{}…\") is too long: exceeded max_key_bytes limit 255 bytes",
        "k".repeat(32)
    );
    let ok = ws.run(&emit(
        "emit_script",
        &records(&[
            ("abc", json!(1)),
            ("A_b_9", json!(2)),
            ("123", json!(3)),
            ("_", json!(4)),
            ("result", json!(5)),
            (&long, json!(6)),
        ]),
    ));
    assert_eq!(ok.status, RunStatus::Success);
    assert_eq!(ok.step("emit").unwrap().records.len(), 6);
    for (bad, message) in [
        ("a-b", "\"a-b\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$"),
        ("a.b", "\"a.b\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$"),
        ("über", "\"über\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$"),
        ("", "\"\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$"),
        ("if", "\"if\" is not a valid mapping key. It conflicts with a Dagster or Python reserved keyword"),
        ("context", "\"context\" is not a valid mapping key. It conflicts with a Dagster or Python reserved keyword"),
        (&too_long, &too_long_error),
    ] {
        let report = ws.run(&emit("emit_script", &records(&[("ok_key", json!(0)), (bad, json!(1))])));
        assert_eq!(report.status, RunStatus::Failure, "{bad}");
        assert_eq!(error(&report, "emit"), format!("op \"emit\": {message}"));
        let kept: Vec<&str> = report.step("emit").unwrap().records.iter().map(|r| r.mapping_key.as_str()).collect();
        assert_eq!(kept, ["ok_key"], "records emitted before the failure stay recorded");
    }
}

#[test]
fn case_02_a_duplicate_key_fails_the_step_when_it_is_emitted() {
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("a", json!(1)), ("b", json!(2)), ("a", json!(3))]))
        + &op("total", "mapper", "x = { collect = \"emit\" }");
    let report = ws.run(&job);
    assert_eq!(
        error(&report, "emit"),
        "op \"emit\" emitted a DynamicOutput with mapping_key \"a\" on output \"result\" multiple times"
    );
    let kept: Vec<&str> = report.step("emit").unwrap().records.iter().map(|r| r.mapping_key.as_str()).collect();
    assert_eq!(kept, ["a", "b"]);
    assert_eq!(status(&report, "total"), StepStatus::Abandoned);
    assert_eq!(report.status, RunStatus::Failure);
}

#[test]
fn case_02_keys_are_unique_per_output_not_per_op() {
    let ws = Workspace::new();
    let script = r#"{ emit = "a", value = 2, output = "evens" }, { emit = "a", value = 1, output = "odds" }, { output_value = "count", value = 2 }"#;
    let job = emit("emit_multi", script)
        + &op("double", "mapper", "x = { map = \"emit.evens\" }")
        + &op("inc", "mapper", "x = { map = \"emit.odds\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(status(&report, "double[a]"), StepStatus::Success);
    assert_eq!(status(&report, "inc[a]"), StepStatus::Success);
}

#[test]
fn case_03_several_dynamic_outputs_and_a_plain_one() {
    let ws = Workspace::new();
    let script = r#"{ emit = "e0", value = 0, output = "evens" }, { emit = "o1", value = -1, output = "odds" },
        { emit = "e2", value = 4, output = "evens" }, { emit = "o3", value = -3, output = "odds" },
        { emit = "e4", value = 16, output = "evens" }, { output_value = "count", value = 5 }"#;
    let job = emit("emit_multi", script)
        + &op("report", "join2", "a = { collect = \"emit.evens\" }, b = { collect = \"emit.odds\" }")
        + &op("count", "mapper", "x = \"emit.count\"");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(report.output("report", "result"), Some(&json!({"a": [0, 4, 16], "b": [-1, -3]})));
    assert_eq!(report.output("count", "result"), Some(&json!(5)));
}

#[test]
fn case_03_a_record_for_result_on_an_op_without_result_fails() {
    let ws = Workspace::new();
    let report = ws.run(&emit("emit_multi", r#"{ emit = "a", value = 1 }"#));
    assert_eq!(
        error(&report, "emit"),
        "op \"emit\" emitted to output \"result\", which does not exist. The available outputs are ['evens', 'odds', 'count']"
    );
}

#[test]
fn case_03_a_required_dynamic_output_never_emitted_to_gives_an_empty_collect() {
    let ws = Workspace::new();
    let script = r#"{ emit = "e0", value = 0, output = "evens" }, { output_value = "count", value = 1 }"#;
    let job = emit("emit_multi", script)
        + &op("report", "join2", "a = { collect = \"emit.evens\" }, b = { collect = \"emit.odds\" }");
    let report = ws.run(&job);
    assert_eq!(report.output("report", "result"), Some(&json!({"a": [0], "b": []})));
}

#[test]
fn case_04_an_optional_dynamic_output_with_no_record_skips_the_collect_and_its_downstream() {
    let ws = Workspace::new();
    let job = emit("emit_optional", "")
        + &op("per_key", "mapper", "x = { map = \"emit\" }")
        + &op("total", "mapper", "x = { collect = \"per_key\" }")
        + &op("after", "mapper", "x = \"total\"");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert!(keys_of(&report, "per_key").is_empty(), "mapped steps never come into being");
    assert_eq!(status(&report, "total"), StepStatus::Skipped);
    assert_eq!(error(&report, "total"), "Skipping step total due to skipped dependencies: ['emit.result'].");
    assert_eq!(status(&report, "after"), StepStatus::Skipped);
    assert_eq!(error(&report, "after"), "Skipping step after due to skipped dependencies: ['total'].");
}

#[test]
fn case_05_a_required_dynamic_output_with_no_record_resolves_to_zero_keys() {
    let ws = Workspace::new();
    let job = emit("emit_script", "")
        + &op("per_key", "mapper", "x = { map = \"emit\" }")
        + &op("total", "mapper", "x = { collect = \"per_key\" }")
        + &op("after", "mapper", "x = \"total\"");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert!(keys_of(&report, "per_key").is_empty());
    assert_eq!(report.output("after", "result"), Some(&json!([])));
}

#[test]
fn case_06_collect_is_in_emission_order_whatever_the_completion_order() {
    let ws = Workspace::new();
    // The first-emitted clones sleep longest, so with two workers they finish last.
    let emitted = [("zeta", 60), ("alpha", 40), ("mike", 0), ("bravo", 20), ("yankee", 0)];
    let script: Vec<(&str, Value)> = emitted.iter().map(|(k, ms)| (*k, json!({"sleep_ms": ms, "name": k}))).collect();
    let job = emit("emit_script", &records(&script))
        + &op("per_key", "mapper", "x = { map = \"emit\" }")
        + &op("total", "mapper", "x = { collect = \"per_key\" }");
    let report = ws.run(&job);
    let names: Vec<Value> =
        report.output("total", "result").unwrap().as_array().unwrap().iter().map(|v| v["name"].clone()).collect();
    assert_eq!(names, [json!("zeta"), json!("alpha"), json!("mike"), json!("bravo"), json!("yankee")]);
}

fn four_keys_with(k1: Value) -> String {
    records(&[("k0", json!(0)), ("k1", k1), ("k2", json!(20)), ("k3", json!(30))])
}

#[test]
fn case_07_one_failed_clone_abandons_its_downstream_and_the_collect() {
    let ws = Workspace::new();
    let job = emit("emit_script", &four_keys_with(json!({"fail": "boom on 1"})))
        + &op("maybe_fail", "mapper", "x = { map = \"emit\" }")
        + &op("after_each", "mapper", "x = { map = \"maybe_fail\" }")
        + &op("total", "mapper", "x = { collect = \"after_each\" }")
        + &op("direct", "mapper", "x = { collect = \"maybe_fail\" }");
    let report = ws.run(&job);
    for k in ["k0", "k2", "k3"] {
        assert_eq!(status(&report, &format!("maybe_fail[{k}]")), StepStatus::Success, "other keys still run");
        assert_eq!(status(&report, &format!("after_each[{k}]")), StepStatus::Success);
    }
    assert_eq!(status(&report, "maybe_fail[k1]"), StepStatus::Failure);
    assert_eq!(error(&report, "maybe_fail[k1]"), "boom on 1");
    assert_eq!(status(&report, "after_each[k1]"), StepStatus::Abandoned);
    assert_eq!(
        error(&report, "after_each[k1]"),
        "Dependencies for step after_each[k1] failed: ['maybe_fail[k1]']. Not executing."
    );
    assert_eq!(
        error(&report, "total"),
        "Dependencies for step total were not executed: ['after_each[k1]']. Not executing."
    );
    assert_eq!(error(&report, "direct"), "Dependencies for step direct failed: ['maybe_fail[k1]']. Not executing.");
    assert_eq!(report.status, RunStatus::Failure);
    assert_eq!(
        report.error.as_deref(),
        Some("Execution of run for \"case\" failed. Steps failed: ['maybe_fail[k1]'].")
    );
}

#[test]
fn case_08_one_skipped_clone_skips_its_downstream_and_the_collect_gets_the_rest() {
    let ws = Workspace::new();
    let job = emit("emit_script", &four_keys_with(json!({"skip": true})))
        + &op("maybe_skip", "mapper", "x = { map = \"emit\" }")
        + &op("after_each", "mapper", "x = { map = \"maybe_skip\" }")
        + &op("total", "mapper", "x = { collect = \"after_each\" }")
        + &op("direct", "mapper", "x = { collect = \"maybe_skip\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(status(&report, "after_each[k1]"), StepStatus::Skipped);
    assert_eq!(
        error(&report, "after_each[k1]"),
        "Skipping step after_each[k1] due to skipped dependencies: ['maybe_skip[k1].result']."
    );
    assert_eq!(report.output("total", "result"), Some(&json!([0, 20, 30])));
    assert_eq!(report.output("direct", "result"), Some(&json!([0, 20, 30])));
}

#[test]
fn case_09_a_fan_out_failing_part_way_keeps_its_records_and_collects_nothing() {
    let ws = Workspace::new();
    let script = format!("{}, {{ fail = \"disk on fire\" }}", records(&[("a", json!(1)), ("b", json!(2))]));
    let job = emit("emit_script", &script)
        + &op("per_key", "mapper", "x = { map = \"emit\" }")
        + &op("total", "mapper", "x = { collect = \"per_key\" }");
    let report = ws.run(&job);
    assert_eq!(error(&report, "emit"), "disk on fire");
    let kept: Vec<&str> = report.step("emit").unwrap().records.iter().map(|r| r.mapping_key.as_str()).collect();
    assert_eq!(kept, ["a", "b"]);
    assert_eq!(error(&report, "total"), "Dependencies for step total failed: ['emit']. Not executing.");
    // Streaming (a difference from Dagster): a clone that had started finishes; one that had not
    // is cancelled. Which it was depends on timing; it is never anything else.
    for key in keys_of(&report, "per_key") {
        let s = status(&report, &key);
        assert!(s == StepStatus::Success || s == StepStatus::Cancelled, "{key}: {s:?}");
        if s == StepStatus::Cancelled {
            assert_eq!(
                error(&report, &key),
                "Fan-out step emit did not succeed before this clone started. Not executing."
            );
        }
    }
    assert_eq!(report.error.as_deref(), Some("Execution of run for \"case\" failed. Steps failed: ['emit']."));
}

#[test]
fn case_10_chained_maps_continue_per_key() {
    let ws = Workspace::new();
    let job = emit(
        "emit_script",
        &records(&[("k0", json!({"key": true})), ("k1", json!({"key": true})), ("k2", json!({"key": true}))]),
    ) + &op("a", "mapper", "x = { map = \"emit\" }")
        + &op("b", "mapper", "x = { map = \"a\" }")
        + &op("total", "mapper", "x = { collect = \"b\" }");
    let report = ws.run(&job);
    assert_eq!(keys_of(&report, "a"), ["a[k0]", "a[k1]", "a[k2]"]);
    assert_eq!(keys_of(&report, "b"), ["b[k0]", "b[k1]", "b[k2]"]);
    assert_eq!(report.output("total", "result"), Some(&json!(["k0", "k1", "k2"])));
}

#[test]
fn case_11_a_per_key_join_of_two_branches_inside_one_map() {
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("k0", json!(0)), ("k1", json!(1)), ("k2", json!(2))]))
        + &op("a", "mapper", "x = { map = \"emit\" }")
        + &op("b", "mapper", "x = { map = \"emit\" }")
        + &op("add2", "join2", "a = { map = \"a\" }, b = { map = \"b\" }")
        + &op("total", "mapper", "x = { collect = \"add2\" }");
    let report = ws.run(&job);
    assert_eq!(keys_of(&report, "add2"), ["add2[k0]", "add2[k1]", "add2[k2]"]);
    assert_eq!(report.output("total", "result"), Some(&json!([{"a": 0, "b": 0}, {"a": 1, "b": 1}, {"a": 2, "b": 2}])));
}

#[test]
fn case_11_each_output_of_a_mapped_multi_output_op_is_collected_on_its_own() {
    let ws = Workspace::new();
    let values: Vec<(String, Value)> = (0..3).map(|i| (format!("k{i}"), json!({"other": i + 1, "v": i}))).collect();
    let values: Vec<(&str, Value)> = values.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let job = emit("emit_script", &records(&values))
        + &op("split", "mapper", "x = { map = \"emit\" }")
        + &op("pair", "join2", "a = { collect = \"split.result\" }, b = { collect = \"split.other\" }");
    let report = ws.run(&job);
    let pair = report.output("pair", "result").unwrap();
    assert_eq!(pair["b"], json!([1, 2, 3]));
    assert_eq!(pair["a"].as_array().unwrap().len(), 3);
}

#[test]
fn case_12_broadcast_inputs_and_two_maps_and_collects_over_one_output() {
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("k0", json!(0)), ("k1", json!(1)), ("k2", json!(2))]))
        + "[ops.config_value]\ncomponent = \"emit_script\"\nconfig = { script = [{ output_value = \"extra\", value = 1000 }] }\n"
        + &op("add", "join2", "a = { map = \"emit\" }, b = \"config_value.extra\"")
        + &op("same_twice", "join2", "a = { map = \"emit\" }, b = { map = \"emit\" }")
        + &op("t_a", "mapper", "x = { collect = \"add\" }")
        + &op("t_b", "mapper", "x = { collect = \"same_twice\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(keys_of(&report, "config_value"), ["config_value"], "the broadcast op runs once");
    assert_eq!(
        report.output("t_a", "result"),
        Some(&json!([{"a": 0, "b": 1000}, {"a": 1, "b": 1000}, {"a": 2, "b": 1000}]))
    );
    assert_eq!(report.output("t_b", "result"), Some(&json!([{"a": 0, "b": 0}, {"a": 1, "b": 1}, {"a": 2, "b": 2}])));
}

#[test]
fn case_13_nested_maps_are_allowed_and_collect_per_outer_key() {
    // A deliberate difference: Dagster rejects nesting at definition time.
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("a", json!([1, 2])), ("b", json!([3]))]))
        + &op("inner", "split_list", "items = { map = \"emit\" }")
        + &op("leaf", "mapper", "x = { map = \"inner\" }")
        + &op("per_outer", "mapper", "x = { collect = \"leaf\" }")
        + &op("all", "mapper", "x = { collect = \"per_outer\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(keys_of(&report, "leaf"), ["leaf[a][i0]", "leaf[a][i1]", "leaf[b][i0]"]);
    assert_eq!(keys_of(&report, "per_outer"), ["per_outer[a]", "per_outer[b]"]);
    assert_eq!(report.step("leaf[a][i1]").unwrap().mapping_key.as_deref(), Some("i1"));
    assert_eq!(report.output("all", "result"), Some(&json!([[1, 2], [3]])));
}

#[test]
fn case_13_a_nested_clone_can_also_take_its_outer_record() {
    // leaf[k][j] maps over the inner records and, one level up, over the outer record.
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("a", json!([1, 2])), ("b", json!([3]))]))
        + &op("inner", "split_list", "items = { map = \"emit\" }")
        + &op("leaf", "join2", "a = { map = \"inner\" }, b = { map = \"emit\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(
        report.output("leaf", "result"),
        Some(&json!({"a/i0": {"a": 1, "b": [1, 2]}, "a/i1": {"a": 2, "b": [1, 2]}, "b/i0": {"a": 3, "b": [3]}}))
    );
}

#[test]
fn case_13_an_inner_dynamic_output_nothing_consumes_is_allowed() {
    let ws = Workspace::new();
    let job = emit("emit_script", &records(&[("a", json!([1, 2]))]))
        + &op("fan_again", "split_list", "items = { map = \"emit\" }");
    let report = ws.run(&job);
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(report.output("fan_again", "result"), Some(&json!({"a": {"i0": 1, "i1": 2}})));
}

#[test]
fn case_15_a_dynamic_output_with_no_map_or_collect_is_allowed() {
    let ws = Workspace::new();
    let report = ws.run(&emit("emit_script", &records(&[("x", json!(1)), ("y", json!(2))])));
    assert_eq!(report.status, RunStatus::Success);
    assert_eq!(report.output("emit", "result"), Some(&json!({"x": 1, "y": 2})));
}

#[test]
fn case_17_step_keys_name_the_op_and_key_and_a_clone_reads_its_key() {
    let ws = Workspace::new();
    ws.files("sample", &[("a.txt", b"1")]);
    let job = "name = \"case\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\ngrants = [{ host = \"sample\", guest = \"/data\" }]\n\
               [ops.pf_alias]\ncomponent = \"process_file\"\ninputs = { path = { map = \"files_in_directory\" } }\ngrants = [{ host = \"sample\", guest = \"/data\" }]\n"
        .to_owned()
        + &op("keyed", "mapper", "x = { map = \"files_in_directory\" }")
        + &op("total", "mapper", "x = { collect = \"pf_alias\" }");
    let report = ws.run(&job);
    assert_eq!(keys_of(&report, "pf_alias"), ["pf_alias[a_txt]"]);
    assert_eq!(report.step("pf_alias[a_txt]").unwrap().mapping_key.as_deref(), Some("a_txt"));
    assert_eq!(report.step("total").unwrap().mapping_key, None, "a collect step has no mapping key");
    let job = emit("emit_script", &records(&[("a_txt", json!({"key": true}))]))
        + &op("keyed", "mapper", "x = { map = \"emit\" }");
    assert_eq!(ws.run(&job).output("keyed", "result"), Some(&json!({"a_txt": "a_txt"})));
}

#[test]
fn case_18_metadata_stays_with_its_record() {
    let ws = Workspace::new();
    let script = r#"{ emit = "a_txt", value = 1, metadata = { filename = "a.txt", idx = 0 } }, { emit = "b_txt", value = 2, metadata = { filename = "b.txt", idx = 1 } }"#;
    let ws_report = ws.run(&emit("emit_script", script));
    let value = serde_json::to_value(&ws_report.step("emit").unwrap().records).unwrap();
    assert_eq!(
        value,
        json!([
            {"output": "result", "mapping_key": "a_txt", "metadata": {"filename": {"type": "json", "value": "a.txt"}, "idx": {"type": "json", "value": 0}}},
            {"output": "result", "mapping_key": "b_txt", "metadata": {"filename": {"type": "json", "value": "b.txt"}, "idx": {"type": "json", "value": 1}}},
        ])
    );
}

#[test]
fn case_19_a_plain_output_to_a_dynamic_output_fails_the_step() {
    let ws = Workspace::new();
    let report = ws.run(&emit("emit_script", r#"{ output_value = "result", value = 1 }"#));
    assert_eq!(
        error(&report, "emit"),
        "op \"emit\" emitted a plain output to \"result\", which is a dynamic output and takes DynamicOutput records"
    );
}

#[test]
fn case_20_a_record_to_a_plain_output_fails_the_step_and_abandons_its_downstream() {
    let ws = Workspace::new();
    let job = emit("emit_script", r#"{ emit = "a", value = 1, output = "extra" }"#)
        + &op("double", "mapper", "x = \"emit.extra\"");
    let report = ws.run(&job);
    assert_eq!(
        error(&report, "emit"),
        "op \"emit\" emitted a DynamicOutput to output \"extra\", which is not a dynamic output"
    );
    assert_eq!(error(&report, "double"), "Dependencies for step double failed: ['emit']. Not executing.");
}

#[test]
fn case_21_an_op_without_a_plain_result_must_not_return_a_value() {
    let ws = Workspace::new();
    let job = "name = \"case\"\n[ops.emit]\ncomponent = \"emit_script\"\nconfig = { return_value = 5 }\n";
    let report = ws.run(job);
    assert_eq!(error(&report, "emit"), "run returned a value, but the op has no plain output \"result\" to hold it");
}

/// Run `job` through the binary: (exit code, each step's (status, error) by key, the outputs).
fn run_through_binary(ws: &Workspace, job: &str) -> (i32, std::collections::BTreeMap<String, (String, Value)>, Value) {
    let (code, report) = common::run_json(&ws.job(job));
    let steps = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (s["key"].as_str().unwrap().to_owned(), (s["status"].as_str().unwrap().to_owned(), s["error"].clone()))
        })
        .collect();
    (code, steps, report["outputs"].clone())
}

/// Dagster's `test_multi_out_map` (`test_dynamic_output.py`): a mapped op with optional outputs,
/// each collected. `mapper` plays `multiout`: `result` is its `a`, `other` its `b` and `c`.
#[test]
fn dagster_suite_test_multi_out_map() {
    let ws = Workspace::new();
    // Key 1 gives `result` only; keys 2 and 3 give `other` only.
    let script = records(&[
        ("k1", json!(1)),
        ("k2", json!({ "other": 2, "skip": true })),
        ("k3", json!({ "other": 3, "skip": true })),
    ]);
    let collects = |outputs: &[(&str, &str)]| -> String {
        outputs
            .iter()
            .map(|(name, output)| op(name, "mapper", &format!("x = {{ collect = \"multiout.{output}\" }}")))
            .collect()
    };
    // Some clones produced each output: each collect runs with what there is, in emission order.
    let job = emit("emit_script", &script)
        + &op("multiout", "mapper", "x = { map = \"emit\" }")
        + &collects(&[("echo_a", "result"), ("echo_b", "other")]);
    let (code, steps, outputs) = run_through_binary(&ws, &job);
    assert_eq!(code, 0, "{steps:?}");
    assert_eq!(outputs["echo_a"]["result"], json!([1]));
    assert_eq!(outputs["echo_b"]["result"], json!([2, 3]));

    // No clone produced the collected output: the collect is skipped, and what follows it.
    let script = records(&[("k1", json!(1)), ("k2", json!(2)), ("k3", json!(3))]);
    let job = emit("emit_script", &script)
        + &op("multiout", "mapper", "x = { map = \"emit\" }")
        + &collects(&[("echo_a", "result"), ("echo_c", "other")])
        + &op("after_c", "mapper", "x = \"echo_c\"");
    let (code, steps, outputs) = run_through_binary(&ws, &job);
    assert_eq!(code, 0, "{steps:?}");
    assert_eq!(outputs["echo_a"]["result"], json!([1, 2, 3]));
    assert_eq!(
        steps["echo_c"],
        (
            "skipped".to_owned(),
            json!(
                "Skipping step echo_c due to skipped dependencies: ['multiout[k1].other', 'multiout[k2].other', \
                 'multiout[k3].other']."
            )
        )
    );
    assert_eq!(
        steps["after_c"],
        ("skipped".to_owned(), json!("Skipping step after_c due to skipped dependencies: ['echo_c']."))
    );

    // Every clone skipped (its input was skipped): the collect's source is the op's clones.
    let script = records(&[("k1", json!({ "skip": true })), ("k2", json!({ "skip": true }))]);
    let job = emit("emit_script", &script)
        + &op("multiout", "mapper", "x = { map = \"emit\" }")
        + &op("then", "mapper", "x = { map = \"multiout\" }")
        + &op("echo", "mapper", "x = { collect = \"then\" }");
    let (code, steps, _) = run_through_binary(&ws, &job);
    assert_eq!(code, 0, "{steps:?}");
    assert_eq!(steps["then[k1]"].0, "skipped");
    assert_eq!(
        steps["echo"],
        ("skipped".to_owned(), json!("Skipping step echo due to skipped dependencies: ['then[?]']."))
    );

    // An empty fan-out of a required dynamic output: zero keys, and the collect runs with [].
    let job = emit("emit_script", "")
        + &op("multiout", "mapper", "x = { map = \"emit\" }")
        + &collects(&[("echo_c", "other")]);
    let (code, steps, outputs) = run_through_binary(&ws, &job);
    assert_eq!(code, 0, "{steps:?}");
    assert_eq!(steps["echo_c"].0, "success");
    assert_eq!(outputs["echo_c"]["result"], json!([]));
}
