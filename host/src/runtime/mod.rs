//! The WebAssembly runtime: one engine, components loaded once, and a fresh sandbox (Store and
//! instance) for every step attempt. Knows nothing of jobs or graphs: it runs a
//! [`StepSpec`](crate::step::StepSpec) against a [`LoadedOp`].

mod bindings;
mod cache;
mod component;
mod descriptors;
mod digest;
mod emitter;
mod error;
mod grants;
mod guards;
mod limiter;
mod listing;
mod log;
mod memory_reset;
mod sandbox;
mod slots;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use cache::{CacheError, CompileCache, default_dir as default_cache_dir};
pub use component::digest;
pub use emitter::{Emission, StepEvents};
pub use error::{LoadError, RuntimeError, StepFailure};
pub use log::{ENTRY_OVERHEAD, LogEntry, LogSource, StepLog, printable};
pub use sandbox::MAX_HANDLES;

use bindings::sandmap::op::types;
use bindings::{OpComponent, OpComponentPre};
use component::GuestDefinition;
use emitter::Emitter;
use grants::HeldDirs;
use guards::Deadline;
use limiter::Limiter;
use log::LogCapture;
use sandbox::{Bounds, Sandbox};

use crate::definition::OpDefinition;
use crate::step::{Grant, Limits, StepSpec};

/// How often the epoch advances: the resolution of the `timeout` limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Epoch ticks between two looks at whether the run was cancelled (and the time left).
pub const CANCEL_CHECK_TICKS: u64 = 5;
/// Wasm stack per instance (wasmtime's default, set explicitly).
pub const MAX_WASM_STACK: usize = 512 * 1024;
/// Limits for reading an op's definition (it must not do real work).
const DEFINITION_LIMITS: Limits = Limits {
    memory_bytes: 256 << 20,
    timeout: Duration::from_secs(10),
    max_value_bytes: 1 << 20,
    max_emits: 0,
    max_log_bytes: 64 << 10,
    max_fan_out: 0,
    max_output_bytes: 0,
    max_open_files: 0,
    fuel: None,
};

/// A loaded op: compiled, linked and pre-instantiated, with its definition read.
pub struct LoadedOp {
    /// SHA-256 of the component's bytes.
    pub digest: String,
    /// What the op declares.
    pub definition: OpDefinition,
    /// The interfaces the component imports (`sandmap:op/host@0.1.0`, `wasi:…`), sorted.
    pub imports: Vec<String>,
    /// The component's bytes, kept for runners that ship them to other machines.
    pub bytes: Arc<[u8]>,
    pre: OpComponentPre<Sandbox>,
}

impl std::fmt::Debug for LoadedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedOp").field("digest", &self.digest).field("definition", &self.definition).finish()
    }
}

/// What one step attempt did. Plain data: it travels back from wherever the step ran.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StepOutcome {
    /// Success, or why it failed.
    pub result: Result<(), StepFailure>,
    /// Its captured log.
    pub log: StepLog,
    /// Wall time of the attempt.
    pub duration: Duration,
}

/// How to set up the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Sandboxes alive at once (sizes the pooling allocator).
    pub max_concurrent: usize,
    /// Where compiled components are kept; `None` compiles every time.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Pre-reserve instance slots (pooling allocator, copy-on-write memory images) instead of
    /// mapping memory per instance.
    pub pooling: bool,
    /// Meter fuel, so that steps can have a `fuel` limit. Engine-wide in wasmtime, and it costs
    /// every guest instruction something, so it is on only for jobs that ask for it.
    pub fuel: bool,
    /// Reset the pool slots of small components (Rust ops) by scanning for the pages their guest
    /// dirtied instead of zeroing the slot's resident part: a no-op clone costs about half. Off
    /// by default and for every `sandmap` command, because it does not keep sandboxes fresh
    /// against one another: wasmtime 48 skips a dirtied page that is not present at the moment of
    /// the scan (swapped out, or being moved by the kernel's compaction or NUMA balancing), and
    /// the next sandbox in the slot can read it (see `memory_reset`). For an embedder whose ops
    /// may see each other's data; never on a host with swap.
    pub scan_dirty_pages: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cache_dir: cache::default_dir(),
            pooling: true,
            fuel: false,
            scan_dirty_pages: false,
        }
    }
}

/// Link `component` against the op world with `backend`'s linker, ready to instantiate.
fn pre_instantiate(
    backend: &Backend,
    component: &Component,
    origin: &str,
) -> Result<OpComponentPre<Sandbox>, LoadError> {
    let instance_pre = backend
        .linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::UnsupportedImport { origin: origin.into(), reason: format!("{e:#}") })?;
    OpComponentPre::new(instance_pre)
        .map_err(|e| LoadError::WrongWorld { origin: origin.into(), reason: format!("{e:#}") })
}

/// Largest linear memory any op may be given (a 32-bit memory's whole range).
const MAX_MEMORY_BYTES: usize = 4 << 30;

/// An engine and the linker made for it.
struct Backend {
    engine: Engine,
    linker: Linker<Sandbox>,
}

/// The engines, their linkers, and the epoch ticker that enforces timeouts.
pub struct Runtime {
    /// Resets a pool slot by zeroing its resident part (or allocates instances on demand): every
    /// component the scanning engine does not take.
    zeroing: Backend,
    /// Resets a pool slot by scanning for the pages its guest dirtied (see `memory_reset`): the
    /// components with a small memory, where the host has no swap and the pool could be reserved.
    scanning: Option<Backend>,
    cache: Option<CompileCache>,
    /// One per pool slot: a Store exists only while it holds one.
    slots: slots::Slots,
    fuel: bool,
    /// Granted directories, held once and shared by every sandbox.
    held: HeldDirs,
    /// Files one sandbox may hold open within the process's descriptor limit.
    open_files_budget: u64,
    /// Set once the run is cancelled: every running sandbox stops at its next epoch check.
    cancelled: Arc<std::sync::atomic::AtomicBool>,
    /// Dropped to stop the ticker: it wakes at once instead of at its next tick, which would
    /// hold up every process's exit by up to a tick.
    ticker_stop: Option<crossbeam_channel::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Set up the engines (one resetting pool slots by zeroing; with
    /// [`RuntimeConfig::scan_dirty_pages`], one scanning for dirty pages), their linkers, the
    /// compile cache and the epoch ticker.
    pub fn new(settings: &RuntimeConfig) -> Result<Self, RuntimeError> {
        let (engine, pooled) = new_engine(settings)?;
        let zeroing = Backend { linker: linker(&engine)?, engine };
        let scanning = if pooled && settings.scan_dirty_pages && memory_reset::no_swap() {
            match scanning_engine(settings) {
                Ok(engine) => Some(Backend { linker: linker(&engine)?, engine }),
                Err(error) => {
                    tracing::warn!("no second pool for the dirty-page scan ({error}); every slot is reset by zeroing");
                    None
                }
            }
        } else {
            None
        };
        // Both engines compile alike (they differ only in how a pool slot is reset), so one
        // compatibility hash keys the cache for both.
        let engine = &zeroing.engine;
        let cache = match &settings.cache_dir {
            None => None,
            Some(dir) => match CompileCache::open(dir, engine) {
                Ok(cache) => Some(cache),
                Err(error) => {
                    tracing::warn!("{error}; compiling without a cache");
                    None
                }
            },
        };

        let (ticker_stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let ticker = {
            let engines: Vec<Engine> =
                std::iter::once(&zeroing).chain(&scanning).map(|backend| backend.engine.clone()).collect();
            std::thread::Builder::new()
                .name("sandmap-epoch".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                        engines.iter().for_each(Engine::increment_epoch);
                    }
                })
                .map_err(|e| RuntimeError(format!("cannot start the epoch thread: {e}")))?
        };
        let slots = slots::Slots::new(pool_slots(settings.max_concurrent) as usize);
        let open_files_budget = descriptors::per_sandbox(
            descriptors::raise_open_file_limit(),
            pool_slots(settings.max_concurrent) as usize,
        );
        Ok(Self {
            zeroing,
            scanning,
            cache,
            slots,
            fuel: settings.fuel,
            held: HeldDirs::default(),
            open_files_budget,
            cancelled: Arc::default(),
            ticker_stop: Some(ticker_stop),
            ticker: Some(ticker),
        })
    }

    /// Load `bytes` as an op: check, compile, link, and read its definition. `origin` names the
    /// file (or built-in op) in errors.
    pub fn load(&self, bytes: &[u8], origin: &str) -> Result<LoadedOp, LoadError> {
        self.load_digested(bytes, component::digest(bytes), origin)
    }

    /// [`Runtime::load`] for bytes whose SHA-256 (`digest`, hex) the caller already has.
    pub fn load_digested(&self, bytes: &[u8], digest: String, origin: &str) -> Result<LoadedOp, LoadError> {
        component::check_header(bytes, origin)?;
        let backend = match &self.scanning {
            Some(scanning) if memory_reset::scans_dirty_pages(bytes) => scanning,
            _ => &self.zeroing,
        };
        let (component, pre, definition) = match self.cached(&digest, backend, origin)? {
            Some(loaded) => loaded,
            None => {
                let component = Component::new(&backend.engine, bytes)
                    .map_err(|e| LoadError::Invalid { origin: origin.into(), reason: format!("{e:#}") })?;
                // The definition is kept with the compiled code, as the guest returned it, so
                // that a warm load need not instantiate the component to read it again (it is
                // still converted and checked each time). Code that does not link, or whose
                // definition could not be read, is cached all the same: it is refused again each
                // time without being compiled again.
                let pre = pre_instantiate(backend, &component, origin)
                    .inspect_err(|_| self.keep(&digest, &component, None))?;
                let definition =
                    self.read_definition(&pre, origin).inspect_err(|_| self.keep(&digest, &component, None))?;
                self.keep(&digest, &component, Some(&definition));
                (component, pre, component::convert_definition(definition, origin)?)
            }
        };
        let mut imports: Vec<String> =
            component.component_type().imports(&backend.engine).map(|(name, _)| name.to_owned()).collect();
        imports.sort();
        Ok(LoadedOp { digest, definition, imports, bytes: Arc::from(bytes), pre })
    }

    /// Stop every step running now, and every one started from now on, at its next epoch check
    /// (within [`CANCEL_CHECK_TICKS`] ticks): each fails with [`StepFailure::Cancelled`]. A step
    /// waiting in a host call (a sleep) stops when the wait ends, within its timeout.
    pub fn cancel_running(&self) {
        self.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether small components' pool slots are reset by scanning for the pages their guest
    /// dirtied ([`RuntimeConfig::scan_dirty_pages`] on a host with no swap), rather than by zeroing.
    pub fn scans_dirty_pages(&self) -> bool {
        self.scanning.is_some()
    }

    /// Whether steps can have a `fuel` limit.
    pub fn meters_fuel(&self) -> bool {
        self.fuel
    }

    /// The most files and directories one step may hold open: the process's open-file limit
    /// (raised to its hard limit) shared between the sandboxes that can be alive at once. A
    /// step's `max_open_files` above it is lowered to it.
    pub fn open_files_budget(&self) -> u64 {
        self.open_files_budget
    }

    /// Hold `dir`, opened when the job was validated, as `grant`'s directory: every step granted
    /// it is handed this handle, never the path, so a rename or a symlink swap after validation
    /// changes nothing. A grant no one held is opened by its path when a step first needs it.
    pub fn hold_grant(&self, grant: &Grant, dir: &cap_std::fs::Dir) -> std::io::Result<()> {
        self.held.hold(grant, dir)
    }

    /// Hold `dir` as `grant`'s directory in place of whatever was held for it: for a process that
    /// runs steps of many runs (a worker), which checks and opens each grant per step.
    pub fn refresh_grant(&self, grant: &Grant, dir: &cap_std::fs::Dir) -> std::io::Result<()> {
        self.held.replace(grant, dir)
    }

    /// Folders of sandmap's own that no op may be granted (the compile cache: an op that could
    /// write there could plant native code).
    pub fn protected_dirs(&self) -> Vec<std::path::PathBuf> {
        self.cache.iter().map(|c| c.dir().to_owned()).collect()
    }

    /// Keep `component`, compiled, in the cache (if there is one) with its definition, or with
    /// none when it could not be read. A cache that cannot be written is only warned about.
    fn keep(&self, digest: &str, component: &Component, definition: Option<&GuestDefinition>) {
        let Some(cache) = &self.cache else { return };
        let definition = definition.and_then(|d| serde_json::to_vec(d).ok()).unwrap_or_default();
        if let Ok(serialized) = component.serialize()
            && let Err(error) = cache.store(digest, &serialized, &definition)
        {
            tracing::warn!("cannot write the compile cache in {}: {error}", cache.dir().display());
        }
    }

    /// The compiled component from the cache, for `backend`'s engine, linked, with its
    /// definition, if a sound entry exists. An entry without a definition (it failed when the
    /// component was compiled) has it read again.
    fn cached(
        &self,
        digest: &str,
        backend: &Backend,
        origin: &str,
    ) -> Result<Option<(Component, OpComponentPre<Sandbox>, OpDefinition)>, LoadError> {
        let Some(cache) = &self.cache else { return Ok(None) };
        let Some(entry) = cache.load(digest) else { return Ok(None) };
        // SAFETY: `deserialize_file` trusts the file to hold wasmtime's own output, unchanged
        // while it is mapped. Every entry is written by `Component::serialize` (through
        // `CompileCache::store`) into a name keyed by this engine's compatibility hash, in a
        // folder only this user can write (checked when the cache was opened), and wasmtime
        // checks its own version and config header too. The checksum was checked on the file
        // open just now; wasmtime opens the path again, so another sandmap process may have
        // renamed a fresh entry into place in between: one written the same way, for the same
        // key. Entries are only ever replaced by a rename, never written in place, so a mapped
        // one does not change.
        let component = match unsafe { Component::deserialize_file(&backend.engine, &entry.path) } {
            Ok(component) => component,
            Err(error) => {
                tracing::warn!("compile cache entry for {digest} refused ({error:#}); recompiling");
                cache.remove(digest);
                return Ok(None);
            }
        };
        let pre = pre_instantiate(backend, &component, origin)?;
        let definition = match serde_json::from_slice::<GuestDefinition>(&entry.definition) {
            Ok(definition) => definition,
            Err(_) => {
                // It could not be read when the component was compiled (a timeout under load,
                // a cancel, a broken op): read it now, and keep it if it reads.
                let definition = self.read_definition(&pre, origin)?;
                self.keep(digest, &component, Some(&definition));
                definition
            }
        };
        Ok(Some((component, pre, component::convert_definition(definition, origin)?)))
    }

    /// The definition the guest returns, not yet converted or checked.
    fn read_definition(&self, pre: &OpComponentPre<Sandbox>, origin: &str) -> Result<GuestDefinition, LoadError> {
        let bad = |reason: String| LoadError::Definition { origin: origin.into(), reason };
        struct Discard;
        impl StepEvents for Discard {
            fn emitted(&mut self, _: Emission) {}
        }
        let log = LogCapture::new(DEFINITION_LIMITS.max_log_bytes);
        let emitter = Emitter::new("definition", Arc::from(Vec::new()), DEFINITION_LIMITS, Box::new(Discard));
        let _slot = self.slots.acquire();
        let bounds = Bounds { deadline: Deadline::after(DEFINITION_LIMITS.timeout), max_open_files: 0 };
        let sandbox = Sandbox::new(Vec::new(), bounds, Limiter::new(DEFINITION_LIMITS.memory_bytes), emitter, log);
        let mut store = self.store(pre.engine(), sandbox, DEFINITION_LIMITS.timeout, None);
        // A limit hit inside a host call (the definition's time) is named; other traps as before.
        let trapped = |e: wasmtime::Error, store: &mut Store<Sandbox>| match store.data_mut().limiter.hit.take() {
            Some(hit) => bad(hit.to_string()),
            None => match (store.data().deadline.passed_in_a_wait(), e.downcast_ref::<Trap>()) {
                (Some(late), _) => bad(late.to_string()),
                (None, Some(Trap::Interrupt)) => bad(store.data().deadline.exceeded().to_string()),
                (None, _) => bad(format!("{e:#}")),
            },
        };
        let instance = pre.instantiate(&mut store).map_err(|e| trapped(e, &mut store))?;
        let def = instance.sandmap_op_op().call_definition(&mut store).map_err(|e| trapped(e, &mut store))?;
        if let Some(late) = store.data().deadline.passed_in_a_wait() {
            return Err(bad(late.to_string()));
        }
        Ok(def.into())
    }

    /// A store for a sandbox on `engine` (the one its component was compiled for).
    fn store(&self, engine: &Engine, sandbox: Sandbox, timeout: Duration, fuel: Option<u64>) -> Store<Sandbox> {
        let mut store = Store::new(engine, sandbox);
        if self.fuel {
            // Only fails when the engine does not meter fuel, which `self.fuel` rules out.
            let _ = store.set_fuel(fuel.unwrap_or(u64::MAX));
        }
        store.limiter(|s| &mut s.limiter);
        // One tick more than the time left: the current tick is already partly gone, and the
        // limit must never fire early. (A wait in a host call is cut at the exact deadline.)
        // Checked again at least every CANCEL_CHECK_TICKS, so that a cancel stops the step.
        let ticks_for = |left: Duration| {
            u64::try_from(left.as_millis() / EPOCH_TICK.as_millis()).unwrap_or(u64::MAX).saturating_add(1)
        };
        let deadline = Instant::now().checked_add(timeout);
        store.set_epoch_deadline(ticks_for(timeout).min(CANCEL_CHECK_TICKS));
        let cancelled = self.cancelled.clone();
        store.epoch_deadline_callback(move |_| {
            if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            let Some(deadline) = deadline else { return Ok(wasmtime::UpdateDeadline::Continue(CANCEL_CHECK_TICKS)) };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            Ok(wasmtime::UpdateDeadline::Continue(ticks_for(left).min(CANCEL_CHECK_TICKS)))
        });
        store
    }

    /// Run one step attempt in a fresh sandbox. Accepted emissions go to `events` as they happen.
    /// Never panics on anything the component does: every failure is a [`StepFailure`].
    pub fn run(&self, op: &LoadedOp, step: &StepSpec, events: Box<dyn StepEvents>) -> StepOutcome {
        let started = Instant::now();
        let log = LogCapture::new(step.limits.max_log_bytes);
        let result = self.run_inner(op, step, events, log.clone());
        StepOutcome { result, log: log.snapshot(), duration: started.elapsed() }
    }

    fn run_inner(
        &self,
        op: &LoadedOp,
        step: &StepSpec,
        events: Box<dyn StepEvents>,
        log: LogCapture,
    ) -> Result<(), StepFailure> {
        for (name, value) in &step.inputs {
            if value.len() as u64 > step.limits.max_value_bytes {
                return Err(StepFailure::Limit {
                    limit: "max_value_bytes".into(),
                    value: format!(
                        "{} (input \"{name}\" is {} bytes)",
                        crate::units::format_bytes(step.limits.max_value_bytes),
                        value.len()
                    ),
                });
            }
        }
        let grants = self.held.preopens(&step.grants)?;
        let emitter = Emitter::new(&step.op, step.outputs.clone(), step.limits, events);
        // Held until the Store (and its pool slot) is dropped at the end of this function.
        let _slot = self.slots.acquire();
        // The deadline starts once the slot is held: waiting for one is not the step's time.
        let bounds = Bounds {
            deadline: Deadline::after(step.limits.timeout),
            max_open_files: step.limits.max_open_files.min(self.open_files_budget),
        };
        let sandbox = Sandbox::new(grants, bounds, Limiter::new(step.limits.memory_bytes), emitter, log.clone());
        let mut store = self.store(op.pre.engine(), sandbox, step.limits.timeout, step.limits.fuel);

        // Lent to the guest as they are (the bindings borrow): nothing is copied on the way in.
        let collect_failures: Vec<types::CollectFailure<'_>> = step
            .collect_failures
            .iter()
            .map(|f| types::CollectFailure { input: &f.input, step_key: &f.step_key, error: &f.error })
            .collect();
        let context = types::RunContext {
            step_key: &step.key,
            mapping_key: step.mapping_key.as_deref(),
            attempt: step.attempt,
            collect_failures: &collect_failures,
        };
        let inputs: Vec<types::NamedValue<'_>> =
            step.inputs.iter().map(|(name, value)| types::NamedValue { name, value: value.as_str() }).collect();
        let config = step.config.as_str();
        let called = op
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.sandmap_op_op().call_run(&mut store, context, config, &inputs));

        let state = store.data_mut();
        let failure = match called {
            // A refused emission is the failure even if the op carried on and returned Ok.
            Ok(Ok(())) => match state.emitter.failure.take().or_else(|| state.deadline.passed_in_a_wait()) {
                Some(failure) => failure,
                None => return state.emitter.check_required(),
            },
            Ok(Err(op_error)) => match (state.emitter.failure.take(), state.limiter.hit.take()) {
                (Some(failure), _) => failure,
                // The op met its memory limit (an allocation failed) and reported that as its own
                // error: one text for the limit, however the op took it.
                (None, Some(StepFailure::Limit { limit, value })) => {
                    StepFailure::Limit { limit, value: format!("{value} (the op then failed: {})", op_error.message) }
                }
                (None, _) => StepFailure::Op(op_error.message),
            },
            Err(trap) => {
                classify_trap(&trap, state, step.limits, &log, self.cancelled.load(std::sync::atomic::Ordering::SeqCst))
            }
        };
        // An op that fails after an open was refused for `max_open_files` most likely failed of
        // it: name the limit, and what the op said.
        Err(if state.files.hit && !matches!(failure, StepFailure::Limit { .. }) {
            state.files.failure(&failure)
        } else {
            failure
        })
    }
}

/// An engine (Cranelift, component model, epoch interruption) whose pool slots are reset by
/// zeroing, and whether it pools instances (it allocates on demand where the pool is refused).
fn new_engine(settings: &RuntimeConfig) -> Result<(Engine, bool), RuntimeError> {
    let mut config = engine_config(settings);
    let on_demand = |config: &mut Config| {
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        Engine::new(config).map(|engine| (engine, false)).map_err(|e| RuntimeError(e.to_string()))
    };
    if !settings.pooling {
        return on_demand(&mut config);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(settings.max_concurrent)));
    // The pool reserves address space up front; where that is refused (a tight `ulimit -v`,
    // valgrind), run with on-demand allocation instead of not at all.
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, true)),
        Err(error) => {
            tracing::warn!("pooling allocator unavailable ({error}); allocating instances on demand");
            on_demand(&mut config)
        }
    }
}

/// A pooling engine whose slots are reset by scanning for dirty pages (`PAGEMAP_SCAN` where the
/// kernel has it; wasmtime zeroes where it does not). No on-demand fallback: without its own
/// pool it has no use.
fn scanning_engine(settings: &RuntimeConfig) -> Result<Engine, RuntimeError> {
    let mut config = engine_config(settings);
    let mut pool = pooling(settings.max_concurrent);
    pool.pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).map_err(|e| RuntimeError(e.to_string()))
}

/// What every engine shares: the compiler settings (so one compile cache serves them all).
fn engine_config(settings: &RuntimeConfig) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    config.parallel_compilation(true);
    config.consume_fuel(settings.fuel);
    config
}

/// The linker for `engine`: WASI preview 2, the `sandmap:op/host` interface, the guards, the
/// directory listing and the digest interface.
fn linker(engine: &Engine) -> Result<Linker<Sandbox>, RuntimeError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| RuntimeError(e.to_string()))?;
    guards::add_to_linker(&mut linker).map_err(|e| RuntimeError(format!("{e:#}")))?;
    listing::add_to_linker(&mut linker).map_err(|e| RuntimeError(format!("{e:#}")))?;
    OpComponent::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)
        .map_err(|e| RuntimeError(e.to_string()))?;
    digest::add_to_linker(&mut linker).map_err(|e| RuntimeError(format!("{e:#}")))?;
    Ok(linker)
}

/// How much of a pool slot's linear memory is zeroed in place on reuse rather than given back
/// with `madvise(MADV_DONTNEED)`. The `madvise` is what made two workers slower than one: it
/// shoots down TLB entries on every core running a thread of this process (an IPI per clone).
/// Measured on a 10,000-clone no-op fan-out, 2 workers: 46 µs/clone at 1 MiB, 18 µs/clone from
/// 2 MiB up (a Rust op's heap fits). Only pages a guest touched stay resident. For Python and
/// JavaScript ops (snapshots of 9–14 MiB) 16 MiB is what counts: at 4 MiB or less a clone cost
/// 4.4 ms (Python) and 2.4 ms (JS) instead of 0.95 and 0.65, each refaulting its snapshot;
/// 24–64 MiB gained nothing more. On the scanning engine (`memory_reset`) it bounds the pages
/// reset in place.
const KEEP_RESIDENT_MEMORY: usize = 16 << 20;
/// The same for tables.
const KEEP_RESIDENT_TABLE: usize = 1 << 20;

/// Pre-reserved slots for `max_concurrent` sandboxes (plus one for reading definitions), each
/// with sandmap's per-step caps. Memory images are copy-on-write.
/// Instance slots in the pool: one per concurrent step, plus one for reading definitions.
fn pool_slots(max_concurrent: usize) -> u32 {
    u32::try_from(max_concurrent.saturating_add(1)).unwrap_or(u32::MAX)
}

fn pooling(max_concurrent: usize) -> PoolingAllocationConfig {
    let slots = pool_slots(max_concurrent);
    let per = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(per(limiter::MAX_INSTANCES)))
        .total_memories(slots.saturating_mul(per(limiter::MAX_MEMORIES)))
        .total_tables(slots.saturating_mul(per(limiter::MAX_TABLES)))
        .max_core_instances_per_component(per(limiter::MAX_INSTANCES))
        .max_memories_per_component(per(limiter::MAX_MEMORIES))
        .max_tables_per_component(per(limiter::MAX_TABLES))
        .table_elements(limiter::MAX_TABLE_ELEMENTS)
        // Fiber stacks serve async calls only (sandmap calls are sync), but the pool sets up
        // 1,000 by default, a guard-page `mprotect` each, at every start.
        .total_stacks(slots)
        .max_memory_size(MAX_MEMORY_BYTES)
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .table_keep_resident(KEEP_RESIDENT_TABLE);
    pool
}

/// Name the limit or cause behind a trap.
fn classify_trap(
    error: &wasmtime::Error,
    state: &mut Sandbox,
    limits: Limits,
    log: &LogCapture,
    cancelled: bool,
) -> StepFailure {
    if let Some(hit) = state.limiter.hit.take() {
        return hit;
    }
    if let Some(failure) = state.emitter.failure.take() {
        return failure;
    }
    if let Some(wasmtime::component::ResourceTableError::Full) = error.downcast_ref() {
        return StepFailure::Limit { limit: "WASI handles".into(), value: MAX_HANDLES.to_string() };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if cancelled => StepFailure::Cancelled,
        Some(Trap::Interrupt) => state.deadline.exceeded(),
        Some(Trap::OutOfFuel) => StepFailure::Limit {
            limit: "fuel".into(),
            value: limits.fuel.map_or_else(|| "unset".into(), |f| f.to_string()),
        },
        Some(Trap::StackOverflow) => StepFailure::Trap(format!(
            "stack overflow (wasm stack limit {})",
            crate::units::format_bytes(MAX_WASM_STACK as u64)
        )),
        Some(trap) => {
            let why = log.snapshot().last_error().map(|line| format!(" ({})", printable(line))).unwrap_or_default();
            StepFailure::Trap(format!("{trap}{why}"))
        }
        None => StepFailure::Trap(format!("{error:#}")),
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        drop(self.ticker_stop.take());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{JsonText, MetadataValue};

    #[test]
    fn what_a_step_sends_back_round_trips_through_json() {
        let emission = Emission::Record {
            output: "result".into(),
            key: "a_txt".into(),
            value: JsonText::parse("{\"n\":1}").unwrap(),
            metadata: vec![("filename".into(), MetadataValue::Text("a.txt".into()))],
        };
        let back: Emission = serde_json::from_str(&serde_json::to_string(&emission).unwrap()).unwrap();
        assert_eq!(back, emission);
        let outcome = StepOutcome {
            result: Err(StepFailure::Limit { limit: "time".into(), value: "1 s".into() }),
            log: StepLog {
                entries: vec![LogEntry { source: LogSource::Stderr, text: "x".into(), at_ms: 0 }],
                truncated_bytes: 3,
            },
            duration: Duration::from_millis(1500),
        };
        let back: StepOutcome = serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
        assert_eq!((back.result, back.log, back.duration), (outcome.result, outcome.log, outcome.duration));
        // Every kind of failure travels, the ones that are only a message too.
        for failure in [
            StepFailure::Op("no".into()),
            StepFailure::Emission("bad key".into()),
            StepFailure::MissingOutput("none".into()),
            StepFailure::Trap("unreachable".into()),
            StepFailure::Sandbox("no grant".into()),
            StepFailure::Remote("worker lost".into()),
        ] {
            let back: StepFailure = serde_json::from_str(&serde_json::to_string(&failure).unwrap()).unwrap();
            assert_eq!(back, failure);
        }
    }

    #[test]
    fn a_value_that_is_not_json_is_refused_on_arrival() {
        let sent = r#"{"kind":"output","output":"result","value":"{not json","metadata":[]}"#;
        assert!(serde_json::from_str::<Emission>(sent).is_err());
    }
}
