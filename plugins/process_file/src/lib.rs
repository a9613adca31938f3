//! `process_file`: the per-file op of the canonical job. Reads the file at the input `path`, in
//! chunks, and returns its size, line count (number of `'\n'`) and SHA-256.

use std::io::Read;

use sha2::{Digest, Sha256};

use sandmap_guest::prelude::*;

/// Bytes read at a time.
const CHUNK: usize = 256 << 10;

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
        let mut file = std::fs::File::open(&path).context(format!("read {path}"))?;
        // In chunks: the op's memory does not grow with the file (a 300 MB file fits the default
        // 256 MiB limit), and each chunk is hashed and counted while it is in cache.
        // Sized to the file when it is smaller: a fresh sandbox per clone pays for every page of
        // the buffer it touches (a 256 KiB buffer for a 1 KiB file cost ~60 µs a clone).
        let size_hint = file.metadata().map_or(CHUNK as u64, |m| m.len().saturating_add(1));
        let mut chunk = vec![0u8; usize::try_from(size_hint).unwrap_or(CHUNK).clamp(1, CHUNK)];
        let (mut hasher, mut bytes, mut lines) = (Sha256::new(), 0u64, 0u64);
        loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context(format!("read {path}")),
            };
            let data = &chunk[..n];
            hasher.update(data);
            bytes += n as u64;
            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        Ok(json!({ "path": path, "bytes": bytes, "lines": lines, "sha256": sha256 }))
    }
}

export_op!(ProcessFile);
