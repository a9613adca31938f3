//! Per-store resource limits: memory, tables and instance counts, recorded when hit so that the
//! step's error names the limit rather than a bare trap.

use wasmtime::ResourceLimiter;

use super::error::StepFailure;
use crate::units::format_bytes;

/// Core instances one step may create. A Rust op has a handful; a componentize-py op a few
/// dozen. wasmtime's default (10,000) is far too many for untrusted code.
pub const MAX_INSTANCES: usize = 100;
/// Tables one step may create (wasmtime's default: 10,000).
pub const MAX_TABLES: usize = 32;
/// Linear memories one step may create (wasmtime's default: 10,000).
pub const MAX_MEMORIES: usize = 10;
/// Elements per table (wasmtime's default: unbounded).
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The store's limiter. Memory is counted across all of the step's linear memories.
#[derive(Debug)]
pub struct Limiter {
    memory_limit: usize,
    memory_in_use: usize,
    /// The limit that stopped the step, if one did.
    pub hit: Option<StepFailure>,
}

impl Limiter {
    /// A limiter allowing `memory_limit` bytes of linear memory in all.
    pub fn new(memory_limit: u64) -> Self {
        Self { memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX), memory_in_use: 0, hit: None }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_in_use.saturating_sub(current).saturating_add(desired);
        if total > self.memory_limit {
            self.hit =
                Some(StepFailure::Limit { limit: "memory".into(), value: format_bytes(self.memory_limit as u64) });
            wasmtime::bail!("memory limit reached");
        }
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.hit =
                Some(StepFailure::Limit { limit: "table elements".into(), value: MAX_TABLE_ELEMENTS.to_string() });
            wasmtime::bail!("table limit reached");
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
