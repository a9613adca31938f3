//! Cancelling a run: Ctrl-C or SIGTERM in the process that runs it, and `sandmap cancel RUN`
//! from another (which sends that process SIGTERM).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::executor::Cancel;
use crate::runtime::printable;

/// Cancel the run on the first SIGINT or SIGTERM (saying so, and how to go on); exit at once on
/// the second. Watched on a thread of its own, for the life of the process.
pub fn on_signals(cancel: Cancel, run_id: &str) {
    let run_id = crate::executor::short_run_id(run_id).to_owned();
    let watcher = std::thread::Builder::new().name("sandmap-signals".into()).spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() else { return };
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut interrupt), Ok(mut terminate)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            let mut told = false;
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if told {
                    eprintln!("stopped at once; `sandmap resume {run_id}` finishes the run");
                    std::process::exit(i32::from(super::EXIT_CANCELLED));
                }
                told = true;
                cancel.cancel();
                eprintln!("cancelling run {run_id}: stopping its steps (again to exit at once)");
            }
        });
    });
    if let Err(error) = watcher {
        tracing::warn!("cannot watch for Ctrl-C: {error}");
    }
}

/// `sandmap cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The run (a unique prefix of its id is enough).
    run: String,
    /// How long to wait for it to stop, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    wait: u64,
    #[command(flatten)]
    store: super::runs::StoreArgs,
}

pub fn cancel(args: CancelArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open_store()?;
    let full_id = store.resolve(&args.run)?;
    let id = crate::executor::short_run_id(&full_id);
    let Some(pid) = store.running_pid(&full_id) else {
        let status = store.report(&full_id).map(|r| r.status.as_str()).unwrap_or("unknown");
        return Ok(super::refuse(format!("run {id} is not running (it is {status}); there is nothing to cancel")));
    };
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
        .ok_or_else(|| anyhow::anyhow!("run {id}: its lock file names no process"))?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .map_err(|e| anyhow::anyhow!("cannot signal process {} running run {id}: {e}", pid.as_raw_nonzero()))?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    while store.is_running(&full_id) {
        if Instant::now() >= deadline {
            return Ok(super::refuse(format!(
                "run {id} was told to stop (process {}) but still runs after {} s",
                pid.as_raw_nonzero(),
                args.wait
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = store.report(&full_id).map(|r| r.status.as_str()).unwrap_or("interrupted");
    println!("run {id}: {}", printable(status));
    Ok(ExitCode::SUCCESS)
}
