//! The job file (TOML), parsed into a [`Job`]: names resolved to references, limits and grants
//! read, and nothing yet checked against the ops' definitions (that is [`super::plan`]).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use super::error::JobError;
use crate::step::{Access, Limits};
use crate::units::{parse_bytes, parse_duration};

/// `op` (its output `"result"`) or `op.output`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputRef {
    /// The upstream op.
    pub op: String,
    /// Its output.
    pub output: String,
}

impl OutputRef {
    fn parse(text: &str) -> Result<Self, String> {
        let (op, output) = text.split_once('.').unwrap_or((text, "result"));
        if op.is_empty() || output.is_empty() || output.contains('.') {
            return Err(format!("\"{text}\" is not an output reference (\"op\" or \"op.output\")"));
        }
        Ok(Self { op: op.into(), output: output.into() })
    }
}

impl std::fmt::Display for OutputRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.op, self.output)
    }
}

/// Where an input's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `"op"` / `"op.output"`: a plain output (broadcast to every clone of a mapped consumer).
    Plain(OutputRef),
    /// `{ map = "op.output" }`: one clone per record (or, over a mapped op, continue per key).
    Map(OutputRef),
    /// `{ collect = "op.output" }`: the list of all clones' values, in emission order.
    Collect(OutputRef),
    /// `{ zip = "op.output" }`: next to a `map` input, the record of this dynamic output at the
    /// same position (emission order) as the record the clone was mapped from.
    Zip(OutputRef),
    /// `{ join = "op.output", how = "inner" }`: next to a `map` input, the record of this dynamic
    /// output with the clone's own mapping key.
    Join(OutputRef, JoinHow),
}

/// What a join does with a key that only one side has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinHow {
    /// One clone per key present on both sides; a key on one side only runs nothing (a clone of
    /// a mapped key the other side lacks is skipped, naming the key).
    Inner,
    /// Every key must be on both sides; one that is not fails a step naming it.
    Exact,
}

impl std::fmt::Display for JoinHow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Inner => "inner",
            Self::Exact => "exact",
        })
    }
}

impl InputSource {
    /// The upstream output.
    pub fn output_ref(&self) -> &OutputRef {
        match self {
            Self::Plain(r) | Self::Map(r) | Self::Collect(r) | Self::Zip(r) | Self::Join(r, _) => r,
        }
    }
}

/// How many clones must succeed for a collect to run without the rest (Flyte's
/// `min_success_ratio`): `min_success = 45` or `min_success = 0.9`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinSuccess {
    /// At least this many clones.
    Count(u64),
    /// At least this share of the clones, in (0, 1].
    Ratio(f64),
}

impl MinSuccess {
    /// Whether `succeeded` of `total` clones is enough.
    pub fn met(self, succeeded: usize, total: usize) -> bool {
        match self {
            Self::Count(n) => succeeded as u64 >= n,
            Self::Ratio(r) => total == 0 || succeeded as f64 >= r * total as f64,
        }
    }
}

impl std::fmt::Display for MinSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Ratio(r) => write!(f, "{r}"),
        }
    }
}

/// Retry policy of an op: a failed attempt is retried in a fresh sandbox up to `max` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max: u32,
    /// Wait before each retry.
    pub delay: std::time::Duration,
}

/// One connected input.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInput {
    /// The input's name.
    pub name: String,
    /// Where its value comes from.
    pub source: InputSource,
    /// For a collect: run with the successful clones when at least this many succeed.
    pub min_success: Option<MinSuccess>,
    /// Byte span of the source in the job file.
    pub span: std::ops::Range<usize>,
}

/// A grant as written, with its host path made absolute against the job file's folder (it is
/// checked when the job is planned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobGrant {
    /// The host directory.
    pub host: PathBuf,
    /// Where the op sees it.
    pub guest: String,
    /// Read or read-write.
    pub access: Access,
    /// Byte span in the job file.
    pub span: std::ops::Range<usize>,
}

/// One op of the job.
#[derive(Debug, Clone)]
pub struct JobOp {
    /// Its name in the job (the step key's stem).
    pub name: String,
    /// Component: a name on the plugin path or a path to a `.wasm` (relative to the job file).
    pub component: String,
    /// Byte span of `component`.
    pub component_span: std::ops::Range<usize>,
    /// Config as written (defaults are applied when planned).
    pub config: serde_json::Value,
    /// Byte span of `config`, if given.
    pub config_span: Option<std::ops::Range<usize>>,
    /// Connected inputs, in file order.
    pub inputs: Vec<JobInput>,
    /// Directory grants.
    pub grants: Vec<JobGrant>,
    /// Resource limits (defaults where not given).
    pub limits: Limits,
    /// Retries of a failed step or clone.
    pub retries: RetryPolicy,
    /// The `--set` assignments applied to its config, to name when the config is refused.
    pub overrides: Vec<String>,
}

/// A parsed job file.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Its text (for error locations).
    pub text: String,
    /// Ops in file order.
    pub ops: Vec<JobOp>,
}

impl Job {
    /// Apply a `--set op.config.key=value` override (nested keys with more dots). The value is
    /// read as a TOML value (`5`, `true`, `"text"`, `[1, 2]`), or taken as text if it is not one.
    /// The config is validated against the op's schema afterwards, as the file's own is.
    pub fn set(&mut self, assignment: &str) -> Result<(), JobError> {
        let bad = |message: String| JobError::job(&self.file, format!("--set {assignment}: {message}"));
        let (key, value) = assignment.split_once('=').ok_or_else(|| bad("expected op.config.key=value".into()))?;
        let mut parts = key.trim().split('.');
        let (Some(op), Some("config"), Some(first)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("the key must be op.config.KEY (nested keys with more dots)".into()));
        };
        let path: Vec<&str> = std::iter::once(first).chain(parts).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(bad("a key part is empty".into()));
        }
        let parsed = toml::from_str::<toml::Table>(&format!("v = {}", value.trim()))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or_else(|| serde_json::Value::String(value.to_owned()));
        let names: Vec<String> = self.ops.iter().map(|o| o.name.clone()).collect();
        let target = self
            .ops
            .iter_mut()
            .find(|o| o.name == op)
            .ok_or_else(|| bad(format!("no op \"{op}\" in the job (its ops are: {})", names.join(", "))))?;
        let mut node = &mut target.config;
        for part in &path[..path.len() - 1] {
            let object = node
                .as_object_mut()
                .ok_or_else(|| bad(format!("config.{part} is inside a value that is not a table")))?;
            node = object.entry((*part).to_owned()).or_insert_with(|| serde_json::Value::Object(Default::default()));
        }
        let object = node.as_object_mut().ok_or_else(|| bad("the key is inside a value that is not a table".into()))?;
        object.insert(path[path.len() - 1].to_owned(), parsed);
        target.overrides.push(assignment.to_owned());
        Ok(())
    }

    /// Whether any op has a `fuel` limit (the runtime must then meter fuel).
    pub fn uses_fuel(&self) -> bool {
        self.ops.iter().any(|op| op.limits.fuel.is_some())
    }

    /// The folder relative paths in the job file are resolved against.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// The op called `name`.
    pub fn op(&self, name: &str) -> Option<&JobOp> {
        self.ops.iter().find(|o| o.name == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ops: IndexMap<String, RawOp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    component: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<toml::Table>>,
    #[serde(default)]
    inputs: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    grants: Vec<Spanned<RawGrant>>,
    #[serde(default)]
    limits: Option<Spanned<RawLimits>>,
    #[serde(default)]
    retries: Option<RawRetries>,
    /// Only `false` (the default): ops get no network.
    #[serde(default)]
    network: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetries {
    max: u32,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    host: String,
    guest: String,
    #[serde(default)]
    access: Access,
}

/// A size or a count: `"256 MiB"` or `268435456`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeOrNumber {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<SizeOrNumber>,
    timeout: Option<SizeOrNumber>,
    max_value_bytes: Option<SizeOrNumber>,
    max_emits: Option<u64>,
    max_log_bytes: Option<SizeOrNumber>,
    max_fan_out: Option<u64>,
    max_output_bytes: Option<SizeOrNumber>,
    max_open_files: Option<u64>,
    fuel: Option<u64>,
}

/// Read and parse a job file.
pub fn parse_file(path: &Path) -> Result<Job, JobError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| JobError::job(path, format!("cannot read the job file: {e}")))?;
    parse_str(&text, path)
}

/// Parse job-file text; `path` names it in errors and anchors relative paths.
pub fn parse_str(text: &str, path: &Path) -> Result<Job, JobError> {
    let raw: RawJob = toml::from_str(text).map_err(|e| {
        let error = JobError::job(path, e.message().to_owned());
        match e.span() {
            Some(span) => error.at(text, span),
            None => error,
        }
    })?;
    if raw.ops.is_empty() {
        return Err(JobError::job(path, "the job has no ops (add an [ops.NAME] table)"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut ops = Vec::with_capacity(raw.ops.len());
    for (name, op) in raw.ops {
        if !crate::keys::is_identifier(&name) {
            return Err(JobError::op(path, &name, None, "op names must match ^[A-Za-z_][A-Za-z0-9_]*$"));
        }
        ops.push(parse_op(name, op, text, path, dir)?);
    }
    Ok(Job { name: raw.name, description: raw.description, file: path.to_owned(), text: text.to_owned(), ops })
}

fn parse_op(name: String, raw: RawOp, text: &str, path: &Path, dir: &Path) -> Result<JobOp, JobError> {
    if let Some(network) = &raw.network
        && *network.get_ref()
    {
        return Err(JobError::op(
            path,
            &name,
            Some("network"),
            "ops get no network access; only network = false is accepted",
        )
        .at(text, network.span()));
    }
    let mut inputs = Vec::with_capacity(raw.inputs.len());
    for (input, value) in raw.inputs {
        let span = value.span();
        let field = format!("inputs.{input}");
        let (source, min_success) = parse_source(value.into_inner())
            .map_err(|m| JobError::op(path, &name, Some(&field), m).at(text, span.clone()))?;
        inputs.push(JobInput { name: input, source, min_success, span });
    }
    let mut grants = Vec::with_capacity(raw.grants.len());
    for (i, grant) in raw.grants.into_iter().enumerate() {
        let span = grant.span();
        let grant = grant.into_inner();
        if !grant.guest.starts_with('/') {
            return Err(JobError::op(
                path,
                &name,
                Some(&format!("grants[{i}].guest")),
                format!("\"{}\" must be an absolute guest path (like \"/data\")", grant.guest),
            )
            .at(text, span));
        }
        grants.push(JobGrant { host: dir.join(&grant.host), guest: grant.guest, access: grant.access, span });
    }
    let limits = match raw.limits {
        None => Limits::default(),
        Some(limits) => {
            let span = limits.span();
            parse_limits(limits.into_inner())
                .map_err(|(field, m)| JobError::op(path, &name, Some(&format!("limits.{field}")), m).at(text, span))?
        }
    };
    let (config, config_span) = match raw.config {
        None => (serde_json::Value::Object(Default::default()), None),
        Some(config) => {
            let span = config.span();
            let value = serde_json::to_value(config.into_inner())
                .map_err(|e| JobError::op(path, &name, Some("config"), e.to_string()).at(text, span.clone()))?;
            (value, Some(span))
        }
    };
    let component_span = raw.component.span();
    Ok(JobOp {
        name,
        component: raw.component.into_inner(),
        component_span,
        config,
        config_span,
        inputs,
        grants,
        limits,
        retries: raw
            .retries
            .map(|r| RetryPolicy { max: r.max, delay: std::time::Duration::from_millis(r.delay_ms) })
            .unwrap_or_default(),
        overrides: Vec::new(),
    })
}

fn parse_source(value: toml::Value) -> Result<(InputSource, Option<MinSuccess>), String> {
    const SHAPE: &str = "an input table is { map = \"op.output\" }, { collect = \"op.output\" }, \
                         { zip = \"op.output\" } or { join = \"op.output\" } (a collect may add min_success = N or a \
                         ratio in (0, 1]; a join how = \"inner\" or \"exact\")";
    match value {
        toml::Value::String(text) => Ok((InputSource::Plain(OutputRef::parse(&text)?), None)),
        toml::Value::Table(mut table) => {
            let min_success = match table.remove("min_success") {
                None => None,
                Some(toml::Value::Integer(n)) if n >= 1 => Some(MinSuccess::Count(n as u64)),
                Some(toml::Value::Float(r)) if r > 0.0 && r <= 1.0 => Some(MinSuccess::Ratio(r)),
                Some(other) => {
                    return Err(format!("min_success must be a count (>= 1) or a ratio in (0, 1], not {other}"));
                }
            };
            let how = match table.remove("how") {
                None => None,
                Some(toml::Value::String(how)) if how == "inner" => Some(JoinHow::Inner),
                Some(toml::Value::String(how)) if how == "exact" => Some(JoinHow::Exact),
                Some(other) => return Err(format!("how must be \"inner\" or \"exact\", not {other}")),
            };
            let mut entries = table.into_iter();
            let (kind, text) = match (entries.next(), entries.next()) {
                (Some((kind, toml::Value::String(text))), None) => (kind, text),
                _ => return Err(SHAPE.into()),
            };
            let output = OutputRef::parse(&text)?;
            match kind.as_str() {
                "collect" if how.is_some() => Err("how belongs to a join, not a collect".into()),
                "collect" => Ok((InputSource::Collect(output), min_success)),
                _ if min_success.is_some() => Err(format!("min_success belongs to a collect, not a {kind}")),
                "join" => Ok((InputSource::Join(output, how.unwrap_or(JoinHow::Inner)), None)),
                _ if how.is_some() => Err(format!("how belongs to a join, not a {kind}")),
                "map" => Ok((InputSource::Map(output), None)),
                "zip" => Ok((InputSource::Zip(output), None)),
                other => Err(format!("unknown input kind \"{other}\" (use map, collect, zip or join)")),
            }
        }
        other => Err(format!(
            "an input is \"op\", \"op.output\", {{ map = \"op.output\" }}, {{ collect = \"op.output\" }}, \
             {{ zip = \"op.output\" }} or {{ join = \"op.output\" }}, not a {}",
            other.type_str()
        )),
    }
}

fn parse_limits(raw: RawLimits) -> Result<Limits, (&'static str, String)> {
    let mut limits = Limits::default();
    let size = |field: &'static str, v: SizeOrNumber| match v {
        SizeOrNumber::Number(n) => Ok(n),
        SizeOrNumber::Text(t) => parse_bytes(&t).map_err(|m| (field, m)),
    };
    if let Some(v) = raw.memory {
        limits.memory_bytes = size("memory", v)?;
    }
    if let Some(v) = raw.timeout {
        limits.timeout = match v {
            SizeOrNumber::Number(seconds) => std::time::Duration::from_secs(seconds),
            SizeOrNumber::Text(t) => parse_duration(&t).map_err(|m| ("timeout", m))?,
        };
    }
    if let Some(v) = raw.max_value_bytes {
        limits.max_value_bytes = size("max_value_bytes", v)?;
    }
    if let Some(n) = raw.max_emits {
        limits.max_emits = n;
    }
    if let Some(v) = raw.max_log_bytes {
        limits.max_log_bytes = size("max_log_bytes", v)?;
    }
    if let Some(n) = raw.max_fan_out {
        limits.max_fan_out = n;
    }
    if let Some(v) = raw.max_output_bytes {
        limits.max_output_bytes = size("max_output_bytes", v)?;
    }
    if let Some(n) = raw.max_open_files {
        limits.max_open_files = n;
    }
    limits.fuel = raw.fuel;
    for (field, zero) in [
        ("memory", limits.memory_bytes == 0),
        ("timeout", limits.timeout.is_zero()),
        ("max_value_bytes", limits.max_value_bytes == 0),
    ] {
        if zero {
            return Err((field, format!("{field} must be greater than zero")));
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job, JobError> {
        parse_str(text, Path::new("/jobs/job.toml"))
    }

    #[test]
    fn the_seed_job_parses() {
        let job = parse(
            r#"
name = "process_directory"
[ops.files_in_directory]
component = "files_in_directory"
config = { path = "/data" }
grants = [{ host = "sample", guest = "/data", access = "read" }]
[ops.process_file]
component = "process_file"
inputs = { path = { map = "files_in_directory" } }
grants = [{ host = "sample", guest = "/data" }]
limits = { memory = "64 MiB", timeout = "5 s", max_emits = 10 }
[ops.summarize_directory]
component = "summarize_directory"
inputs = { results = { collect = "process_file" } }
"#,
        )
        .unwrap();
        assert_eq!(job.name, "process_directory");
        let names: Vec<&str> = job.ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["files_in_directory", "process_file", "summarize_directory"]);
        let pf = job.op("process_file").unwrap();
        assert_eq!(
            pf.inputs[0].source,
            InputSource::Map(OutputRef { op: "files_in_directory".into(), output: "result".into() })
        );
        assert_eq!(pf.grants[0].host, Path::new("/jobs/sample"));
        assert_eq!(pf.grants[0].access, Access::Read);
        assert_eq!(pf.limits.memory_bytes, 64 << 20);
        assert_eq!(pf.limits.max_emits, 10);
        assert_eq!(job.ops[0].config, serde_json::json!({"path": "/data"}));
    }

    #[test]
    fn errors_name_file_line_op_and_field() {
        let e = parse("name = \"j\"\n[ops.a]\ncomponent = \"x\"\ninputs = { p = { zap = \"b\" } }\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/jobs/job.toml:4:16: op \"a\": inputs.p: unknown input kind \"zap\" (use map, collect, zip or join)"
        );
        let e = parse("name = \"j\"\n[ops.a]\ncomponent = 5\n").unwrap_err();
        assert!(e.to_string().starts_with("/jobs/job.toml:3:13: "), "{e}");
        let e = parse("name = \"j\"\n[ops.a]\ncomponent = \"x\"\nlimits = { memory = \"lots\" }\n").unwrap_err();
        assert!(e.to_string().contains("op \"a\": limits.memory: \"lots\" is not a size"), "{e}");
        let e = parse("name = \"j\"\n[ops.a]\ncomponent = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let e = parse("name = \"j\"\n").unwrap_err();
        assert!(e.to_string().contains("the job has no ops"), "{e}");
        let e = parse("name = \"j\"\n[ops.a]\ncomponent = \"x\"\ngrants = [{ host = \"d\", guest = \"data\" }]\n")
            .unwrap_err();
        assert!(e.to_string().contains("grants[0].guest: \"data\" must be an absolute guest path"), "{e}");
    }
}
