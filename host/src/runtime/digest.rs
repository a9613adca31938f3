//! `sandmap:op/digest`: content digests at native speed. A hasher is a host resource in the
//! step's table (so `MAX_HANDLES` bounds how many a step holds, ~200 bytes each); `update` hashes
//! the op's bytes where they lie in its linear memory, so the host allocates nothing per call and
//! no buffer of the op's grows outside its memory limit; and it hashes in slices, looking at the
//! step's deadline between them, so a long `update` ends at the `timeout` like the op's own code.
//! One call carries at most wasmtime's hostcall fuel (128 MiB; the SDKs split larger pieces).

use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime::{AsContext, StoreContextMut};

use super::bindings::sandmap::op::digest::{self, Algorithm};
use super::sandbox::Sandbox;

/// Bytes hashed between two looks at the deadline: well under a millisecond with SHA extensions.
const SLICE: usize = 1 << 20;

/// One streaming hasher of a step.
#[derive(Clone, Debug)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
        }
    }

    /// The digest as lowercase hex; the hasher starts over.
    fn finish(&mut self) -> String {
        match self {
            Self::Sha256(h) => hex::encode(h.finalize_reset()),
        }
    }
}

impl digest::Host for Sandbox {}

impl digest::HostHasher for Sandbox {
    fn new(&mut self, algorithm: Algorithm) -> wasmtime::Result<Resource<Hasher>> {
        Ok(self.table.push(Hasher::new(algorithm))?)
    }

    /// Shadowed by [`update_in_place`] in the linker; kept for the trait, and correct alone.
    fn update(&mut self, hasher: Resource<Hasher>, data: Vec<u8>) -> wasmtime::Result<()> {
        let mut state = self.table.get(&hasher)?.clone();
        hash_within(&mut state, &data, self.deadline.at).map_err(|TimeUp| time_up(self))?;
        *self.table.get_mut(&hasher)? = state;
        Ok(())
    }

    fn finish(&mut self, hasher: Resource<Hasher>) -> wasmtime::Result<String> {
        Ok(self.table.get_mut(&hasher)?.finish())
    }

    fn drop(&mut self, hasher: Resource<Hasher>) -> wasmtime::Result<()> {
        self.table.delete(hasher)?;
        Ok(())
    }
}

/// Link `update` over the generated one (which lifts the bytes into a host `Vec` first).
pub fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance("sandmap:op/digest@0.1.0")?.func_wrap("[method]hasher.update", update_in_place)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn update_in_place(
    mut store: StoreContextMut<'_, Sandbox>,
    (hasher, data): (Resource<Hasher>, WasmList<u8>),
) -> wasmtime::Result<()> {
    // The state is copied out (a few words) because the bytes borrow the store that owns it.
    let mut state = store.data().table.get(&hasher)?.clone();
    let deadline = store.data().deadline.at;
    hash_within(&mut state, data.as_le_slice(store.as_context()), deadline)
        .map_err(|TimeUp| time_up(store.data_mut()))?;
    *store.data_mut().table.get_mut(&hasher)? = state;
    Ok(())
}

/// Why hashing stopped early: the step's time ran out.
struct TimeUp;

/// Add `data` to `state` unless `deadline` passes first (then `state` is left part-way).
fn hash_within(state: &mut Hasher, data: &[u8], deadline: Instant) -> Result<(), TimeUp> {
    for slice in data.chunks(SLICE) {
        if Instant::now() >= deadline {
            return Err(TimeUp);
        }
        state.update(slice);
    }
    Ok(())
}

/// Stop the step: its time limit passed inside the host call.
fn time_up(sandbox: &mut Sandbox) -> wasmtime::Error {
    sandbox.limiter.hit = Some(sandbox.deadline.exceeded());
    wasmtime::format_err!("the step's time limit passed while the host hashed its bytes")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn slices_give_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..(3 * SLICE + 17) as u32).map(|i| ((i * 31) >> 3) as u8).collect();
        let mut state = Hasher::new(Algorithm::Sha256);
        assert!(hash_within(&mut state, &data, Instant::now() + Duration::from_secs(600)).is_ok());
        assert_eq!(state.finish(), hex::encode(Sha256::digest(&data)));
        // `finish` started it over.
        assert_eq!(state.finish(), EMPTY);
    }

    #[test]
    fn a_passed_deadline_stops_hashing_before_the_next_slice() {
        let data = vec![1u8; 4 * SLICE];
        let mut state = Hasher::new(Algorithm::Sha256);
        assert!(hash_within(&mut state, &data, Instant::now()).is_err());
        assert_eq!(state.finish(), EMPTY, "not one slice was hashed");
    }
}
