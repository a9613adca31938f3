//! Loading a component as an op: check what the bytes are, compile, link against the
//! `op-component` world, and read the op's definition.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::bindings::sandmap::op::types;
use super::error::LoadError;
use crate::definition::{
    InputDefinition, MAX_DEFINITION_BYTES, MAX_INPUTS, MAX_OUTPUTS, OpDefinition, OutputDefinition,
};
use crate::job::config;
use crate::keys::is_identifier;
use crate::units::format_bytes;

/// The SHA-256 of a component's bytes, hex: its identity in steps, caches and run records.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reject what is plainly not a component before handing bytes to the compiler, so that the
/// error says what the file is.
pub fn check_header(bytes: &[u8], origin: &str) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE_VERSION: &[u8] = &[1, 0, 0, 0];
    if bytes.is_empty() {
        return Err(LoadError::Empty { origin: origin.into() });
    }
    if !bytes.starts_with(MAGIC) {
        return Err(LoadError::NotWasm { origin: origin.into() });
    }
    if bytes.get(4..8) == Some(CORE_MODULE_VERSION) {
        return Err(LoadError::CoreModule { origin: origin.into() });
    }
    Ok(())
}

// The definition is read under DEFINITION_LIMITS; its value limit is what a definition may hold.
const _: () = assert!(MAX_DEFINITION_BYTES == super::DEFINITION_LIMITS.max_value_bytes);

/// The definition as the guest returned it, not yet checked: its config schema still the guest's
/// text. Plain data, so that the compile cache keeps it (as JSON) beside the compiled code and a
/// warm load converts and checks it again, with this build's limits, without instantiating the
/// component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GuestDefinition {
    name: String,
    description: String,
    config_schema: String,
    inputs: Vec<InputDefinition>,
    outputs: Vec<OutputDefinition>,
}

impl From<types::OpDefinition> for GuestDefinition {
    fn from(def: types::OpDefinition) -> Self {
        Self {
            name: def.name,
            description: def.description,
            config_schema: def.config_schema,
            inputs: def
                .inputs
                .into_iter()
                .map(|i| InputDefinition { name: i.name, description: i.description, required: i.required })
                .collect(),
            outputs: def
                .outputs
                .into_iter()
                .map(|o| OutputDefinition {
                    name: o.name,
                    description: o.description,
                    dynamic: o.dynamic,
                    required: o.required,
                })
                .collect(),
        }
    }
}

/// Turn what the guest's `definition` returned into plain data, checking it makes sense.
///
/// Everything here is linear in the definition's size, and that size is bounded before the
/// rest is looked at: at most [`MAX_INPUTS`] inputs and [`MAX_OUTPUTS`] outputs, at most
/// [`MAX_DEFINITION_BYTES`] of text, and a config schema within the bounds of
/// [`config::check_schema`] (its size with every `$ref` expanded), so that no definition can
/// keep the host busy.
pub fn convert_definition(def: GuestDefinition, origin: &str) -> Result<OpDefinition, LoadError> {
    let bad = |reason: String| LoadError::Definition { origin: origin.into(), reason };
    check_size(&def).map_err(bad)?;
    let config_schema = parse_schema(&def.config_schema).map_err(bad)?;
    check_names("input", def.inputs.iter().map(|i| i.name.as_str())).map_err(bad)?;
    check_names("output", def.outputs.iter().map(|o| o.name.as_str())).map_err(bad)?;
    if !is_identifier(&def.name) {
        return Err(bad(format!("op name \"{}\" must match ^[A-Za-z_][A-Za-z0-9_]*$", def.name)));
    }
    Ok(OpDefinition {
        name: def.name,
        description: def.description,
        config_schema,
        inputs: def.inputs,
        outputs: def.outputs,
    })
}

/// How many inputs and outputs, and how many bytes of text, before anything else is read.
fn check_size(def: &GuestDefinition) -> Result<(), String> {
    for (kind, count, max) in [("inputs", def.inputs.len(), MAX_INPUTS), ("outputs", def.outputs.len(), MAX_OUTPUTS)] {
        if count > max {
            return Err(format!("it declares {count} {kind}; an op may declare at most {max} (the {kind} limit)"));
        }
    }
    let text = def.name.len()
        + def.description.len()
        + def.config_schema.len()
        + def.inputs.iter().map(|i| i.name.len() + i.description.len()).sum::<usize>()
        + def.outputs.iter().map(|o| o.name.len() + o.description.len()).sum::<usize>();
    if text as u64 > MAX_DEFINITION_BYTES {
        return Err(format!(
            "it holds {text} bytes of names, descriptions and config schema; a definition may hold at most {} \
             (the definition size limit)",
            format_bytes(MAX_DEFINITION_BYTES)
        ));
    }
    Ok(())
}

/// The config schema: JSON, an object or a boolean, and within [`config::check_schema`]'s
/// bounds. Its nesting is checked on the text first, without recursion.
fn parse_schema(text: &str) -> Result<serde_json::Value, String> {
    if crate::value::nests_deeper_than(text, config::MAX_SCHEMA_DEPTH) {
        return Err(config::SchemaError::TooDeep.to_string());
    }
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("config schema is not JSON: {e}"))?;
    if !schema.is_object() && !schema.is_boolean() {
        return Err("config schema is not a JSON Schema (an object or a boolean)".into());
    }
    config::check_schema(&schema).map_err(|e| e.to_string())?;
    Ok(schema)
}

/// Every name an identifier, none declared twice (one pass, a set of the names seen).
fn check_names<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        if !is_identifier(name) {
            return Err(format!("{kind} name \"{name}\" must match ^[A-Za-z_][A-Za-z0-9_]*$"));
        }
        if !seen.insert(name) {
            return Err(format!("{kind} \"{name}\" is declared twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(inputs: usize, outputs: usize, description: usize, schema: &str) -> GuestDefinition {
        types::OpDefinition {
            name: "op".into(),
            description: "d".repeat(description),
            config_schema: schema.into(),
            inputs: (0..inputs)
                .map(|i| types::InputDefinition { name: format!("i{i}"), description: String::new(), required: true })
                .collect(),
            outputs: (0..outputs)
                .map(|i| types::OutputDefinition {
                    name: format!("o{i}"),
                    description: String::new(),
                    dynamic: false,
                    required: true,
                })
                .collect(),
        }
        .into()
    }

    fn refused(def: GuestDefinition) -> String {
        convert_definition(def, "x.wasm").unwrap_err().to_string()
    }

    #[test]
    fn inputs_outputs_and_bytes_are_bounded() {
        let ok = convert_definition(definition(MAX_INPUTS, MAX_OUTPUTS, 0, "{}"), "x.wasm").unwrap();
        assert_eq!((ok.inputs.len(), ok.outputs.len()), (256, 256));
        assert_eq!(
            refused(definition(MAX_INPUTS + 1, 1, 0, "{}")),
            "x.wasm: cannot read the op's definition: it declares 257 inputs; an op may declare at most 256 (the inputs limit)"
        );
        assert_eq!(
            refused(definition(0, MAX_OUTPUTS + 1, 0, "{}")),
            "x.wasm: cannot read the op's definition: it declares 257 outputs; an op may declare at most 256 (the outputs limit)"
        );
        // "op", "{}", "i0", "o0": 8 bytes besides the description.
        let limit = MAX_DEFINITION_BYTES as usize;
        assert!(convert_definition(definition(1, 1, limit - 8, "{}"), "x.wasm").is_ok());
        assert_eq!(
            refused(definition(1, 1, limit - 7, "{}")),
            "x.wasm: cannot read the op's definition: it holds 1048577 bytes of names, descriptions and config schema; \
             a definition may hold at most 1 MiB (the definition size limit)"
        );
    }

    #[test]
    fn names_are_checked_once_each() {
        let mut def = definition(MAX_INPUTS, 1, 0, "{}");
        def.inputs[MAX_INPUTS - 1].name = "i0".into();
        assert_eq!(refused(def), "x.wasm: cannot read the op's definition: input \"i0\" is declared twice");
        let mut def = definition(1, 2, 0, "{}");
        def.outputs[1].name = "bad-name".into();
        assert_eq!(
            refused(def),
            "x.wasm: cannot read the op's definition: output name \"bad-name\" must match ^[A-Za-z_][A-Za-z0-9_]*$"
        );
    }

    #[test]
    fn the_schema_is_bounded_before_it_is_parsed() {
        let nested = |depth: usize| format!("{{\"default\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(convert_definition(definition(0, 1, 0, &nested(63)), "x.wasm").is_ok());
        assert_eq!(
            refused(definition(0, 1, 0, &nested(64))),
            "x.wasm: cannot read the op's definition: the config schema nests deeper than 64 levels with its $refs \
             followed (the schema depth limit)"
        );
        assert_eq!(
            refused(definition(0, 1, 0, r##"{"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#"}}}"##)),
            "x.wasm: cannot read the op's definition: the config schema's $ref \"#\" leads back to itself; recursive \
             config schemas are not supported"
        );
    }

    #[test]
    fn the_cached_definition_is_the_guests_own() {
        let mut def = definition(2, 3, 5, "{ \"type\": \"object\" }");
        def.outputs[1].dynamic = true;
        let back: GuestDefinition = serde_json::from_slice(&serde_json::to_vec(&def).unwrap()).unwrap();
        assert_eq!(back.config_schema, def.config_schema, "the schema's text, spaces and all");
        assert_eq!(back, def);
        assert_eq!(convert_definition(back, "x.wasm").unwrap(), convert_definition(def, "x.wasm").unwrap());
        assert!(serde_json::from_slice::<GuestDefinition>(b"").is_err());
    }

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(check_header(b"", "x"), Err(LoadError::Empty { .. })));
        assert!(matches!(check_header(b"hello", "x"), Err(LoadError::NotWasm { .. })));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0", "x"), Err(LoadError::CoreModule { .. })));
        assert!(check_header(b"\0asm\x0d\0\x01\0", "x").is_ok());
    }
}
