//! `hostile`: a mapped test op that tries to make the host spend what it should not, as its
//! input file's first line says. Emissions go straight through the raw bindings, past the
//! SDK's checks, as an attacker's component would.
//!
//! - `ok` → returns `{said: "ok", mapping_key}`;
//! - `hold_files:N` → opens its input file N times and keeps every handle; fails with the open's
//!   error if one is refused;
//! - `hoard_files:MS[:MARKER]` → opens files until an open is refused, closes one to create
//!   MARKER, then for MS milliseconds keeps trying to open more (taking any descriptor another
//!   clone gives back), and succeeds with how many it held;
//! - `await:MARKER` → waits until MARKER exists, then as `ok`;
//! - `sleep:SECS` (`sleep:max` for `u64::MAX` nanoseconds) → sleeps inside a host call;
//! - `logs:N` → makes N one-byte `log` calls;
//! - `records:N:BYTES` → emits N records of BYTES each on `records`;
//! - `metadata:N:BYTES` → emits `result` with N metadata entries of BYTES each;
//! - `long_key:BYTES[:N]` → emits N (default 1) records whose mapping keys are BYTES long;
//! - `digest_flood:MIB` → hands the host's hasher the same MIB MiB over and over, forever;
//! - `digest_once:MIB` → hands the host's hasher MIB MiB of zeros in one call, returns the digest;
//! - `hasher_hoard` → makes host hashers until one is refused, and keeps them all;
//! - `hold_listings:N:DIR` → opens N listings of DIR and reads an entry of each, keeping them all;
//!   fails with the listing's error if one is refused;
//! - `list_again:N:DIR` → lists DIR N times, each listing dropped before the next.

use sandmap_guest::bindings::sandmap::op::host;
use sandmap_guest::bindings::sandmap::op::types::{
    DynamicOutput as RawRecord, MetadataEntry, MetadataValue, Output as RawOutput,
};
use sandmap_guest::prelude::*;

struct Hostile;

impl Op for Hostile {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("hostile")
            .description("Try to make the host spend what it should not")
            .input("path", "a file holding one command")
            .optional_output("result")
            .optional_dynamic_output("records")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let path: String = ctx.input("path")?;
        let text = std::fs::read_to_string(&path).context(format!("read {path}"))?;
        let command = text.lines().next().unwrap_or("").trim().to_owned();
        let words: Vec<&str> = command.split(':').collect();
        let verb = words[0];
        let number = |at: usize| -> Result<u64, OpError> {
            words.get(at).and_then(|a| a.parse().ok()).ok_or_else(|| OpError::new(format!("{verb}: argument {at}?")))
        };
        match verb {
            "ok" => Ok(json!({ "said": "ok", "mapping_key": ctx.mapping_key() })),
            "hold_files" => {
                let n = number(1)?;
                let mut held = Vec::new();
                for i in 1..=n {
                    held.push(std::fs::File::open(&path).context(format!("open #{i} of {path}"))?);
                }
                Ok(json!({ "held": held.len() }))
            }
            "hold_listings" | "list_again" => {
                let n = number(1)?;
                let dir = words.get(2).copied().unwrap_or("/data");
                let mut held = Vec::new();
                for i in 1..=n {
                    let mut listing = std::fs::read_dir(dir).context(format!("listing #{i} of {dir}"))?;
                    listing.next().transpose().context(format!("listing #{i} of {dir}"))?;
                    if verb == "hold_listings" {
                        held.push(listing);
                    }
                }
                Ok(json!({ "listed": n }))
            }
            "await" => {
                let marker = words.get(1).copied().unwrap_or("");
                while !std::path::Path::new(marker).exists() {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Ok(json!({ "said": "ok", "mapping_key": ctx.mapping_key() }))
            }
            "hoard_files" => {
                let ms = number(1)?;
                let mut held = Vec::new();
                while let Ok(file) = std::fs::File::open(&path) {
                    held.push(file);
                }
                if let Some(marker) = words.get(2) {
                    // One handle given back, for the marker's own open.
                    held.pop();
                    std::fs::write(marker, b"hoarded").context(format!("write {marker}"))?;
                }
                // Then grab every descriptor anyone gives back, for MS milliseconds.
                let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
                while std::time::Instant::now() < until {
                    if let Ok(file) = std::fs::File::open(&path) {
                        held.push(file);
                    }
                }
                output(json!({ "held": held.len() }), vec![])
            }
            "sleep" => {
                let nanos = match words.get(1) {
                    Some(&"max") => u64::MAX,
                    _ => number(1)?.saturating_mul(1_000_000_000),
                };
                std::thread::sleep(std::time::Duration::from_nanos(nanos));
                Ok(json!("slept"))
            }
            "logs" => {
                for _ in 0..number(1)? {
                    host::log(sandmap_guest::bindings::sandmap::op::types::LogLevel::Info, "x");
                }
                Ok(json!("logged"))
            }
            "records" => {
                let (n, bytes) = (number(1)?, number(2)? as usize);
                let value = format!("\"{}\"", "v".repeat(bytes.saturating_sub(2)));
                for i in 0..n {
                    record(&format!("k{i}"), &value)?;
                }
                Ok(json!({ "records": n }))
            }
            "metadata" => {
                let (n, bytes) = (number(1)?, number(2)? as usize);
                let entries = (0..n)
                    .map(|i| MetadataEntry { key: format!("m{i}"), value: MetadataValue::Text("m".repeat(bytes)) })
                    .collect();
                output(json!("with metadata"), entries)
            }
            "long_key" => {
                let key = "k".repeat(number(1)? as usize);
                for i in 0..number(2).unwrap_or(1) {
                    record(&format!("{key}{i}")[1..], "1")?;
                }
                Ok(json!("emitted"))
            }
            "digest_flood" => {
                let data = vec![7u8; (number(1)? as usize) << 20];
                let mut sha = sandmap_guest::digest::Sha256::new();
                loop {
                    sha.update(&data);
                }
            }
            "digest_once" => {
                let data = vec![0u8; (number(1)? as usize) << 20];
                Ok(json!(sandmap_guest::digest::sha256_hex(&data)))
            }
            "hasher_hoard" => {
                let mut held = Vec::new();
                loop {
                    held.push(sandmap_guest::digest::Sha256::new());
                }
            }
            other => Err(OpError::new(format!("unknown command \"{other}\""))),
        }
    }
}

fn record(key: &str, value: &str) -> Result<(), OpError> {
    host::emit_dynamic(&RawRecord {
        value: value.to_owned(),
        mapping_key: key.to_owned(),
        output_name: "records".into(),
        metadata: vec![],
    })
    .map_err(|e| OpError::new(e.message))
}

/// Emit `result` through the raw bindings (so metadata reaches the host unchecked); the op's
/// own return value is then ignored by the host (`null` is not emitted twice).
fn output(value: Value, metadata: Vec<MetadataEntry>) -> Result<Value, OpError> {
    host::emit_output(&RawOutput { value: value.to_string(), output_name: "result".into(), metadata })
        .map_err(|e| OpError::new(e.message))?;
    Ok(Value::Null)
}

export_op!(Hostile);
