//! NEON matrix-vector kernels on int8 and int4 weights: the 16 lanes of
//! `arch::gemv`'s summation order in four registers (lanes 0-3, 4-7, 8-11,
//! 12-15), four rows at a time, the tail of a row zero-padded; and the same
//! on ggml Q8_0, Q4_0, Q4_K and Q6_K blocks, read as stored.
//!
//! `vfmaq_f32(acc, x, w)` is one fused multiply-add (`acc + x · w`, one
//! rounding), the scalar path's `x.mul_add(w, acc)`; the weight `w = q · s`
//! is rounded first, as there. The lane tree is `acc[l] += acc[l + 8]`
//! (registers 0 += 2, 1 += 3), `+ 4` (0 += 1), `+ 2` (low half + high half),
//! `+ 1` (the two lanes left).

use std::arch::aarch64::*;

use crate::arch::gemv::{self, GemvKernels, LANES};
use crate::formats::kquants::{Q4_K_BYTES, Q6_K_BYTES, QK_K, scale_min_k4};

/// Rows that share one pass over `x`.
const ROWS: usize = 4;

/// 16 lanes, as four registers.
type V16 = [float32x4_t; 4];

pub(crate) static GEMV: GemvKernels = GemvKernels {
    name: "neon",
    // SAFETY: `gemv_tables` hands this table out only after detecting NEON.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8_neon(q, s, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_i4: |q, s, g, x, y| unsafe { gemv_i4_neon(q, s, g, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_q8_0: |q, x, y| unsafe { gemv_blocks::<Q8_0>(q, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_q4_0: |q, x, y| unsafe { gemv_blocks::<Q4_0>(q, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_lut4: |q, s, b, t, h, x, y| unsafe { gemv_lut4_neon(q, s, b, t, h, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_decoded: |d, b, x, y| unsafe { gemv_decoded_neon(d, b, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_q4_k: |q, x, y| unsafe { gemv_q4_k_neon(q, x, y) },
    // SAFETY: as above, the CPU has NEON.
    gemv_q6_k: |q, x, y| unsafe { gemv_q6_k_neon(q, x, y) },
};

/// The lane tree of `arch::gemv` over four registers.
///
/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn reduce16(v: V16) -> f32 {
    let s8 = [vaddq_f32(v[0], v[2]), vaddq_f32(v[1], v[3])];
    let s4 = vaddq_f32(s8[0], s8[1]);
    let s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
    vget_lane_f32::<0>(s2) + vget_lane_f32::<1>(s2)
}

/// # Safety
/// The CPU must have NEON; `p` must be readable for 16 f32.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_x(p: *const f32) -> V16 {
    // SAFETY: the caller guarantees 16 readable f32.
    unsafe { [vld1q_f32(p), vld1q_f32(p.add(4)), vld1q_f32(p.add(8)), vld1q_f32(p.add(12))] }
}

/// One step of 16 elements for one row: `q` holds 16 signed codes, `s`
/// their scale; each weight is `f32(q) · s`, rounded, then fused into `acc`.
///
/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn step(acc: &mut V16, x: &V16, q: int8x16_t, s: float32x4_t) {
    let lo = vmovl_s8(vget_low_s8(q));
    let hi = vmovl_s8(vget_high_s8(q));
    let w = [
        vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))),
        vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))),
        vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))),
        vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))),
    ];
    for k in 0..4 {
        acc[k] = vfmaq_f32(acc[k], x[k], vmulq_f32(w[k], s));
    }
}

/// 16 packed 4-bit codes (8 bytes, the first code in the low nibble) as 16
/// signed bytes, in code order.
///
/// # Safety
/// The CPU must have NEON; `p` must be readable for 8 bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn unpack16_i4(p: *const u8) -> int8x16_t {
    // SAFETY: the caller guarantees 8 readable bytes.
    let b = unsafe { vld1_u8(p) };
    let lo = vand_u8(b, vdup_n_u8(0x0F));
    let hi = vshr_n_u8::<4>(b);
    // Codes 2k (low nibble) and 2k + 1 (high nibble) side by side.
    let n = vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi));
    // Two's complement of 4 bits: (n ^ 8) - 8.
    vsubq_s8(vreinterpretq_s8_u8(veorq_u8(n, vdupq_n_u8(8))), vdupq_n_s8(8))
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_i8_neon(codes: &[i8], scales: &[f32], x: &[f32], y: &mut [f32]) {
    let rows = gemv::i8_rows(codes.len(), scales.len(), x.len(), y.len());
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `codes`, `scales` and `y` (`i8_rows`).
        unsafe { if block { rows_i8::<ROWS>(codes, scales, x, i, y) } else { rows_i8::<1>(codes, scales, x, i, y) } }
    });
}

/// Rows `first..first + R` of the int8 product.
///
/// # Safety
/// The CPU must have NEON; those rows must exist in `codes` (`n` codes
/// each), `scales` and `y`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows_i8<const R: usize>(codes: &[i8], scales: &[f32], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let s: [float32x4_t; R] = std::array::from_fn(|r| vdupq_n_f32(scales[first + r]));
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let rows = &codes[first * n..(first + R) * n];
    let mut j = 0;
    while j + LANES <= n {
        // SAFETY: x[j..j + 16] and each row's codes [j..j + 16] are in bounds.
        unsafe {
            let xv = load_x(x.as_ptr().add(j));
            for r in 0..R {
                let q = vld1q_s8(rows.as_ptr().add(r * n + j));
                step(&mut acc[r], &xv, q, s[r]);
            }
        }
        j += LANES;
    }
    if j < n {
        // Zero-padded copies of the tail: a padded lane adds fma(0, 0, acc) = acc.
        let mut xt = [0f32; LANES];
        xt[..n - j].copy_from_slice(&x[j..]);
        // SAFETY: `xt` holds 16 f32.
        let xv = unsafe { load_x(xt.as_ptr()) };
        for r in 0..R {
            let mut qt = [0i8; LANES];
            qt[..n - j].copy_from_slice(&rows[r * n + j..(r + 1) * n]);
            // SAFETY: `qt` holds 16 bytes.
            unsafe { step(&mut acc[r], &xv, vld1q_s8(qt.as_ptr()), s[r]) };
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_i4_neon(packed: &[u8], scales: &[f32], group: usize, x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::i4_rows(packed.len(), scales.len(), group, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; `group` is a multiple of the width
        // dividing `n`, and rows i..i + ROWS (or row i) are within `packed`,
        // `scales` and `y` (`i4_rows`).
        unsafe {
            if block {
                rows_i4::<ROWS>(packed, scales, group, x, i, y)
            } else {
                rows_i4::<1>(packed, scales, group, x, i, y)
            }
        }
    });
}

/// Rows `first..first + R` of the int4 product.
///
/// # Safety
/// The CPU must have NEON; `group` is a multiple of 16 dividing `n =
/// x.len()`; those rows must exist in `packed` (`n / 2` bytes each),
/// `scales` (`n / group` each) and `y`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows_i4<const R: usize>(packed: &[u8], scales: &[f32], group: usize, x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let groups = n / group;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let rows = &packed[first * n / 2..(first + R) * n / 2];
    for g in 0..groups {
        let s: [float32x4_t; R] = std::array::from_fn(|r| vdupq_n_f32(scales[(first + r) * groups + g]));
        let mut j = g * group;
        while j < (g + 1) * group {
            // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
            unsafe {
                let xv = load_x(x.as_ptr().add(j));
                for r in 0..R {
                    let q = unpack16_i4(rows.as_ptr().add(r * n / 2 + j / 2));
                    step(&mut acc[r], &xv, q, s[r]);
                }
            }
            j += LANES;
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// The int8 codes of a block's two 16-value steps, for a format.
trait BlockCodes {
    const BYTES: usize;
    /// # Safety
    /// The CPU must have NEON; `p` must be readable for `Self::BYTES` bytes.
    unsafe fn codes(p: *const u8) -> [int8x16_t; 2];
}

struct Q8_0;
impl BlockCodes for Q8_0 {
    const BYTES: usize = gemv::Q8_0_BYTES;
    #[inline(always)]
    unsafe fn codes(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: the caller guarantees the block's 34 bytes.
        unsafe { [vld1q_s8(p.add(2).cast()), vld1q_s8(p.add(2 + LANES).cast())] }
    }
}

struct Q4_0;
impl BlockCodes for Q4_0 {
    const BYTES: usize = gemv::Q4_0_BYTES;
    /// Byte `k` holds value `k` (low nibble) and `k + 16` (high), code `n`
    /// standing for `n - 8`.
    #[inline(always)]
    unsafe fn codes(p: *const u8) -> [int8x16_t; 2] {
        // SAFETY: the caller guarantees the block's 18 bytes and NEON.
        unsafe {
            let b = vld1q_u8(p.add(2));
            let eight = vdupq_n_s8(8);
            [
                vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F))), eight),
                vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(b)), eight),
            ]
        }
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_blocks<F: BlockCodes>(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::block_rows(blocks.len(), F::BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole blocks (`block_rows`).
        unsafe { if block { rows_blocks::<F, ROWS>(blocks, x, i, y) } else { rows_blocks::<F, 1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a block product: per block, `w = f32(q) · d`
/// (the reference's `q * d` and `d * (n - 8)`), two 16-lane steps.
///
/// # Safety
/// The CPU must have NEON; `x.len()` is a multiple of 32 and those rows
/// (`x.len() / 32` blocks each) must exist in `blocks` and `y`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows_blocks<F: BlockCodes, const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / gemv::QK * F::BYTES;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let rows = &blocks[first * row_bytes..(first + R) * row_bytes];
    for b in 0..n / gemv::QK {
        // SAFETY: x[32b..32b + 32] and each row's block b are in bounds.
        unsafe {
            let x0 = load_x(x.as_ptr().add(b * gemv::QK));
            let x1 = load_x(x.as_ptr().add(b * gemv::QK + LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                let block = &rows[r * row_bytes + b * F::BYTES..][..F::BYTES];
                let d = vdupq_n_f32(gemv::f16_scale(block));
                let [q0, q1] = F::codes(block.as_ptr());
                step(acc, &x0, q0, d);
                step(acc, &x1, q1, d);
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_lut4_neon(
    packed: &[u8],
    scales: &[f32],
    block: usize,
    table: &[f32; 16],
    high_first: bool,
    x: &[f32],
    y: &mut [f32],
) {
    let Some(rows) = gemv::lut4_rows(packed.len(), scales.len(), block, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, whole| {
        // SAFETY: the caller's features; `block` and `n` are multiples of 16,
        // and rows i..i + ROWS (or row i) are within `packed`, `scales` and
        // `y` (`lut4_rows`).
        unsafe {
            if whole {
                rows_lut4::<ROWS>(packed, scales, block, table, high_first, x, i, y)
            } else {
                rows_lut4::<1>(packed, scales, block, table, high_first, x, i, y)
            }
        }
    });
}

/// Rows `first..first + R` of a table-lookup product: each 16-value step lies
/// in one block, whose 16 weights `table[c] · scale` (64 bytes, four
/// registers) `tbl` picks from, four bytes per weight.
///
/// # Safety
/// The CPU must have NEON; `block` and `n = x.len()` are multiples of 16;
/// those rows must exist in `packed` (`n / 2` bytes each), `scales` (every
/// block they touch) and `y`.
#[inline]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_lut4<const R: usize>(
    packed: &[u8],
    scales: &[f32],
    block: usize,
    table: &[f32; 16],
    high_first: bool,
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let n = x.len();
    // `block` is a power of two (`lut4_rows`): the block of value k is k >> shift.
    let shift = block.trailing_zeros();
    // SAFETY: `table` holds 16 f32.
    let values: V16 = unsafe { load_x(table.as_ptr()) };
    // Output register v takes values 4v..4v + 3: each code's byte offset 4c
    // repeated four times, plus 0, 1, 2, 3.
    let rep: [uint8x16_t; 4] = std::array::from_fn(|v| {
        let b: [u8; 16] = std::array::from_fn(|i| (4 * v + i / 4) as u8);
        // SAFETY: `b` holds 16 bytes.
        unsafe { vld1q_u8(b.as_ptr()) }
    });
    // SAFETY: 16 bytes.
    let within = unsafe { vld1q_u8([0u8, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3].as_ptr()) };
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let mut j = 0;
    while j < n {
        // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
        unsafe {
            let xv = load_x(x.as_ptr().add(j));
            for (r, acc) in acc.iter_mut().enumerate() {
                let k = (first + r) * n + j;
                let s = vdupq_n_f32(scales[k >> shift]);
                let t = uint8x16x4_t(
                    vreinterpretq_u8_f32(vmulq_f32(values[0], s)),
                    vreinterpretq_u8_f32(vmulq_f32(values[1], s)),
                    vreinterpretq_u8_f32(vmulq_f32(values[2], s)),
                    vreinterpretq_u8_f32(vmulq_f32(values[3], s)),
                );
                let b = vld1_u8(packed.as_ptr().add(k / 2));
                let (lo, hi) = (vand_u8(b, vdup_n_u8(0x0F)), vshr_n_u8::<4>(b));
                let (a, c) = if high_first { (hi, lo) } else { (lo, hi) };
                let codes4 = vshlq_n_u8::<2>(vcombine_u8(vzip1_u8(a, c), vzip2_u8(a, c)));
                for v in 0..4 {
                    let idx = vaddq_u8(vqtbl1q_u8(codes4, rep[v]), within);
                    let w = vreinterpretq_f32_u8(vqtbl4q_u8(t, idx));
                    acc[v] = vfmaq_f32(acc[v], xv[v], w);
                }
            }
        }
        j += LANES;
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_decoded_neon(decode: gemv::DecodeBlock<'_>, block: usize, x: &[f32], y: &mut [f32]) {
    if !gemv::decoded_fits(block, x.len()) {
        return;
    }
    gemv::row_blocks::<ROWS>(y.len(), |i, whole| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are in `y`.
        unsafe {
            if whole { rows_decoded::<ROWS>(decode, block, x, i, y) } else { rows_decoded::<1>(decode, block, x, i, y) }
        }
    });
}

/// Rows `first..first + R` of a decoded-block product: each row's block
/// decoded into its own stack buffer, then its 16-lane steps fused into
/// that row's four registers.
///
/// # Safety
/// The CPU must have NEON; `block` fits `x` (`decoded_fits`) and rows
/// `first..first + R` are in `y`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn rows_decoded<const R: usize>(
    decode: gemv::DecodeBlock<'_>,
    block: usize,
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let per_row = x.len() / block;
    let mut w = [[0f32; gemv::MAX_BLOCK]; R];
    let mut acc: [V16; R] = [[vdupq_n_f32(0.0); 4]; R];
    for (b, xb) in x.chunks_exact(block).enumerate() {
        for (r, w) in w.iter_mut().enumerate() {
            decode((first + r) * per_row + b, &mut w[..block]);
        }
        for k in (0..block).step_by(LANES) {
            // SAFETY: k + 16 <= block, which is both `xb`'s length and at
            // most each buffer's (MAX_BLOCK).
            unsafe {
                let xv = load_x(xb.as_ptr().add(k));
                for r in 0..R {
                    let wv = load_x(w[r].as_ptr().add(k));
                    for l in 0..4 {
                        acc[r][l] = vfmaq_f32(acc[r][l], xv[l], wv[l]);
                    }
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_q4_k_neon(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q4_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q4_k::<ROWS>(blocks, x, i, y) } else { rows_q4_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q4_K product. `dl = d * scale_j` and `ml =
/// dmin * min_j` are the reference's own scalar lines (`get_scale_min_k4`,
/// the same f32 products); each weight is `dl * f32(q) - ml` as a `vmulq`
/// then a `vsubq` (its two roundings, in its order; no fused multiply-add).
///
/// # Safety
/// The CPU must have NEON; `x.len()` is a multiple of 256 and those rows
/// (`x.len() / 256` super-blocks of 144 bytes each) must exist in `blocks`
/// and `y`.
#[inline]
#[target_feature(enable = "neon")]
// The step and register indices also place values in `x` and the scales.
#[allow(clippy::needless_range_loop)]
unsafe fn rows_q4_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q4_K_BYTES;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let rows = &blocks[first * row_bytes..(first + R) * row_bytes];
    for b in 0..n / QK_K {
        for j in 0..8 {
            let dm: [(float32x4_t, float32x4_t); R] = std::array::from_fn(|r| {
                let p = &rows[r * row_bytes + b * Q4_K_BYTES..][..Q4_K_BYTES];
                let (d, dmin) = (gemv::f16_scale(p), gemv::f16_scale(&p[2..]));
                let (s, m) = scale_min_k4(j, &p[4..16]);
                (vdupq_n_f32(d * f32::from(s)), vdupq_n_f32(dmin * f32::from(m)))
            });
            for s in 0..2 {
                // SAFETY: x[256b + 32j + 16s..+ 16] and each row's 16 code
                // bytes of chunk j / 2 are in bounds.
                unsafe {
                    let xv = load_x(x.as_ptr().add(b * QK_K + 32 * j + LANES * s));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let bytes =
                            vld1q_u8(rows.as_ptr().add(r * row_bytes + b * Q4_K_BYTES + 16 + 32 * (j / 2) + LANES * s));
                        // Sub-block j: the low nibbles of chunk j / 2 when j is even, else the high ones.
                        let q = if j % 2 == 0 { vandq_u8(bytes, vdupq_n_u8(0x0F)) } else { vshrq_n_u8::<4>(bytes) };
                        let lo = vmovl_u8(vget_low_u8(q));
                        let hi = vmovl_u8(vget_high_u8(q));
                        let qf = [
                            vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))),
                            vcvtq_f32_u32(vmovl_u16(vget_high_u16(lo))),
                            vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))),
                            vcvtq_f32_u32(vmovl_u16(vget_high_u16(hi))),
                        ];
                        let (dl, ml) = dm[r];
                        for k in 0..4 {
                            acc[k] = vfmaq_f32(acc[k], xv[k], vsubq_f32(vmulq_f32(dl, qf[k]), ml));
                        }
                    }
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn gemv_q6_k_neon(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q6_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q6_k::<ROWS>(blocks, x, i, y) } else { rows_q6_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q6_K product: the reference's `(d * sc) *
/// f32(q - 32)`, `d * sc` its own scalar product, then each 16-value step
/// ([`step`]: `f32(q - 32) * dl`, the same product, as only `dl` can be NaN
/// and a lone NaN operand passes through on either side). Value `128h + 32k
/// + i` is the low (k = 0, 1) or high (k = 2, 3) nibble of low byte `64h +
/// 32(k % 2) + i`, under bits `2k, 2k + 1` of high byte `128 + 32h + i`.
///
/// # Safety
/// The CPU must have NEON; `x.len()` is a multiple of 256 and those rows
/// (`x.len() / 256` super-blocks of 210 bytes each) must exist in `blocks`
/// and `y`.
#[inline]
#[target_feature(enable = "neon")]
// The step and register indices also place values in `x` and the scales.
#[allow(clippy::needless_range_loop)]
unsafe fn rows_q6_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q6_K_BYTES;
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    let rows = &blocks[first * row_bytes..(first + R) * row_bytes];
    let (low4, bits45, three) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x30), vdupq_n_u8(3));
    for b in 0..n / QK_K {
        for h in 0..2 {
            // Each row's codes 128h + 32k + 16g..+ 16 (k = 0..4, g = 0..2), minus 32.
            let q: [[[int8x16_t; 4]; 2]; R] = std::array::from_fn(|r| {
                let p = &rows[r * row_bytes + b * Q6_K_BYTES..][..Q6_K_BYTES];
                std::array::from_fn(|g| {
                    // SAFETY: the 16-byte loads lie in the super-block's 210 bytes.
                    unsafe {
                        let a = vld1q_u8(p.as_ptr().add(64 * h + LANES * g));
                        let c = vld1q_u8(p.as_ptr().add(64 * h + 32 + LANES * g));
                        let hb = vld1q_u8(p.as_ptr().add(128 + 32 * h + LANES * g));
                        let codes = [
                            vorrq_u8(vandq_u8(a, low4), vshlq_n_u8::<4>(vandq_u8(hb, three))),
                            vorrq_u8(vandq_u8(c, low4), vandq_u8(vshlq_n_u8::<2>(hb), bits45)),
                            vorrq_u8(vshrq_n_u8::<4>(a), vandq_u8(hb, bits45)),
                            vorrq_u8(vshrq_n_u8::<4>(c), vandq_u8(vshrq_n_u8::<2>(hb), bits45)),
                        ];
                        codes.map(|v| vsubq_s8(vreinterpretq_s8_u8(v), vdupq_n_s8(32)))
                    }
                })
            });
            // Steps in value order: v = 128h + 32k + 16g increases with (k, g).
            for k in 0..4 {
                for g in 0..2 {
                    let v = 128 * h + 32 * k + LANES * g;
                    // SAFETY: x[256b + v..+ 16] is in bounds.
                    let xv = unsafe { load_x(x.as_ptr().add(b * QK_K + v)) };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let p = &rows[r * row_bytes + b * Q6_K_BYTES..][..Q6_K_BYTES];
                        let dl = gemv::f16_scale(&p[208..]) * f32::from(p[192 + v / LANES] as i8);
                        // SAFETY: same features.
                        unsafe { step(acc, &xv, q[r][g][k], vdupq_n_f32(dl)) };
                    }
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}
