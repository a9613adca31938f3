//! `split_list`: a fan-out with an input, for nested maps. Input `items` (a list); emits item
//! `i` with key `i<i>` on `result` (dynamic).

use sandmap_guest::prelude::*;

struct SplitList;

impl Op for SplitList {
    type Config = NoConfig;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("split_list")
            .description("Emit each item of a list")
            .input("items", "a list")
            .dynamic_output("result")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<(), OpError> {
        let items: Vec<Value> = ctx.input("items")?;
        for (i, item) in items.into_iter().enumerate() {
            ctx.emit(DynamicOutput::new(item, format!("i{i}")))?;
        }
        Ok(())
    }
}

export_op!(SplitList);
