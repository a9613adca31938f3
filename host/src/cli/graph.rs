//! `sandmap graph JOB` and `sandmap completions SHELL`.

use std::process::ExitCode;

use clap::CommandFactory;

use super::{Cli, JobArgs};

/// The drawing format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A Mermaid flowchart (GitHub renders it in Markdown).
    Mermaid,
    /// Graphviz DOT (`| dot -Tsvg`).
    Dot,
}

/// `sandmap graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    format: Format,
}

/// `sandmap completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

pub fn graph(args: GraphArgs) -> anyhow::Result<ExitCode> {
    let prepared = match super::run::prepared(&args.job)? {
        Ok(prepared) => prepared,
        Err(code) => return Ok(code),
    };
    let text = match args.format {
        Format::Mermaid => crate::job::graph::mermaid(&prepared.plan),
        Format::Dot => crate::job::graph::dot(&prepared.plan),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

pub fn completions(args: CompletionsArgs) -> ExitCode {
    use std::io::Write;
    let mut command = Cli::command();
    // Into a buffer first: clap_complete panics on a failed write (a closed pipe, say).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sandmap", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => super::refuse(format!("cannot write the completion script: {error}")),
    }
}
