//! Checks every emission as it happens, with Dagster's rules
//! (`_core/execution/plan/execute_step.py`), and streams accepted ones to the executor.

use std::collections::HashSet;
use std::sync::Arc;

use super::bindings::sandmap::op::types;
use super::error::StepFailure;
use crate::definition::OutputDefinition;
use crate::keys::validate_mapping_key;
use crate::step::Limits;
use crate::units::format_bytes;
use crate::value::{JsonError, JsonText, Metadata, MetadataValue};

/// An emission the host accepted. Plain data: it travels back from wherever the step ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Emission {
    /// One record of a dynamic output.
    Record {
        /// The dynamic output.
        output: String,
        /// Its mapping key (valid, unique per output in this step).
        key: String,
        /// The value.
        value: JsonText,
        /// Metadata, in the order attached.
        metadata: Metadata,
    },
    /// The value of a plain output.
    Output {
        /// The output.
        output: String,
        /// The value.
        value: JsonText,
        /// Metadata, in the order attached.
        metadata: Metadata,
    },
}

/// Where accepted emissions go, as they happen (the executor starts clones from them).
pub trait StepEvents: Send + 'static {
    /// The op emitted this, and the host accepted it.
    fn emitted(&mut self, emission: Emission);
}

/// Emission state of one step.
pub struct Emitter {
    op: String,
    outputs: Arc<[OutputDefinition]>,
    produced: Vec<bool>,
    records: Vec<u64>,
    keys: HashSet<(usize, String)>,
    count: u64,
    /// Bytes emitted so far (values, metadata, keys), against `max_output_bytes`.
    bytes: u64,
    limits: Limits,
    events: Box<dyn StepEvents>,
    /// The first emission the host refused; the step has failed once this is set.
    pub failure: Option<StepFailure>,
}

impl Emitter {
    /// Emission state for a step of `op` with these outputs and limits.
    pub fn new(op: &str, outputs: Arc<[OutputDefinition]>, limits: Limits, events: Box<dyn StepEvents>) -> Self {
        let count = outputs.len();
        Self {
            op: op.to_owned(),
            outputs,
            produced: vec![false; count],
            records: vec![0; count],
            keys: HashSet::new(),
            count: 0,
            bytes: 0,
            limits,
            events,
            failure: None,
        }
    }

    /// A dynamic record: check, then stream.
    pub fn record(&mut self, record: types::DynamicOutput) -> Result<(), StepFailure> {
        let index = self.output_index(&record.output_name)?;
        if !self.outputs[index].dynamic {
            return Err(StepFailure::Emission(format!(
                "op \"{}\" emitted a DynamicOutput to output \"{}\", which is not a dynamic output",
                self.op, record.output_name
            )));
        }
        validate_mapping_key(&record.mapping_key)
            .map_err(|e| StepFailure::Emission(format!("op \"{}\": {e}", self.op)))?;
        self.count_one()?;
        self.records[index] += 1;
        if self.records[index] > self.limits.max_fan_out {
            return Err(StepFailure::Limit {
                limit: "max_fan_out".into(),
                value: format!("{} (records on output \"{}\")", self.limits.max_fan_out, record.output_name),
            });
        }
        self.count_bytes(&record.output_name, &record.value, &record.metadata, record.mapping_key.len())?;
        let value = self.value(&record.output_name, record.value)?;
        let metadata = self.metadata(record.metadata)?;
        if !self.keys.insert((index, record.mapping_key.clone())) {
            return Err(StepFailure::Emission(format!(
                "op \"{}\" emitted a DynamicOutput with mapping_key \"{}\" on output \"{}\" multiple times",
                self.op, record.mapping_key, record.output_name
            )));
        }
        self.produced[index] = true;
        self.events.emitted(Emission::Record { output: record.output_name, key: record.mapping_key, value, metadata });
        Ok(())
    }

    /// A plain output: check, then stream.
    pub fn output(&mut self, output: types::Output) -> Result<(), StepFailure> {
        let index = self.output_index(&output.output_name)?;
        if self.outputs[index].dynamic {
            return Err(StepFailure::Emission(format!(
                "op \"{}\" emitted a plain output to \"{}\", which is a dynamic output and takes DynamicOutput records",
                self.op, output.output_name
            )));
        }
        if self.produced[index] {
            return Err(StepFailure::Emission(format!(
                "op \"{}\" emitted output \"{}\" more than once",
                self.op, output.output_name
            )));
        }
        self.count_one()?;
        self.count_bytes(&output.output_name, &output.value, &output.metadata, 0)?;
        let value = self.value(&output.output_name, output.value)?;
        let metadata = self.metadata(output.metadata)?;
        self.produced[index] = true;
        self.events.emitted(Emission::Output { output: output.output_name, value, metadata });
        Ok(())
    }

    /// After a successful `run`: every required plain output must have been produced.
    pub fn check_required(&self) -> Result<(), StepFailure> {
        for (def, produced) in self.outputs.iter().zip(&self.produced) {
            if def.required && !def.dynamic && !produced {
                return Err(StepFailure::MissingOutput(format!(
                    "op \"{}\" did not produce its required output \"{}\"",
                    self.op, def.name
                )));
            }
        }
        Ok(())
    }

    fn output_index(&self, name: &str) -> Result<usize, StepFailure> {
        self.outputs.iter().position(|o| o.name == name).ok_or_else(|| {
            let names: Vec<String> = self.outputs.iter().map(|o| format!("'{}'", o.name)).collect();
            StepFailure::Emission(format!(
                "op \"{}\" emitted to output \"{name}\", which does not exist. The available outputs are [{}]",
                self.op,
                names.join(", ")
            ))
        })
    }

    fn count_one(&mut self) -> Result<(), StepFailure> {
        self.count += 1;
        if self.count > self.limits.max_emits {
            return Err(StepFailure::Limit { limit: "max_emits".into(), value: self.limits.max_emits.to_string() });
        }
        Ok(())
    }

    /// Check an emission's size before anything is parsed or kept: its value and metadata
    /// together against `max_value_bytes`, and everything the step emitted so far (keys too)
    /// against `max_output_bytes`.
    fn count_bytes(
        &mut self,
        output: &str,
        value: &str,
        metadata: &[types::MetadataEntry],
        key_bytes: usize,
    ) -> Result<(), StepFailure> {
        let metadata_bytes: u64 = metadata.iter().map(metadata_bytes).sum();
        let emission = (value.len() as u64).saturating_add(metadata_bytes);
        if emission > self.limits.max_value_bytes {
            let what = if metadata_bytes == 0 {
                format!("a value of {} bytes", value.len())
            } else {
                format!("a value of {} bytes with {metadata_bytes} bytes of metadata", value.len())
            };
            return Err(StepFailure::Limit {
                limit: "max_value_bytes".into(),
                value: format!("{} (output \"{output}\" got {what})", format_bytes(self.limits.max_value_bytes)),
            });
        }
        self.bytes = self.bytes.saturating_add(emission).saturating_add(key_bytes as u64);
        if self.bytes > self.limits.max_output_bytes {
            return Err(StepFailure::Limit {
                limit: "max_output_bytes".into(),
                value: format!(
                    "{} (the step's records and outputs reached {} bytes at output \"{output}\")",
                    format_bytes(self.limits.max_output_bytes),
                    self.bytes
                ),
            });
        }
        Ok(())
    }

    fn value(&self, output: &str, text: String) -> Result<JsonText, StepFailure> {
        JsonText::parse(text).map_err(|e| match e {
            JsonError::TooDeep { limit } => StepFailure::Limit {
                limit: "value depth".into(),
                value: format!("{limit} levels (output \"{output}\")"),
            },
            JsonError::Syntax(e) => StepFailure::Emission(format!(
                "op \"{}\" emitted a value for output \"{output}\" that is not JSON: {e}",
                self.op
            )),
        })
    }

    fn metadata(&self, entries: Vec<types::MetadataEntry>) -> Result<Metadata, StepFailure> {
        // Into a new vector of the exact size: `collect` would reuse the lifted entries' larger
        // buffer in place, and a record kept for the whole run would hold ~380 bytes for one entry.
        let mut metadata = Metadata::with_capacity(entries.len());
        for entry in entries {
            metadata.push({
                let value = match entry.value {
                    types::MetadataValue::Text(s) => MetadataValue::Text(s),
                    types::MetadataValue::Int(n) => MetadataValue::Int(n),
                    types::MetadataValue::Float(x) => MetadataValue::Float(x),
                    types::MetadataValue::Boolean(b) => MetadataValue::Bool(b),
                    types::MetadataValue::Url(s) => MetadataValue::Url(s),
                    types::MetadataValue::Path(s) => MetadataValue::Path(s),
                    types::MetadataValue::Markdown(s) => MetadataValue::Markdown(s),
                    types::MetadataValue::Json(text) => {
                        MetadataValue::Json(crate::value::parse_value(&text).map_err(|e| match e {
                            JsonError::TooDeep { limit } => StepFailure::Limit {
                                limit: "value depth".into(),
                                value: format!("{limit} levels (metadata \"{}\")", entry.key),
                            },
                            JsonError::Syntax(e) => StepFailure::Emission(format!(
                                "op \"{}\": metadata \"{}\" is not JSON: {e}",
                                self.op, entry.key
                            )),
                        })?)
                    }
                };
                (entry.key, value)
            });
        }
        Ok(metadata)
    }
}

/// What a metadata entry makes the host hold: its key and its value's text (8 bytes for a
/// number or a boolean).
fn metadata_bytes(entry: &types::MetadataEntry) -> u64 {
    let value = match &entry.value {
        types::MetadataValue::Text(s)
        | types::MetadataValue::Url(s)
        | types::MetadataValue::Path(s)
        | types::MetadataValue::Markdown(s)
        | types::MetadataValue::Json(s) => s.len(),
        types::MetadataValue::Int(_) | types::MetadataValue::Float(_) | types::MetadataValue::Boolean(_) => 8,
    };
    (entry.key.len() + value) as u64
}
