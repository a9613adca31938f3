//! sandmap's benchmark: prints, in one run, side by side and as ratios, what the issue on
//! performance asks for. Run it with
//!
//!     cargo bench -p sandmap --bench fanout                      # sandmap and native only
//!     cargo bench -p sandmap --bench fanout -- --with-dagster    # and Dagster 1.13.29 (from PyPI,
//!                                                                #  into target/bench-venv)
//!
//! Sections: (1) the seed job on 1,000 files of 1 KiB, CLI end to end, vs Dagster in-process and
//! multiprocess; (2) host cost per clone on a 10,000-way no-op map + collect, 1 and 2 workers,
//! pooling vs on-demand; (3) per-file work in a WASM clone vs the same Rust natively; (4) peak
//! RSS, 1,000 vs 100,000 clones; (5) `sandmap run` wall time with a warm and a cold compile cache.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sandmap::executor::{self, ExecOptions, RunStatus};
use sandmap::runtime::{Runtime, RuntimeConfig};
use sandmap::store::{Recorder, RunStart, RunStore};
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child-rss") {
        let n: u64 = args[i + 1].parse().unwrap();
        child_rss(n);
        return;
    }
    let with_dagster = args.iter().any(|a| a == "--with-dagster");
    let work = tempfile::tempdir().unwrap();
    machine();
    let mut table: Vec<Row> = Vec::new();
    seed_job(work.path(), with_dagster, &mut table);
    per_clone_cost(work.path(), &mut table);
    wasm_vs_native(work.path(), &mut table);
    peak_rss(&mut table);
    cli_start(work.path(), &mut table);
    println!("\n## Summary\n");
    println!("| measure | sandmap | baseline | ratio | goal |");
    println!("|---|---|---|---|---|");
    for row in &table {
        println!("| {} | {} | {} | {} | {} |", row.what, row.ours, row.baseline, row.ratio, row.goal);
    }
}

struct Row {
    what: String,
    ours: String,
    baseline: String,
    ratio: String,
    goal: String,
}

fn row(table: &mut Vec<Row>, what: &str, ours: String, baseline: String, ratio: String, goal: &str) {
    table.push(Row { what: what.into(), ours, baseline, ratio, goal: goal.into() });
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "# sandmap benchmark\n\nmachine: {cores} cores, {cpu}; wasmtime 48 (Cranelift), pooling allocator, compile cache\n"
    );
}

fn sandmap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sandmap")
}

fn plugin_dir() -> &'static str {
    sandmap_test_programs::DIR
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `n` files of `size` bytes (lines of 64 bytes) in `dir`.
fn make_files(dir: &Path, n: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut line = vec![b'x'; 63];
    line.push(b'\n');
    for i in 0..n {
        let mut data: Vec<u8> = line.iter().copied().cycle().take(size).collect();
        data[0] = b'a' + (i % 26) as u8;
        std::fs::write(dir.join(format!("f{i:06}.txt")), data).unwrap();
    }
}

fn seed_job_file(dir: &Path, data: &Path) -> PathBuf {
    let job = format!(
        r#"name = "process_directory"
[ops.files_in_directory]
component = "files_in_directory"
grants = [{{ host = "{d}", guest = "/data" }}]
[ops.process_file]
component = "process_file"
inputs = {{ path = {{ map = "files_in_directory" }} }}
grants = [{{ host = "{d}", guest = "/data" }}]
[ops.summarize_directory]
component = "summarize_directory"
inputs = {{ results = {{ collect = "process_file" }} }}
"#,
        d = data.display()
    );
    let path = dir.join(format!("seed-{}.toml", data.file_name().unwrap().to_string_lossy()));
    std::fs::write(&path, job).unwrap();
    path
}

/// Wall time of one `sandmap run` (the whole process), recorded into a run store of its own
/// beside the job (as every run is), never a `.sandmap/` of the source tree.
fn time_cli(job: &Path, cache: &Path) -> Duration {
    let store = job.parent().unwrap().join("bench-store");
    let start = Instant::now();
    let out = Command::new(sandmap_bin())
        .args(["run", job.to_str().unwrap(), "--quiet", "--store", store.to_str().unwrap()])
        .env("SANDMAP_CACHE_DIR", cache)
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "sandmap run failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

fn seed_job(work: &Path, with_dagster: bool, table: &mut Vec<Row>) {
    println!("## 1. The seed job, end to end (process wall time, median of 5, warm compile cache)\n");
    let cache = work.join("cache");
    let mut results = Vec::new();
    for n in [20usize, 1000] {
        let data = work.join(format!("files{n}"));
        make_files(&data, n, 1024);
        let job = seed_job_file(work, &data);
        time_cli(&job, &cache);
        let t = median((0..5).map(|_| time_cli(&job, &cache)).collect());
        println!("sandmap CLI, {n} files: {}", ms(t));
        results.push((n, data, t));
    }
    let python = if with_dagster { dagster_python(work) } else { None };
    let Some(python) = python else {
        println!("Dagster: skipped (run with -- --with-dagster to install dagster==1.13.29 into target/bench-venv)\n");
        return;
    };
    let (_, data1000, t1000) = &results[1];
    if let Some(d) = dagster(&python, data1000, "in_process") {
        println!("Dagster in-process, 1000 files: {}", ms(d));
        row(
            table,
            "seed job, 1,000 files, vs Dagster in-process",
            ms(*t1000),
            ms(d),
            format!("{:.0}× faster", d.as_secs_f64() / t1000.as_secs_f64()),
            "≥ 100×",
        );
    }
    // Dagster's multiprocess executor starts a Python process per step (≈ 2.4 CPU-s each, see
    // shared/anchors.md): 1,000 files would take most of an hour, so both run on 20 files.
    let (_, data20, t20) = &results[0];
    if let Some(d) = dagster(&python, data20, "multiprocess") {
        println!("Dagster multiprocess (max_concurrent 2), 20 files: {}", ms(d));
        row(
            table,
            "seed job, 20 files, vs Dagster multiprocess",
            ms(*t20),
            ms(d),
            format!("{:.0}× faster", d.as_secs_f64() / t20.as_secs_f64()),
            "≥ 1,000×",
        );
    }
    println!();
}

fn dagster_python(work: &Path) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        println!("installing dagster==1.13.29 into {} ...", venv.display());
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "dagster==1.13.29"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            println!("Dagster: skipped (could not install dagster==1.13.29 from PyPI)");
            return None;
        }
    }
    let _ = work;
    Some(python)
}

fn dagster(python: &Path, data: &Path, executor: &str) -> Option<Duration> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/dagster_job.py");
    let start = Instant::now();
    let out = Command::new(python).arg(script).arg(data).arg(executor).output().ok()?;
    let took = start.elapsed();
    if !out.status.success() {
        println!("Dagster {executor} failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
        return None;
    }
    Some(took)
}

/// A job: emit_range(n) → noop per key → noop over the collected list.
fn fan_job(dir: &Path, n: u64) -> PathBuf {
    let job = format!(
        "name = \"fan\"\n[ops.emit]\ncomponent = \"emit_range\"\nconfig = {{ n = {n} }}\nlimits = {{ max_emits = {n}, max_fan_out = {n} }}\n\
         [ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n\
         [ops.all]\ncomponent = \"noop\"\ninputs = {{ x = {{ collect = \"each\" }} }}\n"
    );
    let path = dir.join(format!("fan{n}.toml"));
    std::fs::write(&path, job).unwrap();
    path
}

fn run_in_process(job: &Path, workers: usize, pooling: bool, cache: &Path) -> Duration {
    run_recorded(job, workers, pooling, cache, None)
}

/// Run in-process; with `store`, every step is recorded into it as it ends (as the CLI does),
/// and the time includes writing what is left at the end.
fn run_recorded(job: &Path, workers: usize, pooling: bool, cache: &Path, store: Option<&Path>) -> Duration {
    let settings = RuntimeConfig { max_concurrent: workers, cache_dir: Some(cache.to_owned()), pooling, fuel: false };
    let runtime = Runtime::new(&settings).unwrap();
    let prepared = executor::prepare(job, &[PathBuf::from(plugin_dir())], &runtime).unwrap();
    let mut options = ExecOptions { max_concurrent: workers, ..Default::default() };
    let components: Vec<(String, String)> = Vec::new();
    let recorder = store.map(|dir| {
        let start = RunStart {
            run_id: &options.run_id,
            job: &prepared.plan.job,
            job_file: job,
            job_text: &prepared.job.text,
            components: &components,
            configs: &[],
            parent_run_id: None,
            overrides: &[],
            selection: None,
            job_model: None,
        };
        Arc::new(Recorder::start(RunStore::open(dir).unwrap(), &start).unwrap())
    });
    let start = Instant::now();
    if let Some(recorder) = &recorder {
        options.observer = Some(recorder.clone());
    }
    let report = executor::execute(&prepared.plan, &prepared.ops, &runtime, &options);
    if let Some(recorder) = &recorder {
        recorder.finish(&report).unwrap();
    }
    let took = start.elapsed();
    assert_eq!(report.status, RunStatus::Success);
    took
}

fn per_clone_cost(work: &Path, table: &mut Vec<Row>) {
    println!("## 2. Host cost per clone: 10,000-way map of a no-op op + collect (in-process, best of 3)\n");
    let cache = work.join("cache");
    let job = fan_job(work, 10_000);
    let n = 10_000.0;
    let best = |workers, pooling| (0..3).map(|_| run_in_process(&job, workers, pooling, &cache)).min().unwrap();
    let pool1 = best(1, true);
    let pool2 = best(2, true);
    let demand1 = best(1, false);
    let demand2 = best(2, false);
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    println!("pooling,   1 worker : {:.1} µs/clone ({:.0} clones/s)", us(pool1), n / pool1.as_secs_f64());
    println!("pooling,   2 workers: {:.1} µs/clone ({:.0} clones/s)", us(pool2), n / pool2.as_secs_f64());
    println!("on-demand, 1 worker : {:.1} µs/clone", us(demand1));
    println!("on-demand, 2 workers: {:.1} µs/clone\n", us(demand2));
    row(
        table,
        "host cost per clone, 2 workers (pooling vs on-demand)",
        format!("{:.1} µs", us(pool2)),
        format!("{:.1} µs", us(demand2)),
        format!("{:.2}×", us(demand2) / us(pool2)),
        "≤ 20 µs",
    );
    row(
        table,
        "2 workers vs 1 (throughput)",
        format!("{:.0}/s", n / pool2.as_secs_f64()),
        format!("{:.0}/s", n / pool1.as_secs_f64()),
        format!("{:.2}×", pool1.as_secs_f64() / pool2.as_secs_f64()),
        "close to 2×",
    );
    let store = work.join("store");
    let recorded = (0..3).map(|_| run_recorded(&job, 2, true, &cache, Some(&store))).min().unwrap();
    println!(
        "pooling,   2 workers, each step recorded as it ends: {:.1} µs/clone (vs {:.1} unrecorded)\n",
        us(recorded),
        us(pool2)
    );
    row(
        table,
        "10k clones recorded into the run store as they end vs not recorded",
        ms(recorded),
        ms(pool2),
        format!("{:.2}×", recorded.as_secs_f64() / pool2.as_secs_f64()),
        "small",
    );
}

fn wasm_vs_native(work: &Path, table: &mut Vec<Row>) {
    println!(
        "## 3. Per-file work, 64 files of 1 MiB: WASM clone vs the same Rust natively (1 worker, sum of step times)\n"
    );
    let data = work.join("big");
    make_files(&data, 64, 1 << 20);
    let cache = work.join("cache");
    for (op, label) in [("process_file", "sha256 + line count"), ("line_count", "line count only")] {
        let job = format!(
            "name = \"per_file\"\n[ops.files]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
             [ops.work]\ncomponent = \"{op}\"\ninputs = {{ path = {{ map = \"files\" }} }}\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n",
            d = data.display()
        );
        let path = work.join(format!("{op}.toml"));
        std::fs::write(&path, job).unwrap();
        let settings = RuntimeConfig { max_concurrent: 1, cache_dir: Some(cache.clone()), pooling: true, fuel: false };
        let runtime = Runtime::new(&settings).unwrap();
        let prepared = executor::prepare(&path, &[PathBuf::from(plugin_dir())], &runtime).unwrap();
        let wasm = (0..3)
            .map(|_| {
                let report = executor::execute(
                    &prepared.plan,
                    &prepared.ops,
                    &runtime,
                    &ExecOptions { max_concurrent: 1, ..Default::default() },
                );
                let ms: f64 = report.steps.iter().filter(|s| s.op == "work").map(|s| s.duration_ms).sum();
                Duration::from_secs_f64(ms / 1000.0)
            })
            .min()
            .unwrap();
        let native = (0..3)
            .map(|_| {
                let start = Instant::now();
                for entry in std::fs::read_dir(&data).unwrap() {
                    let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
                    if op == "process_file" {
                        use sha2::Digest;
                        std::hint::black_box(hex::encode(sha2::Sha256::digest(&bytes)));
                    }
                    std::hint::black_box(lines);
                }
                start.elapsed()
            })
            .min()
            .unwrap();
        let ratio = wasm.as_secs_f64() / native.as_secs_f64();
        println!("{label}: WASM {} vs native {} → {ratio:.2}×", ms(wasm), ms(native));
        row(
            table,
            &format!("{label}, 64 × 1 MiB, WASM vs native"),
            ms(wasm),
            ms(native),
            format!("{ratio:.2}×"),
            "≤ 1.3×",
        );
    }
    println!();
}

/// Child mode: run the fan job with `n` clones in-process and print peak RSS (VmHWM, KiB).
fn child_rss(n: u64) {
    let work = tempfile::tempdir().unwrap();
    let job = fan_job(work.path(), n);
    let cache = std::env::var_os("SANDMAP_CACHE_DIR").map(PathBuf::from).unwrap();
    run_in_process(&job, 2, true, &cache);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    println!("{}", hwm.split_whitespace().nth(1).unwrap());
}

fn peak_rss(table: &mut Vec<Row>) {
    println!("## 4. Peak RSS of a whole run (no-op map + collect, 2 workers)\n");
    let cache = tempfile::tempdir().unwrap();
    let rss = |n: u64| -> u64 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--child-rss", &n.to_string()])
            .env("SANDMAP_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    rss(10);
    let small = rss(1_000);
    let large = rss(100_000);
    let ratio = large as f64 / small as f64;
    println!("1,000 clones: {} MiB; 100,000 clones: {} MiB → {ratio:.2}×\n", small / 1024, large / 1024);
    row(
        table,
        "peak RSS, 100,000 vs 1,000 clones",
        format!("{} MiB", large / 1024),
        format!("{} MiB", small / 1024),
        format!("{ratio:.2}×"),
        "≤ 2×",
    );
}

fn cli_start(work: &Path, table: &mut Vec<Row>) {
    println!("## 5. `sandmap run` on a 1-file seed job: whole process wall time (bounds time to first step)\n");
    let data = work.join("one");
    make_files(&data, 1, 1024);
    let job = seed_job_file(work, &data);
    let warm_cache = work.join("cache");
    time_cli(&job, &warm_cache);
    let warm = median((0..10).map(|_| time_cli(&job, &warm_cache)).collect());
    let cold = median(
        (0..3)
            .map(|i| {
                let fresh = work.join(format!("cold-cache-{i}"));
                time_cli(&job, &fresh)
            })
            .collect(),
    );
    println!("warm compile cache: {} (median of 10); cold cache: {} (median of 3)\n", ms(warm), ms(cold));
    row(
        table,
        "`sandmap run`, warm vs cold compile cache",
        ms(warm),
        ms(cold),
        format!("{:.0}× faster", cold.as_secs_f64() / warm.as_secs_f64()),
        "warm ≤ 30 ms",
    );
}
