//! `sandmap run` and `sandmap validate`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::{EXIT_INVALID, EXIT_RUN_FAILED, JobArgs, render};
use crate::executor::{self, ExecOptions, RunStatus};
use crate::runtime::{Runtime, RuntimeConfig};

/// `sandmap run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Print one JSON object on stdout: {run_id, status, steps, outputs}.
    #[arg(long)]
    json: bool,
    /// Steps running at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: Option<u32>,
    /// Print only the outputs and failures.
    #[arg(long, short)]
    quiet: bool,
}

/// `sandmap validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    job: JobArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut settings = RuntimeConfig::default();
    if let Some(n) = args.max_concurrent {
        settings.max_concurrent = n as usize;
    }
    let runtime = Runtime::new(&settings)?;
    let prepared = match executor::prepare(&args.job.job, &args.job.plugin_path, &runtime) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("error: {}", crate::runtime::printable(&error.to_string()));
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let options = ExecOptions { max_concurrent: settings.max_concurrent };
    let report = executor::execute(&prepared.plan, &prepared.ops, &runtime, &options);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, &render::json_report(&report)).context("cannot write the report")?;
        writeln!(stdout).context("cannot write the report")?;
    } else {
        render::human_report(&mut stdout, &report, args.quiet).context("cannot write the report")?;
    }
    Ok(match report.status {
        RunStatus::Success | RunStatus::SuccessWithFailures => ExitCode::SUCCESS,
        RunStatus::Failure => ExitCode::from(EXIT_RUN_FAILED),
    })
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(&RuntimeConfig::default())?;
    match executor::prepare(&args.job.job, &args.job.plugin_path, &runtime) {
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
        Err(error) => {
            eprintln!("error: {}", crate::runtime::printable(&error.to_string()));
            Ok(ExitCode::from(EXIT_INVALID))
        }
    }
}
