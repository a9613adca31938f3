//! Content digests computed by the host (`sandmap:op/digest`), at native speed: the host's
//! SHA-256 uses the CPU's SHA extensions, which wasm code cannot reach (in-guest SHA-256 runs at
//! a fraction of it). The bytes are hashed where they lie in the op's memory; the time counts
//! against the step's `timeout`. An op that never calls this does not import the interface.

use crate::bindings::sandmap::op::digest::{Algorithm, Hasher};

/// A streaming SHA-256: [`update`](Sha256::update) with the content in any number of pieces,
/// then [`finish`](Sha256::finish) for its lowercase hex digest.
///
/// ```ignore
/// let mut sha = sandmap_guest::digest::Sha256::new();
/// sha.update(b"hello ");
/// sha.update(b"world");
/// assert_eq!(sha.finish(), "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
/// ```
pub struct Sha256(Hasher);

/// The most bytes handed to the host in one call: wasmtime refuses a call that copies more than
/// 128 MiB from the guest (its hostcall fuel), so larger pieces go in several.
const MAX_PER_CALL: usize = 64 << 20;

impl Sha256 {
    /// A hasher with nothing added yet.
    pub fn new() -> Self {
        Self(Hasher::new(Algorithm::Sha256))
    }

    /// Add `data`.
    pub fn update(&mut self, data: &[u8]) {
        for piece in data.chunks(MAX_PER_CALL) {
            self.0.update(piece);
        }
    }

    /// The digest of everything added, as lowercase hex.
    pub fn finish(self) -> String {
        self.0.finish()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// The SHA-256 of `data`, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(data);
    sha.finish()
}
