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
    let job = job::parse_file(path)?;
    let search = plugins::plugin_path(plugin_path, job.dir());
    // One load per distinct component, however many ops use it.
    let mut loaded: HashMap<String, Arc<LoadedOp>> = HashMap::new();
    let mut ops = Vec::with_capacity(job.ops.len());
    for op in &job.ops {
        let component_error = |message: String| {
            JobError::op(&job.file, &op.name, Some("component"), message).at(&job.text, op.component_span.clone())
        };
        let found = plugins::find(&op.component, job.dir(), &search).map_err(|e| component_error(e.to_string()))?;
        let digest = crate::runtime::digest(&found.bytes);
        let loaded_op = match loaded.get(&digest) {
            Some(existing) => existing.clone(),
            None => {
                let fresh = Arc::new(
                    runtime
                        .load(&found.bytes, &found.origin.to_string())
                        .map_err(|e| component_error(e.to_string()))?,
                );
                loaded.insert(digest, fresh.clone());
                fresh
            }
        };
        ops.push(loaded_op);
    }
    let definitions: Vec<_> = ops.iter().map(|op| op.definition.clone()).collect();
    let plan = job::plan(&job, &definitions)?;
    Ok(PreparedJob { job, plan, ops })
}
