//! Granted directories, held open once per process and shared by every sandbox granted them.
//!
//! A sandbox is handed the held directory, never its path: renaming the directory or swapping in
//! a symlink after it was held changes nothing, and a clone opens no descriptor for its grants
//! (so one that uses up descriptors cannot keep the next sandbox from its grants).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use wasmtime_wasi::filesystem::Dir;
use wasmtime_wasi::{FsPerms, OpenMode};

use super::error::StepFailure;
use crate::step::{Access, Grant};

/// The held directories, by host path and access.
#[derive(Default)]
pub struct HeldDirs {
    dirs: Mutex<HashMap<(PathBuf, Access), Dir>>,
}

impl HeldDirs {
    fn lock(&self) -> MutexGuard<'_, HashMap<(PathBuf, Access), Dir>> {
        // A poisoned map is still a valid map: every insert is a single call.
        self.dirs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hold `dir`, already open (when the job was validated), as the directory of `grant`. A
    /// grant held already keeps its first handle.
    pub fn hold(&self, grant: &Grant, dir: &cap_std::fs::Dir) -> std::io::Result<()> {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.lock().entry((grant.host.clone(), grant.access))
        {
            entry.insert(wasi_dir(dir.try_clone()?.into_std_file(), grant.access));
        }
        Ok(())
    }

    /// The sandbox's preopens for `grants`: each held directory, opened now by its path if it
    /// was not held yet (and held from then on).
    /// Hold `dir` as `grant`'s directory from now on, in place of any held before (a worker
    /// opens each grant afresh per step: the folder at a path may be replaced between runs).
    pub fn replace(&self, grant: &Grant, dir: &cap_std::fs::Dir) -> std::io::Result<()> {
        let held = wasi_dir(dir.try_clone()?.into_std_file(), grant.access);
        self.lock().insert((grant.host.clone(), grant.access), held);
        Ok(())
    }

    pub fn preopens(&self, grants: &[Grant]) -> Result<Vec<(Dir, String)>, StepFailure> {
        let mut dirs = self.lock();
        let mut out = Vec::with_capacity(grants.len());
        for grant in grants {
            let key = (grant.host.clone(), grant.access);
            let dir = match dirs.get(&key) {
                Some(dir) => dir.clone(),
                None => {
                    let opened = cap_std::fs::Dir::open_ambient_dir(&grant.host, cap_std::ambient_authority())
                        .map_err(|e| {
                            StepFailure::Sandbox(format!(
                                "cannot open grant {} (as {}): {e}",
                                grant.host.display(),
                                grant.guest
                            ))
                        })?;
                    let dir = wasi_dir(opened.into_std_file(), grant.access);
                    dirs.insert(key, dir.clone());
                    dir
                }
            };
            out.push((dir, grant.guest.clone()));
        }
        Ok(out)
    }
}

fn wasi_dir(file: std::fs::File, access: Access) -> Dir {
    let (perms, mode) = match access {
        Access::Read => (FsPerms::ReadOnly, OpenMode::READ),
        Access::ReadWrite => (FsPerms::ReadWrite, OpenMode::READ | OpenMode::WRITE),
    };
    // File I/O runs on the step's own thread, not through a hand-off to wasmtime-wasi's tokio
    // blocking pool (which cost more than the clone itself).
    Dir::new(file, perms, mode, true)
}
