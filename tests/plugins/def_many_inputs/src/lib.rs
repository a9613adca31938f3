//! `def_many_inputs`: a hostile definition declaring 1,000,000 inputs, through the raw
//! bindings (the SDK would not stop it either). The host once checked their names for
//! duplicates in quadratic time: minutes of CPU for `sandmap validate`.
#![allow(missing_docs)]

use sandmap_guest::bindings::exports::sandmap::op::op::Guest;
use sandmap_guest::bindings::sandmap::op::types::{
    InputDefinition, NamedValue, OpDefinition, OpError, OutputDefinition, RunContext,
};

/// How many inputs it declares.
const INPUTS: usize = 1_000_000;

struct ManyInputs;

impl Guest for ManyInputs {
    fn definition() -> OpDefinition {
        OpDefinition {
            name: "def_many_inputs".into(),
            description: "Declares a million inputs".into(),
            config_schema: "{}".into(),
            inputs: (0..INPUTS)
                .map(|i| InputDefinition { name: format!("in{i}"), description: String::new(), required: false })
                .collect(),
            outputs: vec![OutputDefinition {
                name: "result".into(),
                description: String::new(),
                dynamic: false,
                required: false,
            }],
        }
    }

    fn run(_context: RunContext, _config: String, _inputs: Vec<NamedValue>) -> Result<(), OpError> {
        Ok(())
    }
}

sandmap_guest::bindings::__export_op_component!(ManyInputs with_types_in sandmap_guest::bindings);
