//! `deep_value`: a mapped test op that emits values as deeply nested as its input file says.
//! The file's first line is `value:N` (the result, and record `v` of the dynamic output
//! `records`, are `[[…[1]…]]`, N arrays deep), `metadata:N` (record `m` of `records` is `1`
//! with JSON metadata `m` N arrays deep; the result is `1`), `fail:MSG` (an op error) or
//! anything else (the result is `{"said": "ok"}`). It logs what it emits.

use sandmap_guest::prelude::*;

struct DeepValue;

/// `[[…[1]…]]`, `depth` arrays deep.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

impl Op for DeepValue {
    type Config = NoConfig;
    type Output = ();

    fn definition() -> OpDefinition {
        OpDefinition::new("deep_value")
            .description("Emit a value as deeply nested as the input file says")
            .input("path", "a file holding one command")
            .output("result")
            .dynamic_output("records")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<(), OpError> {
        let path: String = ctx.input("path")?;
        let text = std::fs::read_to_string(&path).context(format!("read {path}"))?;
        let command = text.lines().next().unwrap_or("").trim();
        let (verb, arg) = command.split_once(':').unwrap_or((command, ""));
        let depth = || arg.parse::<usize>().map_err(|_| OpError::new(format!("{verb}:N needs a number, got {arg:?}")));
        if verb == "value" || verb == "metadata" {
            ctx.info(format!("emitting {verb} {arg} levels deep"));
        }
        let result = match verb {
            "value" => {
                let value = nested(depth()?);
                ctx.emit(DynamicOutput::new(&value, "v").output_name("records"))?;
                value
            }
            "metadata" => {
                let metadata = MetadataValue::Json(nested(depth()?));
                ctx.emit(DynamicOutput::new(1, "m").output_name("records").metadata("m", metadata))?;
                json!(1)
            }
            "fail" => return Err(OpError::new(arg)),
            _ => json!({"said": "ok"}),
        };
        ctx.output(Output::new("result", result))?;
        Ok(())
    }
}

export_op!(DeepValue);
