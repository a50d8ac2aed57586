//! NEON kernels on int8 activations (`arch::gemv`'s "int8 activations"
//! contract): the 16 f32 lanes in four registers (blocks `b % 16` in 0..4,
//! 4..8, 8..12, 12..16), four blocks' integer sums at a time. A block's
//! 32-product dot in four i32 lanes:
//! - with the dotprod extension, two `sdot`s (i8 × i8, four products a
//!   lane, both operands signed, so no offset is needed);
//! - without it (e.g. Cortex-A53), `smull`/`smull2` (i8 × i8 → i16, at most
//!   2^14 in magnitude) and `sadalp` (pairs into i32).
//!
//! `vdotq_s32` is still unstable in Rust (feature `stdarch_neon_dotprod`,
//! issue 117224) although the `dotprod` target feature is stable, so `sdot`
//! is written as inline assembly in a function that enables `dotprod`.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::arch::gemv::{LANES, Q8_0_BYTES, QK};
use crate::arch::gemv_a8::{self, A8Kernels, Q8Activations};

pub(crate) static DOTPROD: A8Kernels = A8Kernels {
    name: "neon-dotprod",
    family: "neon",
    // SAFETY: `a8_tables` hands this table out only after detecting NEON and dotprod.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8a8_dot(q, s, x, y) },
    // SAFETY: as above.
    gemv_q8_0: |q, x, y| unsafe { gemv_q8a8_dot(q, x, y) },
};

pub(crate) static PLAIN: A8Kernels = A8Kernels {
    name: "neon",
    family: "neon",
    // SAFETY: `a8_tables` hands this table out only after detecting NEON.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8a8_plain(q, s, x, y) },
    // SAFETY: as above.
    gemv_q8_0: |q, x, y| unsafe { gemv_q8a8_plain(q, x, y) },
};

/// Blocks a register of sums holds.
const GROUP: usize = 4;

/// `acc + Σ` of each four products of `a` and `b` (`sdot`).
///
/// # Safety
/// The CPU must have NEON and dotprod.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: the caller guarantees dotprod; the instruction reads and writes registers only.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// One block's dot in four i32 partial sums.
///
/// # Safety
/// The CPU must have NEON (and dotprod when `DOT`); `w` and `x` readable for 32 bytes.
#[inline(always)]
unsafe fn block_partials<const DOT: bool>(w: *const i8, x: *const i8) -> int32x4_t {
    // SAFETY: the caller's features and bytes.
    unsafe {
        let (w0, w1, x0, x1) = (vld1q_s8(w), vld1q_s8(w.add(16)), vld1q_s8(x), vld1q_s8(x.add(16)));
        if DOT {
            sdot(sdot(vdupq_n_s32(0), w0, x0), w1, x1)
        } else {
            let mut s = vdupq_n_s32(0);
            s = vpadalq_s16(s, vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
            s = vpadalq_s16(s, vmull_high_s8(w0, x0));
            s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
            vpadalq_s16(s, vmull_high_s8(w1, x1))
        }
    }
}

/// The exact dots of `m` (1..=4) blocks, block `k` at `w + k · stride`, as
/// f32 in lanes 0..m (0 beyond), reduced by two rounds of pairwise adds.
///
/// # Safety
/// The CPU must have NEON (and dotprod when `DOT`); those blocks and the
/// activations' blocks `b..b + m` readable.
#[inline(always)]
unsafe fn group_dots<const DOT: bool>(
    w: *const i8,
    stride: usize,
    x: &Q8Activations,
    b: usize,
    m: usize,
) -> float32x4_t {
    // SAFETY: the caller's features and bounds.
    unsafe {
        let xq = x.codes().as_ptr().add(b * QK);
        // A plain loop (`std::array::from_fn`'s closure compiled to far slower code on x86).
        let mut v = [vdupq_n_s32(0); GROUP];
        for (k, v) in v.iter_mut().enumerate().take(m) {
            *v = block_partials::<DOT>(w.add(k * stride), xq.add(k * QK));
        }
        vcvtq_f32_s32(vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3])))
    }
}

/// `m` (1..=4) f32s from `p`, zeros beyond.
///
/// # Safety
/// The CPU must have NEON; `p` readable for `m` f32s.
#[inline(always)]
unsafe fn load_f32(p: *const f32, m: usize) -> float32x4_t {
    let mut buf = [0f32; GROUP];
    // SAFETY: m readable values.
    unsafe {
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), m);
        vld1q_f32(buf.as_ptr())
    }
}

/// The lane tree over four registers: 0 += 2, 1 += 3, then 0 += 1, then
/// the low half plus the high half, then the two lanes left.
///
/// # Safety
/// The CPU must have NEON.
#[inline(always)]
unsafe fn reduce16(acc: [float32x4_t; 4]) -> f32 {
    // SAFETY: the caller's features.
    unsafe {
        let v = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
        let h = vadd_f32(vget_low_f32(v), vget_high_f32(v));
        vget_lane_f32::<0>(h) + vget_lane_f32::<1>(h)
    }
}

/// # Safety
/// The CPU must have NEON (and dotprod when `DOT`).
#[inline(always)]
unsafe fn i8a8<const DOT: bool>(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    let n = x.len();
    let rows = gemv_a8::i8a8_rows(codes.len(), scales.len(), x, y.len());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        // SAFETY: the caller's features.
        let mut acc = [unsafe { vdupq_n_f32(0.0) }; 4];
        let mut b = 0;
        while b < x.blocks() {
            let m = (x.blocks() - b).min(GROUP);
            // SAFETY: row i's codes for blocks b..b + m and those blocks of
            // the activations are in bounds (`i8a8_rows`).
            unsafe {
                let dots = group_dots::<DOT>(codes.as_ptr().add(i * n + b * QK), QK, x, b, m);
                let a = &mut acc[(b / GROUP) % 4];
                *a = vfmaq_f32(*a, load_f32(x.scales().as_ptr().add(b), m), dots);
            }
            b += m;
        }
        // SAFETY: the caller's features.
        *yi = unsafe { reduce16(acc) } * scales[i];
    }
}

/// # Safety
/// The CPU must have NEON (and dotprod when `DOT`).
#[inline(always)]
unsafe fn q8a8<const DOT: bool>(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    let nb = x.blocks();
    let rows = gemv_a8::q8a8_rows(blocks.len(), x, y.len());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &blocks[i * nb * Q8_0_BYTES..(i + 1) * nb * Q8_0_BYTES];
        // SAFETY: the caller's features.
        let mut acc = [unsafe { vdupq_n_f32(0.0) }; 4];
        let mut b = 0;
        while b < nb {
            let m = (nb - b).min(GROUP);
            let mut dw = [0f32; GROUP];
            for (dw, blk) in dw.iter_mut().zip(row[b * Q8_0_BYTES..(b + m) * Q8_0_BYTES].chunks_exact(Q8_0_BYTES)) {
                *dw = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
            }
            // SAFETY: blocks b..b + m of row i (32 codes after each 2-byte
            // scale) and of the activations are in bounds (`q8a8_rows`).
            unsafe {
                let w = row.as_ptr().add(b * Q8_0_BYTES + 2).cast::<i8>();
                let dots = group_dots::<DOT>(w, Q8_0_BYTES, x, b, m);
                let ds = vmulq_f32(vld1q_f32(dw.as_ptr()), load_f32(x.scales().as_ptr().add(b), m));
                let a = &mut acc[(b / GROUP) % 4];
                *a = vfmaq_f32(*a, ds, dots);
            }
            b += m;
        }
        // SAFETY: the caller's features.
        *yi = unsafe { reduce16(acc) };
    }
}

/// # Safety
/// The CPU must have NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemv_i8a8_dot(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { i8a8::<true>(codes, scales, x, y) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_i8a8_plain(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { i8a8::<false>(codes, scales, x, y) }
}

/// # Safety
/// The CPU must have NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemv_q8a8_dot(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { q8a8::<true>(blocks, x, y) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_q8a8_plain(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { q8a8::<false>(blocks, x, y) }
}

const _: () = assert!(4 * GROUP == LANES);
