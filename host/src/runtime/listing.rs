//! `wasi:filesystem/types.descriptor.read-directory`, shadowing wasmtime-wasi's in the linker.
//!
//! wasmtime-wasi 48 `lstat`s every entry to learn its type. The kernel already gives the type
//! with the entry (`d_type`, on ext4, xfs, btrfs, tmpfs and most others), so this listing asks
//! only where it does not (`DT_UNKNOWN`). Listing is the serial phase of a fan-out (no clone
//! starts before the op has listed and sorted its folder), and the `lstat`s were a tenth of a
//! 10,000-file listing run's CPU (perf: a path walk and `statx` per entry).
//!
//! Everything else is as wasmtime-wasi does it: the entries are read at once (the stream holds
//! no descriptor, so it cannot be used to hold files open past `max_open_files`), in the
//! directory's order, without `.` and `..`; a name that is not UTF-8 is an `illegal-byte-sequence`
//! entry; the stream is a handle in the step's table, counted against its handle limit.
//!
//! One thing more: what the listings a step holds open take in host memory is bounded
//! ([`MAX_LISTED_BYTES`]). wasmtime-wasi holds each whole listing too, outside every limit, so an
//! op opening a big folder's listing again and again, keeping each, could make the host hold
//! gigabytes. Past the bound, a listing fails with `insufficient-memory`, as an `ENOMEM` would.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{DescriptorType, DirectoryEntry, ErrorCode};

use super::sandbox::Sandbox;

/// The bytes of directory entries one step's open listings may hold (names, and each entry's
/// size in the host): a folder of a million files with 30-byte names is ~56 MB.
pub const MAX_LISTED_BYTES: usize = 64 << 20;

/// One entry as the guest receives it: named and typed, or the error in its place.
type Entry = Result<DirectoryEntry, ErrorCode>;

/// A directory's entries, read when it was opened for listing, handed out one by one; and the
/// bytes it counts against [`MAX_LISTED_BYTES`] until it is dropped.
pub struct DirectoryEntries {
    entries: std::vec::IntoIter<Entry>,
    bytes: usize,
}

/// Link the listing over wasmtime-wasi's (which must already be in `linker`).
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(&format!("wasi:filesystem/types@{}", super::guards::WASI))?;
    types.resource("directory-entry-stream", ResourceType::host::<DirectoryEntries>(), |mut store, rep| {
        let sandbox = store.data_mut();
        let listing = sandbox.table.delete(Resource::<DirectoryEntries>::new_own(rep))?;
        sandbox.listed_bytes = sandbox.listed_bytes.saturating_sub(listing.bytes);
        Ok(())
    })?;
    types.func_wrap("[method]descriptor.read-directory", read_directory)?;
    types.func_wrap("[method]directory-entry-stream.read-directory-entry", read_directory_entry)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn read_directory(
    mut store: StoreContextMut<'_, Sandbox>,
    (fd,): (Resource<Descriptor>,),
) -> wasmtime::Result<(Result<Resource<DirectoryEntries>, ErrorCode>,)> {
    let sandbox = store.data_mut();
    let dir = match sandbox.table.get(&fd)? {
        Descriptor::Dir(dir) => std::sync::Arc::clone(&dir.dir),
        Descriptor::File(_) => return Ok((Err(ErrorCode::NotDirectory),)),
    };
    let room = MAX_LISTED_BYTES.saturating_sub(sandbox.listed_bytes);
    let (entries, bytes) = match entries_of(&dir, room) {
        Ok(Some(listed)) => listed,
        Ok(None) => return Ok((Err(ErrorCode::InsufficientMemory),)),
        Err(error) => return Ok((Err(code(error)),)),
    };
    let listing = sandbox.table.push(DirectoryEntries { entries: entries.into_iter(), bytes })?;
    sandbox.listed_bytes += bytes;
    Ok((Ok(listing),))
}

fn read_directory_entry(
    mut store: StoreContextMut<'_, Sandbox>,
    (stream,): (Resource<DirectoryEntries>,),
) -> wasmtime::Result<(Result<Option<DirectoryEntry>, ErrorCode>,)> {
    let listing = store.data_mut().table.get_mut(&stream)?;
    Ok((listing.entries.next().transpose(),))
}

/// Every entry of `dir` but `.` and `..`, each with its type, or the error that stopped the
/// listing (kept in place, as the last entry); with the bytes they take. `None` if they take
/// more than `room`.
fn entries_of(dir: &std::fs::File, room: usize) -> std::io::Result<Option<(Vec<Entry>, usize)>> {
    // `entries` opens the directory again (`.`), so its read position is its own.
    let dir = cap_std::fs::Dir::from_std_file(dir.try_clone()?);
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    for entry in dir.entries()? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                entries.push(Err(code(error)));
                break;
            }
        };
        let typed = typed(&entry);
        bytes += std::mem::size_of::<Entry>() + typed.as_ref().map_or(0, |e| e.name.len());
        if bytes > room {
            return Ok(None);
        }
        entries.push(typed);
    }
    Ok(Some((entries, bytes)))
}

/// `entry`'s name and type: the type the kernel listed it with, or its `lstat`'s where the
/// file system gave none.
fn typed(entry: &cap_std::fs::DirEntry) -> Entry {
    let listed = entry.file_type().map_err(code)?;
    let file_type =
        if listed == cap_std::fs::FileType::unknown() { entry.metadata().map_err(code)?.file_type() } else { listed };
    let name = entry.file_name().into_string().map_err(|_| ErrorCode::IllegalByteSequence)?;
    Ok(DirectoryEntry { type_: descriptor_type(file_type), name })
}

/// The WASI error for an I/O error, as wasmtime-wasi names it.
fn code(error: std::io::Error) -> ErrorCode {
    wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode::from(error).into()
}

fn descriptor_type(file_type: cap_std::fs::FileType) -> DescriptorType {
    use cap_std::fs::FileTypeExt;
    if file_type.is_dir() {
        DescriptorType::Directory
    } else if file_type.is_file() {
        DescriptorType::RegularFile
    } else if file_type.is_symlink() {
        DescriptorType::SymbolicLink
    } else if file_type.is_fifo() {
        DescriptorType::Fifo
    } else if file_type.is_socket() {
        DescriptorType::Socket
    } else if file_type.is_char_device() {
        DescriptorType::CharacterDevice
    } else if file_type.is_block_device() {
        DescriptorType::BlockDevice
    } else {
        DescriptorType::Unknown
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    /// Each kind of entry is listed with the type an `lstat` gives it (a symlink stays a symlink,
    /// whatever it points at), `.` and `..` are not, and a name that is not UTF-8 is an error in
    /// its place that does not end the listing.
    #[test]
    fn entries_have_their_own_types_and_a_bad_name_is_an_error_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("file"), "x").unwrap();
        std::fs::create_dir(at("folder")).unwrap();
        std::os::unix::fs::symlink("file", at("to_file")).unwrap();
        std::os::unix::fs::symlink("folder", at("to_folder")).unwrap();
        std::os::unix::fs::symlink("nowhere", at("dangling")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(at("socket")).unwrap();
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "").unwrap();

        let (listed, bytes) = entries_of(&std::fs::File::open(dir.path()).unwrap(), usize::MAX).unwrap().unwrap();
        assert!(entries_of(&std::fs::File::open(dir.path()).unwrap(), bytes - 1).unwrap().is_none());
        let mut named: Vec<(String, DescriptorType)> =
            listed.iter().filter_map(|e| e.as_ref().ok()).map(|e| (e.name.clone(), e.type_)).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [
            ("dangling", DescriptorType::SymbolicLink),
            ("file", DescriptorType::RegularFile),
            ("folder", DescriptorType::Directory),
            ("socket", DescriptorType::Socket),
            ("to_file", DescriptorType::SymbolicLink),
            ("to_folder", DescriptorType::SymbolicLink),
        ];
        assert_eq!(named.len(), expected.len(), "{named:?}");
        for ((name, kind), (want_name, want_kind)) in named.iter().zip(expected) {
            assert_eq!((name.as_str(), kind), (want_name, &want_kind));
        }
        let errors: Vec<&ErrorCode> = listed.iter().filter_map(|e| e.as_ref().err()).collect();
        assert!(matches!(errors.as_slice(), [ErrorCode::IllegalByteSequence]), "{errors:?}");
        assert_eq!(listed.len(), expected.len() + 1);
    }

    #[test]
    fn a_file_is_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let file = std::fs::File::open(dir.path().join("file")).unwrap();
        assert!(entries_of(&file, usize::MAX).is_err());
    }
}
