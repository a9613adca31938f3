//! `mapper`: a per-key test op. Input `x` (required) and `y` (optional); outputs `result` and
//! `other`, both plain and optional. Returns `x` (or `{x, y}` when `y` is connected), after
//! obeying directives in `x` when it is an object:
//! `skip` → produce no output; `fail` → op error; `fail_before_attempt` → op error on earlier
//! attempts; `sleep_ms` → sleep; `wait_for` → spin until
//! a path exists; `touch` → create a path; `other` → also emit it to `other`; `key` → return the
//! mapping key instead; `add` → return `x.value + add`.

use sandmap_guest::prelude::*;

struct Mapper;

impl Op for Mapper {
    type Config = NoConfig;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("mapper")
            .description("Return the input, obeying directives")
            .input("x", "any value")
            .optional_input("y", "any value")
            .optional_output("result")
            .optional_output("other")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<(), OpError> {
        let x: Value = ctx.input("x")?;
        let y: Option<Value> = ctx.input_opt("y")?;
        let directive = |name: &str| x.as_object().and_then(|o| o.get(name)).cloned();
        if let Some(Value::String(message)) = directive("fail") {
            return Err(OpError::new(message));
        }
        if let Some(n) = directive("fail_before_attempt").and_then(|v| v.as_u64())
            && u64::from(ctx.attempt()) < n
        {
            return Err(OpError::new(format!("attempt {} fails on purpose", ctx.attempt())));
        }
        if let Some(ms) = directive("sleep_ms").and_then(|v| v.as_u64()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        if let Some(Value::String(path)) = directive("wait_for") {
            while std::fs::metadata(&path).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        if let Some(Value::String(path)) = directive("touch") {
            std::fs::write(&path, b"").context(format!("touch {path}"))?;
        }
        if let Some(other) = directive("other") {
            ctx.output(Output::new("other", other))?;
        }
        if directive("skip") == Some(Value::Bool(true)) {
            return Ok(());
        }
        let value = if directive("key") == Some(Value::Bool(true)) {
            json!(ctx.mapping_key())
        } else if let Some(add) = directive("add").and_then(|v| v.as_i64()) {
            json!(directive("value").and_then(|v| v.as_i64()).unwrap_or(0) + add)
        } else if let Some(y) = y {
            json!({ "x": x, "y": y })
        } else {
            x
        };
        ctx.output(Output::new("result", value))
    }
}

export_op!(Mapper);
