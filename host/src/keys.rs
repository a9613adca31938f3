//! Mapping keys and step keys.

use thiserror::Error;

/// Why a mapping key was refused. The texts carry Dagster's meaning
/// (`_core/definitions/utils.py::check_valid_name`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Outside `^[A-Za-z0-9_]+$`.
    #[error("\"{0}\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$")]
    Invalid(String),
    /// A Python keyword or a name Dagster reserves.
    #[error("\"{0}\" is not a valid mapping key. It conflicts with a Dagster or Python reserved keyword")]
    Reserved(String),
    /// Longer than [`MAX_KEY_BYTES`]. Only the key's start is kept: the error must not hold what
    /// the limit refused.
    #[error(
        "a mapping key of {len} bytes (\"{start}…\") is too long: exceeded max_key_bytes limit {MAX_KEY_BYTES} bytes"
    )]
    TooLong {
        /// The key's length.
        len: usize,
        /// Its first bytes.
        start: String,
    },
}

/// The longest mapping key, in bytes (a file name's limit on most file systems). Keys are held
/// per clone in step keys, the report and the run store, so their length bounds host memory.
pub const MAX_KEY_BYTES: usize = 255;

/// Dagster's `DISALLOWED_NAMES`: every Python keyword plus the names its own API uses.
pub const RESERVED_NAMES: &[&str] = &[
    // Python's `keyword.kwlist`.
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    // Dagster's own.
    "context",
    "conf",
    "config",
    "meta",
    "arg_dict",
    "dict",
    "input_arg_dict",
    "output_arg_dict",
    "int",
    "str",
    "float",
    "bool",
    "input",
    "output",
    "type",
];

/// Check a mapping key: `^[A-Za-z0-9_]+$`, at most [`MAX_KEY_BYTES`], and not a reserved name.
pub fn validate_mapping_key(key: &str) -> Result<(), KeyError> {
    if key.len() > MAX_KEY_BYTES {
        const SHOWN: usize = 32;
        let start: String = key.chars().take(SHOWN).collect();
        return Err(KeyError::TooLong { len: key.len(), start });
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(KeyError::Invalid(key.to_owned()));
    }
    if RESERVED_NAMES.contains(&key) {
        return Err(KeyError::Reserved(key.to_owned()));
    }
    Ok(())
}

/// Whether `name` is an identifier (`^[A-Za-z_][A-Za-z0-9_]*$`), as the names of ops, inputs and
/// outputs must be.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The step key of `op` cloned for `keys` (outermost first): `op`, `op[a]`, `op[a][b]`.
pub fn step_key(op: &str, keys: &[String]) -> String {
    let mut out = String::with_capacity(op.len() + keys.iter().map(|k| k.len() + 2).sum::<usize>());
    out.push_str(op);
    for key in keys {
        out.push('[');
        out.push_str(key);
        out.push(']');
    }
    out
}

/// The mapping keys of step key `key` of op `op` (outermost first): the reverse of
/// [`step_key`]; `None` if `key` is not a step key of `op`.
pub fn key_path<'k>(key: &'k str, op: &str) -> Option<Vec<&'k str>> {
    let mut rest = key.strip_prefix(op)?;
    let mut keys = Vec::new();
    while !rest.is_empty() {
        let (inner, after) = rest.strip_prefix('[')?.split_once(']')?;
        keys.push(inner);
        rest = after;
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_dagster_case_1() {
        for ok in ["abc", "A_b_9", "123", "_", "result", &"k".repeat(MAX_KEY_BYTES)] {
            assert_eq!(validate_mapping_key(ok), Ok(()), "{ok}");
        }
        for bad in ["a-b", "a.b", "a b", "", "über", "a/b"] {
            assert_eq!(validate_mapping_key(bad), Err(KeyError::Invalid(bad.into())), "{bad}");
        }
        assert_eq!(
            validate_mapping_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().to_string(),
            format!(
                "a mapping key of 256 bytes (\"{}…\") is too long: exceeded max_key_bytes limit 255 bytes",
                "k".repeat(32)
            )
        );
        for reserved in ["if", "class", "None", "True", "context", "config", "input", "type"] {
            assert_eq!(validate_mapping_key(reserved), Err(KeyError::Reserved(reserved.into())));
        }
        assert_eq!(
            KeyError::Invalid("a-b".into()).to_string(),
            "\"a-b\" is not a valid mapping key. Keys must match the regex ^[A-Za-z0-9_]+$"
        );
    }

    #[test]
    fn step_keys_nest_in_brackets() {
        assert_eq!(step_key("emit", &[]), "emit");
        assert_eq!(step_key("process_file", &["a_txt".into()]), "process_file[a_txt]");
        assert_eq!(step_key("b", &["k".into(), "j".into()]), "b[k][j]");
        assert_eq!(key_path("b[k][j]", "b"), Some(vec!["k", "j"]));
        assert_eq!(key_path("emit", "emit"), Some(vec![]));
        assert_eq!(key_path("bb[k]", "b"), None);
        assert_eq!(key_path("b[k", "b"), None);
    }
}
