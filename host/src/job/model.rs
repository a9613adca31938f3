//! What of a planned job decides its results, as one canonical text per op and part, so that
//! two plans can be compared and their differences named. `resume` needs the job a run started
//! with, not the same bytes: a comment, a blank line or a reordered table changes nothing here.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Binding, Plan, PlannedOp};

/// A job as its results depend on it: its name, and for each op its effective config (defaults
/// and `--set` overrides applied), inputs, grants, limits and retries. Components are not in it:
/// a changed component is reported by its digest instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobModel {
    /// The job's name.
    pub job: String,
    /// Each op, in plan order: part name → canonical text.
    pub ops: IndexMap<String, IndexMap<String, String>>,
    /// Each op's inputs and where they come from (what `show --step` reads a step's inputs
    /// back with). Not compared: the `inputs` part says the same.
    #[serde(default)]
    pub wiring: IndexMap<String, Vec<WiredInput>>,
}

/// One input of an op and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WiredInput {
    /// The input's name.
    pub name: String,
    /// How it is fed.
    pub kind: WireKind,
    /// The upstream op.
    pub op: String,
    /// Its output.
    pub output: String,
}

/// How an input is fed from its upstream output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    /// The upstream step's plain output (the instance at a prefix of the consumer's keys).
    Plain,
    /// The record the consumer was cloned from (`map`).
    Map,
    /// The list of the plain outputs of the upstream clones one level below (`collect`).
    Collect,
    /// The list of the records of a dynamic output (`collect` of a dynamic output).
    CollectRecords,
    /// The partner output's record at the clone's position (`zip`).
    Zip,
    /// The partner output's record with the clone's key (`join`).
    Join,
}

/// Parts whose texts are longer than this are said to have changed, without both texts.
const SHOWN_UP_TO: usize = 120;

impl JobModel {
    /// The model of `plan`.
    pub fn of(plan: &Plan) -> Self {
        let ops = plan.ops.iter().map(|op| (op.name.clone(), parts(plan, op))).collect();
        let wiring = plan.ops.iter().map(|op| (op.name.clone(), wiring(plan, op))).collect();
        Self { job: plan.job.clone(), ops, wiring }
    }

    /// What changed from `earlier` to `self`, one line per op and part, in plan order; empty if
    /// nothing did.
    pub fn changes_since(&self, earlier: &Self) -> Vec<String> {
        let mut changes = Vec::new();
        if self.job != earlier.job {
            changes.push(format!("the job's name: \"{}\" → \"{}\"", earlier.job, self.job));
        }
        for (name, before) in &earlier.ops {
            let Some(now) = self.ops.get(name) else {
                changes.push(format!("op \"{name}\" was removed"));
                continue;
            };
            for (part, old) in before {
                let new = now.get(part).map_or("", String::as_str);
                if old != new {
                    changes.push(if old.len() + new.len() <= SHOWN_UP_TO {
                        format!("op \"{name}\": {part} {old} → {new}")
                    } else {
                        format!("op \"{name}\": {part} changed")
                    });
                }
            }
        }
        changes.extend(
            self.ops
                .keys()
                .filter(|name| !earlier.ops.contains_key(*name))
                .map(|name| format!("op \"{name}\" was added")),
        );
        changes
    }
}

fn wiring(plan: &Plan, op: &PlannedOp) -> Vec<WiredInput> {
    op.inputs
        .iter()
        .map(|input| {
            let (kind, upstream, output) = match &input.binding {
                Binding::Plain { op, output } => (WireKind::Plain, *op, output),
                Binding::Record { op, output } => (WireKind::Map, *op, output),
                Binding::Collect { op, output, .. } => (WireKind::Collect, *op, output),
                Binding::CollectRecords { op, output } => (WireKind::CollectRecords, *op, output),
                Binding::Partner { op, output, pairing: super::Pairing::Position } => (WireKind::Zip, *op, output),
                Binding::Partner { op, output, pairing: super::Pairing::Key(_) } => (WireKind::Join, *op, output),
            };
            let op = plan.ops.get(upstream).map_or_else(String::new, |o| o.name.clone());
            WiredInput { name: input.name.clone(), kind, op, output: output.clone() }
        })
        .collect()
}

fn parts(plan: &Plan, op: &PlannedOp) -> IndexMap<String, String> {
    let name_of = |index: usize| plan.ops.get(index).map_or("?", |o| o.name.as_str());
    let inputs: Vec<String> = op
        .inputs
        .iter()
        .map(|input| {
            let source = match &input.binding {
                Binding::Plain { op, output } => format!("{}.{output}", name_of(*op)),
                Binding::Record { op, output } => format!("map {}.{output}", name_of(*op)),
                Binding::CollectRecords { op, output } => format!("collect {}.{output}", name_of(*op)),
                Binding::Partner { op, output, pairing: super::Pairing::Position } => {
                    format!("zip {}.{output}", name_of(*op))
                }
                Binding::Partner { op, output, pairing: super::Pairing::Key(how) } => {
                    format!("join {}.{output} ({how})", name_of(*op))
                }
                Binding::Collect { op, output, min_success: None } => format!("collect {}.{output}", name_of(*op)),
                Binding::Collect { op, output, min_success: Some(min) } => {
                    format!("collect {}.{output} (min_success {min})", name_of(*op))
                }
            };
            format!("{} = {source}", input.name)
        })
        .collect();
    let grants: Vec<String> = op
        .grants
        .iter()
        .map(|g| format!("{} → {} ({:?})", g.grant.host.display(), g.grant.guest, g.grant.access))
        .collect();
    let config = serde_json::from_str::<Value>(op.config.as_str()).map_or_else(|_| op.config.to_string(), canonical);
    let mut parts: IndexMap<String, String> = [
        ("config", config),
        ("inputs", format!("[{}]", inputs.join(", "))),
        ("grants", format!("[{}]", grants.join(", "))),
        ("retries", format!("{} (delay {})", op.retries.max, humantime::format_duration(op.retries.delay))),
    ]
    .into_iter()
    .map(|(part, text)| (part.to_owned(), text))
    .collect();
    // One part per limit, so that a change names the limit.
    if let Ok(Value::Object(limits)) = serde_json::to_value(op.limits) {
        for (name, value) in limits {
            let text = match name.as_str() {
                "timeout" => humantime::format_duration(op.limits.timeout).to_string(),
                _ => value.to_string(),
            };
            parts.insert(format!("limits.{name}"), text);
        }
    }
    parts
}

/// `value` as JSON text with every object's keys sorted: the same config written in another
/// order is the same config.
fn canonical(value: Value) -> String {
    fn sorted(value: Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(entries.into_iter().collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(ops: &[(&str, &[(&str, &str)])]) -> JobModel {
        JobModel {
            job: "j".into(),
            wiring: IndexMap::new(),
            ops: ops
                .iter()
                .map(|(name, parts)| {
                    ((*name).to_owned(), parts.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect())
                })
                .collect(),
        }
    }

    #[test]
    fn names_each_changed_part_added_and_removed_op() {
        let before = model(&[("a", &[("config", "{\"x\":1}"), ("limits", "L")]), ("gone", &[])]);
        let after = model(&[("a", &[("config", "{\"x\":2}"), ("limits", "L")]), ("new", &[])]);
        assert_eq!(
            after.changes_since(&before),
            ["op \"a\": config {\"x\":1} → {\"x\":2}", "op \"gone\" was removed", "op \"new\" was added"]
        );
        assert!(before.changes_since(&before).is_empty());
    }

    #[test]
    fn long_parts_are_named_without_their_text() {
        let long = "x".repeat(SHOWN_UP_TO);
        let before = model(&[("a", &[("config", long.as_str())])]);
        let after = model(&[("a", &[("config", "y")])]);
        assert_eq!(after.changes_since(&before), ["op \"a\": config changed"]);
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = canonical(serde_json::json!({"b": 1, "a": {"d": 2, "c": [ {"f": 1, "e": 2} ]}}));
        assert_eq!(a, r#"{"a":{"c":[{"e":2,"f":1}],"d":2},"b":1}"#);
    }
}
