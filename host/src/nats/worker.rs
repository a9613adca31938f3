//! `sandmap worker`: pull step attempts from the tasks stream and run each in a fresh sandbox,
//! exactly as a local run would (same limits, timeouts, fuel, log capture), telling the
//! coordinator on the events stream what happened.
//!
//! A worker keeps nothing between tasks but its compiled components (fetched once per digest
//! from the components bucket, checked against their sha256, compiled through its compile
//! cache). A task message is untrusted input: a malformed one is refused on its own, with the
//! step failed when it can be named, and the worker goes on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Notify, OnceCell, mpsc};

use super::blobs::FetchError;
use super::wire::{ATTEMPT_HEADER, Event, EventMessage, RUN_HEADER, STEP_HEADER, TaskBody};
use super::{
    Bus, HEARTBEAT, MAX_BLOB_BYTES, MAX_COMPONENT_BYTES, MAX_LOST_DELIVERIES, NatsError, NatsOptions, blobs,
    event_subject, is_subject_token,
};
use crate::runtime::{Emission, LoadedOp, Runtime, RuntimeConfig, StepEvents, StepFailure, StepLog, StepOutcome};
use crate::step::StepSpec;
use crate::units::format_duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The server.
    pub nats: NatsOptions,
    /// Its name, in every event it sends and in `run --json`'s `worker`.
    pub name: String,
    /// Steps it runs at once.
    pub max_concurrent: usize,
    /// `(coordinator's path, this machine's path)`: grants under the first are found under the
    /// second.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    /// Folders grants may be in (with the mounts' targets). Empty, and no mounts: any folder.
    pub allow: Vec<PathBuf>,
    /// Print nothing per step.
    pub quiet: bool,
}

/// How long a worker retries reading a task's body or a component while the server fails.
const FETCH_PATIENCE: Duration = Duration::from_secs(30);

/// A component, compiled for one of the worker's two engines (with and without fuel).
type Loaded = Arc<OnceCell<Result<Arc<LoadedOp>, FetchError>>>;

struct Shared {
    options: WorkerOptions,
    bus: Bus,
    plain: OnceCell<Arc<Runtime>>,
    fueled: OnceCell<Arc<Runtime>>,
    components: Mutex<HashMap<(String, bool), Loaded>>,
    /// Set on the first Ctrl-C / SIGTERM: pull no more.
    stopping: AtomicBool,
    stop: Notify,
    running: AtomicUsize,
    /// Ackers of the tasks running now, to hand them back on a second signal.
    in_hand: Mutex<HashMap<u64, Arc<Acker>>>,
}

/// Connect and run tasks until the process is told to stop (Ctrl-C or SIGTERM): it then
/// finishes the steps it is running; told again, it hands them back to the server at once.
pub fn run(options: WorkerOptions) -> Result<(), NatsError> {
    let threads = options.max_concurrent.clamp(1, 4);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("sandmap-worker")
        .enable_all()
        .build()
        .map_err(|e| NatsError::Runtime(e.to_string()))?;
    runtime.block_on(serve(options))
}

async fn serve(options: WorkerOptions) -> Result<(), NatsError> {
    let bus = Bus::connect(&options.nats).await?;
    let consumer = bus.workers_consumer().await?;
    let slots = options.max_concurrent.max(1);
    eprintln!(
        "worker {} connected to {}: running up to {slots} steps at once",
        options.name,
        super::redact(&options.nats.url)
    );
    if options.allow.is_empty() && options.mounts.is_empty() {
        eprintln!(
            "worker {}: note: a task may grant any folder this user can open here; restrict that with --allow-dir              or --mount (and let only coordinators publish tasks: see the README's security notes)",
            options.name
        );
    }
    let shared = Arc::new(Shared {
        options,
        bus,
        plain: OnceCell::new(),
        fueled: OnceCell::new(),
        components: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
        stop: Notify::new(),
        running: AtomicUsize::new(0),
        in_hand: Mutex::new(HashMap::new()),
    });
    let signals = tokio::spawn(watch_signals(shared.clone()));
    let mut loops = Vec::with_capacity(slots);
    for _ in 0..slots {
        loops.push(tokio::spawn(pull_loop(shared.clone(), consumer.clone())));
    }
    for handle in loops {
        let _ = handle.await;
    }
    signals.abort();
    if !shared.options.quiet {
        eprintln!("worker {} stopped", shared.options.name);
    }
    Ok(())
}

async fn watch_signals(shared: Arc<Shared>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
    let mut told = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if told {
            // Hand back what runs now: the server redelivers it to another worker at once.
            let ackers: Vec<Arc<Acker>> = lock(&shared.in_hand).values().cloned().collect();
            for acker in ackers {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            }
            let _ = shared.bus.client.flush().await;
            eprintln!("worker {}: handed back {} running steps", shared.options.name, lock(&shared.in_hand).len());
            std::process::exit(130);
        }
        told = true;
        shared.stopping.store(true, Ordering::SeqCst);
        shared.stop.notify_waiters();
        eprintln!(
            "worker {}: stopping; finishing {} running steps (again to hand them back now)",
            shared.options.name,
            shared.running.load(Ordering::SeqCst)
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One slot: pull a task, run it, repeat. Pulls one at a time, so a task never waits in a busy
/// worker while another is idle.
async fn pull_loop(shared: Arc<Shared>, consumer: PullConsumer) {
    while !shared.stopping.load(Ordering::SeqCst) {
        let batch = consumer.batch().max_messages(1).expires(Duration::from_secs(5)).messages();
        let mut batch = match batch.await {
            Ok(batch) => batch,
            Err(error) => {
                // The server is restarting, or the network is down: ask again.
                tracing::warn!("cannot pull tasks: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Not raced against the stop signal: a message pulled into a dropped batch would be
        // redelivered only after the ack wait, and counted as a lost delivery.
        match batch.next().await {
            Some(Ok(message)) if shared.stopping.load(Ordering::SeqCst) => {
                let _ = message.ack_with(AckKind::Nak(None)).await;
                return;
            }
            Some(Ok(message)) => handle(&shared, message).await,
            Some(Err(error)) => {
                tracing::debug!("pull: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => {}
        }
    }
}

/// How long an event's publish is retried (the server restarting) before the delivery is given
/// up (not acked: the server redelivers it).
const PUBLISH_PATIENCE: Duration = Duration::from_secs(120);
/// Publishes awaiting confirmation at most: async-nats holds a permit per unconfirmed publish
/// (5,000 per connection), and a step may emit 100,000 records.
const UNCONFIRMED_MAX: usize = 256;

/// An event sent and not yet confirmed, kept to be sent again (under the same message id, so
/// the server stores it once) if its confirmation fails.
struct Unconfirmed {
    ack: PublishAckFuture,
    id: String,
    payload: Bytes,
    headers: HeaderMap,
}

/// Where one delivery of a task reports to.
struct Reply {
    shared: Arc<Shared>,
    run_id: String,
    key: String,
    attempt: u32,
    task_sequence: u64,
    delivery: u64,
    unconfirmed: Vec<Unconfirmed>,
    /// An event could not be stored: the delivery's result must not be reported or acked.
    broken: bool,
    sent: u64,
}

impl Reply {
    async fn send(&mut self, event: Event, id_suffix: &str) {
        if self.broken {
            return;
        }
        let message = EventMessage {
            key: self.key.clone(),
            attempt: self.attempt,
            task_sequence: self.task_sequence,
            delivery: self.delivery,
            worker: self.shared.options.name.clone(),
            event,
        };
        let body = match serde_json::to_vec(&message) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!("cannot encode an event of step {}: {error}", self.key);
                self.broken = true;
                return;
            }
        };
        let mut headers = HeaderMap::new();
        let payload = match blobs::outgoing(&self.shared.bus.blobs, &mut headers, body).await {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!("cannot store an event of step {}: {error}", self.key);
                self.broken = true;
                return;
            }
        };
        let id = format!(
            "{}:{}:{}:{}:{}:{id_suffix}",
            self.run_id, self.key, self.attempt, self.task_sequence, self.delivery
        );
        let started = Instant::now();
        loop {
            let publish = PublishMessage::build().payload(payload.clone()).headers(headers.clone()).message_id(&id);
            match self.shared.bus.js.send_publish(event_subject(&self.run_id), publish).await {
                Ok(ack) => {
                    self.unconfirmed.push(Unconfirmed { ack, id, payload, headers });
                    break;
                }
                Err(error) if started.elapsed() < PUBLISH_PATIENCE => {
                    tracing::warn!("publishing an event of step {}: {error}; trying again", self.key);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(error) => {
                    tracing::warn!("cannot publish an event of step {}: {error}", self.key);
                    self.broken = true;
                    return;
                }
            }
        }
        if self.unconfirmed.len() >= UNCONFIRMED_MAX {
            self.confirm().await;
        }
    }

    async fn emitted(&mut self, emission: Emission) {
        let index = self.sent;
        self.sent += 1;
        self.send(Event::Emitted { index, emission }, &index.to_string()).await;
    }

    /// Wait until the server has stored every event sent so far, sending again (same message
    /// id) any whose confirmation failed; whether all are stored.
    async fn confirm(&mut self) -> bool {
        for pending in std::mem::take(&mut self.unconfirmed) {
            if pending.ack.await.is_ok() {
                continue;
            }
            let what = format!("an event of step {}", self.key);
            let stored = self
                .shared
                .bus
                .publish_until_stored(
                    event_subject(&self.run_id),
                    &pending.id,
                    pending.payload,
                    pending.headers,
                    PUBLISH_PATIENCE,
                    &what,
                )
                .await;
            if let Err(error) = stored {
                tracing::warn!("{what} was not stored: {error}");
                self.broken = true;
            }
        }
        !self.broken
    }

    /// Once every emission is stored, send the end of the delivery; whether all of it is stored.
    async fn finish(&mut self, outcome: StepOutcome) -> bool {
        if !self.confirm().await {
            return false;
        }
        let emitted = self.sent;
        self.send(Event::Finished { emitted, outcome }, "finished").await;
        self.confirm().await
    }
}

/// Aborts the heartbeat when the delivery is done with, however it ends.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a delivery ended for the server.
enum Settled {
    /// Its result is stored: ack it.
    Stored,
    /// It could not be run or reported now (the server or a bucket failed): hand it back.
    Again,
}

fn failed(failure: StepFailure) -> StepOutcome {
    StepOutcome { result: Err(failure), log: StepLog::default(), duration: Duration::ZERO }
}

async fn handle(shared: &Arc<Shared>, message: async_nats::jetstream::Message) {
    let (delivery, task_sequence) = match message.info() {
        Ok(info) => (u64::try_from(info.delivered).unwrap_or(1), info.stream_sequence),
        Err(error) => {
            tracing::warn!("refused a task without delivery info: {error}");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let (message, acker) = message.split();
    let acker = Arc::new(acker);
    let header = |name: &str| message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
    let (Some(run_id), Some(key), Some(attempt)) =
        (header(RUN_HEADER), header(STEP_HEADER), header(ATTEMPT_HEADER).and_then(|a| a.parse::<u32>().ok()))
    else {
        tracing::warn!("refused a task on {} without its run, step and attempt headers", message.subject);
        let _ = acker.ack_with(AckKind::Term).await;
        return;
    };
    if !is_subject_token(&run_id) {
        tracing::warn!("refused a task whose run id {run_id:?} is not a subject token");
        let _ = acker.ack_with(AckKind::Term).await;
        return;
    }
    shared.running.fetch_add(1, Ordering::SeqCst);
    lock(&shared.in_hand).insert(task_sequence, acker.clone());
    let heartbeat = Heartbeat({
        let acker = acker.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Err(error) = acker.ack_with(AckKind::Progress).await {
                    tracing::debug!("heartbeat: {error}");
                }
            }
        })
    });
    let mut reply = Reply {
        shared: shared.clone(),
        run_id,
        key,
        attempt,
        task_sequence,
        delivery,
        unconfirmed: Vec::new(),
        broken: false,
        sent: 0,
    };
    let settled = run_delivery(shared, &message, &mut reply).await;
    drop(heartbeat);
    match settled {
        // Acked only once the result is stored; a lost ack means a redelivery, whose result
        // the coordinator ignores as late.
        Settled::Stored => {
            if let Err(error) = acker.double_ack().await {
                tracing::warn!("cannot ack step {}: {error}", reply.key);
            }
        }
        Settled::Again => {
            let _ = acker.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
    }
    lock(&shared.in_hand).remove(&task_sequence);
    shared.running.fetch_sub(1, Ordering::SeqCst);
}

fn settled(stored: bool) -> Settled {
    if stored { Settled::Stored } else { Settled::Again }
}

/// Run one delivery and report it.
async fn run_delivery(shared: &Arc<Shared>, message: &async_nats::Message, reply: &mut Reply) -> Settled {
    let name = shared.options.name.clone();
    let lost = reply.delivery.saturating_sub(1);
    if lost >= MAX_LOST_DELIVERIES as u64 {
        reply.send(Event::Lost { deliveries: lost }, "lost").await;
        say(shared, reply, "lost", &format!("delivered {lost} times before; given up"));
        return settled(reply.confirm().await);
    }
    let body =
        blobs::incoming(&shared.bus.blobs, message.headers.as_ref(), &message.payload, MAX_BLOB_BYTES, FETCH_PATIENCE);
    let body = match body.await {
        Ok(body) => body,
        Err(FetchError::Transient(error)) => {
            tracing::warn!("cannot read the task of step {} now: {error}; handing it back", reply.key);
            return Settled::Again;
        }
        Err(FetchError::Refused(error)) => {
            let failure =
                StepFailure::Remote(format!("worker {name} cannot read the task of step {}: {error}", reply.key));
            return report_failure(shared, reply, failure).await;
        }
    };
    let mut spec = match serde_json::from_slice::<TaskBody>(&body) {
        Ok(task) if task.spec.key == reply.key && task.spec.attempt == reply.attempt => task.spec,
        Ok(_) => {
            let failure = StepFailure::Remote(format!(
                "worker {name} refused the task of step {}: its body names another step or attempt",
                reply.key
            ));
            return report_failure(shared, reply, failure).await;
        }
        Err(error) => {
            let failure = StepFailure::Remote(format!(
                "worker {name} refused the task of step {}: malformed: {error}",
                reply.key
            ));
            return report_failure(shared, reply, failure).await;
        }
    };
    let runtime = match runtime_for(shared, spec.limits.fuel.is_some()).await {
        Ok(runtime) => runtime,
        Err(error) => {
            return report_failure(shared, reply, StepFailure::Remote(format!("worker {name}: {error}"))).await;
        }
    };
    if let Err(failure) = localize_grants(&shared.options, &runtime, &mut spec) {
        return report_failure(shared, reply, failure).await;
    }
    let op = match component(shared, &runtime, &spec.component, spec.limits.fuel.is_some()).await {
        Ok(op) => op,
        Err(FetchError::Transient(error)) => {
            tracing::warn!("cannot fetch the component of step {} now: {error}; handing it back", reply.key);
            return Settled::Again;
        }
        Err(FetchError::Refused(error)) => {
            let failure = StepFailure::Remote(format!(
                "worker {name} cannot get the component of step {} (sha256:{:.12}): {error}",
                reply.key, spec.component
            ));
            return report_failure(shared, reply, failure).await;
        }
    };
    reply.send(Event::Started, "started").await;
    let (sink, mut emissions) = mpsc::unbounded_channel();
    let running = tokio::task::spawn_blocking(move || runtime.run(&op, &spec, Box::new(ChannelSink(sink))));
    while let Some(emission) = emissions.recv().await {
        reply.emitted(emission).await;
    }
    let outcome = match running.await {
        Ok(outcome) => outcome,
        Err(error) => failed(StepFailure::Sandbox(format!("the step's thread failed: {error}"))),
    };
    let summary = match &outcome.result {
        Ok(()) => ("ok", format_duration(outcome.duration)),
        Err(failure) => ("failed", format!("{}: {failure}", format_duration(outcome.duration))),
    };
    let stored = reply.finish(outcome).await;
    say(shared, reply, if stored { summary.0 } else { "unsent" }, &summary.1);
    settled(stored)
}

async fn report_failure(shared: &Arc<Shared>, reply: &mut Reply, failure: StepFailure) -> Settled {
    let text = failure.to_string();
    let stored = reply.finish(failed(failure)).await;
    say(shared, reply, "failed", &text);
    settled(stored)
}

fn say(shared: &Shared, reply: &Reply, status: &str, detail: &str) {
    if shared.options.quiet {
        return;
    }
    let redelivered = if reply.delivery > 1 { format!(", delivery {}", reply.delivery) } else { String::new() };
    eprintln!(
        "{status:<6} {} (run {}, attempt {}{redelivered}) {}",
        crate::runtime::printable(&reply.key),
        crate::executor::short_run_id(&reply.run_id),
        reply.attempt,
        crate::runtime::printable(detail)
    );
}

struct ChannelSink(mpsc::UnboundedSender<Emission>);

impl StepEvents for ChannelSink {
    fn emitted(&mut self, emission: Emission) {
        // The receiver lives until the step ends.
        let _ = self.0.send(emission);
    }
}

async fn runtime_for(shared: &Arc<Shared>, fuel: bool) -> Result<Arc<Runtime>, String> {
    let cell = if fuel { &shared.fueled } else { &shared.plain };
    let max_concurrent = shared.options.max_concurrent;
    cell.get_or_try_init(|| async move {
        let settings = RuntimeConfig { max_concurrent, fuel, ..RuntimeConfig::default() };
        tokio::task::spawn_blocking(move || Runtime::new(&settings).map(Arc::new).map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())?
    })
    .await
    .cloned()
}

/// The component `digest`, fetched and compiled once per engine.
async fn component(
    shared: &Arc<Shared>,
    runtime: &Arc<Runtime>,
    digest: &str,
    fuel: bool,
) -> Result<Arc<LoadedOp>, FetchError> {
    let entry = (digest.to_owned(), fuel);
    let cell = lock(&shared.components).entry(entry.clone()).or_default().clone();
    let bus = shared.bus.clone();
    let runtime = runtime.clone();
    let digest = digest.to_owned();
    let loaded = cell
        .get_or_init(|| async move {
            let started = Instant::now();
            let bytes = blobs::fetch_patiently(&bus.components, &digest, MAX_COMPONENT_BYTES, FETCH_PATIENCE).await?;
            let fetched = started.elapsed();
            let loaded = tokio::task::spawn_blocking(move || {
                runtime.load_digested(&bytes, digest.clone(), &format!("component sha256:{digest:.12}"))
            })
            .await
            .map_err(|e| FetchError::Refused(e.to_string()))?
            .map_err(|e| FetchError::Refused(e.to_string()))?;
            tracing::info!(
                digest = %loaded.digest,
                fetch_ms = fetched.as_secs_f64() * 1e3,
                ready_ms = started.elapsed().as_secs_f64() * 1e3,
                "fetched component"
            );
            Ok(Arc::new(loaded))
        })
        .await
        .clone();
    if loaded.is_err() {
        // Not cached: the next task may find it (the coordinator may still be uploading).
        lock(&shared.components).remove(&entry);
    }
    loaded
}

/// Each grant's directory on this machine: its path, or its `--mount` mapping. A grant whose
/// directory is missing fails the step, naming the grant, the path and the worker; so does one
/// outside the worker's `--allow-dir`s and mounts (when it has any), one that is not a plain
/// absolute path, and one that would reach into the worker's compile cache. The directory is
/// opened now, so the step sees what was checked.
fn localize_grants(options: &WorkerOptions, runtime: &Runtime, spec: &mut StepSpec) -> Result<(), StepFailure> {
    use std::path::Component;
    let name = &options.name;
    // Where grants may be, resolved as the grants are: a symlink cannot lead out of them.
    let allowed: Vec<PathBuf> = options
        .allow
        .iter()
        .chain(options.mounts.iter().map(|(_, to)| to))
        .filter_map(|dir| dir.canonicalize().ok())
        .collect();
    let restricted = !options.allow.is_empty() || !options.mounts.is_empty();
    for grant in &mut spec.grants {
        let local = mounted(&options.mounts, &grant.host);
        let refuse = |why: String| {
            StepFailure::Remote(format!(
                "worker {name} cannot run step {}: grant {} needs the folder {}{}, {why}",
                spec.key,
                grant.guest,
                grant.host.display(),
                if local == grant.host { String::new() } else { format!(" (here {})", local.display()) },
            ))
        };
        let plain = grant.host.is_absolute()
            && grant.host.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !plain {
            return Err(refuse("which is not a plain absolute path (no `.` or `..`)".into()));
        }
        let metadata = std::fs::metadata(&local).map_err(|e| {
            refuse(format!(
                "which this worker does not have ({e}); share it at the same path or map it with --mount {}=LOCAL_PATH",
                grant.host.display()
            ))
        })?;
        if !metadata.is_dir() {
            return Err(refuse("which is not a folder on this worker".into()));
        }
        let canonical = local.canonicalize().map_err(|e| refuse(format!("which cannot be resolved here ({e})")))?;
        if restricted && !allowed.iter().any(|dir| canonical.starts_with(dir)) {
            return Err(refuse(format!(
                "which is outside this worker's --allow-dir and --mount folders (it resolves to {})",
                canonical.display()
            )));
        }
        for protected in runtime.protected_dirs() {
            let protected = protected.canonicalize().unwrap_or(protected);
            if canonical.starts_with(&protected) || protected.starts_with(&canonical) {
                return Err(refuse(format!(
                    "which holds or is inside this worker's compile cache {}",
                    protected.display()
                )));
            }
        }
        let dir = cap_std::fs::Dir::open_ambient_dir(&canonical, cap_std::ambient_authority())
            .map_err(|e| refuse(format!("which cannot be opened here ({e})")))?;
        let local = crate::step::Grant { host: canonical, guest: grant.guest.clone(), access: grant.access };
        runtime.refresh_grant(&local, &dir).map_err(|e| refuse(format!("which cannot be held open ({e})")))?;
        *grant = local;
    }
    Ok(())
}

/// `path` under the longest `--mount` that contains it.
fn mounted(mounts: &[(PathBuf, PathBuf)], path: &Path) -> PathBuf {
    mounts
        .iter()
        .filter(|(from, _)| path.starts_with(from))
        .max_by_key(|(from, _)| from.components().count())
        .and_then(|(from, to)| {
            let rest = path.strip_prefix(from).ok()?;
            // `join("")` would add a trailing slash.
            Some(if rest.as_os_str().is_empty() { to.clone() } else { to.join(rest) })
        })
        .unwrap_or_else(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_wins() {
        let mounts = vec![("/data".into(), "/mnt/a".into()), ("/data/deep".into(), "/mnt/b".into())];
        assert_eq!(mounted(&mounts, Path::new("/data/x")), Path::new("/mnt/a/x"));
        assert_eq!(mounted(&mounts, Path::new("/data/deep/y")), Path::new("/mnt/b/y"));
        assert_eq!(mounted(&mounts, Path::new("/database")), Path::new("/database"));
        assert_eq!(mounted(&mounts, Path::new("/data")), Path::new("/mnt/a"));
    }
}
