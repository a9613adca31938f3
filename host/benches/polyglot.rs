//! What an op costs in each guest language: component size, wasmtime's cold compile, a warm load
//! from the compile cache, and the per-clone cost of `process_file` in a 200-way map (files listed
//! by the Rust `files_in_directory`), as ratios to Rust. Run it with
//!
//!     cargo bench -p sandmap --bench polyglot
//!
//! The Python and JavaScript components are the ones `cargo test --release` builds (tests/programs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sandmap::executor::{self, ExecOptions, RunStatus};
use sandmap::runtime::{Runtime, RuntimeConfig};
use sandmap_test_programs::polyglot;

const CLONES: usize = 200;

struct Lang {
    name: &'static str,
    /// `process_file` as a job names it, and its bytes.
    component: String,
    bytes: Vec<u8>,
}

fn langs() -> Vec<Lang> {
    let rust = sandmap::plugins::builtin::PLUGINS.iter().find(|b| b.name == "process_file").unwrap().bytes;
    let mut langs = vec![Lang { name: "rust", component: "process_file".into(), bytes: rust.to_vec() }];
    for lang in [polyglot::PYTHON, polyglot::JS] {
        if let Some(reason) = lang.skipped {
            println!("{}: not built ({reason})", lang.name);
            continue;
        }
        let path = format!("{}/process_file.wasm", lang.dir);
        langs.push(Lang { name: lang.name, bytes: std::fs::read(&path).unwrap(), component: path });
    }
    langs
}

fn runtime(cache: Option<&Path>, workers: usize) -> Runtime {
    Runtime::new(&RuntimeConfig {
        max_concurrent: workers,
        cache_dir: cache.map(Path::to_owned),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn map_job(work: &Path, component: &str) -> PathBuf {
    let job = work.join(format!("job-{}.toml", component.len()));
    std::fs::write(
        &job,
        format!(
            "name = \"per_clone\"\n[ops.files]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"data\", guest = \"/data\" }}]\n\
             [ops.work]\ncomponent = \"{component}\"\ninputs = {{ path = {{ map = \"files\" }} }}\ngrants = [{{ host = \"data\", guest = \"/data\" }}]\n"
        ),
    )
    .unwrap();
    job
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..CLONES {
        std::fs::write(data.join(format!("f{i:04}.txt")), "line of text\n".repeat(80)).unwrap();
    }
    let cache = work.path().join("cache");
    println!(
        "| language | component | cold compile | warm load (cache) | per clone, 1 worker | per clone, 2 workers | vs Rust (2 workers) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rust_clone = None;
    for lang in langs() {
        let cold = {
            let rt = runtime(None, 1);
            let start = Instant::now();
            rt.load(&lang.bytes, lang.name).unwrap();
            start.elapsed()
        };
        // Fill the cache, then time a load from it in a fresh runtime (as a second `sandmap run`).
        runtime(Some(&cache), 1).load(&lang.bytes, lang.name).unwrap();
        let warm = {
            let rt = runtime(Some(&cache), 1);
            let start = Instant::now();
            rt.load(&lang.bytes, lang.name).unwrap();
            start.elapsed()
        };
        let job = map_job(work.path(), &lang.component);
        let per_clone = |workers: usize| -> Duration {
            let rt = runtime(Some(&cache), workers);
            let prepared = executor::prepare(&job, &[], &rt).unwrap();
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let report = executor::execute(
                        &prepared.plan,
                        &prepared.ops,
                        &rt,
                        &ExecOptions { max_concurrent: workers, ..Default::default() },
                    );
                    assert_eq!(report.status, RunStatus::Success);
                    start.elapsed() / CLONES as u32
                })
                .min()
                .unwrap()
        };
        let (one, two) = (per_clone(1), per_clone(2));
        let rust = *rust_clone.get_or_insert(two);
        println!(
            "| {} | {:.1} MB | {:.2} s | {:.0} ms | {:.0} µs | {:.0} µs | {:.1}× |",
            lang.name,
            lang.bytes.len() as f64 / 1e6,
            cold.as_secs_f64(),
            warm.as_secs_f64() * 1e3,
            one.as_secs_f64() * 1e6,
            two.as_secs_f64() * 1e6,
            two.as_secs_f64() / rust.as_secs_f64(),
        );
    }
}
