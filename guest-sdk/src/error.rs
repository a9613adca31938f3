//! The op's own failure: the typed error `run` returns.

use std::fmt;

/// An op failure with a message. The host fails the step with it; it is not a crash.
///
/// Any error type converts into it with `?` (its `Display` text becomes the message), which is
/// why `OpError` itself does not implement `std::error::Error`, as with `anyhow::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    message: String,
}

impl OpError {
    /// An op failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefix the message with what the op was doing: `read /data/a.txt: No such file`.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self { message: format!("{what}: {}", self.message) }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for OpError {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}

/// Add context to any fallible result: `fs::read(p).context(format!("read {p}"))?`.
pub trait ResultExt<T> {
    /// On error, prefix its message with `what`.
    fn context(self, what: impl fmt::Display) -> Result<T, OpError>;
}

impl<T, E: Into<OpError>> ResultExt<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, OpError> {
        self.map_err(|e| e.into().context(what))
    }
}
