//! `sandmap reexecute RUN --from-failure | --step SELECTION…`: run again what failed (or what
//! is selected), reusing the parent run's other results, its fan-out keys and their order.

use std::process::ExitCode;
use std::sync::Arc;

use super::run::{Recording, ReportArgs, component_digests, execute, setup};
use super::{EXIT_INVALID, JobArgs};
use crate::executor::{self, ExecOptions, Reuse, RunStatus};
use crate::job::Plan;
use crate::runtime::printable;
use crate::store::RunStore;

/// `sandmap reexecute`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["from_failure", "step"])))]
pub struct ReexecuteArgs {
    /// The run to re-execute (a unique prefix of its id is enough).
    run: String,
    /// Run again only the failed, abandoned, cancelled and skipped steps.
    #[arg(long)]
    from_failure: bool,
    /// Run again these steps: `op[key]`, `op[?]` (every key), `op` (an unmapped op); a trailing
    /// `*` adds everything downstream. Repeatable.
    #[arg(long, value_name = "SELECTION")]
    step: Vec<String>,
    #[command(flatten)]
    report: ReportArgs,
    #[command(flatten)]
    again: AgainArgs,
}

/// What `reexecute` and `resume` take beside the run: how to run it again, and where from.
#[derive(Debug, clap::Args)]
pub(super) struct AgainArgs {
    /// Steps running at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: Option<u32>,
    /// Search these folders for components first. Repeatable.
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub store: super::runs::StoreArgs,
}

/// Whether `to` is `from` or downstream of it in the plan.
fn downstream(plan: &Plan, from: &str, to: &str) -> bool {
    let Some(start) = plan.ops.iter().position(|o| o.name == from) else { return false };
    let mut reached = vec![false; plan.ops.len()];
    reached[start] = true;
    // Plan order is topological: one pass reaches everything downstream.
    for (i, op) in plan.ops.iter().enumerate() {
        if op.inputs.iter().any(|input| reached[input.binding.op()]) {
            reached[i] = true;
        }
    }
    plan.ops.iter().position(|o| o.name == to).is_some_and(|i| reached[i])
}

pub fn reexecute(args: ReexecuteArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.again.store.dir();
    let store = RunStore::open_existing(&store_dir)?;
    let id = store.resolve(&args.run)?;
    let parent = store.report(&id)?;
    if matches!(parent.status, RunStatus::Running | RunStatus::Interrupted) {
        let what = if parent.status == RunStatus::Running { "is still running" } else { "was interrupted" };
        eprintln!("error: run {id} {what}; `sandmap resume {id}` finishes it before it can be re-executed");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let provenance = store.provenance(&id)?;
    drop(store);
    // The parent's `--set` overrides hold for its re-execution.
    let job_args = JobArgs {
        job: provenance.job_file,
        plugin_path: args.again.plugin_path.clone(),
        set: provenance.overrides.clone(),
    };
    let (runtime, prepared, max_concurrent) = match setup(&job_args, args.again.max_concurrent, &store_dir)? {
        Ok(ready) => ready,
        Err(code) => return Ok(code),
    };
    let reuse = if args.from_failure {
        Reuse::from_failure(&parent)
    } else {
        Reuse::selecting(&parent, &args.step, |from, to| downstream(&prepared.plan, from, to))
    };
    let reuse = match reuse {
        Ok(reuse) => reuse,
        Err(error) => {
            eprintln!("error: {}", printable(&error.to_string()));
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    note_changed_components(&prepared, &provenance.components, &id);
    let options = ExecOptions { max_concurrent, reuse: Some(Arc::new(reuse)), ..ExecOptions::default() };
    let recording = Recording::New { parent: Some(&id), overrides: &provenance.overrides };
    execute(&runtime, &prepared, options, recording, &store_dir, &args.report)
}

/// Say which ops' components changed since run `id` recorded theirs.
pub(super) fn note_changed_components(prepared: &executor::PreparedJob, recorded: &[(String, String)], id: &str) {
    for (op, digest) in component_digests(prepared) {
        if let Some((_, old)) = recorded.iter().find(|(name, _)| *name == op)
            && *old != digest
        {
            eprintln!("note: op \"{op}\"'s component changed since run {id}: sha256 {:.12} → {:.12}", old, digest);
        }
    }
}
