//! Loading a component as an op: check what the bytes are, compile, link against the
//! `op-component` world, and read the op's definition.

use sha2::{Digest, Sha256};

use super::bindings::sandmap::op::types;
use super::error::LoadError;
use crate::definition::{InputDefinition, OpDefinition, OutputDefinition};

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

/// Turn what the guest's `definition` returned into plain data, checking it makes sense.
pub fn convert_definition(def: types::OpDefinition, origin: &str) -> Result<OpDefinition, LoadError> {
    let bad = |reason: String| LoadError::Definition { origin: origin.into(), reason };
    let config_schema: serde_json::Value =
        serde_json::from_str(&def.config_schema).map_err(|e| bad(format!("config schema is not JSON: {e}")))?;
    if !config_schema.is_object() && !config_schema.is_boolean() {
        return Err(bad("config schema is not a JSON Schema (an object or a boolean)".into()));
    }
    let inputs: Vec<InputDefinition> = def
        .inputs
        .into_iter()
        .map(|i| InputDefinition { name: i.name, description: i.description, required: i.required })
        .collect();
    let outputs: Vec<OutputDefinition> = def
        .outputs
        .into_iter()
        .map(|o| OutputDefinition {
            name: o.name,
            description: o.description,
            dynamic: o.dynamic,
            required: o.required,
        })
        .collect();
    for (kind, names) in [
        ("input", inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>()),
        ("output", outputs.iter().map(|o| o.name.as_str()).collect()),
    ] {
        for (i, name) in names.iter().enumerate() {
            if !is_identifier(name) {
                return Err(bad(format!("{kind} name \"{name}\" must match ^[A-Za-z_][A-Za-z0-9_]*$")));
            }
            if names[..i].contains(name) {
                return Err(bad(format!("{kind} \"{name}\" is declared twice")));
            }
        }
    }
    if !is_identifier(&def.name) {
        return Err(bad(format!("op name \"{}\" must match ^[A-Za-z_][A-Za-z0-9_]*$", def.name)));
    }
    Ok(OpDefinition { name: def.name, description: def.description, config_schema, inputs, outputs })
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(check_header(b"", "x"), Err(LoadError::Empty { .. })));
        assert!(matches!(check_header(b"hello", "x"), Err(LoadError::NotWasm { .. })));
        assert!(matches!(check_header(b"\0asm\x01\0\0\0", "x"), Err(LoadError::CoreModule { .. })));
        assert!(check_header(b"\0asm\x0d\0\x01\0", "x").is_ok());
    }
}
