//! `process_file`: the per-file op of the canonical job. Reads the file at the input `path`
//! and returns its size, line count (number of `'\n'`) and SHA-256.

use sha2::{Digest, Sha256};

use sandmap_guest::prelude::*;

struct ProcessFile;

impl Op for ProcessFile {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("process_file")
            .description("Read one file: its size in bytes, its number of lines and its SHA-256")
            .input("path", "the file's guest path")
            .output("result")
            .output_description("{path, bytes, lines, sha256}")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let path: String = ctx.input("path")?;
        let data = std::fs::read(&path).context(format!("read {path}"))?;
        let lines = data.iter().filter(|&&b| b == b'\n').count();
        let sha256 = hex::encode(Sha256::digest(&data));
        Ok(json!({ "path": path, "bytes": data.len(), "lines": lines, "sha256": sha256 }))
    }
}

export_op!(ProcessFile);
