// A fan-out script shared (through `#[path]`) by the emit_* test ops: each has its own output
// declarations and runs the same config-driven script.
//
// Each step of `script` is one of `{ emit = KEY, value = V, output = "result", metadata = {...} }`,
// `{ output_value = NAME, value = V }` (a plain output), `{ fail = MSG }`, `{ wait_for = PATH }`
// (spin until PATH exists: lets a test prove a clone ran before this op returned) or
// `{ touch = PATH }`.

use sandmap_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What to do, in order.
    #[serde(default)]
    script: Vec<Step>,
    /// Keep emitting after a refused emission (to test that the host stops the op).
    #[serde(default)]
    ignore_refusals: bool,
    /// A value for `run` to return (an op without a plain "result" must not return one).
    #[serde(default)]
    return_value: Value,
    /// Fail on attempts before this one (to test retries).
    #[serde(default)]
    succeed_on_attempt: u32,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Step {
    emit: Option<String>,
    output_value: Option<String>,
    fail: Option<String>,
    wait_for: Option<String>,
    touch: Option<String>,
    #[serde(default)]
    value: Value,
    #[serde(default = "result")]
    output: String,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

fn result() -> String {
    "result".into()
}

pub fn run_script(ctx: &mut Context, config: Config) -> Result<Value, OpError> {
    for step in config.script {
        let outcome = if let Some(key) = step.emit {
            let mut record = DynamicOutput::new(step.value, key).output_name(step.output);
            for (k, v) in step.metadata {
                record = record.metadata(k, v);
            }
            ctx.emit(record)
        } else if let Some(name) = step.output_value {
            ctx.output(Output::new(name, step.value))
        } else if let Some(message) = step.fail {
            return Err(OpError::new(message));
        } else if let Some(path) = step.wait_for {
            while std::fs::metadata(&path).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        } else if let Some(path) = step.touch {
            std::fs::write(&path, b"").context(format!("touch {path}"))
        } else {
            Ok(())
        };
        if let Err(e) = outcome
            && !config.ignore_refusals
        {
            return Err(e);
        }
    }
    if ctx.attempt() < config.succeed_on_attempt {
        return Err(OpError::new(format!("failing attempt {} on purpose", ctx.attempt())));
    }
    Ok(config.return_value)
}
