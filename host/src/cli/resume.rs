//! `sandmap resume RUN`: finish a run whose host process died (killed, crashed, machine lost),
//! from what the store recorded as it went. Every step that ended stands, succeeded or failed;
//! only what had not ended runs.

use std::process::ExitCode;

use super::reexecute::AgainArgs;
use super::run::{ReportArgs, execute};
use crate::session::Session;

/// `sandmap resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The interrupted run (a unique prefix of its id is enough).
    run: String,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    again: AgainArgs,
    #[command(flatten)]
    executor: super::worker::ExecutorArgs,
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let session = Session::resume(
        &args.again.store.dir(),
        &args.run,
        &args.again.plugin_path,
        args.again.max_concurrent.map(|n| n as usize),
    );
    execute(session, &args.report, &args.executor)
}
