//! What an op emits: dynamic records, plain outputs, and the metadata attached to them.

use serde::Serialize;
use serde_json::Value;

/// A typed metadata value (Dagster's `MetadataValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// Plain text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Any JSON value.
    Json(Value),
    /// A URL.
    Url(String),
    /// A file system path.
    Path(String),
    /// Markdown text.
    Markdown(String),
}

impl From<&str> for MetadataValue {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}
impl From<String> for MetadataValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}
impl From<i64> for MetadataValue {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}
impl From<i32> for MetadataValue {
    fn from(n: i32) -> Self {
        Self::Int(n.into())
    }
}
impl From<u32> for MetadataValue {
    fn from(n: u32) -> Self {
        Self::Int(n.into())
    }
}
impl From<f64> for MetadataValue {
    fn from(x: f64) -> Self {
        Self::Float(x)
    }
}
impl From<bool> for MetadataValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}
impl From<Value> for MetadataValue {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

/// One record of a dynamic output: a downstream `map` clones a step for it, keyed
/// `op[mapping_key]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicOutput {
    pub(crate) value: Result<Value, String>,
    pub(crate) mapping_key: String,
    pub(crate) output_name: String,
    pub(crate) metadata: Vec<(String, MetadataValue)>,
}

impl DynamicOutput {
    /// A record with this value and mapping key, for the output `"result"`.
    ///
    /// The key must match `^[A-Za-z0-9_]+$` (see [`crate::clean`]) and be unique per output in
    /// this step; the host checks both when the record is emitted.
    pub fn new(value: impl Serialize, mapping_key: impl Into<String>) -> Self {
        Self {
            value: serde_json::to_value(value).map_err(|e| e.to_string()),
            mapping_key: mapping_key.into(),
            output_name: "result".into(),
            metadata: Vec::new(),
        }
    }

    /// Emit to another dynamic output than `"result"`.
    pub fn output_name(mut self, name: impl Into<String>) -> Self {
        self.output_name = name.into();
        self
    }

    /// Attach one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The record's mapping key.
    pub fn mapping_key(&self) -> &str {
        &self.mapping_key
    }
}

/// The value of a plain output, emitted with [`crate::Context::output`] (for ops with several
/// plain outputs; a single `"result"` is simply what `run` returns).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub(crate) value: Result<Value, String>,
    pub(crate) output_name: String,
    pub(crate) metadata: Vec<(String, MetadataValue)>,
}

impl Output {
    /// The value of the output `name`.
    pub fn new(name: impl Into<String>, value: impl Serialize) -> Self {
        Self {
            value: serde_json::to_value(value).map_err(|e| e.to_string()),
            output_name: name.into(),
            metadata: Vec::new(),
        }
    }

    /// Attach one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<MetadataValue>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }
}
