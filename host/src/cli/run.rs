//! `sandmap run` and `sandmap validate`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use std::sync::Arc;

use super::progress::{Progress, ProgressMode};
use super::{EXIT_INVALID, EXIT_RUN_FAILED, JobArgs, render};
use crate::executor::{self, ExecOptions, RunObserver, RunStatus};
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{Recorder, RunLock, RunStart, RunStore};

/// `sandmap run`.
#[derive(Debug, clap::Args)]
#[command(after_help = LIMITS_HELP)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    report: ReportArgs,
    /// Steps running at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: Option<u32>,
    #[command(flatten)]
    store: super::runs::StoreArgs,
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

/// How a run is recorded in the store.
pub(super) enum Recording<'a> {
    /// A new run; a re-execution names its parent.
    New { parent: Option<&'a str>, overrides: &'a [String] },
    /// An interrupted run going on: its lock, held by this process, and its store.
    Resumed { store: RunStore, lock: RunLock, parent: Option<String> },
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

Exit status: 0 success, 1 the run failed, 2 invalid job or usage.";

/// `sandmap validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    job: JobArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.store.dir();
    let (runtime, prepared, max_concurrent) = match setup(&args.job, args.max_concurrent, &store_dir)? {
        Ok(ready) => ready,
        Err(code) => return Ok(code),
    };
    let options = ExecOptions { max_concurrent, ..ExecOptions::default() };
    let recording = Recording::New { parent: None, overrides: &args.job.set };
    execute(&runtime, &prepared, options, recording, &store_dir, &args.report)
}

/// What a run needs before it executes: the job parsed once (with its `--set`s), a runtime that
/// meters fuel only when an op sets a fuel limit (it costs every guest instruction), and the job
/// prepared with the run store protected from grants. `Err(code)`: the job was invalid, and
/// was reported.
pub(super) fn setup(
    job_args: &JobArgs,
    max_concurrent: Option<u32>,
    store_dir: &std::path::Path,
) -> anyhow::Result<Result<(Runtime, executor::PreparedJob, usize), ExitCode>> {
    let job = match job_args.load() {
        Ok(job) => job,
        Err(error) => return Ok(Err(invalid(&error))),
    };
    let mut settings = RuntimeConfig { fuel: job.uses_fuel(), ..RuntimeConfig::default() };
    if let Some(n) = max_concurrent {
        settings.max_concurrent = n as usize;
    }
    let runtime = Runtime::new(&settings)?;
    let protected = [store_dir.to_owned()];
    match executor::prepare_parsed(job, &job_args.plugin_path, &runtime, &protected) {
        Ok(prepared) => Ok(Ok((runtime, prepared, settings.max_concurrent))),
        Err(error) => Ok(Err(invalid(&error))),
    }
}

/// Execute a prepared job (a run, re-execution or resumed run) with its steps recorded as they
/// end and its progress shown; print the report; the exit status it calls for.
pub(super) fn execute(
    runtime: &Runtime,
    prepared: &executor::PreparedJob,
    mut options: ExecOptions,
    recording: Recording<'_>,
    store_dir: &std::path::Path,
    output: &ReportArgs,
) -> anyhow::Result<ExitCode> {
    let components = component_digests(prepared);
    let configs: Vec<(String, String)> =
        prepared.plan.ops.iter().map(|op| (op.name.clone(), op.config.as_str().to_owned())).collect();
    // Recorded by its canonical path, so that a re-execution finds it from any folder.
    let job_file = prepared.job.file.canonicalize().unwrap_or_else(|_| prepared.job.file.clone());
    let (recorder, resumed_parent) = match recording {
        Recording::New { parent, overrides } => {
            let start = RunStart {
                run_id: &options.run_id,
                job: &prepared.plan.job,
                job_file: &job_file,
                job_text: &prepared.job.text,
                components: &components,
                configs: &configs,
                parent_run_id: parent,
                overrides,
            };
            // The run happens whatever the store says: a store that cannot record is reported,
            // not fatal.
            match RunStore::open(store_dir).and_then(|store| Recorder::start(store, &start)) {
                Ok(recorder) => (Some(Arc::new(recorder)), None),
                Err(error) => {
                    eprintln!("warning: the run is not recorded: {error}");
                    (None, None)
                }
            }
        }
        Recording::Resumed { store, lock, parent } => {
            (Some(Arc::new(Recorder::resume(store, &options.run_id, lock)?)), Some(parent))
        }
    };
    let progress = Progress::start(&prepared.plan, output.progress, output.quiet);
    let mut observers: Vec<Arc<dyn RunObserver>> = Vec::new();
    if let Some(recorder) = &recorder {
        observers.push(recorder.clone());
    }
    if let Some(progress) = &progress {
        observers.push(progress.clone());
    }
    if !observers.is_empty() {
        options.observer = Some(Arc::new(observers));
    }
    let mut report = executor::execute(&prepared.plan, &prepared.ops, runtime, &options);
    if let Some(progress) = progress {
        progress.finish();
    }
    if let Some(parent) = resumed_parent {
        report.parent_run_id = parent;
    }
    if let Some(recorder) = recorder
        && let Err(error) = recorder.finish(&report)
    {
        eprintln!("warning: the run was not fully recorded: {error}");
    }
    let mut stdout = std::io::stdout().lock();
    if output.json {
        serde_json::to_writer(&mut stdout, &render::json_report(&report)).context("cannot write the report")?;
        writeln!(stdout).context("cannot write the report")?;
    } else {
        render::human_report(&mut stdout, &report, output.quiet).context("cannot write the report")?;
    }
    Ok(match report.status {
        RunStatus::Success | RunStatus::SuccessWithFailures => ExitCode::SUCCESS,
        RunStatus::Failure | RunStatus::Running | RunStatus::Interrupted => ExitCode::from(EXIT_RUN_FAILED),
    })
}

/// Each op's component digest.
pub(super) fn component_digests(prepared: &executor::PreparedJob) -> Vec<(String, String)> {
    prepared.job.ops.iter().zip(&prepared.ops).map(|(op, loaded)| (op.name.clone(), loaded.digest.clone())).collect()
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let job = match args.job.load() {
        Ok(job) => job,
        Err(error) => return Ok(invalid(&error)),
    };
    let runtime = Runtime::new(&RuntimeConfig { fuel: job.uses_fuel(), ..RuntimeConfig::default() })?;
    let store_dir = crate::store::locate(None);
    match executor::prepare_parsed(job, &args.job.plugin_path, &runtime, std::slice::from_ref(&store_dir)) {
        Ok(prepared) => {
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
        Err(error) => Ok(invalid(&error)),
    }
}

/// Report an invalid job on stderr; exit status 2.
pub(super) fn invalid(error: &crate::job::JobError) -> ExitCode {
    eprintln!("error: {}", crate::runtime::printable(&error.to_string()));
    ExitCode::from(EXIT_INVALID)
}
