//! `def_huge`: a hostile definition of 2 MiB (its description), twice what the host reads
//! from a definition.
#![allow(missing_docs)]

use sandmap_guest::bindings::exports::sandmap::op::op::Guest;
use sandmap_guest::bindings::sandmap::op::types::{NamedValue, OpDefinition, OpError, OutputDefinition, RunContext};

/// Bytes of description.
const DESCRIPTION_BYTES: usize = 2 << 20;

struct Huge;

impl Guest for Huge {
    fn definition() -> OpDefinition {
        OpDefinition {
            name: "def_huge".into(),
            description: "d".repeat(DESCRIPTION_BYTES),
            config_schema: "{}".into(),
            inputs: Vec::new(),
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

sandmap_guest::bindings::__export_op_component!(Huge with_types_in sandmap_guest::bindings);
