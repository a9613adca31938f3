//! `summarize_directory`: the collect-downstream op of the canonical job. Sums the per-file
//! results of `process_file`.

use sandmap_guest::prelude::*;

/// The part of a `process_file` result this op reads.
#[derive(Deserialize)]
struct FileResult {
    bytes: u64,
    lines: u64,
}

struct SummarizeDirectory;

impl Op for SummarizeDirectory {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("summarize_directory")
            .description("Sum the collected per-file results: number of files, bytes and lines")
            .input("results", "the collected list of process_file results")
            .output("result")
            .output_description("{files, bytes, lines}")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let results: Vec<FileResult> = ctx.input("results")?;
        let bytes: u64 = results.iter().map(|r| r.bytes).sum();
        let lines: u64 = results.iter().map(|r| r.lines).sum();
        Ok(json!({ "files": results.len(), "bytes": bytes, "lines": lines }))
    }
}

export_op!(SummarizeDirectory);
