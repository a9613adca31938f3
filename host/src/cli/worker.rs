//! `sandmap worker URL`, and the `--executor` option of the commands that run jobs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::nats::NatsOptions;
use crate::nats::worker::{WorkerOptions, run};
use crate::session::Executor;

/// Where a run's steps run.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    /// `local` (this process), or `nats://[USER:PASS@]HOST[:PORT]` to run the steps on
    /// `sandmap worker`s through that NATS JetStream server.
    #[arg(long, value_name = "EXECUTOR", env = "SANDMAP_EXECUTOR", default_value = "local", value_parser = parse_executor)]
    pub executor: ExecutorKind,
    /// A NATS credentials file (JWT and nkey seed) for `--executor nats://…`.
    #[arg(long, value_name = "FILE", env = "SANDMAP_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
}

/// What `--executor` names.
#[derive(Debug, Clone)]
pub enum ExecutorKind {
    /// This process.
    Local,
    /// A NATS server URL.
    Nats(String),
}

fn parse_executor(text: &str) -> Result<ExecutorKind, String> {
    if text == "local" {
        return Ok(ExecutorKind::Local);
    }
    if is_nats_url(text) {
        return Ok(ExecutorKind::Nats(text.to_owned()));
    }
    Err(format!("{text:?} is not an executor: use `local` or a NATS server URL such as nats://127.0.0.1:4222"))
}

fn is_nats_url(text: &str) -> bool {
    text.split(',')
        .all(|one| ["nats://", "tls://"].iter().any(|scheme| one.starts_with(scheme) && one.len() > scheme.len()))
}

impl ExecutorArgs {
    /// The session's executor.
    pub fn executor(&self) -> Executor {
        match &self.executor {
            ExecutorKind::Local => Executor::Local,
            ExecutorKind::Nats(url) => Executor::Nats(NatsOptions {
                url: url.clone(),
                creds: self.nats_creds.clone(),
                name: format!("sandmap coordinator {}", std::process::id()),
            }),
        }
    }
}

/// `sandmap worker`.
#[derive(Debug, clap::Args)]
#[command(after_help = WORKER_HELP)]
pub struct WorkerArgs {
    /// The NATS JetStream server: `nats://[USER:PASS@]HOST[:PORT]`.
    #[arg(value_name = "URL", value_parser = parse_url)]
    url: String,
    /// Steps run at once [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent: Option<u32>,
    /// This worker's name, as runs report it [default: HOSTNAME-PID].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Grants under HOST_PATH (as the coordinator sees it) are found under LOCAL_PATH here.
    /// Repeatable.
    #[arg(long, value_name = "HOST_PATH=LOCAL_PATH", value_parser = parse_mount)]
    mount: Vec<(PathBuf, PathBuf)>,
    /// Accept grants only inside DIR (and the --mount targets). Repeatable. Without it and
    /// without --mount, a task may grant any folder this user can open.
    #[arg(long = "allow-dir", value_name = "DIR")]
    allow_dir: Vec<PathBuf>,
    /// A NATS credentials file (JWT and nkey seed).
    #[arg(long, value_name = "FILE", env = "SANDMAP_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// Print no line per step.
    #[arg(long, short)]
    quiet: bool,
}

const WORKER_HELP: &str = "\
A worker pulls steps from the server's SANDMAP_TASKS stream and runs each in a fresh sandbox,
with the limits of its op, exactly as `sandmap run` does locally. It prints one line per step.
Every grant's folder must be visible here: at the same absolute path, or mapped with --mount.
Ctrl-C or SIGTERM: it takes no more steps and finishes the ones running; a second one hands
them back to the server, which gives them to another worker.";

fn parse_url(text: &str) -> Result<String, String> {
    if is_nats_url(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a NATS server URL: use nats://HOST[:PORT] (or tls://…)"))
    }
}

fn parse_mount(text: &str) -> Result<(PathBuf, PathBuf), String> {
    let (from, to) = text.split_once('=').ok_or_else(|| format!("{text:?}: use HOST_PATH=LOCAL_PATH"))?;
    let (from, to) = (PathBuf::from(from), PathBuf::from(to));
    if !from.is_absolute() || !to.is_absolute() {
        return Err(format!("{text:?}: both paths must be absolute"));
    }
    Ok((from, to))
}

/// The default worker name: this machine's host name and the process id.
fn default_name() -> String {
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    format!("{}-{}", if host.is_empty() { "worker" } else { &host }, std::process::id())
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.unwrap_or_else(default_name);
    let options = WorkerOptions {
        nats: NatsOptions { url: args.url, creds: args.nats_creds, name: format!("sandmap worker {name}") },
        name,
        max_concurrent: args
            .max_concurrent
            .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |n| n as usize),
        mounts: args.mount,
        allow: args.allow_dir,
        quiet: args.quiet,
    };
    run(options)?;
    Ok(ExitCode::SUCCESS)
}
