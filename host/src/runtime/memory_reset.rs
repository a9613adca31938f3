//! How a pool slot's memory is put back to its first state between two sandboxes.
//!
//! With `PAGEMAP_SCAN` (Linux 6.7+), wasmtime asks the kernel which pages of a slot the last
//! guest dirtied and resets only those; without it, it zeroes the whole resident part of the
//! slot (up to `linear_memory_keep_resident`), which was a quarter of the seed job's CPU time.
//!
//! But wasmtime 48's scan only resets dirty pages that are *present*: a page the last guest
//! wrote that the kernel has since swapped out is neither reset nor decommitted, and the next
//! sandbox in the slot would read it (wasmtime#14357). A fresh sandbox per step is a promise, so
//! the scan is used only on a host with no swap at all.
//!
//! And it pays only for small memories: wasmtime 48 reads at most 32 dirty runs per scan and
//! gives back everything past them, so an interpreter's heap (dirtied in hundreds of runs) is
//! given back and faulted in again on every clone, which made a Python clone 3.6× and a
//! JavaScript clone 2× slower than zeroing. So the runtime keeps two engines, and a component
//! whose initial linear memory is small goes to the scanning one (see [`scans_dirty_pages`]).

use std::path::Path;

use wasmtime::wasmparser::{Parser, Payload};

/// Whether resetting memory with `PAGEMAP_SCAN` keeps every sandbox fresh on this host: true
/// only where `/proc/swaps` can be read and lists no swap area. (Where the kernel lacks the
/// ioctl, wasmtime falls back to zeroing by itself.)
pub(crate) fn pagemap_scan_is_fresh() -> bool {
    swaps_listed(Path::new("/proc/swaps")) == Some(0)
}

/// Initial linear memory up to which a component's slots are reset by scanning: a Rust op starts
/// at 1–2 MiB (its shadow stack and data); componentize-py's process_file at 13.3 MiB and
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
        for (name, bytes) in crate::plugins::builtin::PLUGINS {
            let initial = initial_memory_bytes(bytes).unwrap();
            // A Rust op: its 1 MiB shadow stack and its data, in one memory.
            assert!((1 << 20..=2 << 20).contains(&initial), "{name}: {initial}");
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
