//! `sandmap runs`, `sandmap show RUN`, `sandmap logs RUN [STEP]`: reading the run store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::render;
use crate::executor::short_run_id;
use crate::runtime::printable;
use crate::store::{self, RecordedStatus, RunFilter, RunStore};

/// Where the store is.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The run store folder [default: $SANDMAP_HOME, else the nearest .sandmap/ up from here].
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store folder these arguments name.
    pub(super) fn dir(&self) -> PathBuf {
        store::locate(self.store.as_deref())
    }

    fn open(&self) -> Result<RunStore, store::StoreError> {
        RunStore::open_existing(&self.dir())
    }

    /// The existing store these arguments name.
    pub(super) fn open_store(&self) -> Result<RunStore, store::StoreError> {
        self.open()
    }
}

/// `sandmap runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only runs of this job.
    #[arg(long)]
    job: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(RecordedStatus::ALL.map(RecordedStatus::as_str)))]
    status: Option<String>,
    /// At most this many runs.
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Print JSON (one array).
    #[arg(long)]
    json: bool,
}

/// `sandmap gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Delete the runs recorded longer ago than this (`30d`, `12h`, `0s` for all).
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    older_than: std::time::Duration,
    /// Keep runs that failed, were cancelled or were interrupted.
    #[arg(long)]
    keep_failed: bool,
    /// Say what would be deleted, and delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `sandmap show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run id (a unique prefix is enough).
    run: String,
    /// Print the run as `sandmap run --json` did.
    #[arg(long)]
    json: bool,
    /// Show one step in full instead: what each input received, each record and plain output
    /// with its value and metadata, its error and where it ran. E.g. `process_file[a_txt]`.
    #[arg(long, value_name = "KEY")]
    step: Option<String>,
}

/// `sandmap logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run id (a unique prefix is enough).
    run: String,
    /// Only this step, e.g. `process_file[a_txt]`.
    step: Option<String>,
}

pub fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let filter = RunFilter { job: args.job, status: args.status, before: None, limit: args.limit };
    let runs = store.runs(&filter)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &runs).context("cannot write the list")?;
        writeln!(out).context("cannot write the list")?;
        return Ok(ExitCode::SUCCESS);
    }
    let write =
        |out: &mut std::io::StdoutLock<'_>, line: String| writeln!(out, "{line}").context("cannot write the list");
    write(
        &mut out,
        format!(
            "{:<12}  {:<20}  {:>10}  {:<21}  {:<24} {:>6} {:>6}",
            "RUN", "STARTED (UTC)", "DURATION", "STATUS", "JOB", "STEPS", "FAILED"
        ),
    )?;
    for run in runs {
        let started = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(run.recorded_at_ms).unwrap_or_default());
        let started = humantime::format_rfc3339_seconds(started).to_string().replace('T', " ").replace('Z', "");
        write(
            &mut out,
            format!(
                "{:<12}  {:<20}  {:>10}  {:<21}  {:<24} {:>6} {:>6}",
                short_run_id(&run.run_id),
                started,
                format_millis(run.duration_ms),
                run.status,
                printable(&run.job),
                run.steps,
                run.failed
            ),
        )?;
        if let Some(parent) = &run.parent_run_id {
            write(&mut out, format!("  ↳ reexecute of {}", short_run_id(parent)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration for a column: `812 ms`, `3.4 s`, `12 min`.
fn format_millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 120_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} min", ms / 60_000.0)
    }
}

pub fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    if let Some(key) = &args.step {
        return show_step(&store, &store.resolve(&args.run)?, key, args.json);
    }
    let report = store.report(&args.run)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &render::json_report(&report)).context("cannot write the run")?;
        writeln!(out).context("cannot write the run")?;
    } else {
        render::human_report(&mut out, &report, false).context("cannot write the run")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `show RUN --step KEY`.
fn show_step(store: &RunStore, run_id: &str, key: &str, json: bool) -> anyhow::Result<ExitCode> {
    let provenance = store.provenance(run_id)?;
    let model = provenance.job_model.as_ref();
    let steps = store.ended_steps(run_id)?;
    let Some(detail) = store::step_detail(&steps, model, key) else {
        let near = steps.iter().map(|s| s.report.key.as_str()).min_by_key(|k| strsim::levenshtein(k, key));
        let hint = near.map(|k| format!(" (did you mean {}?)", printable(k))).unwrap_or_default();
        anyhow::bail!("run {} has no step {}{hint}", short_run_id(run_id), printable(key));
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &detail.to_json()).context("cannot write the step")?;
        writeln!(out).context("cannot write the step")?;
    } else {
        let parent = provenance.parent_run_id.as_deref().filter(|_| detail.reused);
        render::step_detail(&mut out, &detail, model.is_some(), parent).context("cannot write the step")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let report = store.report(&args.run)?;
    if let Some(step) = &args.step
        && report.step(step).is_none()
    {
        anyhow::bail!("run {} has no step {}", short_run_id(&report.run_id), printable(step));
    }
    let mut out = std::io::stdout().lock();
    for step in report.steps.iter().filter(|s| args.step.as_ref().is_none_or(|k| &s.key == k)) {
        for entry in &step.log.entries {
            let source = entry.source.as_str();
            // Every line of an entry gets the entry's time (when its first write came).
            let at = match entry.at_ms {
                0 => String::new(),
                ms => format!(
                    "{} ",
                    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
                ),
            };
            for line in entry.text.lines() {
                writeln!(out, "{at}{} {source}: {}", printable(&step.key), printable(line))
                    .context("cannot write the log")?;
            }
        }
        if step.log.truncated_bytes > 0 {
            writeln!(out, "{} [… {} more bytes cut at max_log_bytes]", printable(&step.key), step.log.truncated_bytes)
                .context("cannot write the log")?;
        }
        // A failed step's error is part of what it left, log lines or not.
        if let Some(error) = &step.error
            && step.status == crate::executor::StepStatus::Failure
        {
            for line in error.lines() {
                writeln!(out, "{} failed: {}", printable(&step.key), printable(line))
                    .context("cannot write the log")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(args: GcArgs) -> anyhow::Result<ExitCode> {
    let mut store = args.store.open()?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let age_ms = i64::try_from(args.older_than.as_millis()).unwrap_or(i64::MAX);
    let policy = store::GcPolicy {
        before_ms: now_ms.saturating_sub(age_ms),
        keep_failed: args.keep_failed,
        dry_run: args.dry_run,
    };
    let done = store.gc(policy)?;
    let kept = if done.kept_as_parents > 0 {
        format!("; kept {} older run(s) as the parent of a run that stays", done.kept_as_parents)
    } else {
        String::new()
    };
    if args.dry_run {
        println!("would delete {} run(s) ({} steps){kept}", done.runs, done.steps);
    } else {
        println!(
            "deleted {} run(s) ({} steps){kept}; the store went from {} to {}",
            done.runs,
            done.steps,
            crate::units::format_bytes(done.bytes_before),
            crate::units::format_bytes(done.bytes_after)
        );
    }
    Ok(ExitCode::SUCCESS)
}
