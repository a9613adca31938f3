//! The `sandmap` command line.

fn main() -> std::process::ExitCode {
    sandmap::cli::main()
}
