//! `emit_optional`: the scripted fan-out whose `result` is an optional dynamic output
//! (Dagster's `DynamicOut(is_required=False)`).

#[path = "../../shared/script.rs"]
mod script;

use sandmap_guest::prelude::*;

struct EmitOptional;

impl Op for EmitOptional {
    type Config = script::Config;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("emit_optional")
            .description("A fan-out whose dynamic output is optional")
            .optional_dynamic_output("result")
    }

    fn run(ctx: &mut Context, config: script::Config) -> Result<Value, OpError> {
        script::run_script(ctx, config)
    }
}

export_op!(EmitOptional);
