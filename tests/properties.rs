//! Property tests (run in CI; the long fuzzing runs are `fuzz/`, see the README): the job-file
//! parser and validator, and what the host decodes at the component boundary, never panic and
//! keep their invariants on generated input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use proptest::prelude::*;
use sandmap::definition::{InputDefinition, OpDefinition, OutputDefinition};
use sandmap::job::{Binding, parse_str, plan};
use sandmap::keys::{RESERVED_NAMES, validate_mapping_key};
use sandmap::value::JsonText;

const FILE: &str = "/nonexistent/props/job.toml";

fn out(name: &str, dynamic: bool) -> OutputDefinition {
    OutputDefinition { name: name.into(), description: String::new(), dynamic, required: true }
}

fn inp(name: &str) -> InputDefinition {
    InputDefinition { name: name.into(), description: String::new(), required: false }
}

/// Four kinds of op, by component name: a fan-out, a per-key op, a splitter (a fan-out with
/// inputs, for nesting), a joiner.
fn definition(component: &str) -> OpDefinition {
    // Every kind takes optional x, y, z, so input names rarely make a job invalid.
    let inputs = vec![inp("x"), inp("y"), inp("z")];
    let outputs = match component {
        "fan" => vec![out("result", true), out("extra", false)],
        "each" => vec![out("result", false)],
        "split" => vec![out("result", true)],
        _ => vec![out("result", false), out("other", false)],
    };
    OpDefinition {
        name: component.into(),
        description: String::new(),
        config_schema: serde_json::json!({"type": "object"}),
        inputs,
        outputs,
    }
}

/// A job of up to six ops, each input pointing at any op (itself included) with any kind.
fn arb_job() -> impl Strategy<Value = String> {
    let component = prop_oneof![3 => Just("fan"), 2 => Just("split"), 3 => Just("each"), 2 => Just("join")];
    // Mostly earlier ops and the default output (valid graphs), sometimes anything (errors).
    let output = prop_oneof![7 => Just(""), 1 => Just(".extra"), 1 => Just(".other"), 1 => Just(".nope")];
    let kind = prop_oneof![1 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)];
    let source = (0usize..100, output, kind, 0u8..3);
    let op = (component, prop::collection::vec((prop::sample::select(vec!["x", "y", "x", "y", "z"]), source), 0..3));
    prop::collection::vec(op, 1..7).prop_map(|ops| {
        let n = ops.len();
        let mut text = String::from("name = \"generated\"\n");
        for (i, (component, inputs)) in ops.iter().enumerate() {
            text.push_str(&format!("[ops.op{i}]\ncomponent = \"{component}\"\n"));
            let mut seen = Vec::new();
            let mut parts = Vec::new();
            for (name, (target, output, kind, min)) in inputs {
                if seen.contains(name) {
                    continue;
                }
                seen.push(*name);
                if i == 0 && *target < 90 {
                    continue; // the first op is mostly a root
                }
                let upstream = if i > 0 && *target < 90 { target % i } else { target % n };
                let reference = format!("op{upstream}{output}");
                let min_success = match min {
                    0 => String::new(),
                    1 => ", min_success = 1".into(),
                    _ => ", min_success = 0.5".into(),
                };
                parts.push(match kind {
                    0 => format!("{name} = \"{reference}\""),
                    1 => format!("{name} = {{ map = \"{reference}\" }}"),
                    _ => format!("{name} = {{ collect = \"{reference}\"{min_success} }}"),
                });
            }
            if !parts.is_empty() {
                text.push_str(&format!("inputs = {{ {} }}\n", parts.join(", ")));
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_fails_naming_the_file(text in "(?s).{0,400}") {
        if let Err(error) = parse_str(&text, Path::new(FILE)) {
            prop_assert!(error.to_string().starts_with(FILE));
        }
    }

    #[test]
    fn toml_shaped_text_parses_or_fails_naming_the_file(
        text in "(name = \"j\"\n)?(\\[ops\\.[a-z_]{1,3}\\]\n(component = \"[a-z]{1,5}\"\n)?(inputs = \\{ [a-z] = (\"[a-z.]{1,4}\"|\\{ (map|collect|zip) = \"[a-z.]{1,4}\"( , min_success = [0-9.]{1,3})? \\}) \\}\n)?(limits = \\{ (memory|timeout|fuel) = (\"[0-9]{1,4} ?[a-zA-Z]{0,3}\"|[0-9]{1,3}) \\}\n)?){0,4}"
    ) {
        if let Err(error) = parse_str(&text, Path::new(FILE)) {
            prop_assert!(error.to_string().starts_with(FILE));
        }
    }

    #[test]
    fn a_generated_job_plans_or_fails_cleanly_and_plans_keep_their_invariants(text in arb_job()) {
        let job = parse_str(&text, Path::new(FILE)).unwrap();
        let definitions: Vec<OpDefinition> = job.ops.iter().map(|op| definition(&op.component)).collect();
        match plan(&job, &definitions, &[]) {
            Err(error) => prop_assert!(error.to_string().starts_with(FILE), "{}", error),
            Ok(plan) => {
                for (i, op) in plan.ops.iter().enumerate() {
                    for input in &op.inputs {
                        let upstream = input.binding.op();
                        // Topological: every input comes from an earlier op.
                        prop_assert!(upstream < i, "{} reads from a later op", op.name);
                        let up = &plan.ops[upstream];
                        match &input.binding {
                            // The record of some level of the op's scope (an outer one is broadcast).
                            Binding::Record { output, .. } => {
                                let level = op.scope.get(up.scope.len()).map(|l| (l.op, l.output.clone()));
                                prop_assert_eq!(level, Some((upstream, output.clone())));
                            }
                            Binding::Plain { .. } => prop_assert!(op.scope.starts_with(&up.scope)),
                            // A collected level (and anything above it) may be broadcast deeper.
                            Binding::Collect { .. } => {
                                prop_assert!(!up.scope.is_empty());
                                prop_assert!(op.scope.starts_with(&up.scope[..up.scope.len() - 1]));
                            }
                            Binding::CollectRecords { .. } => prop_assert!(op.scope.starts_with(&up.scope)),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn emitted_values_are_checked_exactly_as_serde_json_reads_them(text in "(?s).{0,200}") {
        let ours = JsonText::parse(text.clone());
        let theirs = serde_json::from_str::<serde_json::Value>(&text);
        let deep = sandmap::value::nests_deeper_than(&text, sandmap::value::MAX_VALUE_DEPTH);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok() && !deep);
    }

    #[test]
    fn every_json_value_round_trips(value in arb_json()) {
        let text = value.to_string();
        let parsed = JsonText::parse(text).unwrap();
        prop_assert_eq!(parsed.to_value(), value);
    }

    #[test]
    fn mapping_keys_follow_the_regex_and_the_reserved_list(key in "(?s).{0,12}|[A-Za-z0-9_]{0,12}|if|None|context") {
        let alphabet = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let expected = alphabet && !RESERVED_NAMES.contains(&key.as_str());
        prop_assert_eq!(validate_mapping_key(&key).is_ok(), expected);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "(?s).{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z]{0,6}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The job generator reaches valid plans with mapped and nested ops, so the invariant property
/// above is not vacuous.
#[test]
fn generated_jobs_cover_valid_mapped_and_nested_plans() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut valid, mut mapped, mut nested, mut collects) = (0, 0, 0, 0);
    for _ in 0..3000 {
        let text = arb_job().new_tree(&mut runner).unwrap().current();
        let job = parse_str(&text, Path::new(FILE)).unwrap();
        let definitions: Vec<OpDefinition> = job.ops.iter().map(|op| definition(&op.component)).collect();
        if let Ok(plan) = plan(&job, &definitions, &[]) {
            valid += 1;
            mapped += usize::from(plan.ops.iter().any(|o| !o.scope.is_empty()));
            nested += usize::from(plan.ops.iter().any(|o| o.scope.len() > 1));
            collects += usize::from(
                plan.ops.iter().any(|o| o.inputs.iter().any(|i| matches!(i.binding, Binding::Collect { .. }))),
            );
        }
    }
    assert!(
        valid >= 450 && mapped >= 70 && nested >= 4 && collects >= 4,
        "{valid} valid, {mapped} mapped, {nested} nested, {collects} collects"
    );
}
