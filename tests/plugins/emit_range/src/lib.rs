//! `emit_range`: emits `n` records (`k0` … `k<n-1>`, value = index); for wide fan-outs.

use sandmap_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// How many records.
    n: u64,
}

struct EmitRange;

impl Op for EmitRange {
    type Config = Config;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("emit_range").description("Emit n records").dynamic_output("result")
    }

    fn run(ctx: &mut Context, config: Config) -> Result<(), OpError> {
        for i in 0..config.n {
            ctx.emit(DynamicOutput::new(i, format!("k{i}")))?;
        }
        Ok(())
    }
}

export_op!(EmitRange);
