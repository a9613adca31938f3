//! An op's config: the schema's defaults applied, then validated against the schema.

use serde_json::Value;

/// Fill in every `default` the schema gives for a property the config leaves out, recursing
/// into nested objects (following local `$ref`s into `$defs`/`definitions`, as schemars
/// writes them).
pub fn apply_defaults(schema: &Value, config: &mut Value) {
    apply(schema, schema, config, 0);
}

/// `$ref` chains deeper than this are ignored (a hostile schema must not loop the host).
const MAX_DEPTH: usize = 32;

fn apply(root: &Value, schema: &Value, value: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = resolve(root, schema, depth);
    let (Some(properties), Value::Object(object)) = (schema.get("properties").and_then(Value::as_object), value) else {
        return;
    };
    for (name, property) in properties {
        let property = resolve(root, property, depth);
        match object.get_mut(name) {
            Some(present) => apply(root, property, present, depth + 1),
            None => {
                if let Some(default) = property.get("default") {
                    object.insert(name.clone(), default.clone());
                }
            }
        }
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value, depth: usize) -> &'a Value {
    let mut schema = schema;
    for _ in depth..MAX_DEPTH {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { break };
        let Some(target) = reference.strip_prefix('#').and_then(|p| root.pointer(p)) else { break };
        schema = target;
    }
    schema
}

/// Validate `config` against `schema`; on failure, one line per problem, each with its path in
/// the config (`/path: 5 is not of type "string"`).
pub fn validate(schema: &Value, config: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| format!("the op's config schema is invalid: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(config)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
        })
        .collect();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_fill_missing_properties_through_refs() {
        let schema = json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "default": "/data"},
                "inner": {"$ref": "#/$defs/Inner"}
            },
            "$defs": {"Inner": {"type": "object", "properties": {"n": {"type": "integer", "default": 3}}}}
        });
        let mut config = json!({"inner": {}});
        apply_defaults(&schema, &mut config);
        assert_eq!(config, json!({"inner": {"n": 3}, "path": "/data"}));
        let mut given = json!({"path": "/x"});
        apply_defaults(&schema, &mut given);
        assert_eq!(given, json!({"path": "/x"}));
    }

    #[test]
    fn a_ref_loop_terminates() {
        let schema = json!({"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/A"}}});
        let mut config = json!({});
        apply_defaults(&schema, &mut config);
        assert_eq!(config, json!({}));
    }

    #[test]
    fn validation_names_the_path() {
        let schema =
            json!({"type": "object", "properties": {"path": {"type": "string"}}, "additionalProperties": false});
        assert_eq!(validate(&schema, &json!({"path": "/x"})), Ok(()));
        let e = validate(&schema, &json!({"path": 5})).unwrap_err();
        assert!(e.starts_with("/path: 5 is not of type \"string\""), "{e}");
        assert!(validate(&schema, &json!({"other": 1})).is_err());
    }
}
