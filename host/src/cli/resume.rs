//! `sandmap resume RUN`: finish a run whose host process died (killed, crashed, machine lost),
//! from what the store recorded as it went. Every step that ended stands, succeeded or failed;
//! only what had not ended runs.

use std::process::ExitCode;
use std::sync::Arc;

use super::reexecute::{AgainArgs, note_changed_components};
use super::run::{Recording, ReportArgs, execute, setup};
use super::{EXIT_INVALID, JobArgs};
use crate::executor::{ExecOptions, Reuse, RunStatus};
use crate::runtime::printable;
use crate::store::RunStore;

/// `sandmap resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The interrupted run (a unique prefix of its id is enough).
    run: String,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    again: AgainArgs,
}

fn refuse(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {}", printable(message));
    Ok(ExitCode::from(EXIT_INVALID))
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.again.store.dir();
    let store = RunStore::open_existing(&store_dir)?;
    let id = store.resolve(&args.run)?;
    let run = store.report(&id)?;
    match run.status {
        RunStatus::Interrupted => {}
        RunStatus::Running => return refuse(&format!("run {id} is still running (its process holds the run lock)")),
        ended => {
            return refuse(&format!(
                "run {id} is not interrupted: it ended ({}); `sandmap reexecute {id} --from-failure` runs its \
                 failed steps again",
                ended.as_str()
            ));
        }
    }
    // Taken before anything else: two `resume`s of one run cannot both go on.
    let lock = store.lock_run(&id)?;
    let provenance = store.provenance(&id)?;
    let ended = store.ended_steps(&id)?;
    let job_args = JobArgs {
        job: provenance.job_file.clone(),
        plugin_path: args.again.plugin_path.clone(),
        set: provenance.overrides,
    };
    let (runtime, prepared, max_concurrent) = match setup(&job_args, args.again.max_concurrent, &store_dir)? {
        Ok(ready) => ready,
        Err(code) => return Ok(code),
    };
    let digest = crate::runtime::digest(prepared.job.text.as_bytes());
    if digest != provenance.job_digest {
        return refuse(&format!(
            "{}: the job file changed since run {id} started (sha256 {:.12} → {:.12}); resume needs the job it \
             started with (or start a new run)",
            provenance.job_file.display(),
            provenance.job_digest,
            digest
        ));
    }
    note_changed_components(&prepared, &provenance.components, &id);
    let reuse = match Reuse::resuming(&id, &ended) {
        Ok(reuse) => reuse,
        Err(error) => return refuse(&error.to_string()),
    };
    let options =
        ExecOptions { run_id: id.clone(), max_concurrent, reuse: Some(Arc::new(reuse)), ..ExecOptions::default() };
    let recording = Recording::Resumed { store, lock, parent: run.parent_run_id };
    execute(&runtime, &prepared, options, recording, &store_dir, &args.report)
}
