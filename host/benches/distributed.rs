//! The many-machines benchmark: steps on `sandmap worker`s through a real `nats-server -js` on
//! loopback, side by side with local runs of the same jobs in the same process, as ratios.
//!
//!     cargo bench -p sandmap --bench distributed
//!
//! Sections: (1) per-clone overhead of a no-op op, 1 remote worker vs local; (2) CPU-bound
//! clones (50 ms each) on 1, 2 and 4 workers; (3) the seed job on 1,000 files, local vs 2
//! workers; (4) a worker's first fetch of a component, vs compiling it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../tests/common/nats.rs"]
mod nats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nats::{Server, Worker};

fn main() {
    let Some(server) = Server::start(&[]) else {
        println!("nats-server is not installed: nothing to measure");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "# sandmap many-machines benchmark\n\nmachine: {cores} cores; nats-server on loopback; warm compile cache\n"
    );
    let mut table = Vec::new();
    per_clone(&server, work.path(), &cache, &mut table);
    cpu_bound(&server, work.path(), &cache, &mut table);
    seed_job(&server, work.path(), &cache, &mut table);
    first_fetch(&server, work.path(), &mut table);
    println!("\n## Summary\n");
    println!("| measure | sandmap | baseline | ratio | goal |");
    println!("|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
}

fn sandmap(cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sandmap"));
    command.env("SANDMAP_PLUGIN_PATH", sandmap_test_programs::DIR).env("SANDMAP_CACHE_DIR", cache);
    command
}

/// Wall time of one `sandmap run` of `job` (the whole process), with `args`.
fn time_run(job: &Path, cache: &Path, args: &[&str]) -> Duration {
    let store = job.parent().unwrap().join("bench-store");
    let started = Instant::now();
    let out = sandmap(cache)
        .args(["run", job.to_str().unwrap(), "--quiet", "--store", store.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    elapsed
}

/// The mean duration of `op`'s steps in a local run of `job`, as the run reports them.
fn step_seconds(job: &Path, cache: &Path, op: &str) -> f64 {
    let store = job.parent().unwrap().join("bench-store");
    let out = sandmap(cache)
        .args(["run", job.to_str().unwrap(), "--json", "--max-concurrent", "1", "--store", store.to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let durations: Vec<f64> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == op)
        .map(|s| s["duration_ms"].as_f64().unwrap() / 1e3)
        .collect();
    durations.iter().sum::<f64>() / durations.len() as f64
}

fn best(times: impl Iterator<Item = Duration>) -> Duration {
    times.min().unwrap()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn workers(server: &Server, cache: &Path, n: usize, slots: &str) -> Vec<Worker> {
    (0..n)
        .map(|i| {
            Worker::start(sandmap(cache), &server.url(), &format!("bench{i}"), &["--max-concurrent", slots, "--quiet"])
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn noop_job(dir: &Path, n: u64) -> PathBuf {
    write(
        dir,
        &format!("noop{n}.toml"),
        &format!(
            "name = \"fan\"\n[ops.emit]\ncomponent = \"emit_range\"\nconfig = {{ n = {n} }}\n\
             [ops.each]\ncomponent = \"noop\"\ninputs = {{ x = {{ map = \"emit\" }} }}\n\
             [ops.all]\ncomponent = \"noop\"\ninputs = {{ x = {{ collect = \"each\" }} }}\n"
        ),
    )
}

fn per_clone(server: &Server, work: &Path, cache: &Path, table: &mut Vec<String>) {
    println!("## 1. Per-clone overhead of a no-op op (one step at a time; best of 3; (t(2,000) - t(200)) / 1,800)\n");
    let (small, large) = (noop_job(work, 200), noop_job(work, 2000));
    let local = |job: &Path| best((0..3).map(|_| time_run(job, cache, &["--max-concurrent", "1"])));
    let _pool = workers(server, cache, 1, "1");
    let url = server.url();
    let remote = |job: &Path| best((0..3).map(|_| time_run(job, cache, &["--executor", &url])));
    time_run(&small, cache, &[]);
    let per = |small: Duration, large: Duration| (large.saturating_sub(small)).as_secs_f64() * 1e3 / 1800.0;
    let local_per = per(local(&small), local(&large));
    let remote_per = per(remote(&small), remote(&large));
    println!("local      : {local_per:.3} ms/clone\n1 worker   : {remote_per:.3} ms/clone\n");
    table.push(format!(
        "| no-op clone, 1 remote worker vs local | {remote_per:.2} ms | {local_per:.3} ms | {:.0}× | ≤ 2 ms a remote clone |",
        remote_per / local_per.max(1e-6)
    ));
}

fn spin_job(dir: &Path, n: usize, millions: u64) -> PathBuf {
    let cmds = dir.join("spin");
    std::fs::create_dir_all(&cmds).unwrap();
    for i in 0..n {
        std::fs::write(cmds.join(format!("f{i:03}.txt")), format!("spin:{millions}\n")).unwrap();
    }
    write(
        dir,
        "spin.toml",
        &format!(
            "name = \"spin\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
             [ops.behave]\ncomponent = \"{behave}\"\ninputs = {{ path = {{ map = \"files_in_directory\" }} }}\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n",
            d = cmds.display(),
            behave = sandmap_test_programs::BEHAVE
        ),
    )
}

fn cpu_bound(server: &Server, work: &Path, cache: &Path, table: &mut Vec<String>) {
    let n = 40;
    // Work of a fixed size, sized so that one clone takes about 50 ms here.
    let probe = spin_job(work, 4, 20);
    let per_million = step_seconds(&probe, cache, "behave") / 20.0;
    let millions = ((0.05 / per_million).round() as u64).max(1);
    let job = spin_job(work, n, millions);
    let single = step_seconds(&job, cache, "behave") * 1e3;
    println!(
        "## 2. CPU-bound clones: {n} × {millions}M rounds ({single:.0} ms each), workers of one slot each (best of 2)\n"
    );
    let url = server.url();
    let mut times = Vec::new();
    for count in [1, 2, 4] {
        let pool = workers(server, cache, count, "1");
        let t = best((0..2).map(|_| time_run(&job, cache, &["--executor", &url])));
        drop(pool);
        println!("{count} worker(s): {} ({:.1} clones/s)", ms(t), n as f64 / t.as_secs_f64());
        times.push(t);
    }
    let local = best((0..2).map(|_| time_run(&job, cache, &["--max-concurrent", "2"])));
    println!("local, 2 slots: {}\n", ms(local));
    let speedup = |t: Duration| times[0].as_secs_f64() / t.as_secs_f64();
    table.push(format!(
        "| CPU-bound clones, 2 workers vs 1 | {} | {} | {:.2}× | ≥ 1.8× |",
        ms(times[1]),
        ms(times[0]),
        speedup(times[1])
    ));
    table.push(format!(
        "| CPU-bound clones, 4 workers vs 1 ({} cores) | {} | {} | {:.2}× | bounded by the cores |",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(times[2]),
        ms(times[0]),
        speedup(times[2])
    ));
    table.push(format!(
        "| CPU-bound clones, 2 workers vs local with 2 slots | {} | {} | {:.2}× | ≈ 1× |",
        ms(times[1]),
        ms(local),
        times[1].as_secs_f64() / local.as_secs_f64()
    ));
}

fn seed_job(server: &Server, work: &Path, cache: &Path, table: &mut Vec<String>) {
    println!("## 3. The seed job on 1,000 files of 1 KiB (best of 3)\n");
    let data = work.join("files1000");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..1000 {
        std::fs::write(data.join(format!("f{i:04}.txt")), vec![b'x'; 1024]).unwrap();
    }
    let job = write(
        work,
        "seed.toml",
        &format!(
            "name = \"process_directory\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
             [ops.process_file]\ncomponent = \"process_file\"\ninputs = {{ path = {{ map = \"files_in_directory\" }} }}\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
             [ops.summarize_directory]\ncomponent = \"summarize_directory\"\ninputs = {{ results = {{ collect = \"process_file\" }} }}\n",
            d = data.display()
        ),
    );
    let local = best((0..3).map(|_| time_run(&job, cache, &[])));
    let _pool = workers(server, cache, 2, "1");
    let url = server.url();
    let remote = best((0..3).map(|_| time_run(&job, cache, &["--executor", &url])));
    println!("local    : {}\n2 workers: {}\n", ms(local), ms(remote));
    table.push(format!(
        "| seed job, 1,000 files: 2 workers vs local | {} | {} | {:.2}× | |",
        ms(remote),
        ms(local),
        remote.as_secs_f64() / local.as_secs_f64()
    ));
}

fn first_fetch(server: &Server, work: &Path, table: &mut Vec<String>) {
    println!("## 4. A worker's first fetch of a component (fresh worker and compile cache), vs compiling it\n");
    let mut components = vec![("process_file (Rust)".to_owned(), "process_file".to_owned())];
    for lang in [sandmap_test_programs::polyglot::PYTHON, sandmap_test_programs::polyglot::JS] {
        if lang.skipped.is_none() {
            components.push((format!("process_file ({})", lang.name), format!("{}/process_file.wasm", lang.dir)));
        }
    }
    let data = work.join("one");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), b"a\n").unwrap();
    for (what, component) in components {
        let job = write(
            work,
            "fetch.toml",
            &format!(
                "name = \"fetch\"\n[ops.files_in_directory]\ncomponent = \"files_in_directory\"\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n\
                 [ops.process_file]\ncomponent = \"{component}\"\ninputs = {{ path = {{ map = \"files_in_directory\" }} }}\ngrants = [{{ host = \"{d}\", guest = \"/data\" }}]\n",
                d = data.display()
            ),
        );
        let fresh = tempfile::tempdir().unwrap();
        let mut worker_command = sandmap(fresh.path());
        worker_command.env("SANDMAP_LOG", "sandmap::nats=info");
        let worker = Worker::start(worker_command, &server.url(), "fetcher", &["--max-concurrent", "1"]);
        let coordinator_cache = tempfile::tempdir().unwrap();
        time_run(&job, coordinator_cache.path(), &["--executor", &server.url()]);
        let log = worker.log();
        drop(worker);
        let fetches: Vec<(f64, f64)> = log
            .lines()
            .filter(|l| l.contains("fetched component"))
            .filter_map(|l| Some((field(l, "fetch_ms=")?, field(l, "ready_ms=")?)))
            .collect();
        // The op under test is the larger of the two components fetched.
        let Some(&(fetch, ready)) = fetches.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            println!("{what}: no fetch logged\n{log}");
            continue;
        };
        let compile = ready - fetch;
        println!("{what}: fetch {fetch:.1} ms, compiled and ready {ready:.0} ms");
        table.push(format!(
            "| first fetch of {what} vs compiling it | {fetch:.1} ms | {compile:.0} ms | {:.3}× | ≤ 50 ms per digest |",
            fetch / compile.max(1e-6)
        ));
    }
    println!();
}

fn field(line: &str, name: &str) -> Option<f64> {
    let start = line.find(name)? + name.len();
    line[start..].split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
}
