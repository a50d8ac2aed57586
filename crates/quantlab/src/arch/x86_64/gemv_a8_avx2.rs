//! 256-bit kernels on int8 activations (`arch::gemv`'s "int8 activations"
//! contract) for the AVX2 table: the 16 f32 lanes in two registers (blocks
//! `b % 16` in 0..8 and 8..16), eight blocks' integer sums at a time in one
//! register. Two ways to take a block's 32-product dot in eight i32 lanes:
//! - AVX-VNNI (`avxvnni`, the VEX form of `vpdpbusd`: Alder Lake and later,
//!   Zen 5): u8 × i8, so the weight is flipped to `w + 128` and the block's
//!   `128 · Σ x` ([`Q8Activations::offsets`]) subtracted, as AVX-512 VNNI does;
//! - plain AVX2: both operands widened to i16 and `vpmaddwd` (i16 × i16 →
//!   i32 pairs), which never saturates (unlike `vpmaddubsw`'s i16 sums).
//!
//! Either way every product and sum is exact in i32.

use std::arch::x86_64::*;

use crate::arch::gemv::{LANES, Q8_0_BYTES, QK};
use crate::arch::gemv_a8::{self, A8Kernels, Q8Activations};

pub(crate) static VNNI: A8Kernels = A8Kernels {
    name: "avxvnni",
    family: "avx2",
    // SAFETY: `a8_tables` hands this table out only after detecting AVX2, FMA, F16C and AVX-VNNI.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8a8_vnni(q, s, x, y) },
    // SAFETY: as above.
    gemv_q8_0: |q, x, y| unsafe { gemv_q8a8_vnni(q, x, y) },
};

pub(crate) static PLAIN: A8Kernels = A8Kernels {
    name: "avx2",
    family: "avx2",
    // SAFETY: `a8_tables` hands this table out only after detecting AVX2, FMA and F16C.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8a8_plain(q, s, x, y) },
    // SAFETY: as above.
    gemv_q8_0: |q, x, y| unsafe { gemv_q8a8_plain(q, x, y) },
};

/// Blocks a register of sums holds.
const GROUP: usize = 8;

/// One block's dot in eight i32 partial sums (the flipped weight's with
/// VNNI, the signed dot without).
///
/// # Safety
/// The CPU must have AVX2 (and AVX-VNNI when `VNNI`); `w` and `x` readable for 32 bytes.
#[inline(always)]
unsafe fn block_partials<const VNNI: bool>(w: *const i8, x: *const i8) -> __m256i {
    // SAFETY: the caller's features and bytes.
    unsafe {
        if VNNI {
            let wv = _mm256_xor_si256(_mm256_loadu_si256(w.cast()), _mm256_set1_epi8(-128));
            _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wv, _mm256_loadu_si256(x.cast()))
        } else {
            let (w0, w1) = (_mm_loadu_si128(w.cast()), _mm_loadu_si128(w.add(16).cast()));
            let (x0, x1) = (_mm_loadu_si128(x.cast()), _mm_loadu_si128(x.add(16).cast()));
            let lo = _mm256_madd_epi16(_mm256_cvtepi8_epi16(w0), _mm256_cvtepi8_epi16(x0));
            let hi = _mm256_madd_epi16(_mm256_cvtepi8_epi16(w1), _mm256_cvtepi8_epi16(x1));
            _mm256_add_epi32(lo, hi)
        }
    }
}

/// The sums of `m` (1..=8) blocks, block `k` at `w + k · stride` and
/// `x + 32k`, in lanes 0..m (0 beyond): eight registers of partial sums
/// reduced by pairwise adds of dwords, qwords and 128-bit halves, which
/// leave them in block order. Integer adds: exact in any order.
///
/// # Safety
/// The CPU must have AVX2 (and AVX-VNNI when `VNNI`); those blocks readable.
#[inline(always)]
unsafe fn group_sums<const VNNI: bool>(w: *const i8, stride: usize, x: *const i8, m: usize) -> __m256i {
    // A plain loop: `std::array::from_fn`'s closure compiled to far slower code here.
    // SAFETY: the caller's features; block k < m is readable.
    let mut v = [unsafe { _mm256_setzero_si256() }; GROUP];
    for (k, v) in v.iter_mut().enumerate().take(m) {
        // SAFETY: as above.
        *v = unsafe { block_partials::<VNNI>(w.add(k * stride), x.add(k * QK)) };
    }
    // SAFETY: the caller's features.
    unsafe {
        let pair32 = |a, b| _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
        let pair64 = |a, b| _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
        let t0 = pair64(pair32(v[0], v[1]), pair32(v[2], v[3]));
        let t1 = pair64(pair32(v[4], v[5]), pair32(v[6], v[7]));
        // Per 128-bit half L: [Σ v0_L, Σ v1_L, Σ v2_L, Σ v3_L] (t1: v4..v7).
        _mm256_add_epi32(_mm256_permute2x128_si256::<0x20>(t0, t1), _mm256_permute2x128_si256::<0x31>(t0, t1))
    }
}

/// `m` (1..=8) f32s from `p`, zeros beyond (through the stack when short).
///
/// # Safety
/// The CPU must have AVX; `p` readable for `m` f32s.
#[inline(always)]
unsafe fn load_f32(p: *const f32, m: usize) -> __m256 {
    let mut buf = [0f32; GROUP];
    // SAFETY: the caller's features and m readable values.
    unsafe {
        if m == GROUP {
            return _mm256_loadu_ps(p);
        }
        std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), m);
        _mm256_loadu_ps(buf.as_ptr())
    }
}

/// The exact integer dots of `m` blocks as f32 (offsets subtracted with VNNI).
///
/// # Safety
/// As [`group_sums`]; the activations hold blocks `b..b + m`.
#[inline(always)]
unsafe fn group_dots<const VNNI: bool>(w: *const i8, stride: usize, x: &Q8Activations, b: usize, m: usize) -> __m256 {
    // SAFETY: the caller's features and bounds.
    unsafe {
        let mut s = group_sums::<VNNI>(w, stride, x.codes().as_ptr().add(b * QK), m);
        if VNNI {
            let mut off = [0i32; GROUP];
            off[..m].copy_from_slice(&x.offsets()[b..b + m]);
            s = _mm256_sub_epi32(s, _mm256_loadu_si256(off.as_ptr().cast()));
        }
        _mm256_cvtepi32_ps(s)
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA (and AVX-VNNI when `VNNI`).
#[inline(always)]
unsafe fn i8a8<const VNNI: bool>(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    let n = x.len();
    let rows = gemv_a8::i8a8_rows(codes.len(), scales.len(), x, y.len());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        // SAFETY: the caller's features (AVX).
        let mut acc = [unsafe { _mm256_setzero_ps() }; 2];
        let mut b = 0;
        while b < x.blocks() {
            let m = (x.blocks() - b).min(GROUP);
            // SAFETY: row i's codes for blocks b..b + m and those blocks of
            // the activations are in bounds (`i8a8_rows`).
            unsafe {
                let dots = group_dots::<VNNI>(codes.as_ptr().add(i * n + b * QK), QK, x, b, m);
                let d = load_f32(x.scales().as_ptr().add(b), m);
                let a = &mut acc[(b / GROUP) % 2];
                *a = _mm256_fmadd_ps(d, dots, *a);
            }
            b += m;
        }
        // SAFETY: AVX; the lane tree's first step adds register 1 to register 0.
        *yi = unsafe { super::gemv_avx2::reduce8(_mm256_add_ps(acc[0], acc[1])) } * scales[i];
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C (and AVX-VNNI when `VNNI`).
#[inline(always)]
unsafe fn q8a8<const VNNI: bool>(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    let nb = x.blocks();
    let rows = gemv_a8::q8a8_rows(blocks.len(), x, y.len());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &blocks[i * nb * Q8_0_BYTES..(i + 1) * nb * Q8_0_BYTES];
        // SAFETY: the caller's features (AVX).
        let mut acc = [unsafe { _mm256_setzero_ps() }; 2];
        let mut b = 0;
        while b < nb {
            let m = (nb - b).min(GROUP);
            let mut dw = [0u16; GROUP];
            for (dw, blk) in dw.iter_mut().zip(row[b * Q8_0_BYTES..(b + m) * Q8_0_BYTES].chunks_exact(Q8_0_BYTES)) {
                *dw = u16::from_le_bytes([blk[0], blk[1]]);
            }
            // SAFETY: blocks b..b + m of row i (each 32 codes after its 2-byte
            // scale) and of the activations are in bounds (`q8a8_rows`).
            unsafe {
                let w = row.as_ptr().add(b * Q8_0_BYTES + 2).cast::<i8>();
                let dots = group_dots::<VNNI>(w, Q8_0_BYTES, x, b, m);
                let ds = _mm256_mul_ps(
                    _mm256_cvtph_ps(_mm_loadu_si128(dw.as_ptr().cast())),
                    load_f32(x.scales().as_ptr().add(b), m),
                );
                let a = &mut acc[(b / GROUP) % 2];
                *a = _mm256_fmadd_ps(ds, dots, *a);
            }
            b += m;
        }
        // SAFETY: AVX.
        *yi = unsafe { super::gemv_avx2::reduce8(_mm256_add_ps(acc[0], acc[1])) };
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and AVX-VNNI.
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemv_i8a8_vnni(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { i8a8::<true>(codes, scales, x, y) }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_i8a8_plain(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { i8a8::<false>(codes, scales, x, y) }
}

/// # Safety
/// The CPU must have AVX2, FMA, F16C and AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn gemv_q8a8_vnni(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { q8a8::<true>(blocks, x, y) }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_q8a8_plain(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    // SAFETY: this function's features.
    unsafe { q8a8::<false>(blocks, x, y) }
}

const _: () = assert!(2 * GROUP == LANES);
