//! JSON values as validated text, shared by reference.
//!
//! Values cross the component boundary as JSON text. The host validates each once, when it is
//! emitted, and then passes it around by reference: an input is the text an upstream step
//! emitted, and a collected list is built by joining texts, never by re-parsing them.

use std::fmt;
use std::sync::Arc;

/// A valid JSON document, as text.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Check that `text` is one JSON document (serde_json's nesting limit of 128 applies, so a
    /// deeply nested hostile value is rejected rather than overflowing the host's stack).
    ///
    /// Checked by reading it as a `serde_json::Value`, exactly as consumers read it: skipping it
    /// with `IgnoredAny` is cheaper but accepts numbers a `Value` cannot hold (`6e6666`, found by
    /// fuzzing), which would then read back as nothing.
    pub fn parse(text: impl Into<Arc<str>>) -> Result<Self, serde_json::Error> {
        let text = text.into();
        serde_json::from_str::<serde_json::Value>(&text)?;
        Ok(Self(text))
    }

    /// The text of a value the host made itself.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(value.to_string().into())
    }

    /// `null`.
    pub fn null() -> Self {
        Self(Arc::from("null"))
    }

    /// A JSON array of these values, in order, made by joining their texts.
    pub fn array<'a>(items: impl IntoIterator<Item = &'a JsonText>) -> Self {
        let mut out = String::from("[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&item.0);
        }
        out.push(']');
        Self(out.into())
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
/// it arrives: what another process sends is untrusted.
impl serde::Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonText::parse(text).map_err(serde::de::Error::custom)
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
    fn array_joins_texts_in_order() {
        let a = JsonText::parse("1").unwrap();
        let b = JsonText::parse("{\"x\":2}").unwrap();
        assert_eq!(JsonText::array([&a, &b]).as_str(), "[1,{\"x\":2}]");
        assert_eq!(JsonText::array([]).as_str(), "[]");
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
