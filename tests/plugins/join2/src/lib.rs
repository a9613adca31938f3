//! `join2`: a test op with two inputs, `a` and `b`; returns `{a, b}` (and `failures`, the clones a
//! `min_success` collect left out, if any) (for joins, broadcasts and
//! the graph errors that need two inputs).

use sandmap_guest::prelude::*;

struct Join2;

impl Op for Join2 {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("join2").description("Return both inputs").input("a", "any value").input("b", "any value")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let a: Value = ctx.input("a")?;
        let b: Value = ctx.input("b")?;
        let failures: Vec<Value> = ctx
            .collect_failures()
            .iter()
            .map(|f| json!({ "input": f.input, "step_key": f.step_key, "error": f.error }))
            .collect();
        if failures.is_empty() {
            Ok(json!({ "a": a, "b": b }))
        } else {
            Ok(json!({ "a": a, "b": b, "failures": failures }))
        }
    }
}

export_op!(Join2);
