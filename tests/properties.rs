//! Property tests (run in CI; the long fuzzing runs are `fuzz/`, see the README): the job-file
//! parser and validator, and what the host decodes at the component boundary, never panic and
//! keep their invariants on generated input; chains of re-executions run exactly the steps
//! Dagster's rules give.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
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
    let kind = prop_oneof![1 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)];
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
                parts.push(match (kind, min) {
                    (0, _) => format!("{name} = \"{reference}\""),
                    (1, _) => format!("{name} = {{ map = \"{reference}\" }}"),
                    (2, _) => format!("{name} = {{ collect = \"{reference}\"{min_success} }}"),
                    (_, 0) => format!("{name} = {{ zip = \"{reference}\" }}"),
                    (_, 1) => format!("{name} = {{ join = \"{reference}\" }}"),
                    _ => format!("{name} = {{ join = \"{reference}\", how = \"exact\" }}"),
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
        text in "(name = \"j\"\n)?(\\[ops\\.[a-z_]{1,3}\\]\n(component = \"[a-z]{1,5}\"\n)?(inputs = \\{ [a-z] = (\"[a-z.]{1,4}\"|\\{ (map|collect|zip|join) = \"[a-z.]{1,4}\"( , (min_success = [0-9.]{1,3}|how = \"[a-z]{1,5}\"))? \\}) \\}\n)?(limits = \\{ (memory|timeout|fuel) = (\"[0-9]{1,4} ?[a-zA-Z]{0,3}\"|[0-9]{1,3}) \\}\n)?){0,4}"
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
                            // A sibling of the level the op is mapped over: emitted at the same
                            // depth, never that level itself.
                            Binding::Partner { output, .. } => {
                                let (last, outer) = op.scope.split_last().unwrap();
                                prop_assert_eq!(up.scope.as_slice(), outer);
                                prop_assert!((last.op, &last.output) != (upstream, output));
                            }
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
/// above is not vacuous (20,000 jobs: zipped and joined plans are rare among random graphs).
#[test]
fn generated_jobs_cover_valid_mapped_and_nested_plans() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut valid, mut mapped, mut nested, mut collects, mut paired) = (0, 0, 0, 0, 0);
    for _ in 0..20_000 {
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
            paired += usize::from(
                plan.ops.iter().any(|o| o.inputs.iter().any(|i| matches!(i.binding, Binding::Partner { .. }))),
            );
        }
    }
    assert!(
        valid >= 4_000 && mapped >= 450 && nested >= 15 && collects >= 8 && paired >= 6,
        "{valid} valid, {mapped} mapped, {nested} nested, {collects} collects, {paired} zipped or joined"
    );
}

// ---------------------------------------------------------------------------------------------
// Chains of re-executions, through the binary: files_in_directory → parse[k] (behave) → stat[k]
// (behave, chained: parse returns the path stat reads) → summary (mapper, collect). Each
// generation scripts per key whether parse fails, stat fails or both succeed, and which of two
// files parse points stat at (so a re-run parse may change what stat receives). The steps each
// generation should run are computed here from the parent's statuses and the selection, by
// Dagster's rules (from failure: what did not succeed and everything downstream; a selection:
// exactly its steps, with `+`/`*` levels) and sandmap's one addition (a step not selected runs
// if what it receives changed: its parent result would be stale), and compared with what ran:
// the run's JSON (own steps, `reused`, outputs) and the `mark:` files behave leaves per run.

const KEYS: usize = 4;
const LEVELS_ALL: usize = usize::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    ParseFails,
    StatFails,
    Ok,
}

/// One generation's script: per key, its outcome and the file parse points stat at.
type Script = Vec<(Outcome, u8)>;

#[derive(Debug, Clone)]
enum Choice {
    FromFailure,
    /// (levels up, target, levels down) per selection.
    Steps(Vec<(usize, String, usize)>),
}

fn arb_script() -> impl Strategy<Value = Script> {
    let outcome = prop_oneof![1 => Just(Outcome::ParseFails), 1 => Just(Outcome::StatFails), 3 => Just(Outcome::Ok)];
    prop::collection::vec((outcome, 0u8..2), KEYS)
}

fn arb_choice() -> impl Strategy<Value = Choice> {
    let level = prop_oneof![4 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize), 1 => Just(LEVELS_ALL)];
    let mut targets = vec!["files_in_directory".to_owned(), "parse[?]".into(), "stat[?]".into(), "summary".into()];
    for k in 0..KEYS {
        targets.push(format!("parse[f{k}_txt]"));
        targets.push(format!("stat[f{k}_txt]"));
    }
    let selector = (level.clone(), prop::sample::select(targets), level);
    prop_oneof![1 => Just(Choice::FromFailure), 2 => prop::collection::vec(selector, 1..3).prop_map(Choice::Steps)]
}

fn selection_text((up, target, down): &(usize, String, usize)) -> String {
    let side = |n: usize| if n == LEVELS_ALL { "*".to_owned() } else { "+".repeat(n) };
    format!("{}{target}{}", side(*up), side(*down))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Failure,
    Abandoned,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Abandoned => "abandoned",
        }
    }
}

/// A step as the model has it: its status, its value (abstract) and what it received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelStep {
    status: Status,
    value: Option<String>,
    inputs: Option<String>,
}

/// The job's steps, in report order: files_in_directory, parse[*], stat[*], summary.
fn step_keys() -> Vec<String> {
    let mut keys = vec!["files_in_directory".to_owned()];
    keys.extend((0..KEYS).map(|k| format!("parse[f{k}_txt]")));
    keys.extend((0..KEYS).map(|k| format!("stat[f{k}_txt]")));
    keys.push("summary".into());
    keys
}

/// Direct upstream steps (indices into `step_keys`).
fn model_upstream(i: usize) -> Vec<usize> {
    match i {
        0 => vec![],
        i if i <= KEYS => vec![0],
        i if i <= 2 * KEYS => vec![i - KEYS],
        _ => (KEYS + 1..=2 * KEYS).collect(),
    }
}

fn model_reach(from: usize, levels: usize, upward: bool) -> BTreeSet<usize> {
    let n = 2 * KEYS + 2;
    let mut reached = BTreeSet::from([from]);
    let mut frontier = vec![from];
    let mut level = 0;
    while !frontier.is_empty() && level < levels {
        let mut next = Vec::new();
        for &i in &frontier {
            let neighbours: Vec<usize> =
                if upward { model_upstream(i) } else { (0..n).filter(|&t| model_upstream(t).contains(&i)).collect() };
            for j in neighbours {
                if reached.insert(j) {
                    next.push(j);
                }
            }
        }
        frontier = next;
        level += 1;
    }
    reached
}

fn matches_target(target: &str, key: &str) -> bool {
    match target.strip_suffix("[?]") {
        Some(op) => key.starts_with(&format!("{op}[")),
        None => key == target,
    }
}

/// What the generation selects, by Dagster's rules on the parent's statuses; `None`: the
/// re-execution is refused (from failure on a run that did not fail).
fn model_selection(parent: &[ModelStep], choice: &Choice) -> Option<BTreeSet<usize>> {
    let keys = step_keys();
    match choice {
        Choice::FromFailure => {
            if parent.iter().all(|s| s.status != Status::Failure) {
                return None;
            }
            let mut selected = BTreeSet::new();
            for (i, step) in parent.iter().enumerate() {
                if step.status != Status::Success {
                    selected.extend(model_reach(i, LEVELS_ALL, false));
                }
            }
            Some(selected)
        }
        Choice::Steps(selectors) => {
            let mut selected = BTreeSet::new();
            for (up, target, down) in selectors {
                for i in (0..keys.len()).filter(|&i| matches_target(target, &keys[i])) {
                    selected.extend(model_reach(i, *up, true));
                    selected.extend(model_reach(i, *down, false));
                }
            }
            Some(selected)
        }
    }
}

/// One generation: each step's state, which ran, which were taken from the parent.
struct ModelRun {
    steps: Vec<ModelStep>,
    executed: BTreeSet<usize>,
    reused: BTreeSet<usize>,
}

fn model_run(parent: Option<&[ModelStep]>, selected: &BTreeSet<usize>, script: &Script) -> ModelRun {
    let n = 2 * KEYS + 2;
    let mut steps: Vec<ModelStep> = Vec::with_capacity(n);
    let (mut executed, mut reused) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..n {
        let deps = model_upstream(i);
        let deps_ok = deps.iter().all(|&d| steps[d].status == Status::Success);
        let inputs = deps_ok.then(|| match i {
            0 => String::new(),
            i if i <= KEYS => format!("record {}", i - 1),
            _ => deps.iter().map(|&d| steps[d].value.clone().unwrap_or_default()).collect::<Vec<_>>().join(","),
        });
        let run = |inputs: Option<String>| {
            let (status, value) = match i {
                0 => (Status::Success, Some("fan".into())),
                i if i <= KEYS => match script[i - 1] {
                    (Outcome::ParseFails, _) => (Status::Failure, None),
                    (_, variant) => (Status::Success, Some(format!("s{}_{variant}", i - 1))),
                },
                i if i <= 2 * KEYS => match script[i - 1 - KEYS].0 {
                    Outcome::StatFails => (Status::Failure, None),
                    _ => (Status::Success, inputs.clone()),
                },
                _ => (Status::Success, inputs.clone()),
            };
            ModelStep { status, value, inputs }
        };
        let earlier = parent.map(|p| &p[i]).filter(|_| !selected.contains(&i));
        let step = match earlier {
            // Selected (or a first run): it runs if what it needs is there.
            None if deps_ok => {
                executed.insert(i);
                run(inputs)
            }
            None => ModelStep { status: Status::Abandoned, value: None, inputs: None },
            // Not selected, and not executed there: it stays so.
            Some(earlier) if earlier.status == Status::Abandoned => {
                reused.insert(i);
                earlier.clone()
            }
            // Not selected, a result there: taken for the same inputs, run for others.
            Some(earlier) if deps_ok && inputs == earlier.inputs => {
                reused.insert(i);
                earlier.clone()
            }
            Some(_) if deps_ok => {
                executed.insert(i);
                run(inputs)
            }
            Some(_) => ModelStep { status: Status::Abandoned, value: None, inputs: None },
        };
        steps.push(step);
    }
    ModelRun { steps, executed, reused }
}

/// The chain job; its files written for `script`.
fn reexec_job() -> common::StoredJob {
    let ws = common::Workspace::new();
    for dir in ["cmds", "aux", "pm", "sm"] {
        ws.files(dir, &[]);
    }
    let job = format!(
        r#"
name = "generations"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{{ host = "cmds", guest = "/data" }}]
[ops.parse]
component = "{behave}"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "cmds", guest = "/data" }}, {{ host = "aux", guest = "/aux" }},
          {{ host = "pm", guest = "/pm", access = "read-write" }}]
[ops.stat]
component = "{behave}"
inputs = {{ path = {{ map = "parse" }} }}
grants = [{{ host = "aux", guest = "/aux" }}, {{ host = "sm", guest = "/sm", access = "read-write" }}]
[ops.summary]
component = "mapper"
inputs = {{ x = {{ collect = "stat" }} }}
"#,
        behave = sandmap_test_programs::BEHAVE
    );
    common::StoredJob::new(ws, &job)
}

fn write_script(s: &common::StoredJob, script: &Script) {
    for (k, (outcome, variant)) in script.iter().enumerate() {
        let parse: String = match outcome {
            Outcome::ParseFails => "mark:/pm\nfail:parse\n".into(),
            _ => format!("mark:/pm\nread:/aux/p{k}.txt\n"),
        };
        let stat: &[u8] = if *outcome == Outcome::StatFails { b"mark:/sm\nfail:stat\n" } else { b"mark:/sm\nok\n" };
        let pointer = format!("/aux/s{k}_{variant}.txt");
        s.ws.files("cmds", &[(&format!("f{k}.txt"), parse.as_bytes())]);
        s.ws.files(
            "aux",
            &[
                (&format!("p{k}.txt"), pointer.as_bytes()),
                (&format!("s{k}_0.txt"), stat),
                (&format!("s{k}_1.txt"), stat),
            ],
        );
    }
}

fn count_marks(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let key = name.rsplit_once('.').unwrap().0.to_owned();
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Check one run's JSON against the model's generation.
fn check_generation(
    s: &common::StoredJob,
    report: &serde_json::Value,
    model: &ModelRun,
    runs_so_far: &BTreeMap<usize, usize>,
) -> Result<(), TestCaseError> {
    let keys = step_keys();
    let own: BTreeMap<String, (String, u64)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let key = s["key"].as_str().unwrap().to_owned();
            (key, (s["status"].as_str().unwrap().to_owned(), s["attempts"].as_u64().unwrap()))
        })
        .collect();
    let ran: BTreeSet<String> = own.iter().filter(|(_, (_, attempts))| *attempts > 0).map(|(k, _)| k.clone()).collect();
    let expected_ran: BTreeSet<String> = model.executed.iter().map(|&i| keys[i].clone()).collect();
    prop_assert_eq!(&ran, &expected_ran, "steps that ran");
    let reused: BTreeSet<String> = report["reused"]
        .as_array()
        .map(|r| r.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    let expected_reused: BTreeSet<String> = model.reused.iter().map(|&i| keys[i].clone()).collect();
    prop_assert_eq!(&reused, &expected_reused, "steps taken from the parent");
    for (i, key) in keys.iter().enumerate() {
        if model.reused.contains(&i) {
            continue;
        }
        let status = own.get(key).map(|(status, _)| status.as_str());
        prop_assert_eq!(status, Some(model.steps[i].status.word()), "status of {}", key);
    }
    // What behave recorded, per clone: every run of it so far, this one included.
    let (parse, stat) = (count_marks(&s.ws.path().join("pm")), count_marks(&s.ws.path().join("sm")));
    for k in 0..KEYS {
        let key = format!("f{k}_txt");
        prop_assert_eq!(parse.get(&key).copied().unwrap_or(0), runs_so_far[&(k + 1)], "parse runs of {}", key);
        prop_assert_eq!(stat.get(&key).copied().unwrap_or(0), runs_so_far[&(k + 1 + KEYS)], "stat runs of {}", key);
    }
    // The collect's output: the stat values it was given, each naming the file parse chose.
    let summary = &model.steps[2 * KEYS + 1];
    let output = &report["outputs"]["summary"]["result"];
    match &summary.value {
        Some(value) if summary.status == Status::Success => {
            let paths: Vec<String> = output
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["path"].as_str().unwrap().trim_start_matches("/aux/").trim_end_matches(".txt").to_owned())
                .collect();
            prop_assert_eq!(paths.join(","), value.clone());
        }
        _ => prop_assert!(output.is_null(), "summary did not succeed but gave {}", output),
    }
    let failed = model.steps.iter().any(|s| s.status == Status::Failure);
    prop_assert_eq!(report["status"].as_str(), Some(if failed { "failure" } else { "success" }));
    Ok(())
}

proptest! {
    // Each case runs the binary four times: a few dozen cases keep it to seconds.
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn chains_of_reexecutions_run_exactly_the_steps_dagster_rules_give(
        first in arb_script(),
        generations in prop::collection::vec((arb_choice(), arb_script()), 3),
    ) {
        let s = reexec_job();
        write_script(&s, &first);
        let all: BTreeSet<usize> = (0..2 * KEYS + 2).collect();
        let model = model_run(None, &all, &first);
        let mut runs: BTreeMap<usize, usize> = (0..2 * KEYS + 2).map(|i| (i, 0)).collect();
        for &i in &model.executed {
            *runs.entry(i).or_insert(0) += 1;
        }
        let (code, report, stderr) = s.run(&["run", &s.job, "--json"]);
        prop_assert!(code == 0 || code == 1, "{}", stderr);
        check_generation(&s, &report, &model, &runs)?;
        let (mut parent_id, mut parent) = (report["run_id"].as_str().unwrap().to_owned(), model.steps);
        for (choice, script) in &generations {
            write_script(&s, script);
            let mut args = vec!["reexecute".to_owned(), parent_id.clone(), "--json".into()];
            match choice {
                Choice::FromFailure => args.push("--from-failure".into()),
                Choice::Steps(selectors) => {
                    for selector in selectors {
                        args.extend(["--step".to_owned(), selection_text(selector)]);
                    }
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, report, stderr) = s.run(&args);
            let Some(selected) = model_selection(&parent, choice) else {
                prop_assert_eq!(code, 2, "{}", stderr);
                prop_assert!(stderr.contains("Cannot reexecute from failure a run that is not failed"), "{}", stderr);
                continue;
            };
            prop_assert!(code == 0 || code == 1, "{:?}: {}", args, stderr);
            let model = model_run(Some(&parent), &selected, script);
            for &i in &model.executed {
                *runs.entry(i).or_insert(0) += 1;
            }
            check_generation(&s, &report, &model, &runs).map_err(|e| TestCaseError::fail(format!("{args:?}: {e}")))?;
            prop_assert_eq!(report["parent_run_id"].as_str(), Some(parent_id.as_str()));
            // The store holds the run exactly as printed.
            let (_, shown, _) = s.run(&["show", report["run_id"].as_str().unwrap(), "--json"]);
            prop_assert_eq!(&shown, &report);
            parent_id = report["run_id"].as_str().unwrap().to_owned();
            parent = model.steps;
        }
    }
}

/// The model itself, on the mission's case: a from-failure after one of two bad files is fixed.
#[test]
fn the_reexecution_model_follows_dagster_on_a_known_case() {
    let mut script: Script = vec![(Outcome::Ok, 0); KEYS];
    script[1] = (Outcome::ParseFails, 0);
    script[2] = (Outcome::ParseFails, 0);
    let all: BTreeSet<usize> = (0..2 * KEYS + 2).collect();
    let first = model_run(None, &all, &script);
    assert_eq!(first.executed.len(), 1 + KEYS + 2);
    script[1] = (Outcome::Ok, 0);
    let selected = model_selection(&first.steps, &Choice::FromFailure).unwrap();
    assert_eq!(selected, BTreeSet::from([2, 3, 2 + KEYS, 3 + KEYS, 2 * KEYS + 1]));
    let second = model_run(Some(&first.steps), &selected, &script);
    assert_eq!(second.executed, BTreeSet::from([2, 3, 2 + KEYS]));
    script[2] = (Outcome::Ok, 0);
    let selected = model_selection(&second.steps, &Choice::FromFailure).unwrap();
    let third = model_run(Some(&second.steps), &selected, &script);
    assert_eq!(third.executed, BTreeSet::from([3, 3 + KEYS, 2 * KEYS + 1]));
    // A selection of one clone whose parse now points elsewhere: its stat runs, and the collect.
    script[0] = (Outcome::Ok, 1);
    let selected = model_selection(&third.steps, &Choice::Steps(vec![(0, "parse[f0_txt]".into(), 0)])).unwrap();
    let fourth = model_run(Some(&third.steps), &selected, &script);
    assert_eq!(fourth.executed, BTreeSet::from([1, 1 + KEYS, 2 * KEYS + 1]));
}
