//! One recorded step in full: what it received, emitted and produced, each with its metadata.
//! Its inputs are not stored twice: they are read back from the upstream steps' recorded
//! outputs and records, following the wiring of the job the run started from.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::executor::{EndedStep, StepReport};
use crate::job::{JobModel, WireKind, WiredInput};
use crate::keys::{key_path, step_key};
use crate::value::{JsonText, metadata_json};

/// A step with its inputs, records and outputs.
#[derive(Debug)]
pub struct StepDetail<'r> {
    /// The step as `show --json` lists it.
    pub step: &'r StepReport,
    /// Whether the run took it from its parent run (a re-execution) rather than ran it.
    pub reused: bool,
    /// Each input, in the op's input order; empty when the run's wiring is not known (a run
    /// recorded before sandmap kept it).
    pub inputs: Vec<InputDetail>,
    /// Each dynamic record it emitted, with its value.
    pub records: Vec<RecordDetail>,
    /// Each plain output it produced: `{output: {value, metadata}}`.
    pub outputs: Map<String, Value>,
}

impl StepDetail<'_> {
    /// The step as `show --json` lists it, with `inputs`, `records` with their values, and
    /// `outputs`.
    pub fn to_json(&self) -> Value {
        let mut object = match serde_json::to_value(self.step) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        object.insert("reused".into(), Value::Bool(self.reused));
        object.insert("inputs".into(), serde_json::to_value(&self.inputs).unwrap_or(Value::Null));
        object.insert("records".into(), serde_json::to_value(&self.records).unwrap_or(Value::Null));
        object.insert("outputs".into(), Value::Object(self.outputs.clone()));
        Value::Object(object)
    }
}

/// One input of a step and what it received.
#[derive(Debug, Serialize)]
pub struct InputDetail {
    /// The input's name.
    pub name: String,
    /// Where it comes from, as the job file says: `op.output`, `map op.output`, `collect op.output`.
    pub source: String,
    /// The upstream step(s) it came from.
    pub from: Vec<String>,
    /// The value it received, `None` if nothing was produced for it (an optional input, or a
    /// step that never ran).
    pub value: Option<Value>,
}

/// One record, with its value.
#[derive(Debug, Serialize)]
pub struct RecordDetail {
    /// The dynamic output.
    pub output: String,
    /// Its mapping key.
    pub mapping_key: String,
    /// Its value.
    pub value: Option<Value>,
    /// Its metadata.
    pub metadata: Map<String, Value>,
}

/// The step `key` among a run's ended `steps` (the ones it reused included: a re-execution's
/// input may come from one), its inputs read back with `model`'s wiring; `None` if the run has
/// no such step.
pub fn step_detail<'r>(steps: &'r [EndedStep], model: Option<&JobModel>, key: &str) -> Option<StepDetail<'r>> {
    let by_key: std::collections::HashMap<&str, &StepReport> =
        steps.iter().map(|s| (s.report.key.as_str(), &s.report)).collect();
    let ended = steps.iter().find(|s| s.report.key == key)?;
    let step = &ended.report;
    let report = Steps { by_key, all: steps };
    let keys: Vec<&str> = key_path(&step.key, &step.op).unwrap_or_default();
    let inputs = model
        .and_then(|m| m.wiring.get(&step.op))
        .map(|wiring| wiring.iter().map(|input| input_detail(&report, &keys, input, wiring)).collect())
        .unwrap_or_default();
    let records = step
        .records
        .iter()
        .map(|r| RecordDetail {
            output: r.output.clone(),
            mapping_key: r.mapping_key.clone(),
            value: r.value.as_ref().map(JsonText::to_value),
            metadata: metadata_json(&r.metadata),
        })
        .collect();
    let outputs = step
        .values
        .iter()
        .map(|(name, value)| {
            let metadata = step.output_metadata.iter().find(|(n, _)| n == name).map(|(_, m)| metadata_json(m));
            let mut entry = Map::new();
            entry.insert("value".into(), value.to_value());
            entry.insert("metadata".into(), Value::Object(metadata.unwrap_or_default()));
            (name.clone(), Value::Object(entry))
        })
        .collect();
    Some(StepDetail { step, reused: ended.reused, inputs, records, outputs })
}

/// A run's steps, by key.
struct Steps<'r> {
    by_key: std::collections::HashMap<&'r str, &'r StepReport>,
    all: &'r [EndedStep],
}

impl<'r> Steps<'r> {
    fn step(&self, key: &str) -> Option<&'r StepReport> {
        self.by_key.get(key).copied()
    }
}

fn input_detail(report: &Steps<'_>, keys: &[&str], input: &WiredInput, wiring: &[WiredInput]) -> InputDetail {
    let owned = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<String>>();
    let (source, from, value) = match input.kind {
        WireKind::Plain => {
            // The upstream instance at the longest prefix of our keys it has.
            let upstream =
                (0..=keys.len()).rev().find_map(|depth| report.step(&step_key(&input.op, &owned(&keys[..depth]))));
            let value = upstream.and_then(|u| u.values.iter().find(|(n, _)| *n == input.output)).map(|(_, v)| v);
            (format!("{}.{}", input.op, input.output), upstream.map(|u| u.key.clone()), value.map(JsonText::to_value))
        }
        WireKind::Map => {
            // The emitter at a prefix of our keys, and its record keyed by the next key.
            let found = (0..keys.len()).rev().find_map(|depth| {
                let emitter = report.step(&step_key(&input.op, &owned(&keys[..depth])))?;
                let record =
                    emitter.records.iter().find(|r| r.output == input.output && r.mapping_key == keys[depth])?;
                Some((emitter, record))
            });
            (
                format!("map {}.{}", input.op, input.output),
                found.map(|(e, r)| format!("{}.{}[{}]", e.key, r.output, r.mapping_key)),
                found.and_then(|(_, r)| r.value.as_ref()).map(JsonText::to_value),
            )
        }
        WireKind::Zip | WireKind::Join => {
            // The partner step under the same outer keys, and its record that pairs with ours:
            // at our record's position among the mapped-over output's records, or with our key.
            let (outer, own) = match keys.split_last() {
                Some((own, outer)) => (outer, *own),
                None => (keys, ""),
            };
            let partner = report.step(&step_key(&input.op, &owned(outer)));
            let records = |step: &'_ StepReport, output: &str| -> Vec<usize> {
                step.records.iter().enumerate().filter(|(_, r)| r.output == output).map(|(i, _)| i).collect()
            };
            let record = partner.and_then(|p| {
                let indices = records(p, &input.output);
                let index = if input.kind == WireKind::Join {
                    indices.iter().copied().find(|&i| p.records[i].mapping_key == own)
                } else {
                    let mapped = wiring.iter().find(|w| w.kind == WireKind::Map)?;
                    let emitter = report.step(&step_key(&mapped.op, &owned(outer)))?;
                    let position =
                        records(emitter, &mapped.output).iter().position(|&i| emitter.records[i].mapping_key == own)?;
                    indices.get(position).copied()
                }?;
                Some((p, &p.records[index]))
            });
            let word = if input.kind == WireKind::Join { "join" } else { "zip" };
            (
                format!("{word} {}.{}", input.op, input.output),
                record.map(|(p, r)| format!("{}.{}[{}]", p.key, r.output, r.mapping_key)),
                record.and_then(|(_, r)| r.value.as_ref()).map(JsonText::to_value),
            )
        }
        WireKind::CollectRecords => {
            let emitter = report.step(&step_key(&input.op, &owned(keys)));
            let values: Option<Vec<Value>> = emitter.map(|e| {
                e.records
                    .iter()
                    .filter(|r| r.output == input.output)
                    .filter_map(|r| r.value.as_ref().map(JsonText::to_value))
                    .collect()
            });
            (format!("collect {}.{}", input.op, input.output), emitter.map(|e| e.key.clone()), values.map(Value::Array))
        }
        WireKind::Collect => {
            // The clones one level below our keys that succeeded, in report (emission) order.
            let clones: Vec<&StepReport> = report
                .all
                .iter()
                .map(|s| &s.report)
                .filter(|s| s.op == input.op)
                .filter(|s| {
                    key_path(&s.key, &s.op)
                        .is_some_and(|path| path.len() == keys.len() + 1 && path[..keys.len()] == *keys)
                })
                .collect();
            let values: Vec<Value> = clones
                .iter()
                .filter(|c| c.status == crate::executor::StepStatus::Success)
                .filter_map(|c| c.values.iter().find(|(n, _)| *n == input.output).map(|(_, v)| v.to_value()))
                .collect();
            let from = format!("{}[?] ({} clones)", step_key(&input.op, &owned(keys)), clones.len());
            (format!("collect {}.{}", input.op, input.output), Some(from), Some(Value::Array(values)))
        }
    };
    InputDetail { name: input.name.clone(), source, from: from.into_iter().collect(), value }
}
