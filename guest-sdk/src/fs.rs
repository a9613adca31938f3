//! Listing a directory with one host call per entry.
//!
//! `std::fs::read_dir` on `wasm32-wasip2` goes through wasi-libc, whose `readdir` asks the host
//! for each entry's `metadata-hash-at` (a `stat` by name) only to fill in `d_ino`, which nothing
//! here reads. On 10,000 files that doubled the host's `stat`s (20,043 `statx` calls, strace) and
//! made the listing the run's longest serial phase. [`read_dir`] reads the directory stream of
//! `wasi:filesystem` itself, whose entries already carry their type, and gives the same entries
//! as `std::fs::read_dir` with `DirEntry::file_type` (a symlink is reported as a symlink, never
//! followed).

use std::io;

/// What a directory entry is, as the entry itself says: a symlink is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (to anything, or to nothing).
    Symlink,
    /// A socket, a fifo, a device, or a type the host does not know.
    Other,
}

/// One entry of a directory: its name (never `.` or `..`) and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's file name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
}

/// The entries of the directory at `path` (an absolute guest path inside a granted directory),
/// in the order the host lists them.
///
/// Errors are `std::fs::read_dir`'s own: whenever the direct read cannot be used or fails (a
/// relative path or one with `.` or `..`, a path outside every granted directory, a missing
/// directory, a name that is not UTF-8), the directory is listed again with `std::fs`, which
/// reports what is wrong exactly as it always did.
pub fn read_dir(path: &str) -> io::Result<Vec<DirEntry>> {
    match direct::read_dir(path) {
        Some(entries) => Ok(entries),
        None => read_dir_std(path),
    }
}

/// [`read_dir`] through `std::fs`.
fn read_dir_std(path: &str) -> io::Result<Vec<DirEntry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let kind = if kind.is_symlink() {
            EntryKind::Symlink
        } else if kind.is_dir() {
            EntryKind::Dir
        } else if kind.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        entries.push(DirEntry { name: entry.file_name().to_string_lossy().into_owned(), kind });
    }
    Ok(entries)
}

/// The part of an absolute, normalized `path` below the granted directory `preopen` (`""` for
/// the directory itself), if `path` lies in it: whole components only, so `/data2` is not in
/// `/data`. `None` for a path with `.`, `..` or empty components (std resolves those).
// Natively only the tests call it: `std::fs` lists every directory there.
#[cfg_attr(not(target_os = "wasi"), allow(dead_code))]
fn below<'a>(path: &'a str, preopen: &str) -> Option<&'a str> {
    if !plain(path) {
        return None;
    }
    let root = preopen.trim_end_matches('/');
    if root.is_empty() {
        return path.strip_prefix('/');
    }
    let tail = path.strip_prefix(root)?;
    match tail.strip_prefix('/') {
        Some(below) => Some(below),
        None if tail.is_empty() => Some(""),
        None => None,
    }
}

/// Whether `path` is an absolute path in plain form: `/`, or `/`-separated names with no empty,
/// `.` or `..` component and no trailing `/`.
#[cfg_attr(not(target_os = "wasi"), allow(dead_code))]
fn plain(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| rest.split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

#[cfg(target_os = "wasi")]
mod direct {
    use super::{DirEntry, EntryKind, below, plain};
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, DescriptorType, OpenFlags, PathFlags};

    /// The entries through `wasi:filesystem`, or `None` to let `std::fs` list them.
    pub(super) fn read_dir(path: &str) -> Option<Vec<DirEntry>> {
        // The granted directory with the longest path that holds `path`, as wasi-libc picks it.
        let preopens = wasip2::filesystem::preopens::get_directories();
        // wasi-libc matches a grant's name as written (`/data/`, `//data`, `/./data` each
        // differently): only where every name is in plain form do both pick the same grant.
        if !preopens.iter().all(|(_, guest)| plain(guest)) {
            return None;
        }
        let (descriptor, relative) = preopens
            .iter()
            .filter_map(|(descriptor, guest)| Some((descriptor, guest.len(), below(path, guest)?)))
            .max_by_key(|&(_, len, _)| len)
            .map(|(descriptor, _, relative)| (descriptor, relative))?;
        let opened;
        let dir: &Descriptor = if relative.is_empty() {
            descriptor
        } else {
            opened = descriptor
                .open_at(PathFlags::SYMLINK_FOLLOW, relative, OpenFlags::DIRECTORY, DescriptorFlags::READ)
                .ok()?;
            &opened
        };
        let stream = dir.read_directory().ok()?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.read_directory_entry().ok()? {
            if entry.name == "." || entry.name == ".." {
                continue;
            }
            let kind = match entry.type_ {
                DescriptorType::RegularFile => EntryKind::File,
                DescriptorType::Directory => EntryKind::Dir,
                DescriptorType::SymbolicLink => EntryKind::Symlink,
                _ => EntryKind::Other,
            };
            entries.push(DirEntry { name: entry.name, kind });
        }
        Some(entries)
    }
}

#[cfg(not(target_os = "wasi"))]
mod direct {
    /// Natively, `std::fs` lists every directory.
    pub(super) fn read_dir(_path: &str) -> Option<Vec<super::DirEntry>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_below_a_granted_directory_by_whole_components_only() {
        assert_eq!(below("/data", "/data"), Some(""));
        assert_eq!(below("/data/sub/x", "/data"), Some("sub/x"));
        assert_eq!(below("/data/sub", "/data/"), Some("sub"));
        assert_eq!(below("/data2", "/data"), None);
        assert_eq!(below("/data/sub", "/"), Some("data/sub"));
        assert_eq!(below("/", "/"), Some(""));
        // Left to std: relative paths, dots, doubled or trailing slashes.
        assert_eq!(below("data", "/data"), None);
        assert_eq!(below("/data/../etc", "/data"), None);
        assert_eq!(below("/data/./sub", "/data"), None);
        assert_eq!(below("/data//sub", "/data"), None);
        assert_eq!(below("/data/", "/data"), None);
    }

    #[test]
    fn only_grant_names_in_plain_form_are_matched_directly() {
        for name in ["/", "/data", "/data/sub", "/a_b.c"] {
            assert!(plain(name), "{name}");
        }
        for name in ["", "data", "/data/", "//data", "/./data", "/data/..", "/data//sub"] {
            assert!(!plain(name), "{name}");
        }
    }

    #[test]
    fn natively_the_entries_are_std_s() {
        let dir = std::env::temp_dir().join(format!("sandmap-guest-fs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"a").unwrap();
        let mut entries = read_dir(dir.to_str().unwrap()).unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            entries,
            [
                DirEntry { name: "a.txt".into(), kind: EntryKind::File },
                DirEntry { name: "sub".into(), kind: EntryKind::Dir }
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read_dir(dir.to_str().unwrap()).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
