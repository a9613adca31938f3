//! Byte counting written so that it vectorizes well in wasm, where Cranelift lowers wasm SIMD to
//! SSE: `iter().filter(|&&b| b == x).count()` widens every compared byte to a 64-bit count, which
//! wasm's 128-bit lanes do at two bytes per instruction (it ran at half the speed of the file's
//! SHA-256). Counting into byte-wide lanes and widening once per 255 steps keeps sixteen bytes
//! per compare; in wasm the lanes are counted with the SIMD intrinsics (see [`count_vectors`]).

/// Lanes counted per step: one wasm SIMD vector of bytes.
const LANES: usize = 16;
/// Steps a byte-wide lane counter takes before it could overflow (`u8::MAX`).
const STEPS_PER_FLUSH: usize = u8::MAX as usize;

/// How many times `needle` occurs in `data` (the lines of a text: `count(data, b'\n')`).
pub fn count(data: &[u8], needle: u8) -> u64 {
    let mut total = 0u64;
    for block in data.chunks(LANES * STEPS_PER_FLUSH) {
        let (vectors, rest) = block.as_chunks::<LANES>();
        total += count_vectors(vectors, needle);
        total += rest.iter().filter(|&&b| b == needle).count() as u64;
    }
    total
}

/// `needle`'s occurrences in at most [`STEPS_PER_FLUSH`] vectors, counted in byte-wide lanes.
///
/// In wasm, written with the SIMD intrinsics: from the portable loop below, LLVM's wasm backend
/// interleaves sixteen vectors at once through `i8x16.shuffle` and lane inserts (16 KiB of
/// machine code once Cranelift lowers it, at under half the native speed). Natively, and in wasm
/// without SIMD, the portable loop vectorizes as intended.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn count_vectors(vectors: &[[u8; LANES]], needle: u8) -> u64 {
    use core::arch::wasm32::{
        i8x16_sub, u8x16_eq, u8x16_splat, u16x8_extadd_pairwise_u8x16, u32x4_extadd_pairwise_u16x8, u32x4_extract_lane,
        v128_load,
    };
    debug_assert!(vectors.len() <= STEPS_PER_FLUSH);
    let wanted = u8x16_splat(needle);
    let mut lanes = u8x16_splat(0);
    for vector in vectors {
        // SAFETY: `vector` is 16 readable bytes, and `v128.load` has no alignment requirement.
        let bytes = unsafe { v128_load(vector.as_ptr().cast()) };
        // A match compares to all ones, -1 as a signed byte: subtracting it adds one.
        lanes = i8x16_sub(lanes, u8x16_eq(bytes, wanted));
    }
    let wide = u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(lanes));
    [
        u32x4_extract_lane::<0>(wide),
        u32x4_extract_lane::<1>(wide),
        u32x4_extract_lane::<2>(wide),
        u32x4_extract_lane::<3>(wide),
    ]
    .into_iter()
    .map(u64::from)
    .sum()
}

/// `needle`'s occurrences in at most [`STEPS_PER_FLUSH`] vectors, counted in byte-wide lanes.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn count_vectors(vectors: &[[u8; LANES]], needle: u8) -> u64 {
    debug_assert!(vectors.len() <= STEPS_PER_FLUSH);
    let mut lanes = [0u8; LANES];
    for vector in vectors {
        for (lane, &byte) in lanes.iter_mut().zip(vector) {
            *lane += u8::from(byte == needle);
        }
    }
    lanes.iter().map(|&n| u64::from(n)).sum()
}

#[cfg(test)]
mod tests {
    use super::count;

    fn naive(data: &[u8], needle: u8) -> u64 {
        data.iter().filter(|&&b| b == needle).count() as u64
    }

    #[test]
    fn counts_exactly_what_a_plain_loop_counts() {
        // Every length around the vector and block edges, and blocks made only of the needle
        // (where a byte-wide lane reaches its 255 limit).
        for len in [0, 1, 15, 16, 17, 255 * 16 - 1, 255 * 16, 255 * 16 + 1, 3 * 255 * 16 + 7, 100_003] {
            let mixed: Vec<u8> = (0..len).map(|i| if i % 7 == 3 { b'\n' } else { (i % 251) as u8 }).collect();
            assert_eq!(count(&mixed, b'\n'), naive(&mixed, b'\n'), "mixed, {len} bytes");
            let all = vec![b'\n'; len];
            assert_eq!(count(&all, b'\n'), len as u64, "all newlines, {len} bytes");
        }
    }
}
