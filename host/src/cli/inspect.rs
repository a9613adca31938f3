//! `sandmap inspect COMPONENT.wasm`: the op's definition and the limits it runs under.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::refuse;
use crate::keys::MAX_KEY_BYTES;
use crate::runtime::{MAX_HANDLES, MAX_WASM_STACK, Runtime, RuntimeConfig, printable};
use crate::step::Limits;
use crate::units::{format_bytes, format_duration};

/// `sandmap inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component: a `.wasm` path, or a name found as `run` finds it (`--plugin-path`,
    /// `SANDMAP_PLUGIN_PATH`, `./plugins/`, the built-in ops).
    component: PathBuf,
    /// Print the definition as JSON.
    #[arg(long)]
    json: bool,
    /// A folder to search for NAME.wasm first. Repeatable.
    #[arg(long = "plugin-path", value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(&RuntimeConfig::default())?;
    let name = args.component.to_string_lossy().into_owned();
    // Names resolve as in a job file in this folder.
    let here = std::path::Path::new(".");
    let found = match crate::plugins::find(&name, here, &crate::plugins::plugin_path(&args.plugin_path, here)) {
        Ok(found) => found,
        Err(error) => return Ok(refuse(error)),
    };
    let op = match runtime.load(&found.bytes, &found.origin.to_string()) {
        Ok(op) => op,
        Err(error) => return Ok(refuse(error)),
    };
    let limits = Limits::default();
    let def = &op.definition;
    if args.json {
        let value = json!({
            "component": found.origin.to_string(),
            "digest": op.digest,
            "definition": def,
            "network": false,
            "imports": op.imports,
            "default_limits": {
                "memory": format_bytes(limits.memory_bytes),
                "timeout": format_duration(limits.timeout),
                "max_value_bytes": format_bytes(limits.max_value_bytes),
                "max_emits": limits.max_emits,
                "max_output_bytes": format_bytes(limits.max_output_bytes),
                "max_open_files": limits.max_open_files,
                "max_log_bytes": format_bytes(limits.max_log_bytes),
                "max_key_bytes": MAX_KEY_BYTES,
                "wasi_handles": MAX_HANDLES,
                "wasm_stack": format_bytes(MAX_WASM_STACK as u64),
            },
            "fixed_limits": fixed_limits(),
        });
        println!("{}", serde_json::to_string_pretty(&value).context("cannot encode the definition")?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("op {}  ({})", printable(&def.name), found.origin);
    if !def.description.is_empty() {
        println!("  {}", printable(&def.description));
    }
    println!("digest   sha256:{}", op.digest);
    println!("inputs:");
    for input in &def.inputs {
        let req = if input.required { "required" } else { "optional" };
        println!("  {:<16} {req}  {}", printable(&input.name), printable(&input.description));
    }
    println!("outputs:");
    for output in &def.outputs {
        let kind = if output.dynamic { "dynamic" } else { "plain" };
        let req = if output.required { "required" } else { "optional" };
        println!("  {:<16} {kind}, {req}  {}", printable(&output.name), printable(&output.description));
    }
    println!("config schema:");
    let schema = serde_json::to_string_pretty(&def.config_schema).context("cannot encode the schema")?;
    for line in schema.lines() {
        println!("  {}", printable(line));
    }
    println!("imports:");
    for import in &op.imports {
        println!("  {}", printable(import));
    }
    println!("network  false (no sockets, no name lookup)");
    println!(
        "default limits  memory {}, timeout {}, max_value_bytes {}, max_emits {}, max_output_bytes {}, \
         max_open_files {}, max_log_bytes {}, max_key_bytes {MAX_KEY_BYTES}, wasi handles {MAX_HANDLES}, wasm stack {}",
        format_bytes(limits.memory_bytes),
        format_duration(limits.timeout),
        format_bytes(limits.max_value_bytes),
        limits.max_emits,
        format_bytes(limits.max_output_bytes),
        limits.max_open_files,
        format_bytes(limits.max_log_bytes),
        format_bytes(MAX_WASM_STACK as u64)
    );
    let fixed = fixed_limits();
    let fixed: Vec<String> = fixed
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| format!("{name} {}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect();
    println!("fixed limits  {}", fixed.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// The limits every op has, whatever its job says: on its definition and on what it emits.
fn fixed_limits() -> serde_json::Value {
    use crate::definition::{MAX_DEFINITION_BYTES, MAX_INPUTS, MAX_OUTPUTS};
    use crate::job::config::{MAX_EXPANDED_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
    json!({
        "inputs": MAX_INPUTS,
        "outputs": MAX_OUTPUTS,
        "definition_bytes": format_bytes(MAX_DEFINITION_BYTES),
        "config_schema_depth": MAX_SCHEMA_DEPTH,
        "expanded_config_schema_bytes": format_bytes(MAX_EXPANDED_SCHEMA_BYTES),
        "value_depth": crate::value::MAX_VALUE_DEPTH,
    })
}
