//! WASI host calls that sandmap bounds per step, shadowing wasmtime-wasi's own in the linker:
//!
//! - `wasi:filesystem/preopens.get-directories` hands out the process's held grant directories
//!   (shared, so a sandbox opens no descriptor for its grants, and a clone that uses up its
//!   descriptors cannot stop the next sandbox from opening its grants);
//! - `wasi:filesystem/types.descriptor.open-at` counts the files and directories a step holds
//!   open against `max_open_files`, and refuses FIFOs, sockets and devices, whose `open` or
//!   `read` could block the step's thread where no epoch deadline reaches;
//! - `wasi:clocks/monotonic-clock.subscribe-*` never waits past the step's deadline: epoch
//!   interruption only stops wasm code, so without this a sleep inside a host call outlives the
//!   `timeout` (or, for `u64::MAX`, never ends).
//!
//! Listing a directory is `listing`'s. Everything else is wasmtime-wasi's, unchanged.

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::filesystem::{Descriptor, Dir, WasiFilesystemView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor as _, OpenFlags, PathFlags,
};

use super::error::StepFailure;
use super::sandbox::Sandbox;
use crate::units::format_duration;

/// The WASI 0.2 version wasmtime-wasi 48 defines; guests importing any 0.2.x resolve to it.
pub(super) const WASI: &str = "0.2.12";

/// Link the guarded host calls over wasmtime-wasi's (which must already be in `linker`).
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(&format!("wasi:filesystem/preopens@{WASI}"))?.func_wrap("get-directories", get_directories)?;
    linker.instance(&format!("wasi:filesystem/types@{WASI}"))?.func_wrap("[method]descriptor.open-at", open_at)?;
    let mut clock = linker.instance(&format!("wasi:clocks/monotonic-clock@{WASI}"))?;
    clock.func_wrap("subscribe-duration", subscribe_duration)?;
    clock.func_wrap("subscribe-instant", subscribe_instant)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A step's open files and directories, counted against its `max_open_files`.
#[derive(Debug)]
pub struct OpenFiles {
    limit: u64,
    /// Opened since the last count, plus that count: at least as many as are open, since a
    /// close is only seen by counting again.
    assumed: u64,
    /// Whether an open was refused for the limit.
    pub hit: bool,
}

impl OpenFiles {
    /// No file open yet; at most `limit` at once.
    pub fn new(limit: u64) -> Self {
        Self { limit, assumed: 0, hit: false }
    }

    /// The failure to report when the op failed after an open was refused: the limit, and what
    /// the op made of it.
    pub fn failure(&self, then: &StepFailure) -> StepFailure {
        StepFailure::Limit {
            limit: "max_open_files".into(),
            value: format!("{} (the op then failed: {then})", self.limit),
        }
    }
}

/// The step's deadline inside host calls: its attempt's start plus its `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the time is up.
    pub at: Instant,
    /// The `timeout` it came from, to name in the error.
    pub timeout: Duration,
    /// Whether a wait was cut short at the deadline: the op woke with its time up, and must not
    /// succeed just because no epoch check came between the wake and its return.
    cut: bool,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self { at: Instant::now().checked_add(timeout).unwrap_or_else(far_future), timeout, cut: false }
    }

    /// The time limit, if a wait was cut at the deadline and the deadline has passed.
    pub fn passed_in_a_wait(&self) -> Option<StepFailure> {
        (self.cut && Instant::now() >= self.at).then(|| self.exceeded())
    }

    /// The time limit, as a step's failure.
    pub fn exceeded(&self) -> StepFailure {
        StepFailure::Limit { limit: "time".into(), value: format_duration(self.timeout) }
    }
}

/// About thirty years from now: a deadline that never comes, where `Instant` cannot add more.
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600)).unwrap_or(now)
}

type Preopens = Vec<(Resource<Descriptor>, String)>;

fn get_directories(mut store: StoreContextMut<'_, Sandbox>, (): ()) -> wasmtime::Result<(Preopens,)> {
    let sandbox = store.data_mut();
    let mut out = Vec::with_capacity(sandbox.grants.len());
    for (dir, guest) in &sandbox.grants {
        out.push((sandbox.table.push(Descriptor::Dir(dir.clone()))?, guest.clone()));
    }
    Ok((out,))
}

type OpenAtParams = (Resource<Descriptor>, PathFlags, String, OpenFlags, DescriptorFlags);

fn open_at(
    mut store: StoreContextMut<'_, Sandbox>,
    (dir, path_flags, path, open_flags, flags): OpenAtParams,
) -> wasmtime::Result<(Result<Resource<Descriptor>, ErrorCode>,)> {
    let sandbox = store.data_mut();
    if sandbox.files.assumed >= sandbox.files.limit {
        sandbox.files.assumed = count_open(&mut sandbox.table, &sandbox.grants);
        if sandbox.files.assumed >= sandbox.files.limit {
            sandbox.files.hit = true;
            // WASI has no EMFILE; `quota` is the error code closest to a per-sandbox cap.
            return Ok((Err(ErrorCode::Quota),));
        }
    }
    // Only a path that names something other than a file or directory is refused; one that
    // does not exist yet (`O_CREAT`) or cannot be stat'ed gets open's own answer.
    let follow = path_flags.contains(PathFlags::SYMLINK_FOLLOW);
    let listed = match sandbox.table.get(&dir)? {
        Descriptor::Dir(parent) => plain_name_type(&parent.dir, &path, follow),
        Descriptor::File(_) => None,
    };
    let mut fs = sandbox.filesystem();
    let kind = match listed {
        Some(kind) => kind,
        None => {
            let borrowed = Resource::<Descriptor>::new_borrow(dir.rep());
            fs.stat_at(borrowed, path_flags, path.clone()).ok().map(|stat| stat.type_)
        }
    };
    if kind.is_some_and(|kind| {
        !matches!(kind, DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink)
    }) {
        return Ok((Err(ErrorCode::Access),));
    }
    let opened = match fs.open_at(dir, path_flags, path, open_flags, flags) {
        Ok(descriptor) => Ok(descriptor),
        Err(error) => Err(error.downcast()?.into()),
    };
    if opened.is_ok() {
        store.data_mut().files.assumed += 1;
    }
    Ok((opened,))
}

/// What `path` names in `parent`, told with one `fstatat` on the directory where that is sound:
/// `path` is one plain name (no `/`, not `.` or `..`), so no lookup leaves `parent`, and it is not
/// a symlink to follow. `None` where it cannot be told that way: wasmtime-wasi's `stat_at` is
/// asked then, whose sandboxed walk (cap-std opens the parent first) cost twice the open itself
/// on a clone that opens one file (perf). `Some(None)`: the name cannot be stat'ed.
fn plain_name_type(parent: &std::fs::File, path: &str, follow: bool) -> Option<Option<DescriptorType>> {
    if path.is_empty() || path == "." || path == ".." || path.contains('/') {
        return None;
    }
    let Ok(stat) = rustix::fs::statat(parent, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) else {
        return Some(None);
    };
    use rustix::fs::FileType;
    Some(Some(match FileType::from_raw_mode(stat.st_mode) {
        FileType::Symlink if follow => return None,
        FileType::Symlink => DescriptorType::SymbolicLink,
        FileType::RegularFile => DescriptorType::RegularFile,
        FileType::Directory => DescriptorType::Directory,
        FileType::Fifo => DescriptorType::Fifo,
        FileType::Socket => DescriptorType::Socket,
        FileType::CharacterDevice => DescriptorType::CharacterDevice,
        FileType::BlockDevice => DescriptorType::BlockDevice,
        FileType::Unknown => DescriptorType::Unknown,
    }))
}

/// The files and directories open in `table`, not counting the shared grant directories.
fn count_open(table: &mut ResourceTable, grants: &[(Dir, String)]) -> u64 {
    let is_grant = |dir: &Dir| grants.iter().any(|(grant, _)| std::sync::Arc::ptr_eq(&grant.dir, &dir.dir));
    table
        .iter_mut()
        .filter(|entry| match entry.downcast_ref::<Descriptor>() {
            Some(Descriptor::Dir(dir)) => !is_grant(dir),
            Some(Descriptor::File(_)) => true,
            None => false,
        })
        .count() as u64
}

fn subscribe_duration(
    mut store: StoreContextMut<'_, Sandbox>,
    (nanos,): (u64,),
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    subscribe_within_deadline(store.data_mut(), Duration::from_nanos(nanos))
}

fn subscribe_instant(
    mut store: StoreContextMut<'_, Sandbox>,
    (when,): (u64,),
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let sandbox = store.data_mut();
    let now = sandbox.clocks().now()?;
    subscribe_within_deadline(sandbox, Duration::from_nanos(when.saturating_sub(now)))
}

/// A pollable ready after `wait`, or at the step's deadline if that comes first. Asked again
/// once the deadline has passed, the step is stopped (a trap, reported as its time limit).
fn subscribe_within_deadline(sandbox: &mut Sandbox, wait: Duration) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let left = sandbox.deadline.at.saturating_duration_since(Instant::now());
    if left.is_zero() {
        sandbox.limiter.hit = Some(sandbox.deadline.exceeded());
        wasmtime::bail!("the step's time limit passed while it waited");
    }
    if wait >= left {
        sandbox.deadline.cut = true;
    }
    let nanos = u64::try_from(wait.min(left).as_nanos()).unwrap_or(u64::MAX);
    Ok((sandbox.clocks().subscribe_duration(nanos)?,))
}
