//! Zipped and joined maps (issue #16): `{ zip = "op.output" }` pairs a clone with the record of
//! another fan-out at the same position, `{ join = "op.output" }` with the same key. The cases of
//! Dagster's `test_downstream_multiple_dynamic.py` with exactly the values it asserts, then what
//! Dagster does not have: unequal lengths, joins, streaming, re-execution by key. Through the
//! binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::{StoredJob, Workspace};
use serde_json::{Value, json};

/// `[ops.NAME]` running `emit_script`, emitting `(key, value)` records on `result`.
fn emitter(name: &str, records: &[(String, i64)]) -> String {
    let script: Vec<String> = records.iter().map(|(k, v)| format!("{{ emit = \"{k}\", value = {v} }}")).collect();
    format!("[ops.{name}]\ncomponent = \"emit_script\"\nconfig = {{ script = [{}] }}\n", script.join(", "))
}

fn numbered(prefix: &str, values: impl IntoIterator<Item = i64>) -> Vec<(String, i64)> {
    values.into_iter().enumerate().map(|(i, v)| (format!("{prefix}{i}"), v)).collect()
}

fn op(name: &str, component: &str, inputs: &str) -> String {
    format!("[ops.{name}]\ncomponent = \"{component}\"\ninputs = {{ {inputs} }}\n")
}

struct Ran {
    code: i32,
    report: Value,
}

impl Ran {
    /// `outputs[op].result` as (key, value) pairs in report order.
    fn values(&self, op: &str) -> Vec<(String, Value)> {
        self.report["outputs"][op]["result"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn numbers(&self, op: &str) -> Vec<Value> {
        self.values(op).into_iter().map(|(_, v)| v).collect()
    }

    fn step(&self, key: &str) -> (String, Value) {
        let step = self.report["steps"].as_array().unwrap().iter().find(|s| s["key"] == key);
        let step = step.unwrap_or_else(|| panic!("no step {key} in {:#}", self.report["steps"]));
        (step["status"].as_str().unwrap().to_owned(), step["error"].clone())
    }

    fn statuses(&self, op: &str) -> BTreeMap<String, String> {
        self.report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["op"] == op)
            .map(|s| (s["key"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// Run `job` (a whole job file) in `ws` with three steps at once: for jobs whose fan-outs wait
/// on their clones, which need a worker of their own.
fn run_waiting(ws: &Workspace, job: &str) -> Ran {
    let path = ws.job(job);
    let (code, stdout, stderr) =
        common::run_binary(&["run", path.to_str().unwrap(), "--json", "--max-concurrent", "3"]);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    Ran { code, report }
}

fn run(job: &str) -> Ran {
    let ws = Workspace::new();
    let (code, report) = common::run_json(&ws.job(&format!("name = \"zips\"\n{job}")));
    Ran { code, report }
}

#[test]
fn dagster_suite_test_multiple_upstream() {
    let ran = run(&(emitter("base_upstream", &numbered("base_", 0..5))
        + &emitter("multiplier_upstream", &numbered("multiply_by_", 0..5))
        + &op(
            "upstream_combiner",
            "calc",
            "base = { map = \"base_upstream\" }, multiplier = { zip = \"multiplier_upstream\" }",
        )));
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert_eq!(ran.numbers("upstream_combiner"), [json!(0), json!(1), json!(4), json!(9), json!(16)]);
    // The clone's key is the mapped-over output's.
    let keys: Vec<String> = ran.values("upstream_combiner").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["base_0", "base_1", "base_2", "base_3", "base_4"]);
}

fn zip_three() -> String {
    emitter("base_upstream", &numbered("base_", 0..5))
        + &emitter("multiplier_upstream", &numbered("multiply_by_", 0..5))
        + &emitter("subtract_upstream", &numbered("subtract_", [2; 5]))
        + &op(
            "multiply_and_subtract",
            "calc",
            "base = { map = \"base_upstream\" }, multiplier = { zip = \"multiplier_upstream\" }, \
             subtract = { zip = \"subtract_upstream\" }",
        )
}

#[test]
fn dagster_suite_test_zip_three() {
    let ran = run(&zip_three());
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert_eq!(ran.numbers("multiply_and_subtract"), [json!(-2), json!(-1), json!(2), json!(7), json!(14)]);
}

#[test]
fn dagster_suite_test_zip_outputs_from_same_op() {
    let script: Vec<String> = (0..5)
        .map(|i| {
            format!(
                "{{ emit = \"base_{i}\", value = {i}, output = \"evens\" }}, {{ emit = \"exp_{}\", value = {}, output = \"odds\" }}",
                i + 1,
                i + 1
            )
        })
        .collect();
    let job = format!(
        "[ops.yield_two_outs]\ncomponent = \"emit_multi\"\nconfig = {{ script = [{}, {{ output_value = \"count\", value = 10 }}] }}\n",
        script.join(", ")
    ) + &op(
        "compute_exponent",
        "calc",
        "base = { map = \"yield_two_outs.evens\" }, exponent = { zip = \"yield_two_outs.odds\" }",
    );
    let ran = run(&job);
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert_eq!(ran.numbers("compute_exponent"), [json!(0), json!(1), json!(8), json!(81), json!(1024)]);
}

#[test]
fn dagster_suite_test_with_collect() {
    let ran = run(&(zip_three() + &op("collect_and_sum", "calc", "inputs = { collect = \"multiply_and_subtract\" }")));
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert_eq!(ran.report["outputs"]["collect_and_sum"]["result"], json!(20));
}

#[test]
fn dagster_suite_test_collect_multi_and_test_basic() {
    let bases = emitter("base_upstream", &numbered("base_", 0..5));
    let ran = run(&(bases.clone()
        + &emitter("multiplier_upstream", &numbered("multiply_by_", 0..5))
        + &op(
            "collect_two_and_sum",
            "calc",
            "inputs = { collect = \"base_upstream\" }, more = { collect = \"multiplier_upstream\" }",
        )));
    assert_eq!(ran.report["outputs"]["collect_two_and_sum"]["result"], json!(20));
    let ran = run(&(bases
        + "[ops.add_two]\ncomponent = \"mapper\"\ninputs = { x = { map = \"base_upstream\" } }\n"
        + &op("collect_and_sum", "calc", "inputs = { collect = \"add_two\" }")));
    assert_eq!((ran.code, &ran.report["outputs"]["collect_and_sum"]["result"]), (0, &json!(10)));
}

#[test]
fn a_zip_of_unequal_lengths_fails_naming_both_counts() {
    // The mapped-over output is longer: its clones past the partner's end fail.
    let ran = run(&(emitter("bases", &numbered("base_", 0..4))
        + &emitter("multipliers", &numbered("m_", 0..2))
        + &op("combine", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"multipliers\" }")
        + &op("total", "calc", "inputs = { collect = \"combine\" }")));
    assert_eq!(ran.code, 1);
    assert_eq!(ran.step("combine[base_1]").0, "success");
    assert_eq!(
        ran.step("combine[base_2]"),
        (
            "failure".into(),
            json!(
                "zip: multipliers.result emitted 2 records, so this clone's record (position 2, key \"base_2\") has \
                 no partner; a zipped map needs as many records from each output"
            )
        )
    );
    assert_eq!(ran.step("combine[base_3]").0, "failure");
    assert_eq!(ran.step("total").0, "abandoned");

    // The partner is longer: each record it has past the end fails a step named by its key, and
    // the collect waits for that.
    let ran = run(&(emitter("bases", &numbered("base_", 0..2))
        + &emitter("multipliers", &numbered("m_", 0..3))
        + &op("combine", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"multipliers\" }")
        + &op("total", "calc", "inputs = { collect = \"combine\" }")));
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.statuses("combine"),
        BTreeMap::from([
            ("combine[base_0]".into(), "success".into()),
            ("combine[base_1]".into(), "success".into()),
            ("combine[m_2]".into(), "failure".into()),
        ])
    );
    assert_eq!(
        ran.step("combine[m_2]").1,
        json!(
            "zip: multipliers.result emitted 3 records and bases.result 2; the record at position 2 (key \"m_2\") \
             has no partner (a zipped map needs as many records from each output)"
        )
    );
    assert_eq!(
        ran.step("total"),
        ("abandoned".into(), json!("Dependencies for step total failed: ['combine[m_2]']. Not executing."))
    );
}

#[test]
fn a_join_pairs_records_by_key_whatever_their_order() {
    let left = [("a", 1), ("b", 2), ("c", 3), ("d", 4)].map(|(k, v)| (k.to_owned(), v));
    let right = [("c", 30), ("a", 10), ("b", 20), ("e", 50)].map(|(k, v)| (k.to_owned(), v));
    let job = |how: &str| {
        emitter("left", &left)
            + &emitter("right", &right)
            + &op("pair", "calc", &format!("base = {{ map = \"left\" }}, multiplier = {{ join = \"right\"{how} }}"))
            + &op("total", "calc", "inputs = { collect = \"pair\" }")
    };
    // Inner (the default): one clone per key on both sides; `d` is skipped, `e` runs nothing.
    let alone = run(&(emitter("left", &left)
        + &emitter("right", &right)
        + &op("pair", "calc", "base = { map = \"left\" }, multiplier = { join = \"right\" }")));
    assert_eq!(alone.values("pair"), [("a".into(), json!(10)), ("b".into(), json!(40)), ("c".into(), json!(90))]);
    let ran = run(&job(""));
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert_eq!(
        ran.step("pair[d]"),
        ("skipped".into(), json!("Skipping step pair[d] due to skipped dependencies: ['right.result[d]']."))
    );
    assert_eq!(ran.report["outputs"]["total"]["result"], json!(140));

    // Exact: a key on one side only fails a step naming it, on either side.
    let ran = run(&job(", how = \"exact\""));
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.step("pair[d]"),
        (
            "failure".into(),
            json!("join: right.result has no record with key \"d\" (how = \"exact\" needs every key on both sides)")
        )
    );
    assert_eq!(
        ran.step("pair[e]"),
        (
            "failure".into(),
            json!(
                "join: right.result emitted key \"e\", which left.result did not (how = \"exact\" needs every key on both sides)"
            )
        )
    );
    assert_eq!(ran.step("total").0, "abandoned");
}

#[test]
fn zip_and_join_are_refused_where_they_cannot_pair() {
    let ws = Workspace::new();
    let two = emitter("bases", &numbered("b_", 0..2)) + &emitter("others", &numbered("o_", 0..2));
    let invalid = |job: &str| -> String {
        let path = ws.job(&format!("name = \"zips\"\n{job}"));
        let (code, _, stderr) = common::run_binary(&["validate", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{stderr}");
        stderr.replace(&path.display().to_string(), "job.toml")
    };
    let text = invalid(&(two.clone() + &op("z", "calc", "multiplier = { zip = \"others\" }")));
    assert!(text.contains("op \"z\": inputs.multiplier: a zip input needs a map input next to it"), "{text}");
    let text =
        invalid(&(two.clone() + &op("z", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"bases\" }")));
    assert!(text.contains("cannot zip bases:result with itself"), "{text}");
    let text = invalid(
        &(two.clone()
            + &op("z", "calc", "base = { map = \"bases\" }, multiplier = { join = \"others\", how = \"outer\" }")),
    );
    assert!(text.contains("how must be \"inner\" or \"exact\", not \"outer\""), "{text}");
    let text = invalid(
        &(two.clone()
            + "[ops.plain]\ncomponent = \"mapper\"\ninputs = { x = { collect = \"bases\" } }\n"
            + &op("z", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"plain\" }")),
    );
    assert!(text.contains("cannot zip plain:result: it is not a dynamic output"), "{text}");
    // A partner one level deeper than what the op is mapped over.
    let text = invalid(
        &(two
            + "[ops.inner]\ncomponent = \"emit_script\"\nconfig = { script = [] }\n"
            + &op("per", "mapper", "x = { map = \"bases\" }")
            + &op("z", "calc", "base = { map = \"others\" }, multiplier = { zip = \"per\" }")),
    );
    assert!(text.contains("inputs.multiplier"), "{text}");
}

#[test]
fn a_joined_clone_starts_once_both_records_exist_before_either_fan_out_ends() {
    // Both fan-outs emit `a`, then wait for the file the joined clone `pair[a]` writes: it can
    // only have run while both were still going, once both of its records existed.
    let ws = Workspace::new();
    ws.files("flags", &[]);
    let job = r#"
name = "streams"
[ops.left]
component = "emit_script"
config = { script = [{ emit = "a", value = { touch = "/flags/pair_a" } }, { wait_for = "/flags/pair_a" }, { emit = "b", value = 2 }] }
grants = [{ host = "flags", guest = "/flags", access = "read-write" }]
limits = { timeout = "20s" }
[ops.right]
component = "emit_script"
config = { script = [{ emit = "a", value = 1 }, { wait_for = "/flags/pair_a" }, { emit = "b", value = 3 }] }
grants = [{ host = "flags", guest = "/flags", access = "read-write" }]
limits = { timeout = "20s" }
[ops.pair]
component = "mapper"
inputs = { x = { map = "left" }, y = { join = "right" } }
grants = [{ host = "flags", guest = "/flags", access = "read-write" }]
limits = { timeout = "20s" }
"#;
    let ran = run_waiting(&ws, job);
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    let outputs = &ran.report["outputs"]["pair"]["result"];
    assert_eq!(outputs["b"], json!({ "x": 2, "y": 3 }));
}

#[test]
fn reexecuting_one_zipped_clone_takes_the_rest_and_resume_style_reuse_keeps_pairs() {
    let ws = Workspace::new();
    let job = format!(
        "name = \"zips\"\n{}",
        zip_three() + &op("collect_and_sum", "calc", "inputs = { collect = \"multiply_and_subtract\" }")
    );
    let stored = StoredJob::new(ws, &job);
    let (code, first, stderr) = stored.run(&["run", &stored.job.clone(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let id = first["run_id"].as_str().unwrap();
    let (code, child, stderr) = stored.run(&["reexecute", id, "--step", "multiply_and_subtract[base_3]+", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let ran: Vec<&str> = child["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(ran, ["multiply_and_subtract[base_3]", "collect_and_sum"]);
    assert_eq!(child["outputs"]["collect_and_sum"]["result"], json!(20));
    // `+` upward: the clone's partner fan-outs are its upstream too.
    let (code, child, stderr) = stored.run(&["reexecute", id, "--step", "+multiply_and_subtract[base_3]", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let mut ran: Vec<&str> = child["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(ran, ["base_upstream", "multiplier_upstream", "multiply_and_subtract[base_3]", "subtract_upstream"]);
    // show --step names the partner records a zipped clone received.
    let (code, detail, stderr) = stored.run(&["show", id, "--step", "multiply_and_subtract[base_3]", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let inputs: Vec<(&str, &str, Value)> = detail["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["from"][0].as_str().unwrap(), i["value"].clone()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("base", "base_upstream.result[base_3]", json!(3)),
            ("multiplier", "multiplier_upstream.result[multiply_by_3]", json!(3)),
            ("subtract", "subtract_upstream.result[subtract_3]", json!(2)),
        ]
    );
}

#[test]
fn a_killed_run_with_zipped_clones_resumes_without_redoing_a_finished_pair() {
    // Clones k0 and k1 finish at once; k2 and k3 wait for /gate/open. Kill -9, open, resume.
    let ws = Workspace::new();
    ws.files("gate", &[]);
    let gated = r#"{ wait_for = "/gate/open" }"#;
    let job = format!(
        r#"
name = "zips"
[ops.left]
component = "emit_script"
config = {{ script = [{{ emit = "k0", value = 0 }}, {{ emit = "k1", value = 1 }}, {{ emit = "k2", value = {gated} }}, {{ emit = "k3", value = {gated} }}] }}
[ops.right]
component = "emit_script"
config = {{ script = [{{ emit = "r0", value = 10 }}, {{ emit = "r1", value = 11 }}, {{ emit = "r2", value = 12 }}, {{ emit = "r3", value = 13 }}] }}
[ops.pair]
component = "mapper"
inputs = {{ x = {{ map = "left" }}, y = {{ zip = "right" }} }}
grants = [{{ host = "gate", guest = "/gate" }}]
[ops.all]
component = "mapper"
inputs = {{ x = {{ collect = "pair" }} }}
"#
    );
    let stored = StoredJob::new(ws, &job);
    let mut host = stored.spawn_run(&["--max-concurrent", "2"]);
    let id = common::wait_for("the run to be recorded", || {
        let (_, runs, _) = stored.run(&["runs", "--json"]);
        runs.as_array()?.first()?["run_id"].as_str().map(str::to_owned)
    });
    common::wait_for("two pairs recorded", || {
        let (_, shown, _) = stored.run(&["show", &id, "--json"]);
        let done = shown["steps"].as_array()?.iter().filter(|s| s["op"] == "pair" && s["status"] == "success").count();
        (done == 2).then_some(())
    });
    host.kill().unwrap();
    host.wait().unwrap();
    std::fs::write(stored.ws.path().join("gate/open"), b"").unwrap();
    let (code, resumed, stderr) = stored.run(&["resume", &id, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let mut ran: Vec<&str> = resumed["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    ran.sort_unstable();
    assert_eq!(ran, ["all", "pair[k2]", "pair[k3]"]);
    let all = &resumed["outputs"]["all"]["result"];
    assert_eq!(all[0], json!({ "x": 0, "y": 10 }));
    assert_eq!(all[3], json!({ "x": { "wait_for": "/gate/open" }, "y": 13 }));
}

/// What a zip or join of `left` (mapped over) and `right` should give, per step of `pair`:
/// its status and, for a success, base × multiplier.
fn model(how: &str, left: &[(String, i64)], right: &[(String, i64)]) -> BTreeMap<String, (String, Option<i64>)> {
    let mut steps = BTreeMap::new();
    let ok = |l: i64, r: i64| ("success".to_owned(), Some(l * r));
    let failed = || ("failure".to_owned(), None);
    if how == "zip" {
        for (i, (key, l)) in left.iter().enumerate() {
            steps.insert(key.clone(), right.get(i).map_or_else(failed, |(_, r)| ok(*l, *r)));
        }
        for (key, _) in right.iter().skip(left.len()) {
            steps.insert(key.clone(), failed());
        }
        return steps;
    }
    let find = |key: &str| right.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    for (key, l) in left {
        let missing = if how == "inner" { ("skipped".to_owned(), None) } else { failed() };
        steps.insert(key.clone(), find(key).map_or(missing, |r| ok(*l, r)));
    }
    if how == "exact" {
        for (key, _) in right.iter().filter(|(k, _)| !left.iter().any(|(l, _)| l == k)) {
            steps.insert(key.clone(), failed());
        }
    }
    steps
}

/// Some of `k0`…`k5` in some order, each with a value.
fn arb_side(prefix: &'static str, scale: i64) -> impl proptest::strategy::Strategy<Value = Vec<(String, i64)>> {
    use proptest::prelude::*;
    proptest::sample::subsequence((0..6).collect::<Vec<i64>>(), 0..=6)
        .prop_shuffle()
        .prop_map(move |picked| picked.into_iter().map(|i| (format!("{prefix}{i}"), (i + 1) * scale)).collect())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 40, ..Default::default() })]

    /// Random sides, random order, every pairing: each step of the paired op ends as the model
    /// says, with base × multiplier for the ones that ran, and the run fails exactly when one
    /// failed.
    #[test]
    fn zips_and_joins_of_random_sides_pair_exactly_as_the_model_says(
        how in proptest::sample::select(vec!["zip", "inner", "exact"]),
        (left, right) in (arb_side("k", 1), arb_side("k", 10)),
    ) {
        // A zip's sides have keys of their own (its partner-only steps are named by them).
        let right: Vec<(String, i64)> =
            if how == "zip" { right.into_iter().map(|(k, v)| (k.replace('k', "r"), v)).collect() } else { right };
        let input = match how {
            "zip" => "zip = \"right\"".to_owned(),
            other => format!("join = \"right\", how = \"{other}\""),
        };
        let ran = run(&(emitter("left", &left)
            + &emitter("right", &right)
            + &op("pair", "calc", &format!("base = {{ map = \"left\" }}, multiplier = {{ {input} }}"))));
        let expected = model(how, &left, &right);
        let values: BTreeMap<String, Value> = ran
            .report["outputs"]["pair"]["result"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let observed: BTreeMap<String, (String, Option<i64>)> = ran
            .statuses("pair")
            .into_iter()
            .map(|(key, status)| {
                let key = key.trim_start_matches("pair[").trim_end_matches(']').to_owned();
                let value = values.get(&key).and_then(Value::as_i64);
                (key, (status, value))
            })
            .collect();
        proptest::prop_assert_eq!(&observed, &expected, "{} {:?} {:?}", how, left, right);
        let failed = expected.values().any(|(s, _)| s == "failure");
        proptest::prop_assert_eq!(ran.code, i32::from(failed));
    }
}

fn keyed(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn a_collect_waits_for_the_partner_fan_out_of_the_same_op_to_close() {
    // Both sides are one op's outputs; every clone ends before that op does, so its two
    // fan-outs close one after the other with nothing else left: the collect must still see the
    // failure of the partner record that pairs with nothing.
    let ws = Workspace::new();
    ws.files("flags", &[]);
    let job = r#"
name = "same_op"
[ops.emit]
component = "emit_multi"
config = { script = [{ emit = "e0", value = { touch = "/flags/e0" }, output = "evens" }, { emit = "e1", value = { touch = "/flags/e1" }, output = "evens" }, { emit = "o0", value = 0, output = "odds" }, { emit = "o1", value = 1, output = "odds" }, { emit = "o2", value = 2, output = "odds" }, { wait_for = "/flags/e0" }, { wait_for = "/flags/e1" }, { output_value = "count", value = 5 }] }
grants = [{ host = "flags", guest = "/flags" }]
limits = { timeout = "20s" }
[ops.x]
component = "mapper"
inputs = { x = { map = "emit.evens" }, y = { zip = "emit.odds" } }
grants = [{ host = "flags", guest = "/flags", access = "read-write" }]
[ops.total]
component = "mapper"
inputs = { x = { collect = "x" } }
"#;
    let ran = run_waiting(&ws, job);
    assert_eq!(ran.code, 1, "{:#}", ran.report);
    assert_eq!(ran.step("x[e1]").0, "success");
    assert_eq!(ran.step("x[o2]").0, "failure");
    assert_eq!(
        ran.step("total"),
        ("abandoned".into(), json!("Dependencies for step total failed: ['x[o2]']. Not executing."))
    );
}

#[test]
fn a_pair_missing_in_the_parent_runs_once_a_reexecution_supplies_it() {
    let ws = Workspace::new();
    let job = format!(
        "name = \"zips\"\n{}",
        emitter("bases", &numbered("base_", 0..3))
            + &emitter("multipliers", &numbered("m_", [10, 20]))
            + &op("combine", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"multipliers\" }")
    );
    let stored = StoredJob::new(ws, &job);
    let (code, parent, _) = stored.run(&["run", &stored.job.clone(), "--json"]);
    assert_eq!(code, 1);
    let id = parent["run_id"].as_str().unwrap();
    let three = "multipliers.config.script=[{ emit = \"m_0\", value = 10 }, { emit = \"m_1\", value = 20 }, { emit = \"m_2\", value = 30 }]";
    let (code, child, stderr) = stored.run(&["reexecute", id, "--step", "multipliers", "--set", three, "--json"]);
    assert_eq!(code, 0, "{stderr}");
    // The failure for want of a partner is not a result to take: the clone runs now.
    let ran: Vec<&str> = child["steps"].as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(ran, ["multipliers", "combine[base_2]"]);
    assert_eq!(child["outputs"]["combine"]["result"], json!({ "base_0": 0, "base_1": 20, "base_2": 60 }));
}

#[test]
fn an_optional_mapped_output_that_emitted_nothing_leaves_its_partner_unpaired_without_failing() {
    let ran = run(&("[ops.bases]\ncomponent = \"emit_optional\"\nconfig = { script = [] }\n".to_owned()
        + &emitter("multipliers", &numbered("m_", 0..2))
        + &op("combine", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"multipliers\" }")));
    assert_eq!(ran.code, 0, "{:#}", ran.report);
    assert!(ran.statuses("combine").is_empty(), "{:#}", ran.report);
}

#[test]
fn an_unpaired_record_whose_key_is_taken_still_fails_a_step() {
    // The partner's third record is keyed `a`, a clone's key already, and so is `zip_2`.
    let ran = run(&(emitter("bases", &keyed(&[("a", 1), ("zip_2", 2)]))
        + &emitter("multipliers", &keyed(&[("x", 1), ("y", 2), ("a", 3)]))
        + &op("combine", "calc", "base = { map = \"bases\" }, multiplier = { zip = \"multipliers\" }")));
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.statuses("combine"),
        BTreeMap::from([
            ("combine[a]".into(), "success".into()),
            ("combine[zip_2]".into(), "success".into()),
            ("combine[zip_2_1]".into(), "failure".into()),
        ])
    );
}
