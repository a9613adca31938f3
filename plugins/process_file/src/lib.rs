//! `process_file`: the per-file op of the canonical job. Reads the file at the input `path`, in
//! chunks, and returns its size, line count (number of `'\n'`) and SHA-256. The SHA-256 is the
//! host's (`sandmap:op/digest`, native speed) unless `host_digest = false`, which computes it in
//! the op's own code (the same digest, at wasm speed).
//!
//! The Python and JavaScript builds (`plugins/{python,js}/process_file`) must stay
//! indistinguishable from this one (`tests/conformance.rs`): change them together.

use std::io::Read;

use sha2::{Digest, Sha256};

use sandmap_guest::prelude::*;

/// Bytes read at a time.
const CHUNK: usize = 256 << 10;

/// Config of `process_file`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProcessConfig {
    /// Compute the SHA-256 in the host, at native speed (sandmap:op/digest); false computes it in the op's own code.
    #[serde(default = "default_true")]
    host_digest: bool,
}

fn default_true() -> bool {
    true
}

/// Where the SHA-256 is computed.
enum Hasher {
    Host(sandmap_guest::digest::Sha256),
    Guest(Sha256),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Host(h) => h.update(data),
            Self::Guest(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Host(h) => h.finish(),
            Self::Guest(h) => hex::encode(h.finalize()),
        }
    }
}

struct ProcessFile;

impl Op for ProcessFile {
    type Config = ProcessConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("process_file")
            .description("Read one file: its size in bytes, its number of lines and its SHA-256")
            .input("path", "the file's guest path")
            .output("result")
            .output_description("{path, bytes, lines, sha256}")
    }

    fn run(ctx: &mut Context, config: ProcessConfig) -> Result<Value, OpError> {
        let path: String = ctx.input("path")?;
        let mut file = std::fs::File::open(&path).context(format!("read {path}"))?;
        // In chunks: the op's memory does not grow with the file (a 300 MB file fits the default
        // 256 MiB limit), and each chunk is hashed and counted while it is in cache.
        // Sized to the file when it is smaller: a fresh sandbox per clone pays for every page of
        // the buffer it touches (a 256 KiB buffer for a 1 KiB file cost ~60 µs a clone).
        let size_hint = file.metadata().map_or(CHUNK as u64, |m| m.len().saturating_add(1));
        let mut chunk = vec![0u8; usize::try_from(size_hint).unwrap_or(CHUNK).clamp(1, CHUNK)];
        let mut hasher = if config.host_digest {
            Hasher::Host(sandmap_guest::digest::Sha256::new())
        } else {
            Hasher::Guest(Sha256::new())
        };
        let (mut bytes, mut lines) = (0u64, 0u64);
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
            lines += sandmap_guest::bytes::count(data, b'\n');
        }
        let sha256 = hasher.finish();
        Ok(json!({ "path": path, "bytes": bytes, "lines": lines, "sha256": sha256 }))
    }
}

export_op!(ProcessFile);
