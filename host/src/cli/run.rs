//! `sandmap run` and `sandmap validate`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use std::sync::Arc;

use super::progress::{Progress, ProgressMode};
use super::{EXIT_CANCELLED, EXIT_RUN_FAILED, JobArgs, refuse, render};
use crate::executor::{self, RunObserver, RunStatus};
use crate::runtime::printable;
use crate::session::{Session, SessionError};
use crate::store::RecordedStatus;

/// `sandmap run`.
#[derive(Debug, clap::Args)]
#[command(after_help = LIMITS_HELP)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    report: ReportArgs,
    /// Steps running at once [default: the number of cores]; with `--executor nats://…`, steps
    /// handed to the workers at once [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: Option<u32>,
    #[command(flatten)]
    store: super::runs::StoreArgs,
    #[command(flatten)]
    executor: super::worker::ExecutorArgs,
}

/// How a run shows itself: progress while it runs, the report when it ends.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Print one JSON object on stdout: {run_id, status, steps, outputs}.
    #[arg(long)]
    pub json: bool,
    /// Print only the outputs and failures, and no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Progress on stderr: bars on a terminal, else a status line every 2 s.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// The per-op limits and their defaults, for `--help`.
const LIMITS_HELP: &str = "\
Limits, per op in the job file (`limits = { ... }`), with their defaults:
  memory           256 MiB   linear memory per instance
  timeout          60 s      wall time per attempt
  max_value_bytes  16 MiB    each input and output value
  max_emits        100000    records and outputs per step
  max_fan_out      100000    records per dynamic output per step
  max_output_bytes 64 MiB    all records and outputs of one step (values, metadata, keys)
  max_open_files   256       files and directories open at once (grants not counted)
  max_log_bytes    1 MiB     captured stdout, stderr and log lines (64 bytes more per entry)
  fuel             none      wasm fuel per attempt (turns on fuel metering)
A value's metadata counts against max_value_bytes with it; timeout holds inside host calls (sleeps).
Fixed: mapping keys 255 bytes, 10,000 WASI handles, wasm stack 512 KiB, 100 core instances,
  32 tables, 10 memories, 1,000,000 table elements; values and JSON metadata at most 64 levels
  deep; a definition at most 256 inputs, 256 outputs and 1 MiB, its config schema at most 64
  levels and 1 MiB with its $refs expanded.
Ops see only their grants: no environment, no arguments, no stdin, no network.

Ctrl-C or SIGTERM (or `sandmap cancel RUN`) cancels the run: nothing more starts, running steps
are stopped and recorded `cancelled`, and `sandmap resume RUN` runs the rest. Twice: exit at once.

Exit status: 0 success, 1 the run failed, 2 invalid job or usage, 130 cancelled.";

/// `sandmap validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    job: JobArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.store.dir();
    let session = Session::run(&args.job.source(), args.max_concurrent.map(|n| n as usize), &store_dir);
    execute(session, &args.report, &args.executor)
}

/// Execute a session (a run, re-execution or resumed run) with its progress shown; print the
/// report; the exit status it calls for. A session that could not start is reported here.
pub(super) fn execute(
    session: Result<Session, SessionError>,
    output: &ReportArgs,
    executor: &super::worker::ExecutorArgs,
) -> anyhow::Result<ExitCode> {
    let session = match session {
        Ok(session) => session,
        Err(SessionError::Invalid(error)) => return Ok(invalid(&error)),
        Err(SessionError::Refused(message)) => return Ok(refuse(message)),
        Err(other) => return Err(other.into()),
    };
    for note in &session.notes {
        eprintln!("note: {}", printable(note));
    }
    let progress = Progress::start(session.plan(), output.progress, output.quiet);
    if progress.is_some() {
        // First, so that whatever stops the run leaves its id (and how to finish it) on screen.
        let id = crate::executor::short_run_id(session.run_id());
        let on = match &executor.executor {
            super::worker::ExecutorKind::Local => String::new(),
            super::worker::ExecutorKind::Nats(url) => format!(" --executor {}", crate::nats::redact(url)),
        };
        eprintln!("run {id} of job \"{}\" (if it is stopped: sandmap resume {id}{on})", printable(&session.plan().job));
    }
    let observers: Vec<Arc<dyn RunObserver>> = progress.iter().map(|p| Arc::clone(p) as Arc<dyn RunObserver>).collect();
    super::cancel::on_signals(session.cancel(), session.run_id());
    let finished = match session.execute(&executor.executor(), observers) {
        Ok(finished) => finished,
        Err(error) => {
            if let Some(progress) = progress {
                progress.finish();
            }
            return Ok(refuse(error));
        }
    };
    if let Some(progress) = progress {
        progress.finish();
    }
    for warning in &finished.warnings {
        eprintln!("warning: {}", printable(warning));
    }
    let report = finished.report.with_status(crate::store::RecordedStatus::Ended);
    let mut stdout = std::io::stdout().lock();
    if output.json {
        serde_json::to_writer(&mut stdout, &render::json_report(&report)).context("cannot write the report")?;
        writeln!(stdout).context("cannot write the report")?;
    } else {
        render::human_report(&mut stdout, &report, output.quiet).context("cannot write the report")?;
    }
    Ok(match report.status {
        RecordedStatus::Ended(RunStatus::Success | RunStatus::SuccessWithFailures) => ExitCode::SUCCESS,
        RecordedStatus::Ended(RunStatus::Cancelled) => ExitCode::from(EXIT_CANCELLED),
        _ => ExitCode::from(EXIT_RUN_FAILED),
    })
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let prepared = match prepared(&args.job)? {
        Ok(prepared) => prepared,
        Err(code) => return Ok(code),
    };
    let mapped = prepared.plan.ops.iter().filter(|o| !o.scope.is_empty()).count();
    println!(
        "{}: job \"{}\" is valid: {} ops ({} mapped)",
        args.job.job.display(),
        prepared.plan.job,
        prepared.plan.ops.len(),
        mapped
    );
    Ok(ExitCode::SUCCESS)
}

/// The job prepared as `run` would (components loaded, plan checked, the run store protected),
/// or the exit status of having reported why it is invalid.
pub(super) fn prepared(job: &JobArgs) -> anyhow::Result<Result<executor::PreparedJob, ExitCode>> {
    match crate::session::prepare(&job.source(), None, &crate::store::locate(None)) {
        Ok((_runtime, prepared, _)) => Ok(Ok(prepared)),
        Err(SessionError::Invalid(error)) => Ok(Err(invalid(&error))),
        Err(other) => Err(other.into()),
    }
}

/// Report an invalid job on stderr; exit status 2.
pub(super) fn invalid(error: &crate::job::JobError) -> ExitCode {
    refuse(error)
}
