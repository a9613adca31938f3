//! `def_deep_schema`: a hostile definition whose 3 KB config schema is 40 levels of `allOf`,
//! each pointing twice (`$ref`) at the next level: 2^40 subschemas once expanded. The host
//! once handed it to jsonschema as it was: minutes of CPU for `sandmap validate`.
#![allow(missing_docs)]

use sandmap_guest::bindings::exports::sandmap::op::op::Guest;
use sandmap_guest::bindings::sandmap::op::types::{NamedValue, OpDefinition, OpError, OutputDefinition, RunContext};

/// Levels of doubling.
const LEVELS: usize = 40;

struct DeepSchema;

/// `{"$ref": "#/$defs/d0", "$defs": {"d0": {"allOf": [{"$ref": "#/$defs/d1"}, {"$ref": "#/$defs/d1"}]}, …}}`.
fn schema() -> String {
    let mut defs = Vec::new();
    for i in 0..LEVELS {
        let next = i + 1;
        defs.push(format!(r##""d{i}":{{"allOf":[{{"$ref":"#/$defs/d{next}"}},{{"$ref":"#/$defs/d{next}"}}]}}"##));
    }
    defs.push(format!(r#""d{LEVELS}":{{"type":"object"}}"#));
    format!(r##"{{"$ref":"#/$defs/d0","$defs":{{{}}}}}"##, defs.join(","))
}

impl Guest for DeepSchema {
    fn definition() -> OpDefinition {
        OpDefinition {
            name: "def_deep_schema".into(),
            description: "A config schema that expands to 2^40 subschemas".into(),
            config_schema: schema(),
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

sandmap_guest::bindings::__export_op_component!(DeepSchema with_types_in sandmap_guest::bindings);
