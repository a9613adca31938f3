//! JSON values as validated text, shared by reference.
//!
//! Values cross the component boundary as JSON text. The host validates each once, when it is
//! emitted, and then passes it around by reference: an input is the text an upstream step
//! emitted, and a collected list is built by joining texts, never by re-parsing them.

use std::fmt;
use std::sync::Arc;

/// The deepest nesting of arrays and objects the host accepts in an emitted value or a JSON
/// metadata value: `[[1]]` is 2 deep, a scalar 0.
///
/// Well below serde_json's own recursion limit (127 levels), because the host wraps what it
/// accepted before it reads it back: the run store keeps a mapped op's outputs as
/// `{op: {output: {key: value}}}` and metadata as `{name: {type, value}}`, and everything that
/// reads the store (`show`, `logs`, `reexecute`, `resume`) must read every accepted value
/// back. `store` checks at compile time that its deepest wrapping still fits.
pub const MAX_VALUE_DEPTH: usize = 64;

/// The nesting serde_json reads before it gives up (its fixed recursion limit of 128 counts
/// the opening bracket that fails): what every reader of host-made JSON text can take.
pub const SERDE_JSON_MAX_DEPTH: usize = 127;

/// Why a text is not an acceptable value.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Arrays and objects nest deeper than the limit.
    #[error("arrays and objects nest deeper than {limit} levels (the value depth limit)")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Not one JSON document.
    #[error("{0}")]
    Syntax(#[from] serde_json::Error),
}

/// Whether arrays and objects in `text` nest deeper than `limit`. One pass over the bytes,
/// counting brackets outside strings, with no recursion: a hostile text cannot overflow the
/// host's stack here, and it is refused before a recursive parser sees it. Text that is not
/// JSON is left to the parser to refuse.
pub fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Read `text` as a `serde_json::Value` if it is JSON nested at most [`MAX_VALUE_DEPTH`] deep
/// (how metadata JSON is checked).
pub fn parse_value(text: &str) -> Result<serde_json::Value, JsonError> {
    read_within_depth(text)
}

/// Read `text` as a `T` if it is JSON nested at most [`MAX_VALUE_DEPTH`] deep: the depth is
/// scanned first, so a hostile text never reaches the recursive parser too deep.
fn read_within_depth<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    if nests_deeper_than(text, MAX_VALUE_DEPTH) {
        return Err(JsonError::TooDeep { limit: MAX_VALUE_DEPTH });
    }
    Ok(serde_json::from_str(text)?)
}

/// A JSON document read through exactly the parser path a `serde_json::Value` takes
/// (`deserialize_any` at every level, so numbers are parsed and range-checked, strings and their
/// escapes checked), keeping nothing: it accepts what `Value` accepts, without allocating its
/// tree. That tree was a tenth of the host's cost of accepting an op's output. Skipping with
/// `IgnoredAny` instead would accept numbers a `Value` cannot hold (`6e6666`, found by
/// fuzzing), which would then read back as nothing.
struct Readable;

impl<'de> serde::Deserialize<'de> for Readable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Readable)
    }
}

impl<'de> serde::de::Visitor<'de> for Readable {
    type Value = Readable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        match map.next_key::<FirstKey>()? {
            None => return Ok(self),
            // As a `Value` reads it (serde_json is built with `raw_value`): the string under the
            // token is JSON text read on its own, and the object must end there.
            Some(FirstKey::RawValueToken) => {
                let text = map.next_value::<String>()?;
                serde_json::from_str::<Readable>(&text).map_err(serde::de::Error::custom)?;
                return Ok(self);
            }
            Some(FirstKey::Other) => {
                map.next_value::<Readable>()?;
            }
        }
        while map.next_entry::<Readable, Readable>()?.is_some() {}
        Ok(self)
    }
}

/// serde_json's private key for a raw value (`serde_json::raw::TOKEN`): an object whose first key
/// is this (however its text escapes it) is read by a `Value` as the JSON in its string value.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// An object's first key, told apart as a `Value` tells it.
enum FirstKey {
    RawValueToken,
    Other,
}

impl<'de> serde::Deserialize<'de> for FirstKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Classify;
        impl serde::de::Visitor<'_> for Classify {
            type Value = FirstKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, key: &str) -> Result<FirstKey, E> {
                Ok(if key == RAW_VALUE_TOKEN { FirstKey::RawValueToken } else { FirstKey::Other })
            }
        }
        deserializer.deserialize_str(Classify)
    }
}

/// A valid JSON document, as text.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Check that `text` is one JSON document nested at most [`MAX_VALUE_DEPTH`] deep: what
    /// the host accepts from an op.
    ///
    /// Checked by serde_json's parser exactly as consumers read it into a `serde_json::Value`
    /// ([`Readable`]), without building one.
    ///
    /// Whitespace around the document is dropped, so that the text is exactly what the run
    /// store gives back.
    pub fn parse(text: impl Into<Arc<str>>) -> Result<Self, JsonError> {
        let text: Arc<str> = text.into();
        read_within_depth::<Readable>(&text)?;
        let trimmed = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if trimmed.len() == text.len() { Ok(Self(text)) } else { Ok(Self(Arc::from(trimmed))) }
    }

    /// A value the host accepted earlier, read back (from the run store): checked to be JSON,
    /// but not against [`MAX_VALUE_DEPTH`] again, so that a run recorded when the limit was
    /// serde_json's own stays readable.
    pub fn parse_stored(text: impl Into<Arc<str>>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<Readable>(&text)?;
        Ok(Self(text))
    }

    /// The text of a value the host made itself.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(value.to_string().into())
    }

    /// A JSON array of these values, in order, made by joining their texts.
    ///
    /// Written once, at its exact size, straight into the shared buffer: a collect over 100,000
    /// clones makes an array of megabytes, and a growing `String` copied into an `Arc` would hold
    /// up to three times that at its peak.
    pub fn array<'a>(items: impl IntoIterator<Item = &'a JsonText>) -> Self {
        let items: Vec<&JsonText> = items.into_iter().collect();
        let len = 2 + items.iter().map(|item| item.0.len()).sum::<usize>() + items.len().saturating_sub(1);
        let mut buffer: Arc<[std::mem::MaybeUninit<u8>]> = Arc::new_uninit_slice(len);
        let Some(out) = Arc::get_mut(&mut buffer) else { unreachable!("a new Arc has no other owner") };
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].write_copy_of_slice(bytes);
            at += bytes.len();
        };
        put(b"[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                put(b",");
            }
            put(item.0.as_bytes());
        }
        put(b"]");
        debug_assert_eq!(at, len);
        // SAFETY: every one of the `len` bytes was written above (the sizes are summed from the
        // same items), so the slice is initialized; the bytes are `[`, `,`, `]` and whole UTF-8
        // texts, so they are UTF-8; `str` and `[u8]` have the same layout, so the pointer cast
        // keeps the `Arc`'s allocation as it is.
        let text: Arc<str> = unsafe { Arc::from_raw(Arc::into_raw(buffer.assume_init()) as *const str) };
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never, for a valid document).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parse into a `serde_json::Value` (for display and reports).
    pub fn to_value(&self) -> serde_json::Value {
        // The text was validated on construction; a failure here would be a serde_json bug.
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

/// A value travels as its text (a JSON string holding the document), and is checked again when
/// it arrives: what another process sends is untrusted. Checked as JSON within serde_json's own
/// nesting limit, not [`MAX_VALUE_DEPTH`]: what travels includes collected inputs, which nest
/// a level (or, collecting nested maps, more) deeper than the values the host accepted.
impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonText::parse_stored(text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonText({})", self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_accepted_is_exactly_what_a_serde_json_value_reads() {
        let cases = [
            "0",
            "-0",
            "1e308",
            "1e309",
            "6e6666",
            "-6e6666",
            "1.5e-400",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "01",
            "1.",
            ".5",
            "+1",
            "NaN",
            "Infinity",
            "\"a\"",
            "\"\\ud800\"",
            "\"\\ud83d\\ude00\"",
            "\"\\udc00\"",
            "\"\\x\"",
            "\"tab\there\"",
            "\"\u{7f}\"",
            "{\"a\":1,\"a\":2}",
            "{\"a\":}",
            "{1:2}",
            "[1,]",
            "[,1]",
            "[]",
            "{}",
            "[[[]]]",
            "null",
            "nul",
            "true",
            "tru",
            "[true false]",
            " 1 ",
            "1 2",
            "",
            "   ",
            "[1]x",
            "{\"k\":[{\"v\":null}]}",
        ];
        for text in cases {
            let ours = serde_json::from_str::<Readable>(text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ours, theirs, "{text:?}");
            assert_eq!(JsonText::parse(text).is_ok(), theirs, "{text:?}");
            assert_eq!(JsonText::parse_stored(text).is_ok(), theirs, "{text:?}");
        }
    }

    /// serde_json's raw-value token as a key (found in review): a `Value` reads an object whose
    /// first and only entry it is, holding a string of JSON, as that JSON; nothing else with it.
    #[test]
    fn the_raw_value_token_is_read_as_a_value_reads_it() {
        let token = RAW_VALUE_TOKEN;
        let cases = [
            format!(r#"{{"{token}":1}}"#),
            format!(r#"{{"{token}":"nope"}}"#),
            format!(r#"{{"{token}":"1"}}"#),
            format!(r#"{{"{token}":"1","a":2}}"#),
            format!(r#"{{"{token}":"[1,{{\"a\":2}}]"}}"#),
            format!(r#"{{"{token}":"[1,"}}"#),
            r#"{"\u0024serde_json::private::RawValue":"1"}"#.to_owned(),
            r#"{"\u0024serde_json::private::RawValue":"1","b":1}"#.to_owned(),
            format!(r#"{{"a":1,"{token}":"x"}}"#),
            format!(r#"[{{"{token}":"{{\"{token}\":7}}"}}]"#),
            format!(r#"[{{"{token}":"{{\"{token}\":\"7\"}}"}}]"#),
        ];
        for text in &cases {
            let ours = serde_json::from_str::<Readable>(text).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(text).is_ok();
            assert_eq!(ours, theirs, "{text}");
        }
        assert!(cases.iter().any(|t| serde_json::from_str::<serde_json::Value>(t).is_ok()));
    }

    #[test]
    fn parse_accepts_json_and_rejects_the_rest() {
        assert!(JsonText::parse("{\"a\": [1, 2.5, null]}").is_ok());
        assert!(JsonText::parse("not json").is_err());
        assert!(JsonText::parse("{} {}").is_err());
        assert!(JsonText::parse("").is_err());
        // Out of f64's range: serde_json's Value refuses it, so must the host (found by fuzzing).
        assert!(JsonText::parse("6e6666").is_err());
        let deep = "[".repeat(100_000);
        assert!(JsonText::parse(deep).is_err());
    }

    #[test]
    fn parse_drops_whitespace_around_the_document_only() {
        assert_eq!(JsonText::parse(" \n{\"a\": [1, 2]}\t\r\n").unwrap().as_str(), "{\"a\": [1, 2]}");
        assert_eq!(JsonText::parse("5").unwrap().as_str(), "5");
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn values_nest_at_most_max_value_depth() {
        assert!(JsonText::parse(nested(MAX_VALUE_DEPTH)).is_ok());
        let too_deep = JsonText::parse(nested(MAX_VALUE_DEPTH + 1)).unwrap_err();
        assert!(matches!(too_deep, JsonError::TooDeep { limit: MAX_VALUE_DEPTH }), "{too_deep:?}");
        assert_eq!(too_deep.to_string(), "arrays and objects nest deeper than 64 levels (the value depth limit)");
        // Objects count as arrays do; brackets inside strings (escaped quotes too) do not.
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_VALUE_DEPTH + 1), "}".repeat(MAX_VALUE_DEPTH + 1));
        assert!(matches!(JsonText::parse(objects), Err(JsonError::TooDeep { .. })));
        let in_string = format!("[\"\\\"{}\"]", "[".repeat(1000));
        assert!(JsonText::parse(in_string).is_ok());
        assert!(matches!(parse_value(&nested(MAX_VALUE_DEPTH + 1)), Err(JsonError::TooDeep { .. })));
        assert_eq!(parse_value(&nested(2)).unwrap(), serde_json::json!([[1]]));
    }

    #[test]
    fn the_depth_scan_counts_exactly() {
        assert!(!nests_deeper_than("1", 0));
        assert!(nests_deeper_than("[]", 0));
        assert!(!nests_deeper_than("[[],[[]]]", 3));
        assert!(nests_deeper_than("[[],[[]]]", 2));
        assert!(!nests_deeper_than("\"[[[\"", 0));
        assert!(!nests_deeper_than("[\"\\\\\"]", 1), "an escaped backslash ends before the quote");
    }

    #[test]
    fn stored_values_are_read_back_to_serde_json_s_own_limit() {
        assert!(JsonText::parse_stored(nested(SERDE_JSON_MAX_DEPTH)).is_ok());
        assert!(JsonText::parse_stored(nested(SERDE_JSON_MAX_DEPTH + 1)).is_err());
        assert!(JsonText::parse_stored("not json").is_err());
    }

    #[test]
    fn array_joins_texts_in_order() {
        let a = JsonText::parse("1").unwrap();
        let b = JsonText::parse("{\"x\":2}").unwrap();
        assert_eq!(JsonText::array([&a, &b]).as_str(), "[1,{\"x\":2}]");
        assert_eq!(JsonText::array([]).as_str(), "[]");
        // One item, and texts of multi-byte characters: the exact-size buffer is filled whole.
        let c = JsonText::parse("\"é✓𝄞\"").unwrap();
        assert_eq!(JsonText::array([&c]).as_str(), "[\"é✓𝄞\"]");
        assert_eq!(JsonText::array([&c, &a, &c]).as_str(), "[\"é✓𝄞\",1,\"é✓𝄞\"]");
        assert_eq!(JsonText::array([&c, &a]).len(), "[\"é✓𝄞\",1]".len());
    }
}

/// A typed metadata value attached to an emitted record or output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum MetadataValue {
    /// Plain text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Any JSON value.
    Json(serde_json::Value),
    /// A URL.
    Url(String),
    /// A file system path.
    Path(String),
    /// Markdown text.
    Markdown(String),
}

impl fmt::Display for MetadataValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(s) | Self::Url(s) | Self::Path(s) | Self::Markdown(s) => f.write_str(s),
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Json(v) => write!(f, "{v}"),
        }
    }
}

/// Metadata entries in the order the op attached them.
pub type Metadata = Vec<(String, MetadataValue)>;

/// Metadata as `--json` and the run store hold it: `{key: {type, value}}`, in attachment order.
pub fn metadata_json(metadata: &Metadata) -> serde_json::Map<String, serde_json::Value> {
    metadata.iter().map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect()
}
