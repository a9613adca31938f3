//! `sandmap reexecute RUN --from-failure | --step SELECTION…`: run again what failed (or exactly
//! what is selected), taking every other step of the parent as it was: its results, its fan-out
//! keys and their order.

use std::process::ExitCode;

use super::run::{ReportArgs, execute};
use crate::session::{Selection, Session};

/// `sandmap reexecute`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["from_failure", "step"])))]
pub struct ReexecuteArgs {
    /// The run to re-execute (a unique prefix of its id is enough).
    run: String,
    /// Run again the steps that did not succeed (failed, abandoned, cancelled, skipped) and
    /// everything downstream of them.
    #[arg(long)]
    from_failure: bool,
    /// Run again exactly these steps, in Dagster's syntax: `op[key]`, `op[?]` (every key), `op`
    /// (an unmapped op); `+` before or after for one level upstream or downstream (`++` for two…),
    /// `*` for every level. Repeatable.
    #[arg(long, value_name = "SELECTION")]
    step: Vec<String>,
    /// Override a config value for this re-execution, after the parent's own `--set`s (which it
    /// keeps). Steps that run see it; a step that is not selected is taken from the parent as
    /// it was (a note names every op whose config changed). Repeatable.
    #[arg(long = "set", value_name = "OP.config.KEY=VALUE")]
    set: Vec<String>,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    again: AgainArgs,
    #[command(flatten)]
    executor: super::worker::ExecutorArgs,
}

/// What `reexecute` and `resume` take beside the run: how to run it again, and where from.
#[derive(Debug, clap::Args)]
pub(super) struct AgainArgs {
    /// Steps running at once [default: the number of cores]; with `--executor nats://…`, steps
    /// handed to the workers at once [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: Option<u32>,
    /// Search these folders for components first. Repeatable.
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub store: super::runs::StoreArgs,
}

pub fn reexecute(args: ReexecuteArgs) -> anyhow::Result<ExitCode> {
    let selection = if args.from_failure { Selection::FromFailure } else { Selection::Steps(args.step.clone()) };
    let session = Session::reexecute(
        &args.again.store.dir(),
        &args.run,
        &selection,
        &args.set,
        &args.again.plugin_path,
        args.again.max_concurrent.map(|n| n as usize),
    );
    execute(session, &args.report, &args.executor)
}
