//! `noop`: does nothing with its input `x` and returns `null`; for measuring the host's cost
//! per clone.

use sandmap_guest::prelude::*;

struct Noop;

impl Op for Noop {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("noop").description("Return null").input("x", "ignored")
    }

    fn run(_ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        Ok(Value::Null)
    }
}

export_op!(Noop);
