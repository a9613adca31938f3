//! `behave`: a mapped test op that does what its input file says. The file's first line is a
//! command; the host's tests write files of commands and map `behave` over them.
//!
//! `ok` → returns `{path, said: "ok", mapping_key, bytes, lines}`; `count` → how many times
//! this instance has run (1 in a fresh sandbox); `fail:MSG` → op error MSG; `panic` → panics; `trap` →
//! `unreachable`; `loop` → spins forever; `oom` → allocates until stopped; `recurse` → recurses
//! without end; `print:N` → writes N bytes to stdout; `read:PATH` → returns PATH's content;
//! `write:PATH` → writes PATH; `env` → returns its env vars and args; `big:N` → returns a
//! string of N bytes; `connect:ADDR` → opens a TCP connection; `dns:HOST` → looks a name up;
//! `raw_output:TEXT` / `raw_metadata:TEXT` → emit TEXT as a value / JSON metadata through the raw
//! bindings; `with_metadata:JSON` → returns 1 with metadata `m` = JSON (through the SDK);
//! `log:N` → logs N bytes; `ansi` → writes terminal escape sequences; `await:PATH` →
//! waits until PATH exists, then as `ok`; `spin:N` → N million rounds of arithmetic (CPU-bound
//! work of a fixed size, whatever else runs), then as `ok`; `residue:N` → grows its memory by
//! 2 MiB, counts the pages of its whole linear memory an earlier instance marked, marks N pages
//! of the grown part (every other page from an offset its mapping key picks: N disjoint dirty
//! runs, on pages other clones leave alone) and one page of a zero-initialized static, counts
//! again, and returns `{before, after}` (a fresh sandbox: `{0, N + 1}`).
//!
//! A first line `mark:DIR` records the execution (creates `DIR/<mapping key>.<n>`, n counting
//! from 1 across executions) and the second line is the command.

use std::io::Write;

use sandmap_guest::prelude::*;

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Behave;

impl Op for Behave {
    type Config = NoConfig;
    type Output = Value;

    fn definition() -> OpDefinition {
        OpDefinition::new("behave")
            .description("Do what the input file says")
            .input("path", "a file holding one command")
            .output("result")
    }

    fn run(ctx: &mut Context, _config: NoConfig) -> Result<Value, OpError> {
        let path: String = ctx.input("path")?;
        let text = std::fs::read_to_string(&path).context(format!("read {path}"))?;
        let mut lines = text.lines();
        let mut command = lines.next().unwrap_or("").trim().to_owned();
        if let Some(dir) = command.strip_prefix("mark:") {
            mark(dir, ctx.mapping_key().unwrap_or("none"))?;
            command = lines.next().unwrap_or("ok").trim().to_owned();
        }
        let (verb, arg) = command.split_once(':').unwrap_or((command.as_str(), ""));
        if verb == "spin" {
            let rounds: u64 = arg.parse::<u64>().unwrap_or(0).saturating_mul(1_000_000);
            let mut x: u64 = 1;
            for _ in 0..rounds {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            }
        }
        if verb == "await" {
            while !std::path::Path::new(arg).exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        match verb {
            "ok" | "await" | "spin" => Ok(json!({
                "path": path,
                "said": "ok",
                "mapping_key": ctx.mapping_key(),
                "bytes": text.len(),
                "lines": text.matches('\n').count(),
            })),
            // A fresh instance per clone starts with the counter at zero.
            "count" => Ok(json!(CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)),
            "fail" => Err(OpError::new(arg)),
            "panic" => panic!("told to panic by {path}"),
            "trap" => trap(),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => Ok(json!(recurse(std::hint::black_box(1)))),
            "residue" => {
                let pages: usize = arg.parse().map_err(|_| OpError::new("residue:N"))?;
                residue(pages, ctx.mapping_key().unwrap_or(""))
            }
            "print" => {
                let n: usize = arg.parse().map_err(|_| OpError::new("print:N"))?;
                let chunk = vec![b'x'; 4096];
                let mut left = n;
                let mut out = std::io::stdout().lock();
                while left > 0 {
                    let take = left.min(chunk.len());
                    out.write_all(&chunk[..take])?;
                    left -= take;
                }
                Ok(json!({ "printed": n }))
            }
            "read" => Ok(json!(std::fs::read_to_string(arg).context(format!("read {arg}"))?)),
            "write" => {
                std::fs::write(arg, b"written by behave").context(format!("write {arg}"))?;
                Ok(json!("written"))
            }
            "env" => Ok(json!({
                "vars": std::env::vars().collect::<Vec<_>>(),
                "args": std::env::args().collect::<Vec<_>>(),
            })),
            "big" => {
                let n: usize = arg.parse().map_err(|_| OpError::new("big:N"))?;
                Ok(json!("y".repeat(n)))
            }
            "connect" => {
                std::net::TcpStream::connect(arg).context(format!("connect {arg}"))?;
                Ok(json!("connected"))
            }
            "dns" => {
                use std::net::ToSocketAddrs;
                let found: Vec<String> =
                    (arg, 80).to_socket_addrs().context(format!("look up {arg}"))?.map(|a| a.to_string()).collect();
                Ok(json!(found))
            }
            // Hostile emissions straight through the raw bindings, past the SDK's checks.
            "raw_output" => raw_output(arg, vec![]),
            "raw_metadata" => {
                raw_output("1", vec![MetadataEntry { key: "m".into(), value: MetadataValue::Json(arg.to_owned()) }])
            }
            "with_metadata" => {
                let value: Value =
                    serde_json::from_str(arg).map_err(|e| OpError::new(format!("with_metadata: {e}")))?;
                ctx.output(
                    Output::new("result", 1)
                        .metadata("m", sandmap_guest::MetadataValue::Json(value))
                        .metadata("rows", 3),
                )?;
                Ok(Value::Null)
            }
            "log" => {
                let n: usize = arg.parse().map_err(|_| OpError::new("log:N"))?;
                let line = "z".repeat(1000);
                for _ in 0..n / 1000 {
                    ctx.info(&line);
                }
                Ok(json!({ "logged": n }))
            }
            // Output a viewer must show as text: markup, a script URL, raw HTML in Markdown, and
            // terminal escapes, in the log and in metadata.
            "hostile_ui" => {
                let script = "<script>window.__pwned=1</script>";
                println!("{script} \x1b[31mred\x1b[0m \x1b]0;title\x07");
                ctx.info(format!("logged {script}"));
                ctx.output(
                    Output::new("result", json!({ "html": script }))
                        .metadata("link", sandmap_guest::MetadataValue::Url("javascript:window.__pwned=1".into()))
                        .metadata("site", sandmap_guest::MetadataValue::Url("https://example.com/a?b=1".into()))
                        .metadata(
                            "notes",
                            sandmap_guest::MetadataValue::Markdown(
                                "**bold** <img src=x onerror=\"window.__pwned=1\"> [x](javascript:window.__pwned=1)"
                                    .into(),
                            ),
                        )
                        .metadata("text", sandmap_guest::MetadataValue::Text(format!("{script}\x1b[2J"))),
                )?;
                Ok(Value::Null)
            }
            // Says something on both streams, then fails (a retried step's earlier attempts have logs).
            "noisy_fail" => {
                println!("noisy attempt on stdout");
                eprintln!("noisy attempt on stderr");
                Err(OpError::new(arg))
            }
            "ansi" => {
                print!("\x1b[2J\x1b]0;owned\x07");
                Err(OpError::new("\x1b[31mred\x1b[0m"))
            }
            other => Err(OpError::new(format!("unknown command \"{other}\""))),
        }
    }
}

use sandmap_guest::bindings::sandmap::op::host;
use sandmap_guest::bindings::sandmap::op::types::{MetadataEntry, MetadataValue, Output as RawOutput};

fn raw_output(value: &str, metadata: Vec<MetadataEntry>) -> Result<Value, OpError> {
    host::emit_output(&RawOutput { value: value.to_owned(), output_name: "result".into(), metadata })
        .map_err(|e| OpError::new(e.message))?;
    Ok(Value::Null)
}

/// Create `dir/<key>.<n>` for the first n not taken: one file per execution of the clone.
fn mark(dir: &str, key: &str) -> Result<(), OpError> {
    for n in 1.. {
        let path = format!("{dir}/{key}.{n}");
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(OpError::new(format!("mark {path}: {e}"))),
        }
    }
    Ok(())
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 16]);
    recurse(depth + 1) + pad[3]
}

export_op!(Behave);

/// The host page (the unit a pool slot is reset in), as `residue` marks memory.
const HOST_PAGE: usize = 4096;
/// What `residue` grows its memory by: 32 wasm pages, 512 host pages.
const GROWN_WASM_PAGES: usize = 32;

/// Zero-initialized (`.bss`, inside the instance's first memory): `residue` marks one page of it.
static ZEROED: [std::sync::atomic::AtomicU8; 2 * HOST_PAGE] =
    [const { std::sync::atomic::AtomicU8::new(0) }; 2 * HOST_PAGE];

/// See the module doc.
fn residue(pages: usize, key: &str) -> Result<Value, OpError> {
    // Every clone grows at the same point, so the grown part lies where an earlier clone's did.
    let grown = grow(GROWN_WASM_PAGES).ok_or_else(|| OpError::new("residue: memory.grow refused"))?;
    let before = marked_pages();
    // FNV-1a of the key: clones mark different pages, so a mark left behind adds to `after` too.
    let offset =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) % 64;
    let offset = usize::try_from(offset).unwrap_or(0);
    if offset + 2 * pages > GROWN_WASM_PAGES * 65536 / HOST_PAGE {
        return Err(OpError::new("residue: too many pages"));
    }
    for page in 0..pages {
        let at = grown + (offset + 2 * page) * HOST_PAGE;
        for i in 0..MARK_LEN {
            // SAFETY: the grown part is this instance's and no allocator's: nothing else uses it.
            unsafe { std::ptr::write_volatile(std::ptr::with_exposed_provenance_mut::<u8>(at + i), mark_byte(i)) };
        }
    }
    let first = ZEROED.as_ptr().addr().next_multiple_of(HOST_PAGE) - ZEROED.as_ptr().addr();
    for (i, byte) in ZEROED[first..first + MARK_LEN].iter().enumerate() {
        byte.store(mark_byte(i), std::sync::atomic::Ordering::Relaxed);
    }
    Ok(json!({"before": before, "after": marked_pages()}))
}

const MARK_LEN: usize = 16;

/// The mark's bytes are computed, never stored, so that the scan finds no copy of a needle.
fn mark_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(73) ^ 0xC3
}

/// Host pages of the whole linear memory (past page 0) that begin with the mark.
fn marked_pages() -> usize {
    (HOST_PAGE..memory_bytes())
        .step_by(HOST_PAGE)
        .filter(|&addr| {
            (0..MARK_LEN).all(|i| {
                // SAFETY: in wasm every address below `memory.size` is readable; the scan looks at
                // memory it does not own on purpose, like a hostile op looking for residue.
                let byte = unsafe { std::ptr::read_volatile(std::ptr::with_exposed_provenance::<u8>(addr + i)) };
                byte == mark_byte(i)
            })
        })
        .count()
}

/// The size of the linear memory.
#[cfg(target_arch = "wasm32")]
fn memory_bytes() -> usize {
    core::arch::wasm32::memory_size::<0>() * 65536
}

/// Grow the linear memory by `pages` wasm pages; the address where the new part starts.
#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    let previous = core::arch::wasm32::memory_grow::<0>(pages);
    (previous != usize::MAX).then(|| previous * 65536)
}

/// Natively (the workspace's `cargo clippy` builds every member for the host) there is no linear
/// memory to scan; the op only ever runs as a component.
#[cfg(not(target_arch = "wasm32"))]
fn memory_bytes() -> usize {
    0
}

/// Natively there is no linear memory to grow (see [`memory_bytes`]).
#[cfg(not(target_arch = "wasm32"))]
fn grow(_pages: usize) -> Option<usize> {
    None
}
