//! The `sandmap` command line: `run`, `validate`, `inspect`.
//!
//! Exit status: 0 success, 1 the run failed, 2 invalid job, component or usage.

mod cancel;
mod graph;
mod inspect;
mod progress;
mod reexecute;
pub(crate) mod render;
mod resume;
mod run;
mod runs;
mod ui;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status of a failed run.
pub const EXIT_RUN_FAILED: u8 = 1;
/// Exit status of an invalid job, component or command line.
pub const EXIT_INVALID: u8 = 2;
/// Exit status of a cancelled run (128 + SIGINT, as shells report it).
pub const EXIT_CANCELLED: u8 = 130;

/// Say `error` on stderr (escaped for the terminal: it may quote what an op or a file holds);
/// exit status 2.
pub(crate) fn refuse(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {}", crate::runtime::printable(&error.to_string()));
    ExitCode::from(EXIT_INVALID)
}

/// sandmap runs data-pipeline ops as sandboxed WebAssembly components, with Dagster's dynamic
/// mapping & collect.
#[derive(Debug, Parser)]
#[command(name = "sandmap", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job file.
    Run(run::RunArgs),
    /// Check a job file (components, graph, config, grants) without running it.
    Validate(run::ValidateArgs),
    /// Show a component's op definition.
    Inspect(inspect::InspectArgs),
    /// Draw a job's op graph (map and collect edges marked) as Mermaid or Graphviz DOT.
    Graph(graph::GraphArgs),
    /// Print a shell completion script: `sandmap completions bash > /etc/bash_completion.d/sandmap`.
    Completions(graph::CompletionsArgs),
    /// Re-execute a recorded run: only what failed, or the steps selected, reusing the rest.
    Reexecute(reexecute::ReexecuteArgs),
    /// Finish a run whose process died (killed, crashed): what ended stands, the rest runs.
    Resume(resume::ResumeArgs),
    /// List recorded runs, newest first.
    Runs(runs::RunsArgs),
    /// Show a recorded run: steps, statuses, timings, outputs.
    Show(runs::ShowArgs),
    /// Print the captured logs of a recorded run, or of one of its steps.
    Logs(runs::LogsArgs),
    /// Delete recorded runs older than an age (never a running one, nor the parent of one that
    /// stays), then compact the store.
    Gc(runs::GcArgs),
    /// Cancel a run another process is running: its running steps are stopped and recorded
    /// `cancelled`; `sandmap resume RUN` runs the rest.
    Cancel(cancel::CancelArgs),
    /// Run steps for `run --executor nats://…` on this machine: pull them from a NATS JetStream
    /// server and run each in a fresh sandbox.
    Worker(worker::WorkerArgs),
    /// Serve the run viewer: every run live in the browser, re-execute and resume from the page.
    Ui(ui::UiArgs),
}

/// Options every job command takes.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// A folder to search for NAME.wasm before `SANDMAP_PLUGIN_PATH`, the job's `plugins/`
    /// folder and the built-in ops. Repeatable.
    #[arg(long = "plugin-path", value_name = "DIR")]
    pub plugin_path: Vec<PathBuf>,
    /// Override a config value: `--set files_in_directory.config.path=/other` (nested keys with
    /// more dots; the value is read as TOML, else taken as text). Repeatable.
    #[arg(long = "set", value_name = "OP.config.KEY=VALUE")]
    pub set: Vec<String>,
}

impl JobArgs {
    /// Where the job comes from, for a session.
    pub fn source(&self) -> crate::session::JobSource {
        crate::session::JobSource {
            file: self.job.clone(),
            plugin_path: self.plugin_path.clone(),
            set: self.set.clone(),
        }
    }

    /// Parse the job file and apply the `--set` overrides.
    pub fn load(&self) -> Result<crate::job::Job, crate::job::JobError> {
        self.source().load()
    }
}

/// Run the command line; the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => run::validate(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::Graph(args) => graph::graph(args),
        Command::Completions(args) => Ok(graph::completions(args)),
        Command::Reexecute(args) => reexecute::reexecute(args),
        Command::Resume(args) => resume::resume(args),
        Command::Runs(args) => runs::runs(args),
        Command::Show(args) => runs::show(args),
        Command::Logs(args) => runs::logs(args),
        Command::Gc(args) => runs::gc(args),
        Command::Worker(args) => worker::worker(args),
        Command::Cancel(args) => cancel::cancel(args),
        Command::Ui(args) => ui::ui(args),
    };
    match result {
        Ok(code) => code,
        // `sandmap show RUN | head`: the reader has what it wanted. Stop quietly, as ripgrep does.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => refuse(format!("{error:#}")),
    }
}

/// Whether `error` comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Diagnostics go to stderr, filtered by `SANDMAP_LOG` (e.g. `SANDMAP_LOG=debug`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDMAP_LOG")
        // The NATS client logs every failed (re)connect as an error of its own; sandmap says what
        // failed itself, once, naming the server.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,async_nats=off"));
    // Colours only on a terminal: a worker's log is often a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
