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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config;
use super::error::JobError;
use super::file::{InputSource, Job, JobGrant, JobOp, MinSuccess, OutputRef, RetryPolicy};
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
}

impl Binding {
    /// The upstream op.
    pub fn op(&self) -> usize {
        match self {
            Self::Plain { op, .. }
            | Self::Record { op, .. }
            | Self::Collect { op, .. }
            | Self::CollectRecords { op, .. } => *op,
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

/// Validate `job` against `definitions` (one per op, in the job's op order) and plan it.
/// `protected` are folders no grant may contain (sandmap's own compile cache and run store).
pub fn plan(job: &Job, definitions: &[OpDefinition], protected: &[PathBuf]) -> Result<Plan, JobError> {
    let order = topological_order(job)?;
    let mut position = vec![usize::MAX; job.ops.len()];
    for (pos, &index) in order.iter().enumerate() {
        position[index] = pos;
    }
    let mut ops: Vec<PlannedOp> = Vec::with_capacity(order.len());
    for &index in &order {
        let op = &job.ops[index];
        let definition = &definitions[index];
        let context = PlanContext { job, definitions, position: &position, protected };
        ops.push(plan_op(&context, op, index, definition, &ops)?);
    }
    for i in 0..ops.len() {
        let consumers: Vec<usize> = ops[i].inputs.iter().map(|input| input.binding.op()).collect();
        for upstream in consumers {
            ops[upstream].consumed = true;
        }
    }
    Ok(Plan { job: job.name.clone(), ops })
}

/// What every op's planning consults.
struct PlanContext<'a> {
    job: &'a Job,
    definitions: &'a [OpDefinition],
    /// Job-file index → index in the plan.
    position: &'a [usize],
    /// Folders no grant may contain.
    protected: &'a [PathBuf],
}

fn plan_op(
    context: &PlanContext<'_>,
    op: &JobOp,
    job_index: usize,
    definition: &OpDefinition,
    planned: &[PlannedOp],
) -> Result<PlannedOp, JobError> {
    let PlanContext { job, definitions, position, protected } = *context;
    let file = &job.file;
    let err = |field: &str, message: String, span: Option<std::ops::Range<usize>>| {
        let e = JobError::op(file, &op.name, Some(field), message);
        match span {
            Some(span) => e.at(&job.text, span),
            None => e,
        }
    };

    // Every required input connected, every connected input declared.
    for declared in &definition.inputs {
        if declared.required && !op.inputs.iter().any(|i| i.name == declared.name) {
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
    for input in &op.inputs {
        let field = format!("inputs.{}", input.name);
        let at = |message: String| err(&field, message, Some(input.span.clone()));
        if definition.input(&input.name).is_none() {
            let names: Vec<String> = definition.inputs.iter().map(|i| format!("'{}'", i.name)).collect();
            return Err(at(format!(
                "component \"{}\" has no input \"{}\" (its inputs are [{}])",
                op.component,
                input.name,
                names.join(", ")
            )));
        }
        let source = input.source.output_ref();
        let upstream_index = job.ops.iter().position(|o| o.name == source.op).map(|i| position[i]);
        let Some(upstream_pos) = upstream_index else {
            return Err(at(format!("unknown op \"{}\"", source.op)));
        };
        let upstream = &planned[upstream_pos];
        let upstream_def = &definitions[upstream.job_index];
        let Some(output) = upstream_def.output(&source.output) else {
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
        };
        scopes.push((scope, input.name.clone()));
        inputs.push(PlannedInput { name: input.name.clone(), binding });
    }

    let scope = op_scope(op, &scopes, planned).map_err(|m| err("inputs", m, Some(op.component_span.clone())))?;
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

    let mut config = op.config.clone();
    config::apply_defaults(&definition.config_schema, &mut config);
    config::validate(&definition.config_schema, &config).map_err(|m| err("config", m, op.config_span.clone()))?;

    Ok(PlannedOp {
        name: op.name.clone(),
        job_index,
        config: JsonText::from_value(&config),
        inputs,
        grants: check_grants(file, &job.text, op, protected)?,
        limits: op.limits,
        retries: op.retries,
        outputs: Arc::from(definition.outputs.as_slice()),
        scope,
        consumed: false,
    })
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

fn check_grants(file: &Path, text: &str, op: &JobOp, protected: &[PathBuf]) -> Result<Vec<HeldGrant>, JobError> {
    let mut grants: Vec<HeldGrant> = Vec::with_capacity(op.grants.len());
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
        for folder in protected {
            let folder = folder.canonicalize().unwrap_or_else(|_| folder.clone());
            if folder.starts_with(&canonical) {
                return Err(err(
                    "host",
                    format!(
                        "{} contains sandmap's own data ({}); an op must not see it",
                        host.display(),
                        folder.display()
                    ),
                ));
            }
        }
        if grants.iter().any(|g| &g.grant.guest == guest) {
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

/// Ops ordered so that each comes after every op it reads from; ties keep file order.
fn topological_order(job: &Job) -> Result<Vec<usize>, JobError> {
    let index: HashMap<&str, usize> = job.ops.iter().enumerate().map(|(i, o)| (o.name.as_str(), i)).collect();
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); job.ops.len()];
    for (i, op) in job.ops.iter().enumerate() {
        for input in &op.inputs {
            let OutputRef { op: name, .. } = input.source.output_ref();
            match index.get(name.as_str()) {
                Some(&u) => upstream[i].push(u),
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
    let mut done = vec![false; job.ops.len()];
    let mut order = Vec::with_capacity(job.ops.len());
    while order.len() < job.ops.len() {
        let next = (0..job.ops.len()).find(|&i| !done[i] && upstream[i].iter().all(|&u| done[u]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                return Err(JobError::job(
                    &job.file,
                    format!("the ops form a cycle: {}", describe_cycle(job, &upstream, &done)),
                ));
            }
        }
    }
    Ok(order)
}

/// `a -> b -> a`, following upstream links among the ops left over.
fn describe_cycle(job: &Job, upstream: &[Vec<usize>], done: &[bool]) -> String {
    let Some(start) = (0..job.ops.len()).find(|&i| !done[i]) else { return String::new() };
    let mut path = vec![start];
    let mut current = start;
    while let Some(&next) = upstream[current].iter().find(|&&u| !done[u]) {
        if let Some(at) = path.iter().position(|&p| p == next) {
            // `path` follows reads upstream; the cycle is told in data-flow order, closed.
            let mut cycle: Vec<&str> = path[at..].iter().rev().map(|&i| job.ops[i].name.as_str()).collect();
            cycle.push(cycle[0]);
            return cycle.join(" -> ");
        }
        path.push(next);
        current = next;
    }
    job.ops[start].name.clone()
}
