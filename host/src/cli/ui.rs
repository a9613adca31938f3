//! `sandmap ui`: serve the run viewer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::ui::{UiOptions, serve};

/// `sandmap ui`.
#[derive(Debug, clap::Args)]
pub struct UiArgs {
    /// Where to listen. Loopback by default: anything else lets other machines read every run,
    /// and the viewer has no login.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8737")]
    listen: SocketAddr,
    /// Open the viewer in the desktop's browser.
    #[arg(long)]
    open: bool,
    /// Folders the re-executions started from the page search for components first. Repeatable.
    #[arg(long = "plugin-path", value_name = "DIR")]
    plugin_path: Vec<PathBuf>,
    #[command(flatten)]
    store: super::runs::StoreArgs,
}

pub fn ui(args: UiArgs) -> anyhow::Result<ExitCode> {
    let store_dir = args.store.dir();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, which other machines can reach: anyone who can connect sees every run and can start re-executions",
            args.listen
        );
    }
    let options = UiOptions { store_dir: store_dir.clone(), listen: args.listen, plugin_path: args.plugin_path };
    let open = args.open;
    serve(options, move |addr| {
        let url = format!("http://{addr}/");
        println!("sandmap ui: serving the run store {} at {url}", store_dir.display());
        if open {
            let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
            if let Err(e) = std::process::Command::new(opener).arg(&url).spawn() {
                eprintln!("warning: cannot open a browser ({opener}: {e}); open {url} yourself");
            }
        }
    })
    .context("sandmap ui")?;
    Ok(ExitCode::SUCCESS)
}
