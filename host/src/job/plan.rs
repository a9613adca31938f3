//! Validate a job against its ops' definitions and plan it: topological order, and for every op
//! its *mapping scope* — the chain of dynamic outputs it is cloned over, outermost first.
//!
//! Scope rules (Dagster's, extended to nesting):
//! - `{ map = "p.out" }` over a dynamic output: the scope of `p` plus `p:out`.
//! - `{ map = "p.out" }` over a plain output of a mapped `p`: `p`'s scope (a chained map).
//! - `{ collect = "p.out" }` over a dynamic output: `p`'s scope (the list of `p`'s records).
//! - `{ collect = "p.out" }` over a plain output of a mapped `p`: `p`'s scope less its innermost
//!   level (for a nested map, one list per outer key).
//! - `"p.out"` (plain): only from an unmapped op; broadcast to every clone.
//!
//! An op's scope is the longest of its inputs' scopes; every other must be a prefix of it, or
//! the op would be downstream of two unrelated dynamic outputs.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::{self, CompiledSchema};
use super::error::JobError;
use super::file::{InputSource, Job, JobGrant, JobOp, JoinHow, MinSuccess, OutputRef, RetryPolicy};
use crate::definition::{OpDefinition, OutputDefinition};
use crate::step::{Grant, Limits};
use crate::value::JsonText;

/// A dynamic output: op (index in [`Plan::ops`]) and output name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DynamicRef {
    /// The emitting op.
    pub op: usize,
    /// Its dynamic output.
    pub output: String,
}

/// How one input of a planned op gets its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A plain output of an op whose scope is a prefix of ours: the value of its instance at our
    /// keys (truncated to its depth).
    Plain {
        /// Upstream op.
        op: usize,
        /// Its output.
        output: String,
    },
    /// The record that cloned us: the dynamic output that is the last level of our scope.
    Record {
        /// Emitting op.
        op: usize,
        /// Its dynamic output.
        output: String,
    },
    /// The list of a mapped op's plain output over every key one level below our scope.
    Collect {
        /// Mapped upstream op.
        op: usize,
        /// Its plain output.
        output: String,
        /// Run with the successful clones when at least this many succeed.
        min_success: Option<MinSuccess>,
    },
    /// The list of the records of a dynamic output of an op at our scope.
    CollectRecords {
        /// Emitting op.
        op: usize,
        /// Its dynamic output.
        output: String,
    },
    /// The record of another dynamic output, at our scope's parent, that pairs with the record
    /// that cloned us: at the same position (`zip`) or with the same key (`join`).
    Partner {
        /// Emitting op.
        op: usize,
        /// Its dynamic output.
        output: String,
        /// How its records pair with ours.
        pairing: Pairing,
    },
}

/// How a partner output's records pair with the records a mapped op is cloned from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// The i-th record with the i-th (emission order): `zip`. Unequal counts fail.
    Position,
    /// The record with the same mapping key: `join`.
    Key(JoinHow),
}

impl Binding {
    /// The upstream op.
    pub fn op(&self) -> usize {
        match self {
            Self::Plain { op, .. }
            | Self::Record { op, .. }
            | Self::Collect { op, .. }
            | Self::CollectRecords { op, .. }
            | Self::Partner { op, .. } => *op,
        }
    }
}

/// One input of a planned op.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedInput {
    /// The input's name.
    pub name: String,
    /// Where its value comes from.
    pub binding: Binding,
}

/// A validated op, ready to be cloned into steps.
#[derive(Debug, Clone)]
pub struct PlannedOp {
    /// Its name in the job.
    pub name: String,
    /// Index in the job file's op list (and so in the caller's list of loaded components).
    pub job_index: usize,
    /// Config, defaults applied and validated.
    pub config: JsonText,
    /// Inputs, in file order.
    pub inputs: Vec<PlannedInput>,
    /// Grants, host paths checked, made canonical and opened.
    pub grants: Vec<HeldGrant>,
    /// Resource limits.
    pub limits: Limits,
    /// Retries of a failed attempt.
    pub retries: RetryPolicy,
    /// The op's outputs.
    pub outputs: Arc<[OutputDefinition]>,
    /// The dynamic outputs it is cloned over, outermost first (empty: one step).
    pub scope: Vec<DynamicRef>,
    /// Whether any other op reads one of its outputs.
    pub consumed: bool,
}

/// A grant whose directory was opened when the job was validated. Whoever runs the job's steps
/// holds on to this handle ([`HeldGrant::handle`]) and gives sandboxes that, never the path
/// again, so renaming the directory or swapping in a symlink after validation cannot change what
/// the op sees.
#[derive(Debug, Clone)]
pub struct HeldGrant {
    /// The grant, with the canonical host path (what a step carries).
    pub grant: Grant,
    handle: Arc<cap_std::fs::Dir>,
}

impl HeldGrant {
    /// The directory as it was opened when the job was validated.
    pub fn handle(&self) -> &cap_std::fs::Dir {
        &self.handle
    }
}

/// A validated job, ops in topological order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The job's name.
    pub job: String,
    /// Ops, each after every op it reads from.
    pub ops: Vec<PlannedOp>,
}

impl Plan {
    /// The planned op called `name`.
    pub fn op(&self, name: &str) -> Option<&PlannedOp> {
        self.ops.iter().find(|o| o.name == name)
    }
}

/// A folder of sandmap's own that no grant may contain or be inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protected {
    /// The run store (`--store`, `SANDMAP_HOME`, `.sandmap/`): an op that could write there
    /// could forge run records or remove a live run's lock.
    RunStore(PathBuf),
    /// The compile cache (`SANDMAP_CACHE_DIR`): an op that could write there could plant
    /// native code.
    CompileCache(PathBuf),
}

impl Protected {
    fn path(&self) -> &Path {
        match self {
            Self::RunStore(path) | Self::CompileCache(path) => path,
        }
    }

    /// What it is, and how to keep it out of a grant's way.
    fn describe(&self) -> (&'static str, &'static str) {
        match self {
            Self::RunStore(_) => ("run store", "--store or SANDMAP_HOME"),
            Self::CompileCache(_) => ("compile cache", "SANDMAP_CACHE_DIR"),
        }
    }
}

/// Validate `job` against `definitions` (one per op, in the job's op order) and plan it.
/// `protected` are folders no grant may contain or be inside (sandmap's own compile cache and
/// run store).
///
/// Linear in the job's size: ops are found by name through one index, ordered with a heap, and
/// each distinct definition's lookups and config schema are built once (ops naming the same
/// component share one definition).
pub fn plan<D: Borrow<OpDefinition>>(job: &Job, definitions: &[D], protected: &[Protected]) -> Result<Plan, JobError> {
    let names: HashMap<&str, usize> = job.ops.iter().enumerate().map(|(i, o)| (o.name.as_str(), i)).collect();
    let order = topological_order(job, &names)?;
    let mut position = vec![usize::MAX; job.ops.len()];
    for (pos, &index) in order.iter().enumerate() {
        position[index] = pos;
    }
    let protected: Vec<(PathBuf, &Protected)> = protected.iter().map(|p| (canonical_or_nearest(p.path()), p)).collect();
    let mut built = DefinitionIndexes::default();
    let indexes: Vec<Arc<DefinitionIndex<'_>>> = definitions.iter().map(|d| built.get(d.borrow())).collect();
    let context = PlanContext { job, indexes: &indexes, names: &names, position: &position, protected: &protected };
    let mut ops: Vec<PlannedOp> = Vec::with_capacity(order.len());
    for &index in &order {
        ops.push(plan_op(&context, &job.ops[index], index, &ops)?);
    }
    for i in 0..ops.len() {
        let consumers: Vec<usize> = ops[i].inputs.iter().map(|input| input.binding.op()).collect();
        for upstream in consumers {
            ops[upstream].consumed = true;
        }
    }
    Ok(Plan { job: job.name.clone(), ops })
}

/// What planning needs of one definition, built once per distinct definition: its inputs and
/// outputs by name, its outputs as the shared list steps get, and its compiled config schema.
struct DefinitionIndex<'a> {
    definition: &'a OpDefinition,
    inputs: HashSet<&'a str>,
    outputs: HashMap<&'a str, &'a OutputDefinition>,
    shared_outputs: Arc<[OutputDefinition]>,
    schema: Result<Arc<CompiledSchema>, String>,
}

/// [`DefinitionIndex`]es by the definition's address: many ops share one definition.
#[derive(Default)]
struct DefinitionIndexes<'a> {
    built: HashMap<*const OpDefinition, Arc<DefinitionIndex<'a>>>,
}

impl<'a> DefinitionIndexes<'a> {
    fn get(&mut self, definition: &'a OpDefinition) -> Arc<DefinitionIndex<'a>> {
        let key: *const OpDefinition = definition;
        self.built
            .entry(key)
            .or_insert_with(|| {
                Arc::new(DefinitionIndex {
                    definition,
                    inputs: definition.inputs.iter().map(|i| i.name.as_str()).collect(),
                    outputs: definition.outputs.iter().map(|o| (o.name.as_str(), o)).collect(),
                    shared_outputs: Arc::from(definition.outputs.as_slice()),
                    schema: CompiledSchema::new(&definition.config_schema).map(Arc::new),
                })
            })
            .clone()
    }
}

/// What every op's planning consults.
struct PlanContext<'a> {
    job: &'a Job,
    /// Per job-file index, its definition's index.
    indexes: &'a [Arc<DefinitionIndex<'a>>],
    /// Op name → job-file index.
    names: &'a HashMap<&'a str, usize>,
    /// Job-file index → index in the plan.
    position: &'a [usize],
    /// Folders no grant may contain or be inside, each with its canonical path.
    protected: &'a [(PathBuf, &'a Protected)],
}

fn plan_op(
    context: &PlanContext<'_>,
    op: &JobOp,
    job_index: usize,
    planned: &[PlannedOp],
) -> Result<PlannedOp, JobError> {
    let PlanContext { job, indexes, names, position, protected } = *context;
    let index = &indexes[job_index];
    let definition = index.definition;
    let file = &job.file;
    let err = |field: &str, message: String, span: Option<std::ops::Range<usize>>| {
        let e = JobError::op(file, &op.name, Some(field), message);
        match span {
            Some(span) => e.at(&job.text, span),
            None => e,
        }
    };

    // Every connected input declared (a misspelled one is named at its own line, with the name
    // it most likely meant), then every required input connected.
    for input in &op.inputs {
        if !index.inputs.contains(input.name.as_str()) {
            let names: Vec<String> = definition.inputs.iter().map(|i| format!("'{}'", i.name)).collect();
            let meant = definition
                .inputs
                .iter()
                .map(|i| (strsim::jaro_winkler(&i.name, &input.name), &i.name))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, name)| format!("; did you mean \"{name}\"?"))
                .unwrap_or_default();
            return Err(err(
                &format!("inputs.{}", input.name),
                format!(
                    "component \"{}\" has no input \"{}\" (its inputs are [{}]){meant}",
                    op.component,
                    input.name,
                    names.join(", ")
                ),
                Some(input.span.clone()),
            ));
        }
    }
    let connected: HashSet<&str> = op.inputs.iter().map(|i| i.name.as_str()).collect();
    for declared in &definition.inputs {
        if declared.required && !connected.contains(declared.name.as_str()) {
            return Err(err(
                "inputs",
                format!("required input \"{}\" is not connected", declared.name),
                Some(op.component_span.clone()),
            ));
        }
    }

    let mut inputs = Vec::with_capacity(op.inputs.len());
    // (scope, human description of where it came from) per input, for the compatibility check.
    let mut scopes: Vec<(Vec<DynamicRef>, String)> = Vec::new();
    let mut collected: Vec<DynamicRef> = Vec::new();
    // Zip and join inputs: (their output, input name, span, "zip"/"join").
    let mut partners: Vec<(DynamicRef, String, std::ops::Range<usize>, &str)> = Vec::new();
    for input in &op.inputs {
        let field = format!("inputs.{}", input.name);
        let at = |message: String| err(&field, message, Some(input.span.clone()));
        let source = input.source.output_ref();
        let upstream_index = names.get(source.op.as_str()).map(|&i| position[i]);
        let Some(upstream_pos) = upstream_index else {
            return Err(at(format!("unknown op \"{}\"", source.op)));
        };
        let upstream = &planned[upstream_pos];
        let upstream_lookup = &indexes[upstream.job_index];
        let upstream_def = upstream_lookup.definition;
        let Some(&output) = upstream_lookup.outputs.get(source.output.as_str()) else {
            return Err(at(format!(
                "op \"{}\" has no output \"{}\" (its outputs are {})",
                source.op,
                source.output,
                upstream_def.output_names()
            )));
        };
        let mapped = !upstream.scope.is_empty();
        let here = DynamicRef { op: upstream_pos, output: source.output.clone() };
        let (binding, scope) = match (&input.source, output.dynamic) {
            (InputSource::Plain(_), true) => {
                return Err(at(format!(
                    "received the dynamic output \"{}\" from op \"{}\" directly. \
                     Dynamic output must be unpacked with map or collect",
                    source.output, source.op
                )));
            }
            (InputSource::Plain(_), false) if mapped => {
                return Err(at(format!(
                    "received output \"{}\" of mapped op \"{}\" directly. A mapped op's output must be \
                     used with map (to continue per key) or collect",
                    source.output, source.op
                )));
            }
            (InputSource::Plain(_), false) => {
                (Binding::Plain { op: upstream_pos, output: source.output.clone() }, vec![])
            }
            (InputSource::Map(_), true) => {
                let mut scope = upstream.scope.clone();
                scope.push(here.clone());
                (Binding::Record { op: upstream_pos, output: source.output.clone() }, scope)
            }
            (InputSource::Map(_), false) if mapped => {
                (Binding::Plain { op: upstream_pos, output: source.output.clone() }, upstream.scope.clone())
            }
            (InputSource::Map(_), false) => {
                return Err(at(format!(
                    "cannot map over {source}: it is not a dynamic output, and op \"{}\" is not mapped",
                    source.op
                )));
            }
            (InputSource::Collect(_), true) if input.min_success.is_some() => {
                return Err(at(format!(
                    "min_success applies to collecting a mapped op's output; the records of {source} cannot fail"
                )));
            }
            (InputSource::Collect(_), true) => {
                collected.push(here.clone());
                (Binding::CollectRecords { op: upstream_pos, output: source.output.clone() }, upstream.scope.clone())
            }
            (InputSource::Collect(_), false) if mapped => {
                let mut scope = upstream.scope.clone();
                if let Some(level) = scope.pop() {
                    collected.push(level);
                }
                (
                    Binding::Collect {
                        op: upstream_pos,
                        output: source.output.clone(),
                        min_success: input.min_success,
                    },
                    scope,
                )
            }
            (InputSource::Collect(_), false) => {
                return Err(at(format!(
                    "cannot collect {source}: it is neither a dynamic output nor the output of a mapped op"
                )));
            }
            (InputSource::Zip(_) | InputSource::Join(..), dynamic) => {
                let (word, pairing) = match &input.source {
                    InputSource::Join(_, how) => ("join", Pairing::Key(*how)),
                    _ => ("zip", Pairing::Position),
                };
                if !dynamic {
                    return Err(at(format!(
                        "cannot {word} {source}: it is not a dynamic output (zip and join pair the records of \
                         two dynamic outputs)"
                    )));
                }
                partners.push((here.clone(), input.name.clone(), input.span.clone(), word));
                (Binding::Partner { op: upstream_pos, output: source.output.clone(), pairing }, upstream.scope.clone())
            }
        };
        scopes.push((scope, input.name.clone()));
        inputs.push(PlannedInput { name: input.name.clone(), binding });
    }

    let scope = op_scope(op, &scopes, planned).map_err(|m| err("inputs", m, Some(op.component_span.clone())))?;
    // A zip or join pairs with the records the op is mapped over: a sibling fan-out at the same
    // level (under the same outer keys), never the mapped output itself.
    for (partner, name, span, word) in &partners {
        let at = |message: String| err(&format!("inputs.{name}"), message, Some(span.clone()));
        let Some((mapped_over, outer)) = scope.split_last() else {
            return Err(at(format!(
                "a {word} input needs a map input next to it: it pairs its records with the ones the op is mapped over"
            )));
        };
        if planned[partner.op].scope.as_slice() != outer {
            return Err(at(format!(
                "cannot {word} {} with {}: they are not emitted at the same level (the partner's op must be \
                 mapped exactly as deep as the output this op is mapped over)",
                dynamic_name(planned, partner),
                dynamic_name(planned, mapped_over)
            )));
        }
        if partner == mapped_over {
            return Err(at(format!(
                "cannot {word} {} with itself: the op is already mapped over it",
                dynamic_name(planned, partner)
            )));
        }
    }
    for level in &collected {
        if scope.contains(level) {
            let name = dynamic_name(planned, level);
            return Err(err(
                "inputs",
                format!(
                    "op '{}' cannot both collect over dynamic output {name} and be downstream of the dynamic output {name}",
                    op.name
                ),
                Some(op.component_span.clone()),
            ));
        }
    }

    let schema = index.schema.as_ref().map_err(|m| err("config", m.clone(), op.config_span.clone()))?;
    if let Some(given) = op.config.as_object().filter(|c| !c.is_empty())
        && takes_no_config(&definition.config_schema)
    {
        let keys: Vec<String> = given.keys().map(|k| format!("\"{k}\"")).collect();
        let message = format!("op \"{}\" takes no config (got {})", op.name, keys.join(", "));
        return Err(err("config", with_overrides(message, op), op.config_span.clone()));
    }
    let mut config = op.config.clone();
    config::apply_defaults(&definition.config_schema, &mut config);
    schema.validate(&config).map_err(|m| err("config", with_overrides(m, op), op.config_span.clone()))?;

    Ok(PlannedOp {
        name: op.name.clone(),
        job_index,
        config: JsonText::from_value(&config),
        inputs,
        grants: check_grants(file, &job.text, op, protected)?,
        limits: op.limits,
        retries: op.retries,
        outputs: index.shared_outputs.clone(),
        scope,
        consumed: false,
    })
}

/// Whether a config schema accepts only an empty table (the guest SDK's `NoConfig`, and the same
/// in the other kits): `type: object`, no properties, `additionalProperties: false`.
fn takes_no_config(schema: &serde_json::Value) -> bool {
    schema.get("type").and_then(serde_json::Value::as_str) == Some("object")
        && schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false))
        && schema.get("properties").and_then(serde_json::Value::as_object).is_none_or(|p| p.is_empty())
        && schema.get("patternProperties").is_none()
}

/// A config error, saying which of the config came from `--set` rather than the file.
fn with_overrides(message: String, op: &JobOp) -> String {
    if op.overrides.is_empty() {
        return message;
    }
    format!("{message} (the config includes --set {})", op.overrides.join(", --set "))
}

/// The longest input scope; every other must be a prefix of it.
fn op_scope(
    op: &JobOp,
    scopes: &[(Vec<DynamicRef>, String)],
    planned: &[PlannedOp],
) -> Result<Vec<DynamicRef>, String> {
    let mut longest = 0;
    for (i, (scope, _)) in scopes.iter().enumerate() {
        if scope.len() > scopes[longest].0.len() {
            longest = i;
        }
    }
    for (i, (scope, _)) in scopes.iter().enumerate() {
        if !scopes[longest].0.starts_with(scope) {
            // Name the first level where the two differ, in input order.
            let (first, second) = if i < longest { (scope, &scopes[longest].0) } else { (&scopes[longest].0, scope) };
            let diverge = first.iter().zip(second).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!(
                "op '{}' cannot be downstream of more than one dynamic output. It is downstream of both \"{}\" and \"{}\"",
                op.name,
                dynamic_name(planned, &first[diverge]),
                dynamic_name(planned, &second[diverge]),
            ));
        }
    }
    Ok(scopes.get(longest).map(|(scope, _)| scope.clone()).unwrap_or_default())
}

fn dynamic_name(planned: &[PlannedOp], level: &DynamicRef) -> String {
    format!("{}:{}", planned[level.op].name, level.output)
}

fn check_grants(
    file: &Path,
    text: &str,
    op: &JobOp,
    protected: &[(PathBuf, &Protected)],
) -> Result<Vec<HeldGrant>, JobError> {
    let mut grants: Vec<HeldGrant> = Vec::with_capacity(op.grants.len());
    let mut guests: HashSet<&str> = HashSet::with_capacity(op.grants.len());
    for (i, grant) in op.grants.iter().enumerate() {
        let JobGrant { host, guest, access, span } = grant;
        let err = |field: &str, message: String| {
            JobError::op(file, &op.name, Some(&format!("grants[{i}].{field}")), message).at(text, span.clone())
        };
        let canonical =
            host.canonicalize().map_err(|e| err("host", format!("{} cannot be granted: {e}", host.display())))?;
        if !canonical.is_dir() {
            return Err(err("host", format!("{} is not a directory", host.display())));
        }
        // Both ways: a grant holding the folder, or a folder inside it (`.sandmap/running`,
        // where a live run's lock is). Compared canonically, so a symlink does not hide either.
        for (folder, kind) in protected {
            let relation = if folder.starts_with(&canonical) {
                "contains"
            } else if canonical.starts_with(folder) {
                "is inside"
            } else {
                continue;
            };
            let (what, how) = kind.describe();
            return Err(err(
                "host",
                format!(
                    "{} {relation} sandmap's own data (the {what} {}); an op must not see it. \
                     Keep the {what} elsewhere with {how}",
                    host.display(),
                    folder.display()
                ),
            ));
        }
        if !guests.insert(guest.as_str()) {
            return Err(err("guest", format!("\"{guest}\" is granted twice")));
        }
        // Opened once, now; the sandbox gets this handle, never the path again.
        let handle = cap_std::fs::Dir::open_ambient_dir(&canonical, cap_std::ambient_authority())
            .map_err(|e| err("host", format!("{} cannot be opened: {e}", host.display())))?;
        grants.push(HeldGrant {
            grant: Grant { host: canonical, guest: guest.clone(), access: *access },
            handle: Arc::new(handle),
        });
    }
    Ok(grants)
}

/// `path` with every symlink resolved; for a folder that does not exist yet (a run store not
/// yet created), its nearest existing ancestor resolved and the rest appended.
fn canonical_or_nearest(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut current = path;
    loop {
        if let Ok(canonical) = current.canonicalize() {
            return rest.iter().rev().fold(canonical, |dir, part| dir.join(part));
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                current = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

/// Ops ordered so that each comes after every op it reads from; ties keep file order (of the
/// ops ready, the first in the file goes next: a heap of them, so that ordering is
/// O(n log n + edges)).
fn topological_order(job: &Job, names: &HashMap<&str, usize>) -> Result<Vec<usize>, JobError> {
    let count = job.ops.len();
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, op) in job.ops.iter().enumerate() {
        for input in &op.inputs {
            let OutputRef { op: name, .. } = input.source.output_ref();
            match names.get(name.as_str()) {
                Some(&u) => {
                    upstream[i].push(u);
                    downstream[u].push(i);
                }
                None => {
                    return Err(JobError::op(
                        &job.file,
                        &op.name,
                        Some(&format!("inputs.{}", input.name)),
                        format!("unknown op \"{name}\""),
                    )
                    .at(&job.text, input.span.clone()));
                }
            }
        }
    }
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut done = vec![false; count];
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(i)) = ready.pop() {
        done[i] = true;
        order.push(i);
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() < count {
        return Err(JobError::job(
            &job.file,
            format!("the ops form a cycle: {}", describe_cycle(job, &upstream, &done)),
        ));
    }
    Ok(order)
}

/// `a -> b -> a`, following upstream links among the ops left over.
fn describe_cycle(job: &Job, upstream: &[Vec<usize>], done: &[bool]) -> String {
    let Some(start) = (0..job.ops.len()).find(|&i| !done[i]) else { return String::new() };
    let mut path = vec![start];
    // Op → its place in `path`, so that closing the cycle is found in constant time.
    let mut on_path: HashMap<usize, usize> = HashMap::from([(start, 0)]);
    let mut current = start;
    while let Some(&next) = upstream[current].iter().find(|&&u| !done[u]) {
        if let Some(&at) = on_path.get(&next) {
            // `path` follows reads upstream; the cycle is told in data-flow order, closed.
            let mut cycle: Vec<&str> = path[at..].iter().rev().map(|&i| job.ops[i].name.as_str()).collect();
            cycle.push(cycle[0]);
            return cycle.join(" -> ");
        }
        on_path.insert(next, path.len());
        path.push(next);
        current = next;
    }
    job.ops[start].name.clone()
}
