//! An op's config: the schema's defaults applied, then validated against the schema.
//!
//! The schema comes from the op, which is untrusted, and a small schema can describe an
//! enormous one: `$ref`s that point twice at a definition that points twice at the next, 40
//! levels down, make 2^40 subschemas for jsonschema to walk. So before the host compiles a
//! schema it measures it with every `$ref` expanded ([`check_schema`], linear time, memoized),
//! and refuses it when that is deeper than [`MAX_SCHEMA_DEPTH`] or larger than
//! [`MAX_EXPANDED_SCHEMA_BYTES`]. Checking a config then applies each subschema to each config
//! value at most once, and [`MAX_CONFIG_CHECK_WORK`] bounds that product per op.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use thiserror::Error;

/// The deepest a config schema may nest (levels of objects and arrays) with every `$ref`
/// followed. It also bounds how deep jsonschema's compiler and validator recurse.
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// The largest a config schema may be, in bytes of JSON text, with every `$ref` replaced by
/// what it points to: the definition size limit, so that expanding references cannot make a
/// schema bigger than a definition may be. It bounds the schema nodes jsonschema may apply
/// to one config node, and the defaults [`apply_defaults`] can add.
pub const MAX_EXPANDED_SCHEMA_BYTES: u64 = 1 << 20;

/// The most work checking one op's config may take, counted as (bytes of config text) ×
/// (schema values with their `$ref`s expanded): jsonschema applies each subschema to each
/// config value at most once, in time at most linear in the value's text (patterns use the
/// `regex` crate). Measured: a little over 0.2 s at the limit.
pub const MAX_CONFIG_CHECK_WORK: u64 = 100_000_000;

/// Why a config schema is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaError {
    /// Deeper than [`MAX_SCHEMA_DEPTH`] with its references followed.
    #[error(
        "the config schema nests deeper than {MAX_SCHEMA_DEPTH} levels with its $refs followed (the schema depth limit)"
    )]
    TooDeep,
    /// Larger than [`MAX_EXPANDED_SCHEMA_BYTES`] with its references expanded.
    #[error(
        "the config schema is larger than {} with its $refs expanded (the expanded schema size limit)",
        crate::units::format_bytes(MAX_EXPANDED_SCHEMA_BYTES)
    )]
    TooLarge,
    /// A reference that leads back to where it is: an infinite expansion.
    #[error("the config schema's $ref \"{0}\" leads back to itself; recursive config schemas are not supported")]
    Cycle(String),
    /// A reference other than a local JSON Pointer.
    #[error(
        "the config schema's $ref \"{0}\" is not supported: only local JSON Pointer references (\"#\" or \"#/...\") are"
    )]
    UnsupportedRef(String),
    /// A local JSON Pointer that points at nothing.
    #[error("the config schema's $ref \"{0}\" points at nothing in the schema")]
    Unresolved(String),
    /// A keyword that would make references resolve other than by JSON Pointer from the root.
    #[error("the config schema uses {keyword} at {at}, which is not supported (only the schema's root may carry one)")]
    Keyword {
        /// The keyword (`$id`, `$dynamicRef`, …).
        keyword: &'static str,
        /// A JSON Pointer to the object carrying it.
        at: String,
    },
}

/// A schema's size with every `$ref` expanded (every object holding
/// `unevaluatedProperties`/`unevaluatedItems` counted [`UNEVALUATED_WEIGHT`] times, and every
/// regular expression [`PATTERN_WEIGHT`] bytes more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaSize {
    /// Bytes of compact JSON text (at most [`MAX_EXPANDED_SCHEMA_BYTES`]).
    pub bytes: u64,
    /// JSON values (objects, arrays and scalars): the subschemas jsonschema may apply to one
    /// config value, at most.
    pub nodes: u64,
    /// Levels of objects and arrays (at most [`MAX_SCHEMA_DEPTH`]).
    pub depth: usize,
}

/// Measure `schema` with every `$ref` expanded, refusing it if it is too deep, too large,
/// recursive, or uses references sandmap cannot expand exactly as jsonschema resolves them.
///
/// A `$ref` counts as its own text plus its target's, as if the target stood beside it; every
/// JSON value counts, schema or not (a `default` too): an over-estimate, never an
/// under-estimate, and exact for a schema without references. Each object's and array's size is
/// computed once and remembered, so the measure takes time linear in the schema's text however
/// large the expansion, and recursion on the host's stack never goes deeper than
/// [`MAX_SCHEMA_DEPTH`].
pub fn check_schema(schema: &Value) -> Result<SchemaSize, SchemaError> {
    let legacy_id =
        schema.get("$schema").and_then(Value::as_str).is_some_and(|s| s.contains("draft-04") || s.contains("draft-03"));
    let mut walk = Walk { root: schema, legacy_id, sizes: HashMap::new(), path: HashSet::new() };
    walk.measure(schema, 0, None)
}

/// The state of one [`check_schema`].
struct Walk<'a> {
    root: &'a Value,
    /// Draft 4 names embedded resources with `id`, later drafts with `$id`.
    legacy_id: bool,
    /// Sizes of the objects and arrays measured so far, by address.
    sizes: HashMap<*const Value, SchemaSize>,
    /// The objects and arrays on the way from the root to the value being measured: meeting one
    /// again means a `$ref` cycle.
    path: HashSet<*const Value>,
}

/// How many times an object holding `unevaluatedProperties` or `unevaluatedItems` counts:
/// jsonschema evaluates the subschemas beside it again to learn what they evaluated, so each
/// such object nested in another multiplies the work (measured: 2.0–2.7 times per level, for
/// every applicator; exponential when nested, were it counted once).
const UNEVALUATED_WEIGHT: u64 = 4;

/// How many bytes each regular expression (`pattern`, a `patternProperties` key) counts:
/// compiling one costs up to a few milliseconds within [`REGEX_SIZE_LIMIT`] (measured: 3 ms
/// for `^\w{10000}$`), so a schema within [`MAX_EXPANDED_SCHEMA_BYTES`] compiles fewer than 128
/// of them.
const PATTERN_WEIGHT: usize = 8 << 10;

/// The most a compiled regular expression (and its lazy DFA) may take: the regex crate's
/// default is 10 MiB, which is more compile time per pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How many regular expressions the member `name: member` of a schema object holds.
fn patterns_in(name: &str, member: &Value) -> usize {
    match (name, member) {
        ("pattern", Value::String(_)) => 1,
        ("patternProperties", Value::Object(patterns)) => patterns.len(),
        _ => 0,
    }
}

impl SchemaSize {
    /// Count this value `times` times over.
    fn weigh(&mut self, times: u64) -> Result<(), SchemaError> {
        self.bytes = self.bytes.saturating_mul(times);
        self.nodes = self.nodes.saturating_mul(times);
        if self.bytes > MAX_EXPANDED_SCHEMA_BYTES { Err(SchemaError::TooLarge) } else { Ok(()) }
    }

    /// Add `part`, a member one level down, and `extra` bytes of punctuation around it.
    fn add(&mut self, part: SchemaSize, extra: usize) -> Result<(), SchemaError> {
        self.bytes = self.bytes.saturating_add(part.bytes).saturating_add(extra as u64);
        self.nodes = self.nodes.saturating_add(part.nodes);
        self.depth = self.depth.max(part.depth + 1);
        if self.bytes > MAX_EXPANDED_SCHEMA_BYTES { Err(SchemaError::TooLarge) } else { Ok(()) }
    }
}

impl<'a> Walk<'a> {
    /// The size of `value`, which has `above` levels of objects and arrays above it in the
    /// expansion; `via` is the last `$ref` followed on the way.
    fn measure(&mut self, value: &'a Value, above: usize, via: Option<&'a str>) -> Result<SchemaSize, SchemaError> {
        let scalar = |bytes: usize| Ok(SchemaSize { bytes: bytes as u64, nodes: 1, depth: 0 });
        match value {
            Value::Null => scalar(4),
            Value::Bool(b) => scalar(if *b { 4 } else { 5 }),
            Value::Number(n) => scalar(n.to_string().len()),
            Value::String(s) => scalar(quoted_len(s)),
            Value::Array(_) | Value::Object(_) => {
                let key: *const Value = value;
                if let Some(&size) = self.sizes.get(&key) {
                    return if above + size.depth > MAX_SCHEMA_DEPTH { Err(SchemaError::TooDeep) } else { Ok(size) };
                }
                if above >= MAX_SCHEMA_DEPTH {
                    return Err(SchemaError::TooDeep);
                }
                if !self.path.insert(key) {
                    return Err(SchemaError::Cycle(via.unwrap_or("#").to_owned()));
                }
                let size = self.container(value, above + 1, via);
                self.path.remove(&key);
                let size = size?;
                self.sizes.insert(key, size);
                Ok(size)
            }
        }
    }

    /// The size of an object or array whose members are `level` levels down.
    fn container(&mut self, value: &'a Value, level: usize, via: Option<&'a str>) -> Result<SchemaSize, SchemaError> {
        let mut total = SchemaSize { bytes: 2, nodes: 1, depth: 1 };
        let members = match value {
            Value::Array(items) => {
                for item in items {
                    total.add(self.measure(item, level, via)?, 0)?;
                }
                items.len()
            }
            Value::Object(members) => {
                self.check_keywords(value, members)?;
                for (name, member) in members {
                    // `"name":` before the member.
                    total.add(self.measure(member, level, via)?, quoted_len(name) + 1)?;
                    total
                        .add(SchemaSize { bytes: 0, nodes: 0, depth: 0 }, patterns_in(name, member) * PATTERN_WEIGHT)?;
                    if name == "$ref"
                        && let Value::String(reference) = member
                    {
                        let target = self.resolve(reference)?;
                        total.add(self.measure(target, level, Some(reference))?, 0)?;
                    }
                }
                members.len()
            }
            _ => 0,
        };
        // The commas between members.
        total.add(SchemaSize { bytes: 0, nodes: 0, depth: 0 }, members.saturating_sub(1))?;
        if value.get("unevaluatedProperties").is_some() || value.get("unevaluatedItems").is_some() {
            total.weigh(UNEVALUATED_WEIGHT)?;
        }
        Ok(total)
    }

    /// Refuse what would make jsonschema resolve references in a way [`Walk::resolve`] does not:
    /// embedded resources (with a base URI of their own) and dynamic references.
    fn check_keywords(&self, value: &Value, members: &serde_json::Map<String, Value>) -> Result<(), SchemaError> {
        let refuse = |keyword: &'static str| SchemaError::Keyword { keyword, at: pointer_to(self.root, value) };
        for keyword in ["$dynamicRef", "$recursiveRef"] {
            if members.get(keyword).is_some_and(Value::is_string) {
                return Err(refuse(keyword));
            }
        }
        if !std::ptr::eq(value, self.root) {
            if members.get("$id").is_some_and(Value::is_string) {
                return Err(refuse("$id"));
            }
            if self.legacy_id && members.get("id").is_some_and(Value::is_string) {
                return Err(refuse("id"));
            }
        }
        Ok(())
    }

    /// The value a local reference points at, from the schema's root.
    fn resolve(&self, reference: &str) -> Result<&'a Value, SchemaError> {
        let pointer = match reference {
            "" | "#" => "",
            // jsonschema decodes percent-encoding; serde_json's `pointer` does not.
            r if r.starts_with("#/") && !r.contains('%') => &r[1..],
            _ => return Err(SchemaError::UnsupportedRef(reference.to_owned())),
        };
        self.root.pointer(pointer).ok_or_else(|| SchemaError::Unresolved(reference.to_owned()))
    }
}

/// The length of `text` as a JSON string, quotes and escapes included (as serde_json writes it).
fn quoted_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// A JSON Pointer (`#/a/0`) to `target` in `root`, found by address: for error messages only.
/// One search without recursion, each value's way back kept as its parent's index, so that only
/// the pointer found is ever spelt out.
fn pointer_to(root: &Value, target: &Value) -> String {
    enum Step<'v> {
        Root,
        Index(usize),
        Name(&'v str),
    }
    // (parent, how this value is reached from it), per value visited.
    let mut visited: Vec<(usize, Step<'_>)> = vec![(0, Step::Root)];
    let mut pending: Vec<(&Value, usize)> = vec![(root, 0)];
    while let Some((value, at)) = pending.pop() {
        if std::ptr::eq(value, target) {
            let mut steps = Vec::new();
            let mut i = at;
            while i != 0 {
                steps.push(&visited[i].1);
                i = visited[i].0;
            }
            let mut pointer = String::from("#");
            for step in steps.into_iter().rev() {
                match step {
                    Step::Root => {}
                    Step::Index(n) => pointer.push_str(&format!("/{n}")),
                    Step::Name(name) => {
                        pointer.push('/');
                        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    }
                }
            }
            return pointer;
        }
        let children: Vec<(&Value, Step<'_>)> = match value {
            Value::Array(items) => items.iter().enumerate().map(|(n, v)| (v, Step::Index(n))).collect(),
            Value::Object(members) => members.iter().map(|(k, v)| (v, Step::Name(k.as_str()))).collect(),
            _ => Vec::new(),
        };
        for (child, step) in children {
            visited.push((at, step));
            pending.push((child, visited.len() - 1));
        }
    }
    "#".to_owned()
}

/// The number of JSON values in `value`, counted without recursion.
pub fn count_nodes(value: &Value) -> u64 {
    let mut count = 0u64;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        count += 1;
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(members) => pending.extend(members.values()),
            _ => {}
        }
    }
    count
}

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

/// A config schema, measured and compiled once per op definition.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
    size: SchemaSize,
}

impl CompiledSchema {
    /// Measure `schema` ([`check_schema`]), then compile it. Patterns use the `regex` crate,
    /// whose matching time is linear in the text (fancy-regex, jsonschema's default, backtracks),
    /// each compiled within [`REGEX_SIZE_LIMIT`].
    pub fn new(schema: &Value) -> Result<Self, String> {
        let size = check_schema(schema).map_err(|e| e.to_string())?;
        let patterns =
            jsonschema::PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT);
        let validator = jsonschema::options()
            .with_pattern_options(patterns)
            .build(schema)
            .map_err(|e| format!("the op's config schema is invalid: {e}"))?;
        Ok(Self { validator, size })
    }

    /// Validate `config`; on failure, one line per problem (at most [`MAX_PROBLEMS_SHOWN`]),
    /// each with its path in the config (`/path: 5 is not of type "string"`).
    pub fn validate(&self, config: &Value) -> Result<(), String> {
        let bytes = json_len(config);
        let work = bytes.saturating_mul(self.size.nodes);
        if work > MAX_CONFIG_CHECK_WORK {
            return Err(format!(
                "checking this config ({bytes} bytes) against the op's config schema ({} values with its $refs \
                 expanded) is {work} steps of work, more than the limit of {MAX_CONFIG_CHECK_WORK} (the config check limit)",
                self.size.nodes
            ));
        }
        let describe = |e: jsonschema::ValidationError<'_>| {
            let path = e.instance_path().to_string();
            if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
        };
        // jsonschema collects every problem before it returns one, and there can be one per
        // step of work: past a small amount of work, only the first is looked for.
        let problems: Vec<String> = if work <= MAX_WORK_FOR_EVERY_PROBLEM {
            self.validator.iter_errors(config).map(describe).collect()
        } else {
            self.validator.validate(config).err().map(describe).into_iter().collect()
        };
        match problems.len() {
            0 => Ok(()),
            n if n > MAX_PROBLEMS_SHOWN => {
                Err(format!("{}; and {} more", problems[..MAX_PROBLEMS_SHOWN].join("; "), n - MAX_PROBLEMS_SHOWN))
            }
            _ => Err(problems.join("; ")),
        }
    }
}

/// The most problems a config error lists.
pub const MAX_PROBLEMS_SHOWN: usize = 10;

/// Up to this much work, every problem of a config is collected; beyond it, the first.
const MAX_WORK_FOR_EVERY_PROBLEM: u64 = 1_000_000;

/// The length of `value` as compact JSON text, counted without writing it anywhere.
fn json_len(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Validate `config` against `schema` (measured and compiled for this one call).
pub fn validate(schema: &Value, config: &Value) -> Result<(), String> {
    CompiledSchema::new(schema)?.validate(config)
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
        assert_eq!(check_schema(&schema), Err(SchemaError::Cycle("#/$defs/A".into())));
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

    /// `levels` definitions, each an `allOf` of `fan` references to the next: fan^levels leaves,
    /// 3 levels deeper per definition (its object, the `allOf` array, the reference's object).
    fn doubling(levels: usize, fan: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..levels {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            defs.insert(format!("d{i}"), json!({"allOf": vec![next; fan]}));
        }
        defs.insert(format!("d{levels}"), json!({"type": "object"}));
        json!({"$ref": "#/$defs/d0", "$defs": defs})
    }

    #[test]
    fn the_expanded_size_is_exact_for_a_schema_without_references() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string", "default": "tab\t \"quoted\" \u{1}"}, "n": {"maximum": 2.5}},
            "required": ["a"],
            "items": [],
            "x": null, "y": true, "z": false, "w": -12
        });
        let size = check_schema(&schema).unwrap();
        assert_eq!(size.bytes, schema.to_string().len() as u64);
        assert_eq!(size.nodes, count_nodes(&schema));
        assert_eq!(size.nodes, 15);
        assert_eq!(size.depth, 3);
    }

    #[test]
    fn a_reference_counts_its_target_each_time_it_is_used() {
        let once = json!({"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}});
        let twice = json!({
            "$defs": {"s": {"type": "string"}},
            "properties": {"a": {"$ref": "#/$defs/s"}, "b": {"$ref": "#/$defs/s"}}
        });
        let (once, twice) = (check_schema(&once).unwrap(), check_schema(&twice).unwrap());
        // "b": its object and reference string (2 values), and the target's object and string (2).
        assert_eq!(twice.nodes - once.nodes, 4);
        // `,"b":{"$ref":"#/$defs/s"}` is 25 bytes, and the target `{"type":"string"}` 17 more.
        assert_eq!(twice.bytes - once.bytes, 25 + 17);
    }

    #[test]
    fn a_doubling_schema_is_refused_in_linear_time() {
        // 8 levels of 2: 256 leaves, accepted.
        let small = check_schema(&doubling(8, 2)).unwrap();
        assert!(small.nodes > 256 * 3, "{small:?}");
        // 20 levels of 16 (60 deep): 16^20 leaves, refused at once for its size.
        let started = std::time::Instant::now();
        assert_eq!(check_schema(&doubling(20, 16)), Err(SchemaError::TooLarge));
        // 40 levels of 2, as the hostile suite wrote it: 2^40 leaves, 120 levels deep.
        assert_eq!(check_schema(&doubling(40, 2)), Err(SchemaError::TooDeep));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            SchemaError::TooLarge.to_string(),
            "the config schema is larger than 1 MiB with its $refs expanded (the expanded schema size limit)"
        );
        // jsonschema never sees them.
        assert_eq!(CompiledSchema::new(&doubling(20, 16)).err(), Some(SchemaError::TooLarge.to_string()));
    }

    #[test]
    fn depth_counts_through_references() {
        // A chain of definitions, each one object and one array deeper than the last.
        fn chain(links: usize) -> Value {
            let mut defs = serde_json::Map::new();
            for i in 0..links {
                defs.insert(format!("l{i}"), json!({"allOf": [{"$ref": format!("#/$defs/l{}", i + 1)}]}));
            }
            defs.insert(format!("l{links}"), json!({}));
            json!({"$ref": "#/$defs/l0", "$defs": defs})
        }
        // The root, `$defs`, then per link its object, its allOf array and the array's object
        // (whose reference leads to the next link), and the last link's object.
        let depth = check_schema(&chain(20)).unwrap().depth;
        assert_eq!(depth, 1 + 1 + 20 * 3 + 1);
        assert_eq!(check_schema(&chain(21)), Err(SchemaError::TooDeep));
        let nested = (0..MAX_SCHEMA_DEPTH).fold(json!(1), |inner, _| json!([inner]));
        assert_eq!(check_schema(&nested).unwrap().depth, MAX_SCHEMA_DEPTH);
        assert_eq!(check_schema(&json!([nested])), Err(SchemaError::TooDeep));
    }

    #[test]
    fn references_sandmap_cannot_expand_are_refused() {
        let refused = |schema: Value| check_schema(&schema).unwrap_err().to_string();
        assert_eq!(
            refused(json!({"$ref": "https://example.com/s.json"})),
            "the config schema's $ref \"https://example.com/s.json\" is not supported: only local JSON Pointer references (\"#\" or \"#/...\") are"
        );
        assert!(matches!(check_schema(&json!({"$ref": "#anchor"})), Err(SchemaError::UnsupportedRef(_))));
        assert!(matches!(check_schema(&json!({"$ref": "#/$defs/a%20b"})), Err(SchemaError::UnsupportedRef(_))));
        assert_eq!(
            refused(json!({"$ref": "#/$defs/missing"})),
            "the config schema's $ref \"#/$defs/missing\" points at nothing in the schema"
        );
        assert_eq!(
            refused(json!({"properties": {"a": {"$id": "https://example.com/a", "$ref": "#/x"}}})),
            "the config schema uses $id at #/properties/a, which is not supported (only the schema's root may carry one)"
        );
        assert!(matches!(
            check_schema(&json!({"properties": {"a": {"$dynamicRef": "#m"}}})),
            Err(SchemaError::Keyword { keyword: "$dynamicRef", .. })
        ));
        let draft4 = json!({"$schema": "http://json-schema.org/draft-04/schema#", "properties": {"a": {"id": "x"}}});
        assert!(matches!(check_schema(&draft4), Err(SchemaError::Keyword { keyword: "id", .. })));
        // In later drafts `id` is no keyword, and a root `$id` is fine.
        assert!(
            check_schema(&json!({"$id": "https://example.com/root", "properties": {"id": {"type": "string"}}})).is_ok()
        );
        assert_eq!(
            refused(json!({"properties": {"a": {"$ref": "#"}}})),
            "the config schema's $ref \"#\" leads back to itself; recursive config schemas are not supported"
        );
    }

    #[test]
    fn a_ref_into_its_own_ancestor_through_another_path_is_a_cycle() {
        let schema =
            json!({"properties": {"a": {"items": {"$ref": "#/properties/a"}}, "b": {"$ref": "#/properties/a/items"}}});
        assert_eq!(check_schema(&schema), Err(SchemaError::Cycle("#/properties/a".into())));
    }

    #[test]
    fn config_checks_are_bounded_by_work() {
        // 20,002 values: the root, its allOf array, and 10,000 objects with one string each.
        let wide_schema = json!({"allOf": vec![json!({"type": "array"}); 10_000]});
        let schema = CompiledSchema::new(&wide_schema).unwrap();
        assert_eq!(schema.validate(&json!([1, 2])), Ok(()));
        // `[0,0,…]`: 2 × 5,000 + 1 bytes, × 20,002 = 200,040,002.
        let e = schema.validate(&Value::Array(vec![json!(0); 5_000])).unwrap_err();
        assert_eq!(
            e,
            "checking this config (10001 bytes) against the op's config schema (20002 values with its $refs \
             expanded) is 200040002 steps of work, more than the limit of 100000000 (the config check limit)"
        );
    }

    #[test]
    fn at_most_ten_problems_are_listed() {
        let schema = CompiledSchema::new(&json!({"items": {"type": "string"}})).unwrap();
        let e = schema.validate(&Value::Array(vec![json!(0); 12])).unwrap_err();
        let first: Vec<String> = (0..10).map(|i| format!("/{i}: 0 is not of type \"string\"")).collect();
        assert_eq!(e, format!("{}; and 2 more", first.join("; ")));
        // Past the work for collecting every problem, the first is enough.
        let many = Value::Array(vec![json!(0); 300_000]);
        assert_eq!(schema.validate(&many).unwrap_err(), "/0: 0 is not of type \"string\"");
    }

    #[test]
    fn unevaluated_keywords_count_four_times_over() {
        let plain = check_schema(&json!({"allOf": [{"type": "object"}]})).unwrap();
        let weighed = check_schema(&json!({"allOf": [{"type": "object"}], "unevaluatedProperties": false})).unwrap();
        // `,"unevaluatedProperties":false` is 30 bytes and one value more, then all of it × 4.
        assert_eq!(weighed.bytes, (plain.bytes + 30) * 4);
        assert_eq!(weighed.nodes, (plain.nodes + 1) * 4);
        // Nested 12 deep, jsonschema would take seconds (2.6 times more per level): refused.
        let nested = (0..12).fold(
            json!({"type": "object"}),
            |inner, _| json!({"allOf": [inner], "properties": {"a": true}, "unevaluatedProperties": false}),
        );
        assert_eq!(check_schema(&nested), Err(SchemaError::TooLarge));
    }

    #[test]
    fn each_pattern_counts_8_kib() {
        let plain = check_schema(&json!({"type": "string", "maxLength": 3})).unwrap();
        let one = check_schema(&json!({"type": "string", "pattern": "^a$"})).unwrap();
        let keys = check_schema(&json!({"patternProperties": {"^a": true, "^b": true}})).unwrap();
        assert_eq!(one.bytes, json!({"type": "string", "pattern": "^a$"}).to_string().len() as u64 + 8192);
        assert_eq!(
            keys.bytes,
            json!({"patternProperties": {"^a": true, "^b": true}}).to_string().len() as u64 + 2 * 8192
        );
        assert_eq!(plain.bytes, json!({"type": "string", "maxLength": 3}).to_string().len() as u64);
        // 128 patterns fit beside little else; 129 do not.
        let patterns = |n: usize| {
            let members: serde_json::Map<String, Value> = (0..n).map(|i| (format!("^{i}$"), json!(true))).collect();
            json!({"patternProperties": members})
        };
        assert!(check_schema(&patterns(127)).is_ok());
        assert_eq!(check_schema(&patterns(128)), Err(SchemaError::TooLarge));
    }

    #[test]
    fn patterns_match_in_linear_time() {
        // Catastrophic for a backtracking engine; linear for the regex crate.
        let schema = CompiledSchema::new(&json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        let started = std::time::Instant::now();
        let text = format!("{}!", "a".repeat(100_000));
        assert!(schema.validate(&json!(text)).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
