//! The code behind [`crate::export_op!`]: turns an [`Op`] into the WIT `op` interface.
//! Public only for the macro; not part of the SDK's API.

use crate::bindings::sandmap::op::{host, types};
use crate::{Context, MetadataValue, Op, OpError};

/// The WIT definition of `O`.
pub fn definition<O: Op>() -> types::OpDefinition {
    let def = O::definition();
    let schema = schemars::schema_for!(O::Config);
    types::OpDefinition {
        name: def.name.clone(),
        description: def.description.clone(),
        config_schema: serde_json::to_string(&schema).unwrap_or_else(|_| "{}".into()),
        inputs: def
            .inputs()
            .iter()
            .map(|i| types::InputDefinition {
                name: i.name.clone(),
                description: i.description.clone(),
                required: i.required,
            })
            .collect(),
        outputs: def
            .outputs()
            .into_iter()
            .map(|o| types::OutputDefinition {
                name: o.name,
                description: o.description,
                dynamic: o.dynamic,
                required: o.required,
            })
            .collect(),
    }
}

/// Run `O` once: decode config and inputs, run, and emit what `run` returns as `"result"`.
pub fn run<O: Op>(
    context: types::RunContext,
    config: String,
    inputs: Vec<types::NamedValue>,
) -> Result<(), types::OpError> {
    install_panic_hook();
    let result = run_op::<O>(context, config, inputs).map_err(|e| types::OpError { message: e.to_string() });
    // The instance never exits, so std's line-buffered stdout would keep a last partial line.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    result
}

fn run_op<O: Op>(context: types::RunContext, config: String, inputs: Vec<types::NamedValue>) -> Result<(), OpError> {
    let config: O::Config = serde_json::from_str(&config).map_err(|e| OpError::new(format!("invalid config: {e}")))?;
    // Kept as the host's JSON text and read straight into the op's own type when it asks
    // (`Context::input`): parsing every input into a `serde_json::Value` first made a collect of
    // 100,000 results take ~70 MB of the op's memory for 12 MB of text.
    let inputs = inputs.into_iter().map(|nv| (nv.name, nv.value)).collect();
    let mut ctx = Context {
        step_key: context.step_key,
        mapping_key: context.mapping_key,
        attempt: context.attempt,
        inputs,
        collect_failures: context
            .collect_failures
            .into_iter()
            .map(|f| crate::CollectFailure { input: f.input, step_key: f.step_key, error: f.error })
            .collect(),
        emitted_outputs: Vec::new(),
    };
    let returned = O::run(&mut ctx, config)?;
    let value =
        serde_json::to_value(returned).map_err(|e| OpError::new(format!("cannot encode the returned value: {e}")))?;
    // The return value is the plain output "result": emitted unless the op produced "result"
    // itself, or returned `()` (null) for an optional "result" it chose not to produce.
    let result = O::definition().outputs().into_iter().find(|o| o.name == "result" && !o.dynamic);
    let already = ctx.emitted_outputs.iter().any(|name| name == "result");
    match result {
        Some(_) if already && value.is_null() => {}
        Some(def) if value.is_null() && !def.required => {}
        Some(_) => ctx.output(crate::Output::new("result", value))?,
        None if value.is_null() => {}
        None => {
            return Err(OpError::new("run returned a value, but the op has no plain output \"result\" to hold it"));
        }
    }
    Ok(())
}

/// A panic aborts the instance (the host sees a trap); log its message first so that the step's
/// error says why.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            host::log(types::LogLevel::Error, &format!("op panicked: {info}"));
        }));
    });
}

pub(crate) fn lower_metadata(entries: Vec<(String, MetadataValue)>) -> Vec<types::MetadataEntry> {
    entries
        .into_iter()
        .map(|(key, value)| types::MetadataEntry {
            key,
            value: match value {
                MetadataValue::Text(s) => types::MetadataValue::Text(s),
                MetadataValue::Int(n) => types::MetadataValue::Int(n),
                MetadataValue::Float(x) => types::MetadataValue::Float(x),
                MetadataValue::Bool(b) => types::MetadataValue::Boolean(b),
                MetadataValue::Json(v) => types::MetadataValue::Json(v.to_string()),
                MetadataValue::Url(s) => types::MetadataValue::Url(s),
                MetadataValue::Path(s) => types::MetadataValue::Path(s),
                MetadataValue::Markdown(s) => types::MetadataValue::Markdown(s),
            },
        })
        .collect()
}
