//! The state of one step's Store: its WASI context (grants only, no env, no args, no network,
//! captured stdio), its limiter, its emitter and its log. A fresh one for every step attempt.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::sandmap::op::{host, types};
use super::emitter::Emitter;
use super::error::StepFailure;
use super::limiter::Limiter;
use super::log::{LogCapture, LogSource};
use crate::step::{Access, Grant};

/// Store data of one step attempt.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    /// Memory and table limits.
    pub limiter: Limiter,
    /// Emission checks and streaming.
    pub emitter: Emitter,
    /// The step's log.
    pub log: LogCapture,
}

impl Sandbox {
    /// A sandbox that sees exactly `grants`, and nothing else of the host.
    pub fn new(grants: &[Grant], limiter: Limiter, emitter: Emitter, log: LogCapture) -> Result<Self, StepFailure> {
        let mut wasi = WasiCtxBuilder::new();
        // Each step owns its worker thread: file I/O runs on it, not through a hand-off to
        // wasmtime-wasi's tokio blocking pool (which cost more than the clone itself).
        wasi.allow_blocking_current_thread(true);
        // Stdin stays closed, env and args empty (the builder's defaults); stdio is captured.
        wasi.stdout(log.stream(LogSource::Stdout)).stderr(log.stream(LogSource::Stderr));
        // Deny-all network: the interfaces stay linked (componentize-py/js guests import them),
        // every use fails inside the guest.
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        for grant in grants {
            let perms = match grant.access {
                Access::Read => FsPerms::ReadOnly,
                Access::ReadWrite => FsPerms::ReadWrite,
            };
            wasi.preopened_dir(&grant.host, &grant.guest, perms).map_err(|e| {
                StepFailure::Sandbox(format!("cannot open grant {} (as {}): {e}", grant.host.display(), grant.guest))
            })?;
        }
        Ok(Self { wasi: wasi.build(), table: ResourceTable::new(), limiter, emitter, log })
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
