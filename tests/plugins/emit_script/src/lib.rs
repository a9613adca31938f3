//! `emit_script`: a fan-out test op driven by its config (see `tests/plugins/shared/script.rs`).
//! Outputs: `result` (dynamic) and `extra` (plain, optional).

#[path = "../../shared/script.rs"]
mod script;

use sandmap_guest::prelude::*;

struct EmitScript;

impl Op for EmitScript {
    type Config = script::Config;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("emit_script")
            .description("Emit records and outputs as the config's script says")
            .dynamic_output("result")
            .optional_output("extra")
    }

    fn run(ctx: &mut Context, config: script::Config) -> Result<Value, OpError> {
        script::run_script(ctx, config)
    }
}

export_op!(EmitScript);
