//! An op's definition, as plain data: what the host reads from a component, and what the job
//! validator checks a job against.

use serde::{Deserialize, Serialize};

/// The most inputs an op's definition may declare.
pub const MAX_INPUTS: usize = 256;

/// The most outputs an op's definition may declare.
pub const MAX_OUTPUTS: usize = 256;

/// The most bytes of text (names, descriptions and config schema together) an op's definition
/// may hold.
pub const MAX_DEFINITION_BYTES: u64 = 1 << 20;

/// A named input of an op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDefinition {
    /// The input's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// A required input must be connected in the job file.
    pub required: bool,
}

/// A named output of an op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDefinition {
    /// The output's name (`"result"` by default).
    pub name: String,
    /// What it is.
    pub description: String,
    /// Dynamic: keyed records, each cloning the downstream `map`.
    pub dynamic: bool,
    /// Dagster's `is_required`.
    pub required: bool,
}

/// What an op is: name, description, config schema, inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpDefinition {
    /// The op's own name (a job may give it another).
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its config, with defaults.
    pub config_schema: serde_json::Value,
    /// Its inputs.
    pub inputs: Vec<InputDefinition>,
    /// Its outputs.
    pub outputs: Vec<OutputDefinition>,
}

impl OpDefinition {
    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&OutputDefinition> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&InputDefinition> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// The names of the outputs, for error messages: `['a', 'b']`.
    pub fn output_names(&self) -> String {
        let names: Vec<String> = self.outputs.iter().map(|o| format!("'{}'", o.name)).collect();
        format!("[{}]", names.join(", "))
    }
}
