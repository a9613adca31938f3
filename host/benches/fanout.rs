//! sandmap's benchmark: prints, in one run, side by side and as ratios, what the issue on
//! performance asks for. Run it with
//!
//!     cargo bench -p sandmap --bench fanout                      # sandmap and native only
//!     cargo bench -p sandmap --bench fanout -- --with-dagster    # and Dagster 1.13.29 (from PyPI,
//!                                                                #  into target/bench-venv)
//!     cargo bench -p sandmap --bench fanout -- --only seed,large  # only those sections
//!     cargo bench -p sandmap --bench fanout -- --with-dagster --only dirs --dirs /usr/lib/chromium
//!
//! Sections: (1) the seed job on 1,000 files of 1 KiB, CLI end to end, vs Dagster in-process and
//! multiprocess; (2) the seed job at scale, 1,000 / 10,000 / 100,000 empty files, whole process
//! (time and CPU per clone, peak RSS), and 1 vs 2 workers; (3) host cost per clone on a
//! 10,000-way no-op map + collect, 1 and 2 workers, pooling vs on-demand; (4) per-file work in a
//! WASM clone vs the same Rust natively, and SHA-256 throughput with the host digest; (5) peak
//! RSS, 1,000 vs 100,000 no-op clones; (6) `sandmap run` with a warm and a cold compile cache;
//! (7) Python and JavaScript clones vs Rust; (8) a directory of large files (3 × 256 MiB); (9) with
//! `--dirs`, real folders against Dagster (the summaries must agree).
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
    if let Some(i) = args.iter().position(|a| a == "--child-cli") {
        child_cli(&args[i + 1..]);
        return;
    }
    let with_dagster = args.iter().any(|a| a == "--with-dagster");
    // `--only seed,large`: just those sections (each baseline is measured within its section).
    let only: Option<Vec<&str>> = args.iter().position(|a| a == "--only").map(|i| args[i + 1].split(',').collect());
    let section = |name: &str| only.as_ref().is_none_or(|names| names.contains(&name));
    let work = tempfile::tempdir().unwrap();
    machine();
    let mut table: Vec<Row> = Vec::new();
    let python = if with_dagster { dagster_python(work.path()) } else { None };
    if section("seed") {
        seed_job(work.path(), python.as_deref(), &mut table);
    }
    if section("scale") {
        seed_at_scale(work.path(), &mut table);
    }
    if section("clone") {
        per_clone_cost(work.path(), &mut table);
    }
    if section("native") {
        wasm_vs_native(work.path(), &mut table);
    }
    if section("rss") {
        peak_rss(&mut table);
    }
    if section("cli") {
        cli_start(work.path(), &mut table);
    }
    if section("polyglot") {
        polyglot_clones(work.path(), &mut table);
    }
    if section("large") {
        large_files(work.path(), python.as_deref(), &mut table);
    }
    // `--dirs /usr/lib/chromium,/usr/bin`: the seed job on real folders, against Dagster.
    if let (Some(i), Some(python)) = (args.iter().position(|a| a == "--dirs"), python.as_deref())
        && section("dirs")
    {
        let dirs: Vec<PathBuf> = args[i + 1].split(',').map(PathBuf::from).collect();
        real_directories(work.path(), python, &dirs, &mut table);
    }
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
        "# sandmap benchmark\n\nmachine: {cores} cores, {cpu}; wasmtime 48 (Cranelift), pooling allocator (slots reset by zeroing), compile cache\n"
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
        if let Some(first) = data.first_mut() {
            *first = b'a' + (i % 26) as u8;
        }
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

fn seed_job(work: &Path, python: Option<&Path>, table: &mut Vec<Row>) {
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
    let Some(python) = python else {
        println!("Dagster: skipped (run with -- --with-dagster to install dagster==1.13.29 into target/bench-venv)\n");
        return;
    };
    let (_, data1000, t1000) = &results[1];
    if let Some(d) = dagster(python, data1000, "in_process") {
        println!("Dagster in-process, 1000 files: {}", ms(d));
        row(
            table,
            "seed job, 1,000 files, vs Dagster in-process",
            ms(*t1000),
            ms(d),
            format!("{:.0}× faster", d.as_secs_f64() / t1000.as_secs_f64()),
            "≥ 200×",
        );
    }
    // Dagster's multiprocess executor starts a Python process per step (≈ 2.4 CPU-s each, see
    // shared/anchors.md): 1,000 files would take most of an hour, so both run on 20 files.
    let (_, data20, t20) = &results[0];
    if let Some(d) = dagster(python, data20, "multiprocess") {
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

/// [`run_in_process`] with small components' pool slots reset by the dirty-page scan (an
/// embedder's opt-in, `RuntimeConfig::scan_dirty_pages`), where the host allows it.
fn run_scanning(job: &Path, workers: usize, cache: &Path) -> Duration {
    run_with(job, workers, true, true, cache, None)
}

/// Whether this host lets the opt-in dirty-page scan be used.
fn host_scans_dirty_pages() -> bool {
    Runtime::new(&RuntimeConfig { scan_dirty_pages: true, ..RuntimeConfig::default() }).unwrap().scans_dirty_pages()
}

/// Run in-process; with `store`, every step is recorded into it as it ends (as the CLI does),
/// and the time includes writing what is left at the end.
fn run_recorded(job: &Path, workers: usize, pooling: bool, cache: &Path, store: Option<&Path>) -> Duration {
    run_with(job, workers, pooling, false, cache, store)
}

fn run_with(job: &Path, workers: usize, pooling: bool, scan: bool, cache: &Path, store: Option<&Path>) -> Duration {
    let settings = RuntimeConfig {
        max_concurrent: workers,
        cache_dir: Some(cache.to_owned()),
        pooling,
        fuel: false,
        scan_dirty_pages: scan,
    };
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
    println!("## 3. Host cost per clone: 10,000-way map of a no-op op + collect (in-process, best of 3)\n");
    let cache = work.join("cache");
    let job = fan_job(work, 10_000);
    let n = 10_000.0;
    let best = |workers, pooling| (0..3).map(|_| run_in_process(&job, workers, pooling, &cache)).min().unwrap();
    let pool1 = best(1, true);
    let pool2 = best(2, true);
    let demand1 = best(1, false);
    let demand2 = best(2, false);
    let scanning2 = (0..3).map(|_| run_scanning(&job, 2, &cache)).min().unwrap();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    println!("pooling,   1 worker : {:.1} µs/clone ({:.0} clones/s)", us(pool1), n / pool1.as_secs_f64());
    println!("pooling,   2 workers: {:.1} µs/clone ({:.0} clones/s)", us(pool2), n / pool2.as_secs_f64());
    println!("on-demand, 1 worker : {:.1} µs/clone", us(demand1));
    println!("on-demand, 2 workers: {:.1} µs/clone", us(demand2));
    let how = if host_scans_dirty_pages() {
        "dirty-page scan"
    } else {
        "asked for, but this host zeroes (swap on, or no second pool)"
    };
    println!("pooling,   2 workers, slots reset by {how} (opt-in): {:.1} µs/clone\n", us(scanning2));
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
        "host cost per clone, 2 workers (zeroing a slot, the default, vs the opt-in dirty-page scan)",
        format!("{:.1} µs", us(pool2)),
        format!("{:.1} µs", us(scanning2)),
        format!("{:.2}×", us(pool2) / us(scanning2)),
        "(what the scan would save)",
    );
    row(
        table,
        "no-op fan-out, 2 workers vs 1 (throughput)",
        format!("{:.0}/s", n / pool2.as_secs_f64()),
        format!("{:.0}/s", n / pool1.as_secs_f64()),
        format!("{:.2}×", pool1.as_secs_f64() / pool2.as_secs_f64()),
        "≥ 1.8×",
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
        "## 4. Per-file work, 64 files of 1 MiB: WASM clone vs the same Rust natively (1 worker, sum of step times)\n"
    );
    let data = work.join("big");
    make_files(&data, 64, 1 << 20);
    let mib = 64.0;
    let cache = work.join("cache");
    let variants = [
        ("process_file", "{ host_digest = true }", true, "sha256 (host digest) + line count", "≥ 0.8× native speed"),
        (
            "process_file",
            "{ host_digest = false }",
            true,
            "sha256 (in the guest) + line count",
            "(the host digest's baseline)",
        ),
        ("line_count", "{}", false, "line count only", "≤ 1.5×"),
    ];
    // (WASM, native) per variant, to price the hash alone: with the host digest minus count only.
    let mut times = Vec::new();
    for (i, (op, config, hashes, label, goal)) in variants.into_iter().enumerate() {
        let path = map_job(work, &data, op, config, &format!("per-file-{i}"));
        let settings = RuntimeConfig { max_concurrent: 1, cache_dir: Some(cache.clone()), ..RuntimeConfig::default() };
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
                assert_eq!(report.status, RunStatus::Success);
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
                    let lines = count_byte(&bytes, b'\n');
                    if hashes {
                        use sha2::Digest;
                        std::hint::black_box(hex::encode(sha2::Sha256::digest(&bytes)));
                    }
                    std::hint::black_box(lines);
                }
                start.elapsed()
            })
            .min()
            .unwrap();
        times.push((wasm, native));
        let ratio = wasm.as_secs_f64() / native.as_secs_f64();
        let speed = |d: Duration| mib / d.as_secs_f64();
        println!(
            "{label}: WASM {} ({:.0} MiB/s) vs native {} ({:.0} MiB/s) → {ratio:.2}× the time, {:.2}× native speed",
            ms(wasm),
            speed(wasm),
            ms(native),
            speed(native),
            1.0 / ratio
        );
        let (ours, baseline) = if hashes {
            (format!("{} ({:.0} MiB/s)", ms(wasm), speed(wasm)), format!("{} ({:.0} MiB/s)", ms(native), speed(native)))
        } else {
            (ms(wasm), ms(native))
        };
        let ratio = if hashes { format!("{:.2}× native speed", 1.0 / ratio) } else { format!("{ratio:.2}×") };
        row(table, &format!("{label}, 64 × 1 MiB, WASM vs native"), ours, baseline, ratio, goal);
    }
    // SHA-256 alone: (sha256 + count) − (count), in the clone with the host digest and natively.
    let hash_only = |(with, without): (Duration, Duration)| with.saturating_sub(without).max(Duration::from_micros(1));
    let wasm = hash_only((times[0].0, times[2].0));
    let native = hash_only((times[0].1, times[2].1));
    let speed = |d: Duration| mib / d.as_secs_f64();
    println!(
        "sha256 alone (the line count taken off): in a clone {:.0} MiB/s vs native {:.0} MiB/s → {:.2}× native speed",
        speed(wasm),
        speed(native),
        native.as_secs_f64() / wasm.as_secs_f64()
    );
    row(
        table,
        "sha256 throughput inside a clone (host digest) vs native",
        format!("{:.0} MiB/s", speed(wasm)),
        format!("{:.0} MiB/s", speed(native)),
        format!("{:.2}×", native.as_secs_f64() / wasm.as_secs_f64()),
        "≥ 0.8×",
    );
    println!();
}

/// What one whole `sandmap run` cost, measured by a child of the bench that ran it (so that
/// `getrusage(RUSAGE_CHILDREN)` sees that run alone).
struct CliCost {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
}

/// Run `sandmap run JOB --max-concurrent W` (recorded into its own store) from a fresh child of
/// this bench, and read what it cost.
fn cli_cost(job: &Path, workers: usize, cache: &Path) -> CliCost {
    let store = job.parent().unwrap().join(format!("store-{}", job.file_stem().unwrap().to_string_lossy()));
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child-cli", job.to_str().unwrap(), &workers.to_string(), store.to_str().unwrap()])
        .env("SANDMAP_CACHE_DIR", cache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "child: {text} {}", String::from_utf8_lossy(&out.stderr));
    CliCost { wall: Duration::from_micros(fields[0]), cpu: Duration::from_micros(fields[1]), peak_rss_kib: fields[2] }
}

/// Child mode: run `sandmap run` once, print its wall µs, CPU µs (user + system) and peak RSS (KiB).
fn child_cli(args: &[String]) {
    let (job, workers, store) = (&args[0], &args[1], &args[2]);
    let start = Instant::now();
    let out = Command::new(sandmap_bin())
        .args(["run", job, "--quiet", "--progress", "off", "--max-concurrent", workers, "--store", store])
        .output()
        .unwrap();
    let wall = start.elapsed();
    assert!(out.status.success(), "sandmap run failed: {}", String::from_utf8_lossy(&out.stderr));
    // SAFETY: `getrusage` writes one `rusage` into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    println!("{} {} {}", wall.as_micros(), micros(usage.ru_utime) + micros(usage.ru_stime), usage.ru_maxrss);
}

fn seed_at_scale(work: &Path, table: &mut Vec<Row>) {
    println!(
        "## 2. The seed job at scale: empty files, CLI end to end, recorded, 2 workers (best of 3; 100,000: 1 run)\n"
    );
    let cache = work.join("cache");
    println!("| files | wall | CPU (user+sys) | wall per clone | CPU per clone | peak RSS |");
    println!("|---|---|---|---|---|---|");
    let mut seen = Vec::new();
    for n in [1_000usize, 10_000, 100_000] {
        let data = work.join(format!("empty{n}"));
        make_files(&data, n, 0);
        let job = seed_job_file(work, &data);
        cli_cost(&job, 2, &cache);
        let runs = if n >= 100_000 { 1 } else { 3 };
        let cost = (0..runs).map(|_| cli_cost(&job, 2, &cache)).min_by_key(|c| c.wall).unwrap();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "| {n} | {} | {} | {:.1} µs | {:.1} µs | {} MiB |",
            ms(cost.wall),
            ms(cost.cpu),
            per(cost.wall),
            per(cost.cpu),
            cost.peak_rss_kib / 1024
        );
        seen.push((n, job, cost));
    }
    let per = |i: usize| seen[i].2.wall.as_secs_f64() * 1e6 / seen[i].0 as f64;
    let rss = |i: usize| seen[i].2.peak_rss_kib;
    println!();
    row(
        table,
        "seed job, 100,000 empty files, wall per clone, 2 workers (vs 1,000 files)",
        format!("{:.1} µs", per(2)),
        format!("{:.1} µs", per(0)),
        format!("{:.2}×", per(2) / per(0)),
        "≤ 1.2×, ≤ 50 µs",
    );
    row(
        table,
        "seed job, peak RSS, 100,000 vs 1,000 files",
        format!("{} MiB", rss(2) / 1024),
        format!("{} MiB", rss(0) / 1024),
        format!("{:.2}×", rss(2) as f64 / rss(0) as f64),
        "≤ 2×",
    );
    // Both cores on the real workload: 10,000 files, 1 worker vs 2.
    let job = &seen[1].1;
    let one = (0..3).map(|_| cli_cost(job, 1, &cache).wall).min().unwrap();
    let two = seen[1].2.wall;
    println!(
        "seed job, 10,000 files: 1 worker {} vs 2 workers {} → {:.2}×\n",
        ms(one),
        ms(two),
        one.as_secs_f64() / two.as_secs_f64()
    );
    row(
        table,
        "seed job, 10,000 files, 2 workers vs 1",
        ms(two),
        ms(one),
        format!("{:.2}×", one.as_secs_f64() / two.as_secs_f64()),
        "≥ 1.8×",
    );
}

/// `process_file` in Python and JavaScript vs Rust: a 1,000-way map of 1 KiB files, in-process,
/// 2 workers (best of 3), the op in each language (files listed by the Rust `files_in_directory`).
fn polyglot_clones(work: &Path, table: &mut Vec<Row>) {
    println!("## 7. Python and JavaScript clones vs Rust: process_file over 1,000 files of 1 KiB, 2 workers\n");
    let data = work.join("files1000");
    let cache = work.join("cache");
    let rust = {
        let job = map_job(work, &data, "process_file", "{}", "clones-rust");
        per_clone_in_process(&job, &cache)
    };
    println!("rust: {:.0} µs per clone", rust.as_secs_f64() * 1e6);
    for (lang, goal) in
        [(sandmap_test_programs::polyglot::PYTHON, "≤ 0.4 ms"), (sandmap_test_programs::polyglot::JS, "≤ 0.6 ms")]
    {
        if let Some(reason) = lang.skipped {
            println!("{}: not built ({reason})", lang.name);
            continue;
        }
        let job =
            map_job(work, &data, &format!("{}/process_file.wasm", lang.dir), "{}", &format!("clones-{}", lang.name));
        let t = per_clone_in_process(&job, &cache);
        println!(
            "{}: {:.0} µs per clone ({:.1}× Rust)",
            lang.name,
            t.as_secs_f64() * 1e6,
            t.as_secs_f64() / rust.as_secs_f64()
        );
        row(
            table,
            &format!("{} process_file per clone, 2 workers (vs Rust)", lang.name),
            format!("{:.2} ms", t.as_secs_f64() * 1e3),
            format!("{:.2} ms", rust.as_secs_f64() * 1e3),
            format!("{:.1}×", t.as_secs_f64() / rust.as_secs_f64()),
            goal,
        );
    }
    println!();
}

/// files_in_directory over `data` mapped to `component` (op `work`, with `config`), written as
/// `NAME.toml` in `work`.
fn map_job(work: &Path, data: &Path, component: &str, config: &str, name: &str) -> PathBuf {
    let job = format!(
        "name = \"per_clone\"\n[ops.files]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
         [ops.work]\ncomponent = \"{component}\"\nconfig = {config}\ninputs = {{ path = {{ map = \"files\" }} }}\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n",
        d = data.display()
    );
    let path = work.join(format!("{name}.toml"));
    std::fs::write(&path, job).unwrap();
    path
}

/// Wall time per `work` clone of `job`, in-process with 2 workers, best of 3.
fn per_clone_in_process(job: &Path, cache: &Path) -> Duration {
    let settings = RuntimeConfig { max_concurrent: 2, cache_dir: Some(cache.to_owned()), ..RuntimeConfig::default() };
    let runtime = Runtime::new(&settings).unwrap();
    let prepared = executor::prepare(job, &[PathBuf::from(plugin_dir())], &runtime).unwrap();
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let report = executor::execute(
                &prepared.plan,
                &prepared.ops,
                &runtime,
                &ExecOptions { max_concurrent: 2, ..Default::default() },
            );
            assert_eq!(report.status, RunStatus::Success);
            let clones = report.steps.iter().filter(|s| s.op == "work").count();
            start.elapsed() / clones as u32
        })
        .min()
        .unwrap()
}

/// A directory of 3 files of 256 MiB: the seed job end to end (time, peak RSS), vs Dagster
/// in-process with `--with-dagster`.
fn large_files(work: &Path, python: Option<&Path>, table: &mut Vec<Row>) {
    println!("## 8. Large files: the seed job over 3 files of 256 MiB, CLI end to end, 2 workers (best of 3)\n");
    let data = work.join("large");
    std::fs::create_dir_all(&data).unwrap();
    let mut block: Vec<u8> = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for f in 0..3u8 {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(data.join(format!("large{f}.bin"))).unwrap());
        for i in 0..256u32 {
            block[0] = f;
            block[1] = i as u8;
            file.write_all(&block).unwrap();
        }
    }
    let cache = work.join("cache");
    let job = seed_job_file(work, &data);
    let cost = (0..3).map(|_| cli_cost(&job, 2, &cache)).min_by_key(|c| c.wall).unwrap();
    let gib_s = 0.75 / cost.wall.as_secs_f64();
    println!(
        "sandmap: {} ({gib_s:.2} GiB/s), CPU {}, peak RSS {} MiB",
        ms(cost.wall),
        ms(cost.cpu),
        cost.peak_rss_kib / 1024
    );
    row(
        table,
        "seed job, 3 × 256 MiB files: peak RSS (memory does not grow with file size)",
        format!("{} MiB", cost.peak_rss_kib / 1024),
        "768 MiB of files".into(),
        format!("{:.2}×", cost.peak_rss_kib as f64 / (768.0 * 1024.0)),
        "independent of file size",
    );
    match python.and_then(|python| dagster(python, &data, "in_process")) {
        Some(d) => {
            println!("Dagster in-process: {}\n", ms(d));
            row(
                table,
                "seed job, 3 × 256 MiB files, vs Dagster in-process",
                ms(cost.wall),
                ms(d),
                format!("{:.1}× faster", d.as_secs_f64() / cost.wall.as_secs_f64()),
                "≥ 5×",
            );
        }
        None => println!("Dagster: skipped (run with -- --with-dagster)\n"),
    }
}

/// The seed job on each of `dirs` (regular files directly in it), sandmap against Dagster
/// in-process, whole process each, best of 3; both summaries must be the same.
fn real_directories(work: &Path, python: &Path, dirs: &[PathBuf], table: &mut Vec<Row>) {
    println!("## 9. Real directories: the seed job, CLI end to end, 2 workers, vs Dagster in-process (best of 3)\n");
    println!("| directory | files | MB | sandmap | Dagster | Dagster / sandmap |");
    println!("|---|---|---|---|---|---|");
    let cache = work.join("cache");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/dagster_job.py");
    for dir in dirs {
        let job = seed_job_file(work, dir);
        let store = work.join("store-real");
        let out = Command::new(sandmap_bin())
            .args(["run", job.to_str().unwrap(), "--json", "--progress", "off", "--store", store.to_str().unwrap()])
            .env("SANDMAP_CACHE_DIR", &cache)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours = report["outputs"]["summarize_directory"]["result"].clone();
        let wall = (0..3).map(|_| cli_cost(&job, 2, &cache).wall).min().unwrap();
        let mut dagster_summary = serde_json::Value::Null;
        let theirs = (0..3)
            .map(|_| {
                let start = Instant::now();
                let out = Command::new(python).arg(&script).arg(dir).arg("in_process").output().unwrap();
                let took = start.elapsed();
                let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_owned();
                let line: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
                dagster_summary = line["summary"].clone();
                took
            })
            .min()
            .unwrap();
        assert_eq!(ours, dagster_summary, "sandmap and Dagster disagree on {}", dir.display());
        let megabytes = ours["bytes"].as_u64().unwrap_or(0) as f64 / 1e6;
        let ratio = theirs.as_secs_f64() / wall.as_secs_f64();
        println!(
            "| `{}` | {} | {megabytes:.0} | {} | {} | {ratio:.1}× |",
            dir.display(),
            ours["files"],
            ms(wall),
            ms(theirs)
        );
        row(
            table,
            &format!(
                "seed job on `{}` ({} files, {megabytes:.0} MB), vs Dagster in-process",
                dir.display(),
                ours["files"]
            ),
            ms(wall),
            ms(theirs),
            format!("{ratio:.1}× faster"),
            "≥ 5×",
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
    println!("## 5. Peak RSS of a whole run (no-op map + collect, 2 workers)\n");
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
    println!("## 6. `sandmap run` on a 1-file seed job: whole process wall time (bounds time to first step)\n");
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

/// The guests' line count (`sandmap_guest::bytes::count`), natively: the same source on both
/// sides of the comparison. Copied, not imported: a dev-dependency on the guest SDK would unify
/// its proc-macro features with the host's and compile wasmtime a second time.
fn count_byte(data: &[u8], needle: u8) -> u64 {
    let mut total = 0u64;
    for block in data.chunks(16 * 255) {
        let (vectors, rest) = block.as_chunks::<16>();
        let mut lanes = [0u8; 16];
        for vector in vectors {
            for (lane, &byte) in lanes.iter_mut().zip(vector) {
                *lane += u8::from(byte == needle);
            }
        }
        total += lanes.iter().map(|&n| u64::from(n)).sum::<u64>();
        total += rest.iter().filter(|&&b| b == needle).count() as u64;
    }
    total
}
