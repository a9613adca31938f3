//! How a pool slot's memory is put back to its first state between two sandboxes.
//!
//! By default wasmtime zeroes the slot's resident part (copying the memory image back over
//! it, up to `linear_memory_keep_resident`) and hands the rest back with `madvise`. That is a
//! quarter of the seed job's CPU. With `PAGEMAP_SCAN` (Linux 6.7+) it can instead ask the
//! kernel which pages the last guest wrote and reset only those: a no-op clone costs half.
//!
//! sandmap does not do that for its own commands, because wasmtime 48's scan resets only dirty
//! pages that are *present* at that moment. A page the last guest wrote that is swapped out,
//! or that the kernel is moving (compaction, NUMA balancing: a migration entry reads as
//! swapped), is neither reset nor handed back, and the next sandbox in the slot reads it
//! (wasmtime#14357 fixes the swapped case). Moves happen on hosts without swap too, so no check
//! of the host makes it safe; a fresh sandbox per step is a promise to untrusted ops. An
//! embedder whose ops may see each other's data can turn it on
//! (`RuntimeConfig::scan_dirty_pages`); even then, only on a host with no swap.
//!
//! And it pays only for small memories: wasmtime 48 reads at most 32 dirty runs per scan and
//! hands back everything past them, so an interpreter's heap (dirtied in hundreds of runs) is
//! faulted in again on every clone, which made a Python clone 3.6× and a JavaScript clone 2×
//! slower than zeroing. So the scan has an engine of its own, which takes only components whose
//! initial linear memory is small (see [`scans_dirty_pages`]).

use std::path::Path;

use wasmtime::wasmparser::{Parser, Payload};

/// Whether the host has no swap: `/proc/swaps` can be read and lists no swap area. (Where the
/// kernel lacks `PAGEMAP_SCAN`, wasmtime zeroes by itself.)
pub(crate) fn no_swap() -> bool {
    swaps_listed(Path::new("/proc/swaps")) == Some(0)
}

/// Initial linear memory up to which a component's slots are reset by scanning: a Rust op starts
/// at 0.3–2 MiB (its shadow stack and data); componentize-py's process_file at 13.3 MiB and
/// componentize-js's at 9.1 MiB (their interpreters' snapshots).
const SCANNED_MEMORY_UP_TO: u64 = 4 << 20;

/// Whether a component's pool slots should be reset by scanning for dirty pages: its core
/// modules' memories start, all together, at most [`SCANNED_MEMORY_UP_TO`]. A component that
/// cannot be read here is left to the zeroing engine (which then reports what is wrong with it).
pub(crate) fn scans_dirty_pages(component: &[u8]) -> bool {
    initial_memory_bytes(component).is_some_and(|bytes| bytes <= SCANNED_MEMORY_UP_TO)
}

/// The initial size of every memory that the core modules nested in `component` define.
fn initial_memory_bytes(component: &[u8]) -> Option<u64> {
    let mut total = 0u64;
    for payload in Parser::new(0).parse_all(component) {
        if let Payload::MemorySection(memories) = payload.ok()? {
            for memory in memories {
                let memory = memory.ok()?;
                // The component is not validated yet: a page size past 2^63 is not one.
                let page = 1u64.checked_shl(memory.page_size_log2.unwrap_or(16))?;
                total = total.saturating_add(memory.initial.saturating_mul(page));
            }
        }
    }
    Some(total)
}

/// The swap areas `/proc/swaps` lists (its first line is a header), or `None` if it cannot be read.
fn swaps_listed(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().skip(1).filter(|line| !line.trim().is_empty()).count())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{initial_memory_bytes, swaps_listed};

    #[test]
    fn the_built_in_ops_are_small_enough_to_be_scanned() {
        for crate::plugins::builtin::Builtin { name, bytes, .. } in crate::plugins::builtin::PLUGINS {
            let initial = initial_memory_bytes(bytes).unwrap();
            // A Rust op: its shadow stack (1 MiB, 64 KiB for process_file: see its build.rs) and
            // its data, in one memory.
            let stack = if *name == "process_file" { 64 << 10 } else { 1 << 20 };
            assert!((stack..=stack + (1 << 20)).contains(&initial), "{name}: {initial}");
            assert!(super::scans_dirty_pages(bytes), "{name}");
        }
        assert_eq!(initial_memory_bytes(b"\0asm\x0d\0\x01\0 cut short"), None);
    }

    #[test]
    fn swap_areas_are_counted_below_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swaps");
        std::fs::write(&path, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n").unwrap();
        assert_eq!(swaps_listed(&path), Some(0));
        std::fs::write(
            &path,
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0 partition\t4194300\t0\t100\n",
        )
        .unwrap();
        assert_eq!(swaps_listed(&path), Some(1));
        assert_eq!(swaps_listed(&dir.path().join("missing")), None);
    }
}
