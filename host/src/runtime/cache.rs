//! The compile cache: components compiled once, kept on disk, loaded without recompiling.
//!
//! An entry is keyed by the component's SHA-256 and the engine's compatibility hash (wasmtime
//! version and every setting that changes code generation), and carries a SHA-256 of its
//! payload. Loading native code is `unsafe` in wasmtime, so an entry is never trusted blindly:
//! the folder must be private to the user, the checksum must match, and wasmtime checks its own
//! header too. Anything else is deleted and recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::Engine;

const MAGIC: &[u8] = b"sandmap-cwasm-1\n";
const SUM_LEN: usize = 32;

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

    /// The serialized component for `digest`, if a sound entry exists. A damaged entry is
    /// removed.
    pub fn load(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.entry(digest);
        let mut bytes = std::fs::read(&path).ok()?;
        let sound = bytes.len() >= MAGIC.len() + SUM_LEN
            && bytes.starts_with(MAGIC)
            && Sha256::digest(&bytes[MAGIC.len() + SUM_LEN..]).as_slice() == &bytes[MAGIC.len()..MAGIC.len() + SUM_LEN];
        if !sound {
            tracing::warn!(path = %path.display(), "removing a damaged compile-cache entry");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        bytes.drain(..MAGIC.len() + SUM_LEN);
        Some(bytes)
    }

    /// Forget the entry for `digest` (wasmtime refused it).
    pub fn remove(&self, digest: &str) {
        let _ = std::fs::remove_file(self.entry(digest));
    }

    /// Store a serialized component, atomically (a reader never sees half an entry).
    pub fn store(&self, digest: &str, serialized: &[u8]) -> std::io::Result<()> {
        let path = self.entry(digest);
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(MAGIC)?;
        temp.write_all(&Sha256::digest(serialized))?;
        temp.write_all(serialized)?;
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }
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
        assert_eq!(cache.load("abc"), None);
        cache.store("abc", b"compiled code").unwrap();
        assert_eq!(cache.load("abc").as_deref(), Some(&b"compiled code"[..]));
        // Flip a byte of the payload: detected, removed.
        let path = cache.entry("abc");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.load("abc"), None);
        assert!(!path.exists());
        // Truncated and foreign files too.
        std::fs::write(&path, b"junk").unwrap();
        assert_eq!(cache.load("abc"), None);
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
