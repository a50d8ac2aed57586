//! What the criterion benches share: seeded data and the output view the
//! kernels take. Each bench uses part of it.
#![allow(dead_code)]

use std::mem::MaybeUninit;

/// `n` values spread uniformly over `±spread / 2`, the same on every run
/// (xorshift64 from a fixed seed, mixed with `seed`).
pub fn seeded(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64 ^ seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
        })
        .collect()
}

/// An initialized output viewed as one that may start uninitialized, as the
/// kernels take it (they only ever write initialized values into it).
pub fn un<T>(v: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: same layout; the kernels write only initialized values, so
    // `v` stays initialized.
    unsafe { &mut *(v as *mut [T] as *mut [MaybeUninit<T>]) }
}
