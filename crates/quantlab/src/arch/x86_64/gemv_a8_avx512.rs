//! AVX-512 VNNI kernels on int8 activations (`arch::gemv`'s "int8
//! activations" contract): `vpdpbusd` (u8 × i8 → i32, four products a lane)
//! takes each 32-value block's dot in integers, 16 blocks (one `zmm` of
//! sums, block `b` in lane `b % 16`) at a time, and one fused multiply-add a
//! block puts it in the f32 lanes.
//!
//! `vpdpbusd` wants one operand unsigned: the weight codes are flipped,
//! `w ^ 0x80 = w + 128` (0..=255), so a block's sum is `Σ w · x + 128 · Σ x`
//! and the second term, which depends on `x` alone
//! ([`Q8Activations::offsets`]), is subtracted. Every product and sum is
//! exact in i32, so the block sums are the scalar reference's.

use std::arch::x86_64::*;

use crate::arch::gemv::{LANES, Q8_0_BYTES, QK};
use crate::arch::gemv_a8::{self, A8Kernels, Q8Activations};

pub(crate) static VNNI: A8Kernels = A8Kernels {
    name: "avx512vnni",
    family: "avx512",
    // SAFETY: `a8_tables` hands this table out only after detecting AVX-512F, BW, VNNI and FMA.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8a8(q, s, x, y) },
    // SAFETY: as above.
    gemv_q8_0: |q, x, y| unsafe { gemv_q8a8(q, x, y) },
};

/// `vpermd` indices that put the sums [`reduce_blocks`] leaves in the order
/// 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15 back in block order.
const TO_BLOCK_ORDER: [i32; 16] = [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15];

/// The mask of the bytes of a 64-byte load at byte `from` of `len` bytes.
#[inline(always)]
fn mask64(len: usize, from: usize) -> u64 {
    match len.saturating_sub(from) {
        0 => 0,
        b if b >= 64 => u64::MAX,
        b => (1u64 << b) - 1,
    }
}

/// Eight registers of 16 i32 partial sums, register `m` holding blocks `2m`
/// (lanes 0-7) and `2m + 1` (lanes 8-15), as one register of 16 block sums
/// in block order: three rounds of pairwise adds (dwords, then qwords, then
/// 128-bit lanes) and one permutation. Integer adds: exact in any order.
///
/// # Safety
/// The CPU must have AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn reduce_blocks(v: [__m512i; 8]) -> __m512i {
    let pair32 = |a, b| _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    let (s01, s23, s45, s67) = (pair32(v[0], v[1]), pair32(v[2], v[3]), pair32(v[4], v[5]), pair32(v[6], v[7]));
    // Per 128-bit lane L: [Σ v0_L, Σ v1_L, Σ v2_L, Σ v3_L] (and v4..v7).
    let pair64 = |a, b| _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    let (t0, t1) = (pair64(s01, s23), pair64(s45, s67));
    // 128-bit lanes 0 + 1 are the even blocks of each register, 2 + 3 the odd.
    let u = _mm512_add_epi32(_mm512_shuffle_i32x4::<0x88>(t0, t1), _mm512_shuffle_i32x4::<0xDD>(t0, t1));
    // SAFETY: reading a 16-element constant.
    _mm512_permutexvar_epi32(unsafe { _mm512_loadu_si512(TO_BLOCK_ORDER.as_ptr().cast()) }, u)
}

/// `Σ (w + 128) · x` of the `blocks` (1..=16) blocks whose codes start at
/// `w` and `x`, in lanes 0..blocks (0 beyond).
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI; `w` and `x` readable for `32 · blocks` bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn chunk_sums(w: *const i8, x: *const i8, blocks: usize) -> __m512i {
    let flip = _mm512_set1_epi8(-128);
    let len = blocks * QK;
    if blocks == LANES {
        // A whole chunk: plain loads, no masks.
        let mut v = [_mm512_setzero_si512(); 8];
        for (m, v) in v.iter_mut().enumerate() {
            // SAFETY: the caller's 512 bytes of each.
            let (wv, xv) =
                unsafe { (_mm512_loadu_si512(w.add(64 * m).cast()), _mm512_loadu_si512(x.add(64 * m).cast())) };
            *v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, flip), xv);
        }
        // SAFETY: same features.
        return unsafe { reduce_blocks(v) };
    }
    // The last, short chunk. Plain loops throughout: `std::array::from_fn`'s
    // closure compiled to far slower code here.
    let mut v = [_mm512_setzero_si512(); 8];
    for (m, v) in v.iter_mut().enumerate() {
        // Masked-off bytes load as 0: x is 0 there, so the flipped weight's
        // 128 multiplies 0. A mask of 0 reads nothing (hence wrapping_add).
        let k = mask64(len, 64 * m);
        // SAFETY: the masked loads read only the caller's bytes.
        let (wv, xv) = unsafe {
            (_mm512_maskz_loadu_epi8(k, w.wrapping_add(64 * m)), _mm512_maskz_loadu_epi8(k, x.wrapping_add(64 * m)))
        };
        *v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(wv, flip), xv);
    }
    // SAFETY: same features.
    unsafe { reduce_blocks(v) }
}

/// The lane mask of `blocks` (1..=16) blocks.
#[inline(always)]
fn lanes(blocks: usize) -> __mmask16 {
    ((1u32 << blocks) - 1) as u16
}

/// Rows that share one pass over the activations' scales and offsets: one.
/// Two rows read as two streams `n` bytes apart, which for power-of-two rows
/// fall in the same cache sets: at 8192 x 8192 (from memory) two rows at a
/// time took 4.2 ms, one 2.1 ms; at 4096 the two were within noise.
const ROWS: usize = 1;

/// # Safety
/// The CPU must have AVX-512F, BW, VNNI and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
unsafe fn gemv_i8a8(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    let rows = gemv_a8::i8a8_rows(codes.len(), scales.len(), x, y.len());
    crate::arch::gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `codes`, `scales` and `y` (`i8a8_rows`).
        unsafe {
            if block { rows_i8a8::<ROWS>(codes, scales, x, i, y) } else { rows_i8a8::<1>(codes, scales, x, i, y) }
        }
    });
}

/// Rows `first..first + R` of the int8 x Q8_0 product, each row's chunks
/// interleaved with the others' (independent chains for the out-of-order core).
///
/// # Safety
/// The CPU must have AVX-512F, BW, VNNI and FMA; those rows must exist in
/// `codes` (`x.len()` codes each), `scales` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma")]
unsafe fn rows_i8a8<const R: usize>(codes: &[i8], scales: &[f32], x: &Q8Activations, first: usize, y: &mut [f32]) {
    let n = x.len();
    let (xq, d, off) = (x.codes().as_ptr(), x.scales().as_ptr(), x.offsets().as_ptr());
    let mut acc = [_mm512_setzero_ps(); R];
    let mut b = 0;
    while b < x.blocks() {
        let m = (x.blocks() - b).min(LANES);
        // SAFETY: rows first..first + R's codes [32b, 32(b + m)) and the
        // activations' blocks b..b + m are in bounds (the caller); masked
        // loads read only lanes 0..m of the scales and offsets.
        unsafe {
            let k = lanes(m);
            let (o, dv) = (_mm512_maskz_loadu_epi32(k, off.add(b).cast()), _mm512_maskz_loadu_ps(k, d.add(b)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let s = chunk_sums(codes.as_ptr().add((first + r) * n + b * QK), xq.add(b * QK), m);
                *acc = _mm512_fmadd_ps(dv, _mm512_cvtepi32_ps(_mm512_sub_epi32(s, o)), *acc);
            }
        }
        b += m;
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: same features.
        y[first + r] = unsafe { super::gemv_avx512::reduce16(*acc) } * scales[first + r];
    }
}

/// # Safety
/// The CPU must have AVX-512F, BW, VNNI and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma")]
unsafe fn gemv_q8a8(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    let rows = gemv_a8::q8a8_rows(blocks.len(), x, y.len());
    let nb = x.blocks();
    let flip = _mm512_set1_epi8(-128);
    let (xq, d, off) = (x.codes().as_ptr(), x.scales().as_ptr(), x.offsets().as_ptr());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &blocks[i * nb * Q8_0_BYTES..(i + 1) * nb * Q8_0_BYTES];
        let mut acc = _mm512_setzero_ps();
        let mut b = 0;
        while b < nb {
            let m = (nb - b).min(LANES);
            let chunk = &row[b * Q8_0_BYTES..(b + m) * Q8_0_BYTES];
            // The blocks' f16 scales, 34 bytes apart: gathered through the stack.
            // The blocks' f16 scales, 34 bytes apart: one masked gather of the
            // dword at each block's start (its scale and first two codes), the
            // low halves kept. Lanes past the last block stay 0.
            let offsets = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(Q8_0_BYTES as i32),
            );
            // SAFETY: lanes 0..m read 4 bytes at the start of block b + lane, in `chunk`.
            let dw16 = _mm512_cvtepi32_epi16(unsafe {
                _mm512_mask_i32gather_epi32::<1>(_mm512_setzero_si512(), lanes(m), offsets, chunk.as_ptr().cast())
            });
            // Register p: blocks 2p and 2p + 1 of the chunk, each 32 codes
            // after its scale (two loads joined); their x codes are contiguous.
            let mut v = [_mm512_setzero_si512(); 8];
            let wp = chunk.as_ptr();
            for (p, v) in v.iter_mut().enumerate() {
                let (b0, b1) = (2 * p, 2 * p + 1);
                // A block past the last loads as zeros, and so does its x (a
                // zero mask reads nothing, hence wrapping_add); whole chunks
                // load without masks.
                let k = |blk: usize| if blk < m { u32::MAX } else { 0 };
                // SAFETY: blocks b0 and b1 of the chunk, when they exist, are in
                // `chunk`, and the activations' blocks b + b0, b + b1 in `xq`.
                let (w0, w1, xv) = unsafe {
                    if m == LANES {
                        (
                            _mm256_loadu_si256(wp.add(b0 * Q8_0_BYTES + 2).cast()),
                            _mm256_loadu_si256(wp.add(b1 * Q8_0_BYTES + 2).cast()),
                            _mm512_loadu_si512(xq.add((b + b0) * QK).cast()),
                        )
                    } else {
                        let kx = u64::from(k(b0)) | (u64::from(k(b1)) << 32);
                        (
                            _mm256_maskz_loadu_epi8(k(b0), wp.wrapping_add(b0 * Q8_0_BYTES + 2).cast()),
                            _mm256_maskz_loadu_epi8(k(b1), wp.wrapping_add(b1 * Q8_0_BYTES + 2).cast()),
                            _mm512_maskz_loadu_epi8(kx, xq.wrapping_add((b + b0) * QK)),
                        )
                    }
                };
                let wv = _mm512_xor_si512(_mm512_inserti64x4::<1>(_mm512_castsi256_si512(w0), w1), flip);
                *v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv);
            }
            // SAFETY: the activations' blocks b..b + m are in bounds; masked
            // loads read only lanes 0..m of the scales and offsets.
            unsafe {
                let k = lanes(m);
                let isum = _mm512_sub_epi32(reduce_blocks(v), _mm512_maskz_loadu_epi32(k, off.add(b).cast()));
                let dw = _mm512_cvtph_ps(dw16);
                let ds = _mm512_mul_ps(dw, _mm512_maskz_loadu_ps(k, d.add(b)));
                acc = _mm512_fmadd_ps(ds, _mm512_cvtepi32_ps(isum), acc);
            }
            b += m;
        }
        // SAFETY: same features.
        *yi = unsafe { super::gemv_avx512::reduce16(acc) };
    }
}
