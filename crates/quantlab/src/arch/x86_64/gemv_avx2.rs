//! AVX2 matrix-vector kernels on int8 and int4 weights: the 16 lanes of
//! `arch::gemv`'s summation order in two registers (lanes 0-7 and 8-15),
//! four rows at a time, the tail of a row zero-padded; and the same on
//! ggml Q8_0, Q4_0, Q4_K and Q6_K blocks, read as stored.

use std::arch::x86_64::*;

use crate::arch::gemv::{self, GemvKernels, LANES};
use crate::formats::kquants::{Q4_K_BYTES, Q6_K_BYTES, QK_K};

/// Rows that share one pass over `x`.
const ROWS: usize = 4;

pub(crate) static GEMV: GemvKernels = GemvKernels {
    name: "avx2",
    // SAFETY: `gemv_tables` hands this table out only after detecting AVX2 and FMA.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8_avx2(q, s, x, y) },
    // SAFETY: as above, the CPU has AVX2 and FMA.
    gemv_i4: |q, s, g, x, y| unsafe { gemv_i4_avx2(q, s, g, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q8_0: |q, x, y| unsafe { gemv_q8_0_avx2(q, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q4_0: |q, x, y| unsafe { gemv_q4_0_avx2(q, x, y) },
    // SAFETY: as above.
    gemv_lut4: |q, s, b, t, h, x, y| unsafe { gemv_lut4_avx2(q, s, b, t, h, x, y) },
    // SAFETY: as above.
    gemv_decoded: |d, b, x, y| unsafe { gemv_decoded_avx2(d, b, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q4_k: |q, x, y| unsafe { gemv_q4_k_avx2(q, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q6_k: |q, x, y| unsafe { gemv_q6_k_avx2(q, x, y) },
};

/// The lane tree of `arch::gemv` from lane width 8 on: `l + 4`, `+ 2`, `+ 1`.
///
/// # Safety
/// The CPU must have AVX.
#[inline]
#[target_feature(enable = "avx")]
pub(super) unsafe fn reduce8(v: __m256) -> f32 {
    let s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
    _mm_cvtss_f32(s1)
}

/// One step of 16 elements for one row: `q` holds 16 signed codes.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn step(acc: &mut [__m256; 2], x: [__m256; 2], q: __m128i, s: __m256) {
    let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
    let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(q)));
    acc[0] = _mm256_fmadd_ps(x[0], _mm256_mul_ps(lo, s), acc[0]);
    acc[1] = _mm256_fmadd_ps(x[1], _mm256_mul_ps(hi, s), acc[1]);
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_x(p: *const f32) -> [__m256; 2] {
    // SAFETY: the caller guarantees 16 readable f32.
    unsafe { [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))] }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_i8_avx2(codes: &[i8], scales: &[f32], x: &[f32], y: &mut [f32]) {
    let rows = gemv::i8_rows(codes.len(), scales.len(), x.len(), y.len());
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `codes`, `scales` and `y` (`i8_rows`).
        unsafe { if block { rows_i8::<ROWS>(codes, scales, x, i, y) } else { rows_i8::<1>(codes, scales, x, i, y) } }
    });
}

/// # Safety
/// The CPU must have AVX2 and FMA; rows `first..first + R` must exist in
/// `codes` (`n` codes each), `scales` and `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_i8<const R: usize>(codes: &[i8], scales: &[f32], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let s: [__m256; R] = std::array::from_fn(|r| _mm256_set1_ps(scales[first + r]));
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let rows = &codes[first * n..(first + R) * n];
    let mut j = 0;
    while j + LANES <= n {
        // SAFETY: x[j..j + 16] and each row's codes [j..j + 16] are in bounds.
        unsafe {
            let xv = load_x(x.as_ptr().add(j));
            for r in 0..R {
                let q = _mm_loadu_si128(rows.as_ptr().add(r * n + j).cast());
                step(&mut acc[r], xv, q, s[r]);
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
            unsafe { step(&mut acc[r], xv, _mm_loadu_si128(qt.as_ptr().cast()), s[r]) };
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_i4_avx2(packed: &[u8], scales: &[f32], group: usize, x: &[f32], y: &mut [f32]) {
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

/// # Safety
/// The CPU must have AVX2 and FMA; `group` is a multiple of 16 dividing
/// `n = x.len()`; rows `first..first + R` must exist in `packed` (`n / 2`
/// bytes each), `scales` (`n / group` each) and `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_i4<const R: usize>(packed: &[u8], scales: &[f32], group: usize, x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let groups = n / group;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let rows = &packed[first * n / 2..(first + R) * n / 2];
    for g in 0..groups {
        let s: [__m256; R] = std::array::from_fn(|r| _mm256_set1_ps(scales[(first + r) * groups + g]));
        let mut j = g * group;
        while j < (g + 1) * group {
            // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
            unsafe {
                let xv = load_x(x.as_ptr().add(j));
                for r in 0..R {
                    let q = super::gemv_avx512::unpack16_i4(rows.as_ptr().add(r * n / 2 + j / 2));
                    step(&mut acc[r], xv, q, s[r]);
                }
            }
            j += LANES;
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// A ggml block's f16 scale at `p` as f32, in every lane (F16C: exact, as
/// `half`'s conversion).
///
/// # Safety
/// The CPU must have AVX2 and F16C; `p` must be readable for 2 bytes.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn block_scale(p: *const u8) -> __m256 {
    // SAFETY: the caller guarantees 2 readable bytes.
    let h = unsafe { p.cast::<u16>().read_unaligned() };
    _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
}

/// The int8 codes of block `b`'s two 16-value steps, for a format.
trait BlockCodes {
    const BYTES: usize;
    /// # Safety
    /// The CPU must have AVX2; `p` must be readable for `Self::BYTES` bytes.
    unsafe fn codes(p: *const u8) -> [__m128i; 2];
}

struct Q8_0;
impl BlockCodes for Q8_0 {
    const BYTES: usize = gemv::Q8_0_BYTES;
    #[inline(always)]
    unsafe fn codes(p: *const u8) -> [__m128i; 2] {
        // SAFETY: the caller guarantees the block's 34 bytes.
        unsafe { [_mm_loadu_si128(p.add(2).cast()), _mm_loadu_si128(p.add(2 + LANES).cast())] }
    }
}

struct Q4_0;
impl BlockCodes for Q4_0 {
    const BYTES: usize = gemv::Q4_0_BYTES;
    /// Byte `k` holds value `k` (low nibble) and `k + 16` (high), code `n`
    /// standing for `n - 8`.
    #[inline(always)]
    unsafe fn codes(p: *const u8) -> [__m128i; 2] {
        // SAFETY: the caller guarantees the block's 18 bytes and AVX2 (these are SSE2).
        unsafe {
            let b = _mm_loadu_si128(p.add(2).cast());
            let m = _mm_set1_epi8(0x0F);
            let eight = _mm_set1_epi8(8);
            [_mm_sub_epi8(_mm_and_si128(b, m), eight), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16::<4>(b), m), eight)]
        }
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_q8_0_avx2(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    // SAFETY: same features.
    unsafe { gemv_blocks::<Q8_0>(blocks, x, y) }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_q4_0_avx2(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    // SAFETY: same features.
    unsafe { gemv_blocks::<Q4_0>(blocks, x, y) }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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
/// The CPU must have AVX2, FMA and F16C; `x.len()` is a multiple of 32 and
/// those rows (`x.len() / 32` blocks each) must exist in `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_blocks<F: BlockCodes, const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / gemv::QK * F::BYTES;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / gemv::QK {
        // SAFETY: x[32b..32b + 32] and each row's block b are in bounds.
        unsafe {
            let x0 = load_x(x.as_ptr().add(b * gemv::QK));
            let x1 = load_x(x.as_ptr().add(b * gemv::QK + LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = base.add(r * row_bytes + b * F::BYTES);
                let d = block_scale(p);
                let [q0, q1] = F::codes(p);
                step(acc, x0, q0, d);
                step(acc, x1, q1, d);
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_lut4_avx2(
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

/// 16 packed 4-bit codes (8 bytes) as 16 unsigned bytes in value order.
///
/// # Safety
/// The CPU must have AVX2; `p` must be readable for 8 bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn unpack16_u4(p: *const u8, high_first: bool) -> __m128i {
    // SAFETY: the caller guarantees 8 readable bytes.
    let w = _mm_cvtepu8_epi16(unsafe { _mm_loadl_epi64(p.cast()) });
    // Byte k as a u16 lane: its first value in the lane's low byte, its second in the high byte.
    let (first, second) =
        if high_first { (_mm_srli_epi16::<4>(w), _mm_slli_epi16::<8>(w)) } else { (w, _mm_slli_epi16::<4>(w)) };
    _mm_or_si128(_mm_and_si128(first, _mm_set1_epi16(0x000F)), _mm_and_si128(second, _mm_set1_epi16(0x0F00)))
}

/// Rows `first..first + R` of a table-lookup product: each 16-value step lies
/// in one block, whose 16 weights `table[c] · scale` sit in two registers;
/// `vpermps` picks from both by a code's low 3 bits and bit 3 chooses.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `block` and `n = x.len()` are multiples
/// of 16; those rows must exist in `packed` (`n / 2` bytes each), `scales`
/// (every block they touch) and `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
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
    let values = unsafe { [_mm256_loadu_ps(table.as_ptr()), _mm256_loadu_ps(table.as_ptr().add(8))] };
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut j = 0;
    while j < n {
        // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
        unsafe {
            let xv = load_x(x.as_ptr().add(j));
            for (r, acc) in acc.iter_mut().enumerate() {
                let k = (first + r) * n + j;
                let s = _mm256_set1_ps(scales[k >> shift]);
                let t = [_mm256_mul_ps(values[0], s), _mm256_mul_ps(values[1], s)];
                let c = unpack16_u4(packed.as_ptr().add(k / 2), high_first);
                for (h, c) in [c, _mm_srli_si128::<8>(c)].into_iter().enumerate() {
                    let idx = _mm256_cvtepu8_epi32(c);
                    let lo = _mm256_permutevar8x32_ps(t[0], idx);
                    let hi = _mm256_permutevar8x32_ps(t[1], idx);
                    // Bit 3 of the code to the sign bit: blendv takes `hi` there.
                    let w = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx)));
                    acc[h] = _mm256_fmadd_ps(xv[h], w, acc[h]);
                }
            }
        }
        j += LANES;
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_decoded_avx2(decode: gemv::DecodeBlock<'_>, block: usize, x: &[f32], y: &mut [f32]) {
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
/// that row's two registers (lanes 0-7, 8-15).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `block` fits `x` (`decoded_fits`) and
/// rows `first..first + R` are in `y`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_decoded<const R: usize>(
    decode: gemv::DecodeBlock<'_>,
    block: usize,
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let per_row = x.len() / block;
    let mut w = [[0f32; gemv::MAX_BLOCK]; R];
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for (b, xb) in x.chunks_exact(block).enumerate() {
        for (r, w) in w.iter_mut().enumerate() {
            decode((first + r) * per_row + b, &mut w[..block]);
        }
        for k in (0..block).step_by(LANES) {
            // SAFETY: k + 16 <= block, which is both `xb`'s length and at
            // most each buffer's (MAX_BLOCK).
            unsafe {
                let x0 = _mm256_loadu_ps(xb.as_ptr().add(k));
                let x1 = _mm256_loadu_ps(xb.as_ptr().add(k + 8));
                for r in 0..R {
                    let p = w[r].as_ptr().add(k);
                    acc[r][0] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p), acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(p.add(8)), acc[r][1]);
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features (the `l + 8` step, then the tree).
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_q4_k_avx2(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q4_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q4_k::<ROWS>(blocks, x, i, y) } else { rows_q4_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q4_K product: the reference's `dl * f32(q)
/// - ml` as a `vmulps` then a `vsubps` (its two roundings, in its order; no
/// fused multiply-add), `dl = d * scale_j` and `ml = dmin * min_j` each one
/// `vmulps` of the same operands (AVX-512's `rows_q4_k` explains the layout).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `x.len()` is a multiple of 256 and
/// those rows (`x.len() / 256` super-blocks of 144 bytes each) must exist in
/// `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_q4_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q4_K_BYTES;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / QK_K {
        // Per row: `dl` of sub-blocks 0..8, then their `ml`.
        let mut dm = [[0f32; 16]; R];
        for (r, dm) in dm.iter_mut().enumerate() {
            // SAFETY: row r's super-block b (144 bytes) is in bounds.
            unsafe {
                let p = base.add(r * row_bytes + b * Q4_K_BYTES);
                let sm = gemv::q4_k_scales_mins(p.add(4).cast::<[u8; 12]>().read_unaligned());
                let sm = _mm_loadu_si128(sm.as_ptr().cast());
                let scales = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
                let mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(sm)));
                _mm256_storeu_ps(dm.as_mut_ptr(), _mm256_mul_ps(block_scale(p), scales));
                _mm256_storeu_ps(dm.as_mut_ptr().add(8), _mm256_mul_ps(block_scale(p.add(2)), mins));
            }
        }
        for j in 0..8 {
            // Sub-block j: 32 values, the low (j even) or high nibbles of chunk j / 2.
            for s in 0..2 {
                // SAFETY: x[256b + 32j + 16s..+ 16] and each row's chunk bytes are in bounds.
                unsafe {
                    let xv = load_x(x.as_ptr().add(b * QK_K + 32 * j + LANES * s));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let p = base.add(r * row_bytes + b * Q4_K_BYTES + 16 + 32 * (j / 2) + LANES * s);
                        let mut q = _mm_loadu_si128(p.cast());
                        if j % 2 == 1 {
                            q = _mm_srli_epi16::<4>(q);
                        }
                        let q = _mm_and_si128(q, _mm_set1_epi8(0x0F));
                        let (dl, ml) = (_mm256_set1_ps(dm[r][j]), _mm256_set1_ps(dm[r][8 + j]));
                        let lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q));
                        let hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(q)));
                        acc[0] = _mm256_fmadd_ps(xv[0], _mm256_sub_ps(_mm256_mul_ps(dl, lo), ml), acc[0]);
                        acc[1] = _mm256_fmadd_ps(xv[1], _mm256_sub_ps(_mm256_mul_ps(dl, hi), ml), acc[1]);
                    }
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemv_q6_k_avx2(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q6_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q6_k::<ROWS>(blocks, x, i, y) } else { rows_q6_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q6_K product: the reference's `(d * sc) *
/// f32(q - 32)`, `d * sc` one `vmulps` for 8 scales, then each 16-value
/// step's product times its codes ([`step`]: `f32(q) * dl`, the same
/// product, as only `dl` can be NaN and x86 passes a lone NaN operand on
/// whichever side it is).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C; `x.len()` is a multiple of 256 and
/// those rows (`x.len() / 256` super-blocks of 210 bytes each) must exist in
/// `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
// `k` (a 32-code group) indexes each row's codes and places the step in `x` and the scales.
#[allow(clippy::needless_range_loop)]
unsafe fn rows_q6_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q6_K_BYTES;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / QK_K {
        let mut dl = [[0f32; 16]; R];
        for (r, dl) in dl.iter_mut().enumerate() {
            // SAFETY: row r's super-block b (210 bytes) is in bounds.
            unsafe {
                let p = base.add(r * row_bytes + b * Q6_K_BYTES);
                let d = block_scale(p.add(208));
                let sc = _mm_loadu_si128(p.add(192).cast());
                let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc));
                let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(sc)));
                _mm256_storeu_ps(dl.as_mut_ptr(), _mm256_mul_ps(d, lo));
                _mm256_storeu_ps(dl.as_mut_ptr().add(8), _mm256_mul_ps(d, hi));
            }
        }
        for h in 0..2 {
            let q: [[__m256i; 4]; R] = std::array::from_fn(|r| {
                // SAFETY: row r's super-block b (210 bytes) is in bounds.
                unsafe { super::gemv_avx512::q6_k_codes(base.add(r * row_bytes + b * Q6_K_BYTES), h) }
            });
            for k in 0..4 {
                for s in 0..2 {
                    let v = 128 * h + 32 * k + LANES * s;
                    // SAFETY: x[256b + v..+ 16] is in bounds.
                    let xv = unsafe { load_x(x.as_ptr().add(b * QK_K + v)) };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let half = if s == 0 {
                            _mm256_castsi256_si128(q[r][k])
                        } else {
                            _mm256_extracti128_si256::<1>(q[r][k])
                        };
                        // SAFETY: same features.
                        unsafe { step(acc, xv, half, _mm256_set1_ps(dl[r][v / LANES])) };
                    }
                }
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce8(_mm256_add_ps(acc[r][0], acc[r][1])) };
    }
}
