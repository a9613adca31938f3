//! The compile cache: components compiled once, kept on disk, loaded without recompiling.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime
//! version and every setting that changes code generation). It holds wasmtime's serialized
//! component, then the op's definition as read from it (so that a warm load need not
//! instantiate the component to ask), then a trailer: the definition's length, a CRC-32 of
//! everything before it (the length included), and a magic. Loading native code is `unsafe`
//! in wasmtime, so an entry is never trusted blindly: the folder must be private to the user,
//! the checksum must match, and wasmtime checks its own header too. Anything else is deleted
//! and recompiled.
//!
//! Why a CRC and not a cryptographic digest: the checksum sits in the entry it covers, so it
//! could never stop someone who can write the folder (they would rewrite it too); keeping them
//! out is the folder's privacy. What the checksum catches is damage (a disk error, a file cut
//! short or edited by mistake), which a CRC-32 does as well, at memory speed: SHA-256 over the
//! three example ops' entries was a tenth of a warm run's CPU. The entry is read in small chunks
//! to check it and then mapped by wasmtime from the file (`deserialize_file`), not copied into
//! memory twice.

use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use wasmtime::Engine;

/// Ends every entry, after the definition's length and the checksum (both little-endian `u32`).
const MAGIC: &[u8; 8] = b"smcwasm2";
/// Definition length, CRC-32, magic.
const TRAILER_LEN: usize = 4 + 4 + MAGIC.len();
/// The longest definition an entry holds: the definition's own limit, as JSON with every
/// character escaped (`\u0000`), and its names. A longer one is not kept; a longer length read
/// back is damage (and is not allocated).
const MAX_DEFINITION_LEN: u64 = 8 * crate::definition::MAX_DEFINITION_BYTES;
/// Read size while checking an entry: small enough to stay in cache, large enough that the
/// calls do not count.
const CHECK_CHUNK: usize = 64 << 10;

/// Why the cache folder cannot be used.
#[derive(Debug, Error)]
pub enum CacheError {
    /// It could not be created or read.
    #[error("compile cache {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Others could write to it (so its native code could be someone else's).
    #[error("compile cache {0} is writable by other users or not owned by you; not using it")]
    NotPrivate(PathBuf),
}

/// The on-disk cache of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// The default cache folder: `$SANDMAP_CACHE_DIR`, else `$XDG_CACHE_HOME/sandmap`, else
/// `~/.cache/sandmap`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SANDMAP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(xdg).join("sandmap"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|home| PathBuf::from(home).join(".cache/sandmap"))
}

impl CompileCache {
    /// Open (creating it, private to the user) the cache folder for this engine.
    pub fn open(dir: &Path, engine: &Engine) -> Result<Self, CacheError> {
        let io = |source| CacheError::Io { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        check_private(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        Ok(Self { dir: dir.to_owned(), engine_key })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The entry for `digest`, if a sound one exists: checked, not yet read by wasmtime. A
    /// damaged entry is removed.
    pub fn load(&self, digest: &str) -> Option<Entry> {
        let path = self.entry(digest);
        let file = std::fs::File::open(&path).ok()?;
        match check(&file) {
            Ok(definition) => Some(Entry { path, definition }),
            Err(unsound) => {
                match unsound {
                    Damaged => tracing::warn!(path = %path.display(), "removing a damaged compile-cache entry"),
                    OlderFormat => tracing::debug!(path = %path.display(), "replacing an older sandmap's cache entry"),
                }
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Forget the entry for `digest` (wasmtime refused it).
    pub fn remove(&self, digest: &str) {
        let _ = std::fs::remove_file(self.entry(digest));
    }

    /// Store a serialized component and the definition read from it (empty when it could not
    /// be read, or is longer than any sound one), atomically: a reader never sees half an entry.
    pub fn store(&self, digest: &str, serialized: &[u8], definition: &[u8]) -> std::io::Result<()> {
        let definition = if definition.len() as u64 > MAX_DEFINITION_LEN { &[][..] } else { definition };
        let definition_len = u32::try_from(definition.len()).map_err(std::io::Error::other)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(serialized);
        crc.update(definition);
        crc.update(&definition_len.to_le_bytes());
        let path = self.entry(digest);
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        {
            let mut out = std::io::BufWriter::new(temp.as_file_mut());
            out.write_all(serialized)?;
            out.write_all(definition)?;
            out.write_all(&definition_len.to_le_bytes())?;
            out.write_all(&crc.finalize().to_le_bytes())?;
            out.write_all(MAGIC)?;
            out.flush()?;
        }
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A sound cache entry: the file for wasmtime to map, and the definition it holds.
#[derive(Debug)]
pub struct Entry {
    /// The entry's file (wasmtime ignores the definition and trailer after its own bytes).
    pub path: PathBuf,
    /// The op's definition as the guest returned it, as JSON; empty if it could not be read.
    pub definition: Vec<u8>,
}

/// Why an entry cannot be used.
enum Unsound {
    /// Its trailer or checksum is wrong.
    Damaged,
    /// It was written by an older sandmap (its own header before wasmtime's bytes).
    OlderFormat,
}
use Unsound::{Damaged, OlderFormat};

/// What entries of sandmap before 2026-12 began with.
const OLDER_MAGIC: &[u8] = b"sandmap-cwasm-1\n";

/// Check `file`'s trailer and checksum, reading it in chunks; its definition.
fn check(mut file: &std::fs::File) -> Result<Vec<u8>, Unsound> {
    let io = |_| Damaged;
    let len = file.metadata().map_err(io)?.len();
    let mut start = [0u8; OLDER_MAGIC.len()];
    if file.read_exact(&mut start).is_ok() && start == OLDER_MAGIC {
        return Err(OlderFormat);
    }
    let body = len.checked_sub(TRAILER_LEN as u64).ok_or(Damaged)?;
    let mut trailer = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::Start(body)).map_err(io)?;
    file.read_exact(&mut trailer).map_err(io)?;
    let (numbers, magic) = trailer.split_at(8);
    if magic != MAGIC {
        return Err(Damaged);
    }
    let word = |at: usize| u32::from_le_bytes([numbers[at], numbers[at + 1], numbers[at + 2], numbers[at + 3]]);
    let (definition_len, expected) = (u64::from(word(0)), word(4));
    if definition_len > MAX_DEFINITION_LEN {
        return Err(Damaged);
    }
    let definition_at = body.checked_sub(definition_len).ok_or(Damaged)?;
    let mut crc = crc32fast::Hasher::new();
    let mut chunk = vec![0u8; CHECK_CHUNK];
    let mut definition = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut at = 0u64;
    while at < body {
        let n = usize::try_from((body - at).min(CHECK_CHUNK as u64)).map_err(|_| Damaged)?;
        file.read_exact(&mut chunk[..n]).map_err(io)?;
        crc.update(&chunk[..n]);
        let end = at + n as u64;
        if end > definition_at {
            let from = usize::try_from(definition_at.saturating_sub(at)).map_err(|_| Damaged)?;
            definition.extend_from_slice(&chunk[from..n]);
        }
        at = end;
    }
    // The length is covered too: a damaged one would cut the definition in the wrong place.
    crc.update(&numbers[..4]);
    if crc.finalize() != expected {
        return Err(Damaged);
    }
    Ok(definition)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let io = |source| CacheError::Io { path: dir.to_owned(), source };
    let meta = std::fs::metadata(dir).map_err(io)?;
    if meta.mode() & 0o022 != 0 {
        // Only tighten a folder this user owns; refuse anyone else's.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.mode() & 0o755)).map_err(io)?;
    }
    // Who we are, without libc: the owner of a file we create.
    let probe = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let me = probe.as_file().metadata().map_err(io)?.uid();
    let meta = std::fs::metadata(dir).map_err(io)?;
    if meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(CacheError::NotPrivate(dir.to_owned()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<(), CacheError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        assert!(cache.load("abc").is_none());
        // A definition longer than a check chunk, so that it is gathered across chunks.
        let code = vec![7u8; CHECK_CHUNK + 5];
        let definition = vec![b'd'; CHECK_CHUNK + 9];
        cache.store("abc", &code, &definition).unwrap();
        let path = cache.entry("abc");
        let entry = cache.load("abc").unwrap();
        assert_eq!((entry.path.as_path(), entry.definition.as_slice()), (path.as_path(), definition.as_slice()));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..code.len()], code.as_slice(), "wasmtime's bytes come first, as it wrote them");
        cache.store("abc", &code, b"").unwrap();
        assert!(cache.load("abc").unwrap().definition.is_empty());
        // Flip a byte anywhere (the code, the definition, the trailer): detected, removed.
        cache.store("abc", &code, &definition).unwrap();
        for at in [0, code.len() + 3, bytes.len() - TRAILER_LEN, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            std::fs::write(&path, &damaged).unwrap();
            assert!(cache.load("abc").is_none(), "byte {at}");
            assert!(!path.exists());
        }
        // Truncated, too long a definition, and foreign files too.
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(cache.load("abc").is_none());
        let mut long = bytes.clone();
        let at = long.len() - TRAILER_LEN;
        long[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, &long).unwrap();
        assert!(cache.load("abc").is_none());
        std::fs::write(&path, b"junk").unwrap();
        assert!(cache.load("abc").is_none());
        // An older sandmap's entry (its header first) is replaced, not taken for wasmtime's.
        std::fs::write(&path, [OLDER_MAGIC, &[0u8; 32], &bytes].concat()).unwrap();
        assert!(matches!(check(&std::fs::File::open(&path).unwrap()), Err(OlderFormat)));
        assert!(cache.load("abc").is_none());
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_world_writable_folder_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        CompileCache::open(dir.path(), &Engine::default()).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0);
    }
}
