//! A step as plain data: everything needed to run one op once, and nothing about the graph it
//! came from. A `StepSpec` serializes, so it could be run by another process or machine.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::definition::OutputDefinition;
use crate::value::JsonText;

/// What a grant lets the op do in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// List and read only (the default).
    #[default]
    Read,
    /// Read, create, write and remove.
    ReadWrite,
}

/// A host directory made visible to the op at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The host directory (absolute, resolved when the job was validated).
    pub host: PathBuf,
    /// Where the op sees it, e.g. `/data`.
    pub guest: String,
    /// Read or read-write.
    pub access: Access,
}

/// Resource limits of one step attempt. Hitting one fails that step alone, with an error that
/// names the limit and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub memory_bytes: u64,
    /// Wall time per attempt.
    pub timeout: Duration,
    /// Each input and output JSON value, in bytes.
    pub max_value_bytes: u64,
    /// Records emitted per step (dynamic and plain outputs together).
    pub max_emits: u64,
    /// Captured log (stdout, stderr and `log` calls together), in bytes; the rest is cut and the
    /// cut marked.
    pub max_log_bytes: u64,
    /// Records per dynamic output per step: how wide one fan-out may get.
    pub max_fan_out: u64,
    /// Bytes of everything one step emits together: values, metadata and mapping keys of all its
    /// records and outputs. Bounds what one step can make the host hold.
    pub max_output_bytes: u64,
    /// Files and directories the op may hold open at once (its grants not counted). Also bounds
    /// the host's file descriptors one step can use.
    pub max_open_files: u64,
    /// Wasm fuel (roughly, instructions) per attempt; `None` for no fuel limit. Needs a runtime
    /// with fuel metering (`RuntimeConfig::fuel`).
    pub fuel: Option<u64>,
}

impl Limits {
    /// 256 MiB per instance.
    pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
    /// 60 s per attempt.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    /// 16 MiB per value.
    pub const DEFAULT_MAX_VALUE_BYTES: u64 = 16 << 20;
    /// 100,000 records per step.
    pub const DEFAULT_MAX_EMITS: u64 = 100_000;
    /// 1 MiB of log per step.
    pub const DEFAULT_MAX_LOG_BYTES: u64 = 1 << 20;
    /// 100,000 records per dynamic output.
    pub const DEFAULT_MAX_FAN_OUT: u64 = 100_000;
    /// 64 MiB emitted per step.
    pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 << 20;
    /// 256 open files and directories per step.
    pub const DEFAULT_MAX_OPEN_FILES: u64 = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
            max_emits: Self::DEFAULT_MAX_EMITS,
            max_log_bytes: Self::DEFAULT_MAX_LOG_BYTES,
            max_fan_out: Self::DEFAULT_MAX_FAN_OUT,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            max_open_files: Self::DEFAULT_MAX_OPEN_FILES,
            fuel: None,
        }
    }
}

/// A clone left out of a collected input, told to the collecting op (`min_success`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectFailure {
    /// The collected input.
    pub input: String,
    /// The clone's step key.
    pub step_key: String,
    /// Why it is missing.
    pub error: String,
}

/// One step to run: a component (by digest), its config and inputs, grants and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSpec {
    /// `op`, `op[key]`, `op[key][key2]`.
    pub key: String,
    /// The op's name in the job.
    pub op: String,
    /// For a mapped clone, the innermost mapping key.
    pub mapping_key: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// SHA-256 of the component's bytes, hex.
    pub component: String,
    /// The validated config, defaults applied.
    pub config: JsonText,
    /// Input values by name.
    pub inputs: Vec<(String, JsonText)>,
    /// Directories the op may see.
    pub grants: Vec<Grant>,
    /// Resource limits.
    pub limits: Limits,
    /// The op's outputs, against which every emission is checked (shared by all of the op's
    /// steps: no copy per clone).
    pub outputs: std::sync::Arc<[OutputDefinition]>,
    /// Clones left out of its collected inputs (only with `min_success`).
    pub collect_failures: Vec<CollectFailure>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_round_trips_through_json() {
        let step = StepSpec {
            key: "process_file[a_txt]".into(),
            op: "process_file".into(),
            mapping_key: Some("a_txt".into()),
            attempt: 1,
            component: "00ff".into(),
            config: JsonText::parse("{}").unwrap(),
            inputs: vec![("path".into(), JsonText::parse("\"/data/a.txt\"").unwrap())],
            grants: vec![Grant { host: "/tmp".into(), guest: "/data".into(), access: Access::Read }],
            limits: Limits::default(),
            outputs: std::sync::Arc::from(vec![]),
            collect_failures: vec![],
        };
        let text = serde_json::to_string(&step).unwrap();
        let back: StepSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back.key, step.key);
        assert_eq!(back.inputs, step.inputs);
        assert_eq!(back.limits, step.limits);
    }
}
