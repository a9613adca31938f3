//! The op's definition: name, description, inputs and outputs (the config schema comes from
//! [`crate::Op::Config`]).

/// A named input of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDefinition {
    /// The input's name, as the job file's `inputs` table names it.
    pub name: String,
    /// What the input is for.
    pub description: String,
    /// A required input must be connected in the job file.
    pub required: bool,
}

/// A named output of an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDefinition {
    /// The output's name (`"result"` is the default one).
    pub name: String,
    /// What the output is.
    pub description: String,
    /// Whether it is a dynamic output (keyed records a downstream `map` clones steps for).
    pub dynamic: bool,
    /// Dagster's `is_required`.
    pub required: bool,
}

/// Builder for an op's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDefinition {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) inputs: Vec<InputDefinition>,
    pub(crate) outputs: Vec<OutputDefinition>,
}

impl OpDefinition {
    /// An op called `name`, with no inputs and (until one is declared) the plain output `"result"`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), description: String::new(), inputs: Vec::new(), outputs: Vec::new() }
    }

    /// What the op does.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// A required input.
    pub fn input(self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.add_input(name.into(), description.into(), true)
    }

    /// An input that may be left unconnected ([`crate::Context::input_opt`] reads it).
    pub fn optional_input(self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.add_input(name.into(), description.into(), false)
    }

    /// A plain, required output.
    pub fn output(self, name: impl Into<String>) -> Self {
        self.add_output(name.into(), false, true)
    }

    /// A plain output the op may leave unproduced: its downstream is then skipped.
    pub fn optional_output(self, name: impl Into<String>) -> Self {
        self.add_output(name.into(), false, false)
    }

    /// A dynamic output (Dagster's `DynamicOut()`): zero records resolve to zero keys.
    pub fn dynamic_output(self, name: impl Into<String>) -> Self {
        self.add_output(name.into(), true, true)
    }

    /// A dynamic output with `is_required = False`: zero records skip its downstream.
    pub fn optional_dynamic_output(self, name: impl Into<String>) -> Self {
        self.add_output(name.into(), true, false)
    }

    /// Describe the most recently declared output.
    pub fn output_description(mut self, text: impl Into<String>) -> Self {
        if let Some(last) = self.outputs.last_mut() {
            last.description = text.into();
        }
        self
    }

    /// The op's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared outputs; `"result"` (plain, required) when none was declared.
    pub fn outputs(&self) -> Vec<OutputDefinition> {
        if self.outputs.is_empty() {
            vec![OutputDefinition { name: "result".into(), description: String::new(), dynamic: false, required: true }]
        } else {
            self.outputs.clone()
        }
    }

    /// The declared inputs.
    pub fn inputs(&self) -> &[InputDefinition] {
        &self.inputs
    }

    fn add_input(mut self, name: String, description: String, required: bool) -> Self {
        self.inputs.push(InputDefinition { name, description, required });
        self
    }

    fn add_output(mut self, name: String, dynamic: bool, required: bool) -> Self {
        self.outputs.push(OutputDefinition { name, description: String::new(), dynamic, required });
        self
    }
}
