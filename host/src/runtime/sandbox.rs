//! The state of one step's Store: its WASI context (grants only, no env, no args, no network,
//! captured stdio), its limiter, its emitter and its log. A fresh one for every step attempt.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::Dir;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::sandmap::op::{host, types};
use super::emitter::Emitter;
use super::error::StepFailure;
use super::guards::{Deadline, OpenFiles};
use super::limiter::Limiter;
use super::log::{LogCapture, LogSource};

/// WASI handles (open files, directory listings, streams, pollables) one step may hold at once;
/// each costs the host memory, and wasmtime's default allows a million.
pub const MAX_HANDLES: usize = 10_000;

/// Store data of one step attempt.
pub struct Sandbox {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The granted directories (shared handles) and where the op sees them.
    pub(super) grants: Vec<(Dir, String)>,
    /// Files and directories open, against `max_open_files`.
    pub(super) files: OpenFiles,
    /// Bytes of directory entries held by the listings it has open (`listing`).
    pub(super) listed_bytes: usize,
    /// When the attempt's time is up, inside host calls too.
    pub(super) deadline: Deadline,
    /// Memory and table limits.
    pub limiter: Limiter,
    /// Emission checks and streaming.
    pub emitter: Emitter,
    /// The step's log.
    pub log: LogCapture,
}

/// What bounds one sandbox besides its memory.
pub struct Bounds {
    /// The attempt's deadline.
    pub deadline: Deadline,
    /// Files and directories it may hold open.
    pub max_open_files: u64,
}

impl Sandbox {
    /// A sandbox that sees exactly `grants` (held directories and their guest paths), and
    /// nothing else of the host.
    pub fn new(
        grants: Vec<(Dir, String)>,
        bounds: Bounds,
        limiter: Limiter,
        emitter: Emitter,
        log: LogCapture,
    ) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        // Each step owns its worker thread: file I/O runs on it, not through a hand-off to
        // wasmtime-wasi's tokio blocking pool (which cost more than the clone itself).
        wasi.allow_blocking_current_thread(true);
        // Stdin stays closed, env and args empty (the builder's defaults); stdio is captured.
        wasi.stdout(log.stream(LogSource::Stdout)).stderr(log.stream(LogSource::Stderr));
        // Deny-all network: the interfaces stay linked (componentize-py/js guests import them),
        // every use fails inside the guest.
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        // No preopens here: `guards::get_directories` hands the guest `grants`.
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Self {
            wasi: wasi.build(),
            table,
            grants,
            files: OpenFiles::new(bounds.max_open_files),
            listed_bytes: 0,
            deadline: bounds.deadline,
            limiter,
            emitter,
            log,
        }
    }

    /// Record a refused emission; the first one is the step's failure.
    fn refuse(&mut self, failure: StepFailure) -> types::EmitError {
        let message = failure.to_string();
        self.emitter.failure.get_or_insert(failure);
        types::EmitError { message }
    }

    /// An op that keeps emitting after the host refused an emission is stopped (trapped).
    fn check_not_failed(&self) -> wasmtime::Result<()> {
        if self.emitter.failure.is_some() {
            wasmtime::bail!("the op emitted again after the host refused an emission");
        }
        Ok(())
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for Sandbox {}

impl host::Host for Sandbox {
    fn emit_dynamic(&mut self, output: types::DynamicOutput) -> wasmtime::Result<Result<(), types::EmitError>> {
        self.check_not_failed()?;
        Ok(self.emitter.record(output).map_err(|f| self.refuse(f)))
    }

    fn emit_output(&mut self, output: types::Output) -> wasmtime::Result<Result<(), types::EmitError>> {
        self.check_not_failed()?;
        Ok(self.emitter.output(output).map_err(|f| self.refuse(f)))
    }

    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        let source = match level {
            types::LogLevel::Trace => LogSource::Trace,
            types::LogLevel::Debug => LogSource::Debug,
            types::LogLevel::Info => LogSource::Info,
            types::LogLevel::Warn => LogSource::Warn,
            types::LogLevel::Error => LogSource::Error,
        };
        self.log.write(source, message.as_bytes());
        Ok(())
    }
}
