//! `emit_multi`: the scripted fan-out with Dagster case 3's outputs: `evens` and `odds`
//! (dynamic) and `count` (plain) — and no `result`.

#[path = "../../shared/script.rs"]
mod script;

use sandmap_guest::prelude::*;

struct EmitMulti;

impl Op for EmitMulti {
    type Config = script::Config;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("emit_multi")
            .description("Emit to several dynamic outputs and a plain one")
            .dynamic_output("evens")
            .dynamic_output("odds")
            .output("count")
    }

    fn run(ctx: &mut Context, config: script::Config) -> Result<Value, OpError> {
        script::run_script(ctx, config)
    }
}

export_op!(EmitMulti);
