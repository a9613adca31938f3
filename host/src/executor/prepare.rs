//! From a job file to something runnable: parse it, find and load each op's component, and
//! plan it against their definitions. Every failure is a [`JobError`] naming the file, the op
//! and the field.
//!
//! Loading is per component, not per op: a job may name one component from thousands of ops.
//! Each distinct component name is located once, each distinct file (by canonical path) is read
//! once, each distinct digest is loaded once and its bytes dropped as soon as it is loaded, and
//! every op naming it shares the one [`LoadedOp`] (and so its one definition).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::job::{self, Job, JobError, JobOp, Plan, Protected};
use crate::plugins::{self, Located};
use crate::runtime::{LoadedOp, Runtime};

/// A job ready to execute.
pub struct PreparedJob {
    /// The parsed job file.
    pub job: Job,
    /// Its plan.
    pub plan: Plan,
    /// Each op's loaded component, in job-file order; ops naming the same component share one.
    pub ops: Vec<Arc<LoadedOp>>,
}

/// Parse, load and plan the job file at `path`.
pub fn prepare(path: &Path, plugin_path: &[PathBuf], runtime: &Runtime) -> Result<PreparedJob, JobError> {
    prepare_protecting(path, plugin_path, runtime, &[])
}

/// [`prepare`], also refusing grants that contain or are inside any of `protected` (the run
/// store).
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
    let ops = load_components(&job, plugin_path, runtime)?;
    let definitions: Vec<_> = ops.iter().map(|op| &op.definition).collect();
    let mut guarded: Vec<Protected> = runtime.protected_dirs().into_iter().map(Protected::CompileCache).collect();
    guarded.extend(protected.iter().cloned().map(Protected::RunStore));
    let plan = job::plan(&job, &definitions, &guarded)?;
    Ok(PreparedJob { job, plan, ops })
}

/// Every op's component, loaded once per distinct component.
fn load_components(job: &Job, plugin_path: &[PathBuf], runtime: &Runtime) -> Result<Vec<Arc<LoadedOp>>, JobError> {
    let search = plugins::plugin_path(plugin_path, job.dir());
    let component_error = |op: &JobOp, message: String| {
        JobError::op(&job.file, &op.name, Some("component"), message).at(&job.text, op.component_span.clone())
    };
    // Each distinct name located once; names that resolve to one file are one source.
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_place: HashMap<Located, usize> = HashMap::new();
    let mut sources: Vec<Located> = Vec::new();
    let mut source_of = Vec::with_capacity(job.ops.len());
    for op in &job.ops {
        let source = match by_name.get(op.component.as_str()) {
            Some(&source) => source,
            None => {
                let located = plugins::locate(&op.component, job.dir(), &search)
                    .map_err(|e| component_error(op, e.to_string()))?;
                let source = *by_place.entry(located.clone()).or_insert_with(|| {
                    sources.push(located);
                    sources.len() - 1
                });
                by_name.insert(&op.component, source);
                source
            }
        };
        source_of.push(source);
    }
    let loaded = load_sources(&sources, runtime);
    // Report the first op (in file order) whose component failed.
    let mut ops = Vec::with_capacity(job.ops.len());
    for (op, &source) in job.ops.iter().zip(&source_of) {
        match &loaded[source] {
            Ok(loaded) => ops.push(loaded.clone()),
            Err(message) => return Err(component_error(op, message.clone())),
        }
    }
    Ok(ops)
}

/// What became of one source: its own load, or the digest of another source's.
enum Outcome {
    Loaded(Result<Arc<LoadedOp>, String>),
    SameAs(usize),
}

/// Read, digest and load every source on a few threads (loading is reading, checking and
/// deserializing or compiling: independent per component). A source whose digest another
/// source claimed first is not loaded again; each source's bytes are dropped once it is done.
fn load_sources(sources: &[Located], runtime: &Runtime) -> Vec<Result<Arc<LoadedOp>, String>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(sources.len()).max(1);
    let next = AtomicUsize::new(0);
    let claimed: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(source) = sources.get(i) else { break };
            done.push((i, load_one(source, i, &claimed, runtime)));
        }
        done
    };
    let mut outcomes: Vec<Option<Outcome>> = (0..sources.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        for handle in handles {
            // A worker that panicked leaves its sources without an outcome, reported below.
            for (i, outcome) in handle.join().unwrap_or_default() {
                outcomes[i] = Some(outcome);
            }
        }
    });
    let resolve = |outcome: Option<&Outcome>| match outcome {
        Some(Outcome::Loaded(result)) => result.clone(),
        _ => Err("loading the component failed (a loader thread panicked)".to_owned()),
    };
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Some(Outcome::SameAs(first)) => resolve(outcomes[*first].as_ref()),
            other => resolve(other.as_ref()),
        })
        .collect()
}

/// Read and digest source `i`; load it unless another source with that digest was claimed.
fn load_one(source: &Located, i: usize, claimed: &Mutex<HashMap<String, usize>>, runtime: &Runtime) -> Outcome {
    let found = match source.read() {
        Ok(found) => found,
        Err(e) => return Outcome::Loaded(Err(e.to_string())),
    };
    let digest = found.digest();
    {
        // A poisoned lock only means another loader panicked; the map is still sound.
        let mut claimed = claimed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&first) = claimed.get(&digest) {
            return Outcome::SameAs(first);
        }
        claimed.insert(digest.clone(), i);
    }
    let loaded = runtime.load_digested(&found.bytes, digest, &found.origin.to_string());
    Outcome::Loaded(loaded.map(Arc::new).map_err(|e| e.to_string()))
}
