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

use std::path::Path;

/// Whether resetting memory with `PAGEMAP_SCAN` keeps every sandbox fresh on this host: true
/// only where `/proc/swaps` can be read and lists no swap area. (Where the kernel lacks the
/// ioctl, wasmtime falls back to zeroing by itself.)
pub(crate) fn pagemap_scan_is_fresh() -> bool {
    swaps_listed(Path::new("/proc/swaps")) == Some(0)
}

/// The swap areas `/proc/swaps` lists (its first line is a header), or `None` if it cannot be read.
fn swaps_listed(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().skip(1).filter(|line| !line.trim().is_empty()).count())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::swaps_listed;

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
