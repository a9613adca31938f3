//! `emit_script`: a fan-out test op driven by its config. Each step of `script` is one of
//! `{ emit = KEY, value = V, output = "result", metadata = {...} }`,
//! `{ output_value = NAME, value = V }` (a plain output) or `{ fail = MSG }`.
//! Outputs: `result` (dynamic) and `extra` (plain, optional).

use sandmap_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to do, in order.
    #[serde(default)]
    script: Vec<Step>,
    /// Keep emitting after a refused emission (to test that the host stops the op).
    #[serde(default)]
    ignore_refusals: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Step {
    emit: Option<String>,
    output_value: Option<String>,
    fail: Option<String>,
    #[serde(default)]
    value: Value,
    #[serde(default = "result")]
    output: String,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

fn result() -> String {
    "result".into()
}

struct EmitScript;

impl Op for EmitScript {
    type Config = Config;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("emit_script")
            .description("Emit records and outputs as the config's script says")
            .dynamic_output("result")
            .optional_output("extra")
    }

    fn run(ctx: &mut Context, config: Config) -> Result<(), OpError> {
        for step in config.script {
            let outcome = if let Some(key) = step.emit {
                let mut record = DynamicOutput::new(step.value, key).output_name(step.output);
                for (k, v) in step.metadata {
                    record = record.metadata(k, v);
                }
                ctx.emit(record)
            } else if let Some(name) = step.output_value {
                ctx.output(Output::new(name, step.value))
            } else if let Some(message) = step.fail {
                return Err(OpError::new(message));
            } else {
                Ok(())
            };
            if let Err(e) = outcome
                && !config.ignore_refusals
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

export_op!(EmitScript);
