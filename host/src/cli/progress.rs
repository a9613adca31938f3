//! The live progress display of `run`, `reexecute` and `resume`: bars on a terminal (indicatif),
//! a plain status line every few seconds otherwise (CI logs), nothing with `--quiet`.
//!
//! The scheduler only bumps atomic counters and notes which step a worker started when; a
//! display thread of its own reads them and draws, so progress costs the run nothing it could
//! notice.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::executor::{EndedStep, RunObserver, StepStatus};
use crate::job::Plan;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, lines otherwise; nothing with `--quiet`.
    Auto,
    /// Bars, redrawn in place (stderr must be a terminal to see them).
    Bars,
    /// A status line on stderr every few seconds.
    Lines,
    /// Nothing.
    Off,
}

/// Running steps named in the display, longest first (as cargo names what it builds).
const LONGEST_SHOWN: usize = 3;
/// How often the bars are redrawn.
const BAR_INTERVAL: Duration = Duration::from_millis(100);
/// How often a status line is printed when stderr is not a terminal: often enough to show a
/// long run is alive, rarely enough not to flood a log.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Default)]
struct OpCounts {
    created: AtomicUsize,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
}

struct Shared {
    names: Vec<String>,
    mapped: Vec<bool>,
    /// Ops with a dynamic output: while one of their steps has not ended, more clones may come.
    fans_out: Vec<bool>,
    counts: Vec<OpCounts>,
    /// The steps a worker is running, and since when (at most one per worker).
    running: Mutex<HashMap<String, Instant>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// The live display; an observer of the run.
pub struct Progress {
    shared: Arc<Shared>,
    drawer: Mutex<Option<JoinHandle<()>>>,
    finished: AtomicBool,
}

impl Progress {
    /// Start showing the progress of `plan`'s run, or `None` when nothing is to be shown.
    pub fn start(plan: &Plan, mode: ProgressMode, quiet: bool) -> Option<Arc<Self>> {
        let bars = match mode {
            ProgressMode::Off => return None,
            ProgressMode::Auto if quiet => return None,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Bars => true,
            ProgressMode::Lines => false,
        };
        let shared = Arc::new(Shared {
            names: plan.ops.iter().map(|o| o.name.clone()).collect(),
            mapped: plan.ops.iter().map(|o| !o.scope.is_empty()).collect(),
            fans_out: plan.ops.iter().map(|o| o.outputs.iter().any(|out| out.dynamic)).collect(),
            counts: plan.ops.iter().map(|_| OpCounts::default()).collect(),
            running: Mutex::new(HashMap::new()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let for_drawer = shared.clone();
        let drawer = std::thread::spawn(move || if bars { draw_bars(&for_drawer) } else { draw_lines(&for_drawer) });
        Some(Arc::new(Self { shared, drawer: Mutex::new(Some(drawer)), finished: AtomicBool::new(false) }))
    }

    /// Stop drawing (the bars are cleared: the report follows).
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut stop) = self.shared.stop.lock() {
            *stop = true;
        }
        self.shared.wake.notify_all();
        if let Some(drawer) = self.drawer.lock().ok().and_then(|mut d| d.take()) {
            let _ = drawer.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl RunObserver for Progress {
    fn step_created(&self, op: usize) {
        self.shared.counts[op].created.fetch_add(1, Ordering::Relaxed);
    }

    fn step_started(&self, op: usize, key: &str, attempt: u32) {
        // A retry is the same step, still running.
        if attempt == 1 {
            self.shared.counts[op].running.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut running) = self.shared.running.lock() {
            running.insert(key.to_owned(), Instant::now());
        }
    }

    fn step_finished(&self, op: usize, step: &std::sync::Arc<EndedStep>) {
        let counts = &self.shared.counts[op];
        if !step.reused && step.report.attempts > 0 {
            counts.running.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut running) = self.shared.running.lock() {
                running.remove(&step.report.key);
            }
        }
        if step.report.status == StepStatus::Failure {
            counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        counts.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// One moment's totals.
struct Totals {
    created: usize,
    running: usize,
    done: usize,
    failed: usize,
}

impl Shared {
    fn op(&self, op: usize) -> Totals {
        let c = &self.counts[op];
        Totals {
            created: c.created.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            done: c.done.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    fn total(&self) -> Totals {
        (0..self.counts.len()).map(|op| self.op(op)).fold(
            Totals { created: 0, running: 0, done: 0, failed: 0 },
            |a, b| Totals {
                created: a.created + b.created,
                running: a.running + b.running,
                done: a.done + b.done,
                failed: a.failed + b.failed,
            },
        )
    }

    /// Whether a fan-out may still emit, so that the total is not final yet.
    fn open(&self) -> bool {
        (0..self.counts.len()).any(|op| self.fans_out[op] && self.op(op).created > self.op(op).done)
    }

    /// The steps running longest, with how long: `process_file[big_csv] 12s`.
    fn longest(&self, most: usize) -> String {
        let Ok(running) = self.running.lock() else { return String::new() };
        let mut steps: Vec<(&String, &Instant)> = running.iter().collect();
        steps.sort_by_key(|&(key, since)| (*since, key.as_str()));
        let shown: Vec<String> = steps
            .iter()
            .take(most)
            .map(|(key, since)| {
                format!("{} {:.0?}", crate::runtime::printable(key), Duration::from_secs(since.elapsed().as_secs()))
            })
            .collect();
        shown.join(", ")
    }

    /// Sleep `interval`, or less if told to stop; whether to stop.
    fn wait(&self, interval: Duration) -> bool {
        let Ok(stop) = self.stop.lock() else { return true };
        match self.wake.wait_timeout_while(stop, interval, |stop| !*stop) {
            Ok((stop, _)) => *stop,
            Err(_) => true,
        }
    }
}

fn status(t: &Totals) -> String {
    let mut text = format!("{} running", t.running);
    if t.failed > 0 {
        text.push_str(&format!(", {} failed", t.failed));
    }
    text
}

fn draw_bars(shared: &Shared) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template("{prefix:>24.bold} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let total = multi.add(ProgressBar::new(0).with_style(style.clone()).with_prefix("steps"));
    // One bar per mapped op (its clones), added when its first clone appears.
    let mut bars: Vec<Option<ProgressBar>> = vec![None; shared.names.len()];
    loop {
        let stop = shared.wait(BAR_INTERVAL);
        let t = shared.total();
        total.set_length(t.created as u64);
        total.set_position(t.done as u64);
        let mut message = status(&t);
        if shared.open() {
            message.insert_str(0, "(more coming) ");
        }
        let longest = shared.longest(LONGEST_SHOWN);
        if !longest.is_empty() {
            message.push_str(&format!(": {longest}"));
        }
        total.set_message(message);
        for (op, bar) in bars.iter_mut().enumerate() {
            let o = shared.op(op);
            if !shared.mapped[op] || o.created == 0 {
                continue;
            }
            let bar = bar.get_or_insert_with(|| {
                let name = crate::runtime::printable(&shared.names[op]).chars().take(24).collect::<String>();
                multi.add(ProgressBar::new(0).with_style(style.clone()).with_prefix(name))
            });
            bar.set_length(o.created as u64);
            bar.set_position(o.done as u64);
            bar.set_message(status(&o));
        }
        if stop {
            let _ = multi.clear();
            return;
        }
    }
}

fn draw_lines(shared: &Shared) {
    let started = Instant::now();
    while !shared.wait(LINE_INTERVAL) {
        let t = shared.total();
        let open = if shared.open() { "+" } else { "" };
        let mut line =
            format!("[{:.0?}] steps: {}/{}{open} done, {}", started.elapsed(), t.done, t.created, status(&t));
        for op in (0..shared.names.len()).filter(|&op| shared.mapped[op]) {
            let o = shared.op(op);
            line.push_str(&format!("; {} {}/{}", crate::runtime::printable(&shared.names[op]), o.done, o.created));
        }
        let longest = shared.longest(LONGEST_SHOWN);
        if !longest.is_empty() {
            line.push_str(&format!("; running: {longest}"));
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}
