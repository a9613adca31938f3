//! Job errors: each names the job file (with line and column where known), the op and the field.

use std::fmt;
use std::path::PathBuf;

/// An invalid job. The CLI exits with status 2 on one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// The job file.
    pub file: PathBuf,
    /// 1-based line and column of the offending text, where known.
    pub location: Option<(usize, usize)>,
    /// The op involved, if any.
    pub op: Option<String>,
    /// The field involved (`inputs.path`, `config`, `grants[0].host`, …), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl JobError {
    /// An error about the job as a whole.
    pub fn job(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self { file: file.into(), location: None, op: None, field: None, message: message.into() }
    }

    /// An error about one op's field.
    pub fn op(file: impl Into<PathBuf>, op: &str, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            location: None,
            op: Some(op.to_owned()),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Point the error at a byte span of the file's text.
    pub fn at(mut self, text: &str, span: std::ops::Range<usize>) -> Self {
        self.location = Some(line_col(text, span.start));
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(op) = &self.op {
            write!(f, "op \"{op}\": ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 4));
    }

    #[test]
    fn display_names_file_location_op_and_field() {
        let e = JobError::op("job.toml", "p", Some("inputs.path"), "unknown op \"x\"").at("\n\nabc", 3..4);
        assert_eq!(e.to_string(), "job.toml:3:2: op \"p\": inputs.path: unknown op \"x\"");
    }
}
