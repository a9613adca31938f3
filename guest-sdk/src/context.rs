//! What a running op can see and do: its step, its inputs, emission and logging.

use serde::de::DeserializeOwned;

use crate::bindings::sandmap::op::{host, types};
use crate::glue::lower_metadata;
use crate::{DynamicOutput, OpError, Output};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the op worked around.
    Warn,
    /// Something failed.
    Error,
}

/// The running step: passed to [`crate::Op::run`].
#[derive(Debug)]
pub struct Context {
    pub(crate) step_key: String,
    pub(crate) mapping_key: Option<String>,
    pub(crate) attempt: u32,
    /// Each input's JSON text, as the host sent it (the host checked it is JSON).
    pub(crate) inputs: Vec<(String, String)>,
    pub(crate) collect_failures: Vec<CollectFailure>,
    /// Plain outputs this op has emitted (so the return value does not emit `result` twice).
    pub(crate) emitted_outputs: Vec<String>,
}

/// A clone left out of a collected input (a collect with `min_success` runs without the clones
/// that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectFailure {
    /// The collected input.
    pub input: String,
    /// The clone's step key, e.g. `process_file[b_txt]`.
    pub step_key: String,
    /// Why it is missing.
    pub error: String,
}

impl Context {
    /// The step key, e.g. `process_file[a_txt]`.
    pub fn step_key(&self) -> &str {
        &self.step_key
    }

    /// In a mapped clone, the key it was cloned for (Dagster's `context.get_mapping_key()`);
    /// `None` elsewhere, including in a collect-downstream step.
    pub fn mapping_key(&self) -> Option<&str> {
        self.mapping_key.as_deref()
    }

    /// 1 on the first attempt, 2 on the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The clones left out of this step's collected inputs, when the job's `min_success` let it
    /// run without them. Empty otherwise.
    pub fn collect_failures(&self) -> &[CollectFailure] {
        &self.collect_failures
    }

    /// The value of a connected input, deserialized. Fails (as an op error naming the input) if
    /// the input is missing or has another shape.
    pub fn input<T: DeserializeOwned>(&self, name: &str) -> Result<T, OpError> {
        self.input_opt(name)?.ok_or_else(|| OpError::new(format!("input \"{name}\" is not connected")))
    }

    /// The value of an optional input, or `None` when the job leaves it unconnected.
    pub fn input_opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, OpError> {
        match self.inputs.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, text)) => serde_json::from_str(text).map(Some).map_err(|e| {
                if e.is_data() {
                    OpError::new(format!("input \"{name}\" has an unexpected shape: {e}"))
                } else {
                    OpError::new(format!("input \"{name}\" is not JSON: {e}"))
                }
            }),
        }
    }

    /// Emit one record of a dynamic output. The host sees it at once, and a downstream clone
    /// may start before this op returns.
    ///
    /// An error means the host refused the record (invalid or duplicate key, unknown output,
    /// a limit): the step has failed, so return the error (`?`).
    pub fn emit(&mut self, record: DynamicOutput) -> Result<(), OpError> {
        let value = record.value.map_err(|e| OpError::new(format!("cannot encode value: {e}")))?;
        host::emit_dynamic(&types::DynamicOutput {
            value: value.to_string(),
            mapping_key: record.mapping_key,
            output_name: record.output_name,
            metadata: lower_metadata(record.metadata),
        })
        .map_err(|e| OpError::new(e.message))
    }

    /// Emit the value of a plain output.
    pub fn output(&mut self, output: Output) -> Result<(), OpError> {
        let value = output.value.map_err(|e| OpError::new(format!("cannot encode value: {e}")))?;
        self.emitted_outputs.push(output.output_name.clone());
        host::emit_output(&types::Output {
            value: value.to_string(),
            output_name: output.output_name,
            metadata: lower_metadata(output.metadata),
        })
        .map_err(|e| OpError::new(e.message))
    }

    /// Write a line to the step's log.
    pub fn log(&self, level: LogLevel, message: impl AsRef<str>) {
        let level = match level {
            LogLevel::Trace => types::LogLevel::Trace,
            LogLevel::Debug => types::LogLevel::Debug,
            LogLevel::Info => types::LogLevel::Info,
            LogLevel::Warn => types::LogLevel::Warn,
            LogLevel::Error => types::LogLevel::Error,
        };
        host::log(level, message.as_ref());
    }

    /// Write an info line to the step's log.
    pub fn info(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Info, message);
    }

    /// Write a warning to the step's log.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.log(LogLevel::Warn, message);
    }
}
