//! Fuzz the job-file parser and validator: any text must parse, or fail with a JobError that
//! names the file; planning against fixed op definitions must not panic either.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sandmap::definition::{InputDefinition, OpDefinition, OutputDefinition};

fn output(name: &str, dynamic: bool, required: bool) -> OutputDefinition {
    OutputDefinition { name: name.into(), description: String::new(), dynamic, required }
}

fn input(name: &str, required: bool) -> InputDefinition {
    InputDefinition { name: name.into(), description: String::new(), required }
}

/// A definition chosen by the component's name, so the fuzzer can reach every graph rule.
fn definition(component: &str) -> OpDefinition {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"path": {"type": "string", "default": "/data"}, "n": {"$ref": "#/$defs/N"}},
        "$defs": {"N": {"type": "integer", "default": 3}},
        "additionalProperties": false
    });
    let (inputs, outputs) = match component.len() % 4 {
        0 => (vec![], vec![output("result", true, true), output("extra", false, false)]),
        1 => (vec![input("x", true), input("y", false)], vec![output("result", false, true)]),
        2 => (vec![input("items", true)], vec![output("result", true, false)]),
        _ => (vec![input("a", true), input("b", true)], vec![output("result", false, false), output("other", false, true)]),
    };
    OpDefinition { name: "fuzz".into(), description: String::new(), config_schema: schema, inputs, outputs }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("/nonexistent/fuzz/job.toml");
    match sandmap::job::parse_str(text, file) {
        Err(error) => assert!(error.to_string().starts_with("/nonexistent/fuzz/job.toml")),
        Ok(job) => {
            let definitions: Vec<OpDefinition> = job.ops.iter().map(|op| definition(&op.component)).collect();
            if let Err(error) = sandmap::job::plan(&job, &definitions, &[]) {
                assert!(error.to_string().starts_with("/nonexistent/fuzz/job.toml"));
            }
        }
    }
});
