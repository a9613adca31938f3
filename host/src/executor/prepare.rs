//! From a job file to something runnable: parse it, find and load each op's component, and
//! plan it against their definitions. Every failure is a [`JobError`] naming the file, the op
//! and the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::job::{self, Job, JobError, Plan};
use crate::plugins;
use crate::runtime::{LoadedOp, Runtime};

/// A job ready to execute.
pub struct PreparedJob {
    /// The parsed job file.
    pub job: Job,
    /// Its plan.
    pub plan: Plan,
    /// Each op's loaded component, in job-file order.
    pub ops: Vec<Arc<LoadedOp>>,
}

/// Parse, load and plan the job file at `path`.
pub fn prepare(path: &Path, plugin_path: &[PathBuf], runtime: &Runtime) -> Result<PreparedJob, JobError> {
    prepare_protecting(path, plugin_path, runtime, &[])
}

/// [`prepare`], also refusing grants that contain any of `protected` (the run store).
pub fn prepare_protecting(
    path: &Path,
    plugin_path: &[PathBuf],
    runtime: &Runtime,
    protected: &[PathBuf],
) -> Result<PreparedJob, JobError> {
    prepare_parsed(job::parse_file(path)?, plugin_path, runtime, protected)
}

/// [`prepare_protecting`] for a job file already parsed.
pub fn prepare_parsed(
    job: Job,
    plugin_path: &[PathBuf],
    runtime: &Runtime,
    protected: &[PathBuf],
) -> Result<PreparedJob, JobError> {
    if !runtime.meters_fuel()
        && let Some(op) = job.ops.iter().find(|op| op.limits.fuel.is_some())
    {
        return Err(JobError::op(
            &job.file,
            &op.name,
            Some("limits.fuel"),
            "this runtime does not meter fuel (RuntimeConfig::fuel)",
        ));
    }
    // The default is lowered to what fits; a value the file asks for must fit as it is.
    let budget = runtime.open_files_budget();
    if let Some(op) = job.ops.iter().find(|op| {
        op.limits.max_open_files > budget && op.limits.max_open_files != crate::step::Limits::DEFAULT_MAX_OPEN_FILES
    }) {
        return Err(JobError::op(
            &job.file,
            &op.name,
            Some("limits.max_open_files"),
            format!(
                "{} open files per step do not fit this process's open-file limit (RLIMIT_NOFILE) shared \
                 between its concurrent steps: at most {budget}; lower it, or --max-concurrent",
                op.limits.max_open_files
            ),
        ));
    }
    let search = plugins::plugin_path(plugin_path, job.dir());
    let component_error = |op: &crate::job::JobOp, message: String| {
        JobError::op(&job.file, &op.name, Some("component"), message).at(&job.text, op.component_span.clone())
    };
    // Find every op's component, then load each distinct one once, all in parallel (loading is
    // reading, checking and deserializing or compiling: independent per component).
    let mut found = Vec::with_capacity(job.ops.len());
    for op in &job.ops {
        let component =
            plugins::find(&op.component, job.dir(), &search).map_err(|e| component_error(op, e.to_string()))?;
        let digest = crate::runtime::digest(&component.bytes);
        found.push((digest, component));
    }
    let mut distinct: Vec<usize> = Vec::new();
    for (i, (digest, _)) in found.iter().enumerate() {
        if !distinct.iter().any(|&d| found[d].0 == *digest) {
            distinct.push(i);
        }
    }
    let loaded: Vec<(usize, Result<LoadedOp, String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = distinct
            .iter()
            .map(|&i| {
                let (digest, component) = &found[i];
                scope.spawn(move || {
                    let loaded = runtime.load_digested(&component.bytes, digest.clone(), &component.origin.to_string());
                    (i, loaded.map_err(|e| e.to_string()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| (usize::MAX, Err("loading panicked".into())))).collect()
    });
    let mut by_digest: HashMap<String, Arc<LoadedOp>> = HashMap::new();
    for (i, result) in loaded {
        let op = job.ops.get(i).unwrap_or(&job.ops[0]);
        let loaded = result.map_err(|message| component_error(op, message))?;
        by_digest.insert(loaded.digest.clone(), Arc::new(loaded));
    }
    let ops: Vec<Arc<LoadedOp>> = found.iter().filter_map(|(digest, _)| by_digest.get(digest).cloned()).collect();
    let definitions: Vec<_> = ops.iter().map(|op| op.definition.clone()).collect();
    let mut guarded = runtime.protected_dirs();
    guarded.extend_from_slice(protected);
    let plan = job::plan(&job, &definitions, &guarded)?;
    Ok(PreparedJob { job, plan, ops })
}
