//! `line_count`: counts the `'\n'` in the file at input `path` (scalar work, no hashing); the
//! bench runs the same loop natively to price the sandbox on plain code.

use sandmap_guest::prelude::*;

struct LineCount;

impl Op for LineCount {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("line_count").description("Count lines").input("path", "a file")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let path: String = ctx.input("path")?;
        let data = std::fs::read(&path).context(format!("read {path}"))?;
        Ok(json!(sandmap_guest::bytes::count(&data, b'\n')))
    }
}

export_op!(LineCount);
