//! AVX-512 matrix-vector kernels on int8 and int4 weights: the 16 lanes of
//! `arch::gemv`'s summation order in one register, four rows at a time
//! (sharing each load of `x`), the tail of a row masked; and the same on
//! ggml Q8_0, Q4_0, Q4_K and Q6_K blocks, read as stored.

use std::arch::x86_64::*;

use crate::arch::gemv::{self, GemvKernels, LANES};
use crate::formats::kquants::{Q4_K_BYTES, Q6_K_BYTES, QK_K};

/// Rows that share one pass over `x`.
const ROWS: usize = 4;

pub(crate) static GEMV: GemvKernels = GemvKernels {
    name: "avx512",
    // SAFETY: `gemv_tables` hands this table out only after detecting AVX-512F, BW, VL, VBMI and FMA.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8_avx512(q, s, x, y) },
    // SAFETY: as above, the CPU has AVX-512F, BW, VL, VBMI and FMA.
    gemv_i4: |q, s, g, x, y| unsafe { gemv_i4_avx512(q, s, g, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q8_0: |q, x, y| unsafe { gemv_q8_0_avx512(q, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q4_0: |q, x, y| unsafe { gemv_q4_0_avx512(q, x, y) },
    // SAFETY: as above.
    gemv_lut4: |q, s, b, t, h, x, y| unsafe { gemv_lut4_avx512(q, s, b, t, h, x, y) },
    // SAFETY: as above.
    gemv_decoded: |d, b, x, y| unsafe { gemv_decoded_avx512(d, b, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q4_k: |q, x, y| unsafe { gemv_q4_k_avx512(q, x, y) },
    // SAFETY: as above (F16C too).
    gemv_q6_k: |q, x, y| unsafe { gemv_q6_k_avx512(q, x, y) },
};

/// The lane tree of `arch::gemv` over one register: `l + 8`, `+ 4`, `+ 2`, `+ 1`.
///
/// # Safety
/// The CPU must have AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn reduce16(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    // SAFETY: AVX-512F implies AVX.
    unsafe { super::gemv_avx2::reduce8(_mm256_add_ps(lo, hi)) }
}

/// 16 packed 4-bit codes (8 bytes) as 16 signed bytes, in code order.
///
/// # Safety
/// The CPU must have AVX2 (SSE4.1 is enough); `p` must be readable for 8 bytes.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn unpack16_i4(p: *const u8) -> __m128i {
    // SAFETY: the caller guarantees 8 readable bytes.
    let b = unsafe { _mm_loadl_epi64(p.cast()) };
    // Byte k becomes a u16 lane: its low nibble in the lane's low byte (code
    // 2k), its high nibble in the high byte (code 2k + 1).
    let w = _mm_cvtepu8_epi16(b);
    let nib = _mm_or_si128(
        _mm_and_si128(w, _mm_set1_epi16(0x000F)),
        _mm_and_si128(_mm_slli_epi16::<4>(w), _mm_set1_epi16(0x0F00)),
    );
    // Two's complement of 4 bits: (n ^ 8) - 8.
    _mm_sub_epi8(_mm_xor_si128(nib, _mm_set1_epi8(8)), _mm_set1_epi8(8))
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn gemv_i8_avx512(codes: &[i8], scales: &[f32], x: &[f32], y: &mut [f32]) {
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
/// The CPU must have AVX-512F, BW, VL and FMA; those rows must exist in
/// `codes` (`n` codes each), `scales` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn rows_i8<const R: usize>(codes: &[i8], scales: &[f32], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let s: [__m512; R] = std::array::from_fn(|r| _mm512_set1_ps(scales[first + r]));
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of n codes from row `first`.
    let base = unsafe { codes.as_ptr().add(first * n) };
    let mut j = 0;
    while j + LANES <= n {
        // SAFETY: x[j..j + 16] and each row's codes [j..j + 16] are in bounds.
        unsafe {
            let xv = _mm512_loadu_ps(x.as_ptr().add(j));
            for r in 0..R {
                let q = _mm_loadu_si128(base.add(r * n + j).cast());
                let w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), s[r]);
                acc[r] = _mm512_fmadd_ps(xv, w, acc[r]);
            }
        }
        j += LANES;
    }
    if j < n {
        // The last n - j elements: masked-off lanes load as zero and add fma(0, 0, acc) = acc.
        let m: __mmask16 = ((1u32 << (n - j)) - 1) as u16;
        // SAFETY: masked loads touch only the n - j elements in bounds.
        unsafe {
            let xv = _mm512_maskz_loadu_ps(m, x.as_ptr().add(j));
            for r in 0..R {
                let q = _mm_maskz_loadu_epi8(m, base.add(r * n + j).cast());
                let w = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), s[r]);
                acc[r] = _mm512_fmadd_ps(xv, w, acc[r]);
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL, VBMI and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,fma")]
unsafe fn gemv_i4_avx512(packed: &[u8], scales: &[f32], group: usize, x: &[f32], y: &mut [f32]) {
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
/// A code's weight is looked up rather than computed: each group's 16
/// possible weights `value(n) · s` (the very products the scalar path
/// rounds) sit in one register, and `vpermps` picks one per lane by the
/// code's low 4 bits, so the nibbles need no masking, sign extension or
/// conversion; `vpmultishiftqb` (AVX-512 VBMI) puts each code in its lane.
/// Two shuffle-port instructions per 16 codes: that port bounds this loop.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, VBMI and FMA; `group` is a multiple of 16
/// dividing `n = x.len()`; those rows must exist in `packed` (`n / 2` bytes
/// each), `scales` (`n / group` each) and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,fma")]
unsafe fn rows_i4<const R: usize>(packed: &[u8], scales: &[f32], group: usize, x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let groups = n / group;
    // The value of each 4-bit code, by code: 0..7, then -8..-1.
    let values = _mm512_setr_ps(0., 1., 2., 3., 4., 5., 6., 7., -8., -7., -6., -5., -4., -3., -2., -1.);
    // For `vpmultishiftqb`: in 64-bit lane m, the low bytes of dwords 2m and
    // 2m + 1 (bytes 0 and 4) take the bits from 8m and 8m + 4, codes 2m and 2m + 1.
    let shifts = _mm512_set_epi64(
        (60 << 32) | 56,
        (52 << 32) | 48,
        (44 << 32) | 40,
        (36 << 32) | 32,
        (28 << 32) | 24,
        (20 << 32) | 16,
        (12 << 32) | 8,
        4 << 32,
    );
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of n / 2 bytes from row `first`.
    let base = unsafe { packed.as_ptr().add(first * n / 2) };
    for g in 0..groups {
        let table: [__m512; R] =
            std::array::from_fn(|r| _mm512_mul_ps(values, _mm512_set1_ps(scales[(first + r) * groups + g])));
        let mut j = g * group;
        while j < (g + 1) * group {
            // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
            unsafe {
                let x0 = _mm512_loadu_ps(x.as_ptr().add(j));
                for r in 0..R {
                    // The row's 8 bytes (16 codes) in every 64-bit lane (a
                    // broadcast load, no shuffle), then each dword's low byte
                    // shifted to its code's nibble: dword d takes bits 4d...
                    let q = _mm512_set1_epi64(base.add(r * n / 2 + j / 2).cast::<i64>().read_unaligned());
                    let w0 = _mm512_permutexvar_ps(_mm512_multishift_epi64_epi8(shifts, q), table[r]);
                    acc[r] = _mm512_fmadd_ps(x0, w0, acc[r]);
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

/// A ggml block's f16 scale at `p` as f32, in every lane (F16C: exact, as
/// `half`'s conversion).
///
/// # Safety
/// The CPU must have AVX-512F and F16C; `p` must be readable for 2 bytes.
#[inline]
#[target_feature(enable = "avx512f,f16c")]
unsafe fn block_scale(p: *const u8) -> __m512 {
    // SAFETY: the caller guarantees 2 readable bytes.
    let h = unsafe { p.cast::<u16>().read_unaligned() };
    _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn gemv_q8_0_avx512(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::block_rows(blocks.len(), gemv::Q8_0_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole blocks (`block_rows`).
        unsafe { if block { rows_q8_0::<ROWS>(blocks, x, i, y) } else { rows_q8_0::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q8_0 product: per block, `w = f32(q) · d`
/// (the reference's `q * d`), two 16-lane steps.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C; `x.len()` is a multiple
/// of 32 and those rows (`x.len() / 32` blocks of 34 bytes each) must exist
/// in `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn rows_q8_0<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / gemv::QK * gemv::Q8_0_BYTES;
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / gemv::QK {
        // SAFETY: x[32b..32b + 32] and each row's block b (34 bytes) are in bounds.
        unsafe {
            let x0 = _mm512_loadu_ps(x.as_ptr().add(b * gemv::QK));
            let x1 = _mm512_loadu_ps(x.as_ptr().add(b * gemv::QK + LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = base.add(r * row_bytes + b * gemv::Q8_0_BYTES);
                let d = block_scale(p);
                let q0 = _mm_loadu_si128(p.add(2).cast());
                let q1 = _mm_loadu_si128(p.add(2 + LANES).cast());
                let w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0)), d);
                let w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1)), d);
                *acc = _mm512_fmadd_ps(x1, w1, _mm512_fmadd_ps(x0, w0, *acc));
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn gemv_q4_0_avx512(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::block_rows(blocks.len(), gemv::Q4_0_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole blocks (`block_rows`).
        unsafe { if block { rows_q4_0::<ROWS>(blocks, x, i, y) } else { rows_q4_0::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q4_0 product. Byte `k` of a block's 16
/// holds value `k` (low nibble) and value `k + 16` (high nibble), so one
/// 16-byte load widened to 16 dwords indexes both steps: `vpermps` reads the
/// low 4 bits of each dword (values 0..16), and again after a shift by 4
/// (values 16..32). The table is the block's 16 weights `d · (n - 8)`, the
/// products the reference rounds.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C; `x.len()` is a multiple
/// of 32 and those rows (`x.len() / 32` blocks of 18 bytes each) must exist
/// in `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn rows_q4_0<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / gemv::QK * gemv::Q4_0_BYTES;
    let values = _mm512_setr_ps(-8., -7., -6., -5., -4., -3., -2., -1., 0., 1., 2., 3., 4., 5., 6., 7.);
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / gemv::QK {
        // SAFETY: x[32b..32b + 32] and each row's block b (18 bytes) are in bounds.
        unsafe {
            let x0 = _mm512_loadu_ps(x.as_ptr().add(b * gemv::QK));
            let x1 = _mm512_loadu_ps(x.as_ptr().add(b * gemv::QK + LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = base.add(r * row_bytes + b * gemv::Q4_0_BYTES);
                let table = _mm512_mul_ps(values, block_scale(p));
                let idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(p.add(2).cast()));
                let w0 = _mm512_permutexvar_ps(idx, table);
                let w1 = _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(idx), table);
                *acc = _mm512_fmadd_ps(x1, w1, _mm512_fmadd_ps(x0, w0, *acc));
            }
        }
    }
    for r in 0..R {
        // SAFETY: same features.
        y[first + r] = unsafe { reduce16(acc[r]) };
    }
}

/// # Safety
/// The CPU must have AVX-512F, BW, VL, VBMI and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,fma")]
unsafe fn gemv_lut4_avx512(
    packed: &[u8],
    scales: &[f32],
    block: usize,
    table: &[f32; 16],
    high_first: bool,
    x: &[f32],
    y: &mut [f32],
) {
    let Some(rows) = gemv::lut4_rows(packed.len(), scales.len(), block, x.len(), y.len()) else { return };
    // SAFETY: `table` holds 16 f32.
    let values = unsafe { _mm512_loadu_ps(table.as_ptr()) };
    // For `vpmultishiftqb`: in 64-bit lane m, the low bytes of dwords 2m and
    // 2m + 1 take the nibbles of byte m in value order (as in `rows_i4`;
    // swapped when the first value is in the high nibble).
    let shifts = |m: i64| if high_first { ((8 * m) << 32) | (8 * m + 4) } else { ((8 * m + 4) << 32) | (8 * m) };
    let shifts =
        _mm512_set_epi64(shifts(7), shifts(6), shifts(5), shifts(4), shifts(3), shifts(2), shifts(1), shifts(0));
    gemv::row_blocks::<ROWS>(rows, |i, whole| {
        // SAFETY: the caller's features; `block` and `n` are multiples of 16,
        // and rows i..i + ROWS (or row i) are within `packed`, `scales` and
        // `y` (`lut4_rows`).
        unsafe {
            if whole {
                rows_lut4::<ROWS>(packed, scales, block, values, shifts, x, i, y)
            } else {
                rows_lut4::<1>(packed, scales, block, values, shifts, x, i, y)
            }
        }
    });
}

/// Rows `first..first + R` of a table-lookup product: each 16-value step
/// lies in one block, whose 16 weights `table[c] · scale` (the products the
/// reference rounds) `vpermps` picks from, as in `rows_i4`.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, VBMI and FMA; `block` and `n =
/// x.len()` are multiples of 16; those rows must exist in `packed` (`n / 2`
/// bytes each), `scales` (every block they touch) and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows_lut4<const R: usize>(
    packed: &[u8],
    scales: &[f32],
    block: usize,
    values: __m512,
    shifts: __m512i,
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let n = x.len();
    // `block` is a power of two (`lut4_rows`): the block of value k is k >> shift.
    let shift = block.trailing_zeros();
    let mut acc = [_mm512_setzero_ps(); R];
    let mut j = 0;
    while j < n {
        // SAFETY: x[j..j + 16] and each row's bytes [j/2..j/2 + 8] are in bounds.
        unsafe {
            let x0 = _mm512_loadu_ps(x.as_ptr().add(j));
            for (r, acc) in acc.iter_mut().enumerate() {
                let k = (first + r) * n + j;
                let t = _mm512_mul_ps(values, _mm512_set1_ps(scales[k >> shift]));
                let q = _mm512_set1_epi64(packed.as_ptr().add(k / 2).cast::<i64>().read_unaligned());
                let w0 = _mm512_permutexvar_ps(_mm512_multishift_epi64_epi8(shifts, q), t);
                *acc = _mm512_fmadd_ps(x0, w0, *acc);
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
/// The CPU must have AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn gemv_decoded_avx512(decode: gemv::DecodeBlock<'_>, block: usize, x: &[f32], y: &mut [f32]) {
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
/// that row's register (one load of `x` shared by the R rows).
///
/// # Safety
/// The CPU must have AVX-512F and FMA; `block` fits `x` (`decoded_fits`)
/// and rows `first..first + R` are in `y`.
#[inline]
#[target_feature(enable = "avx512f,fma")]
unsafe fn rows_decoded<const R: usize>(
    decode: gemv::DecodeBlock<'_>,
    block: usize,
    x: &[f32],
    first: usize,
    y: &mut [f32],
) {
    let per_row = x.len() / block;
    let mut w = [[0f32; gemv::MAX_BLOCK]; R];
    let mut acc = [_mm512_setzero_ps(); R];
    for (b, xb) in x.chunks_exact(block).enumerate() {
        for (r, w) in w.iter_mut().enumerate() {
            decode((first + r) * per_row + b, &mut w[..block]);
        }
        for k in (0..block).step_by(LANES) {
            // SAFETY: k + 16 <= block, which is both `xb`'s length and at
            // most each buffer's (MAX_BLOCK).
            unsafe {
                let xv = _mm512_loadu_ps(xb.as_ptr().add(k));
                for r in 0..R {
                    acc[r] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w[r].as_ptr().add(k)), acc[r]);
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
/// The CPU must have AVX-512F, BW, VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn gemv_q4_k_avx512(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q4_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q4_k::<ROWS>(blocks, x, i, y) } else { rows_q4_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q4_K product. The reference decodes value
/// `i` of sub-block `j` as `dl * f32(q) - ml` with `dl = d * f32(scale_j)`
/// and `ml = dmin * f32(min_j)`, each a separate f32 rounding (no fused
/// multiply-add). Here the 16 products `d * scale_j`, `dmin * min_j` of a
/// super-block are one `vmulps` (the same operands), and each sub-block's 16
/// possible weights `dl * k - ml` (`k` = 0..16: a `vmulps` then a `vsubps`,
/// the reference's two roundings in its order) sit in one register that
/// `vpermps` picks from by the nibble, as for Q4_0. Chunk `c` (32 bytes) of
/// the codes holds sub-block `2c` in its low nibbles and `2c + 1` in its high
/// ones: one 16-byte load widened to 16 dwords indexes a step of each (the
/// high nibble after a shift by 4). The four steps of a chunk run in value
/// order, so lane `l` sees values `l, l + 16, ...` in increasing order.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C; `x.len()` is a multiple
/// of 256 and those rows (`x.len() / 256` super-blocks of 144 bytes each)
/// must exist in `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn rows_q4_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q4_K_BYTES;
    let codes = _mm512_setr_ps(0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.);
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / QK_K {
        // Per row: lanes 0..8 `dl` of sub-blocks 0..8, lanes 8..16 their `ml`.
        let mut dm = [[0f32; 16]; R];
        for (r, dm) in dm.iter_mut().enumerate() {
            // SAFETY: row r's super-block b (144 bytes) is in bounds.
            unsafe {
                let p = base.add(r * row_bytes + b * Q4_K_BYTES);
                let packed = p.add(4).cast::<[u8; 12]>().read_unaligned();
                let sm = gemv::q4_k_scales_mins(packed);
                let sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(sm.as_ptr().cast())));
                // F16C converts d and dmin exactly (as `half` does, NaN payloads included).
                let dd = _mm_cvtph_ps(_mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()));
                let dd =
                    _mm512_mask_blend_ps(0xFF00, _mm512_broadcastss_ps(dd), _mm512_broadcastss_ps(_mm_movehdup_ps(dd)));
                _mm512_storeu_ps(dm.as_mut_ptr(), _mm512_mul_ps(dd, sm));
            }
        }
        for c in 0..4 {
            // SAFETY: x[256b + 64c..+ 64] and each row's chunk c (bytes
            // 16 + 32c..48 + 32c of super-block b) are in bounds.
            unsafe {
                let xp = x.as_ptr().add(b * QK_K + 64 * c);
                let x0 = _mm512_loadu_ps(xp);
                let x1 = _mm512_loadu_ps(xp.add(LANES));
                let x2 = _mm512_loadu_ps(xp.add(2 * LANES));
                let x3 = _mm512_loadu_ps(xp.add(3 * LANES));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let table = |j: usize| {
                        _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dm[r][j]), codes), _mm512_set1_ps(dm[r][8 + j]))
                    };
                    let (lo, hi) = (table(2 * c), table(2 * c + 1));
                    let p = base.add(r * row_bytes + b * Q4_K_BYTES + 16 + 32 * c);
                    let i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast()));
                    let i1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(p.add(LANES).cast()));
                    *acc = _mm512_fmadd_ps(x0, _mm512_permutexvar_ps(i0, lo), *acc);
                    *acc = _mm512_fmadd_ps(x1, _mm512_permutexvar_ps(i1, lo), *acc);
                    *acc = _mm512_fmadd_ps(x2, _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(i0), hi), *acc);
                    *acc = _mm512_fmadd_ps(x3, _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(i1), hi), *acc);
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
/// The CPU must have AVX-512F, BW, VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn gemv_q6_k_avx512(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = gemv::kquant_rows(blocks.len(), Q6_K_BYTES, x.len(), y.len()) else { return };
    gemv::row_blocks::<ROWS>(rows, |i, block| {
        // SAFETY: the caller's features; rows i..i + ROWS (or row i) are
        // within `blocks` and `y`, and `x` is whole super-blocks (`kquant_rows`).
        unsafe { if block { rows_q6_k::<ROWS>(blocks, x, i, y) } else { rows_q6_k::<1>(blocks, x, i, y) } }
    });
}

/// Rows `first..first + R` of a Q6_K product. The reference decodes value
/// `v` as `(d * f32(sc[v / 16])) * f32(q - 32)`: two f32 roundings, `d`
/// first. Here the 16 products `d * sc` of a super-block are one `vmulps`,
/// and each 16-value step (one scale) multiplies its broadcast product by
/// the codes `q - 32` (exact in i8, exact as f32). The 6-bit codes of a half
/// (128 values: 64 bytes of low nibbles, 32 of high 2-bit pairs) are put
/// together 32 at a time by [`q6_k_codes`], in value order.
///
/// # Safety
/// The CPU must have AVX-512F, BW, VL, FMA and F16C; `x.len()` is a multiple
/// of 256 and those rows (`x.len() / 256` super-blocks of 210 bytes each)
/// must exist in `blocks` and `y`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
// `k` (a 32-code group) indexes each row's codes and places the step in `x` and the scales.
#[allow(clippy::needless_range_loop)]
unsafe fn rows_q6_k<const R: usize>(blocks: &[u8], x: &[f32], first: usize, y: &mut [f32]) {
    let n = x.len();
    let row_bytes = n / QK_K * Q6_K_BYTES;
    let mut acc = [_mm512_setzero_ps(); R];
    // SAFETY: the caller guarantees R rows of `row_bytes` from row `first`.
    let base = unsafe { blocks.as_ptr().add(first * row_bytes) };
    for b in 0..n / QK_K {
        let mut dl = [[0f32; 16]; R];
        for (r, dl) in dl.iter_mut().enumerate() {
            // SAFETY: row r's super-block b (210 bytes) is in bounds.
            unsafe {
                let p = base.add(r * row_bytes + b * Q6_K_BYTES);
                let d = block_scale(p.add(208));
                let sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.add(192).cast())));
                _mm512_storeu_ps(dl.as_mut_ptr(), _mm512_mul_ps(d, sc));
            }
        }
        for h in 0..2 {
            // Each row's 128 codes of half h, minus 32, in value order: 4 x 32 bytes.
            let q: [[__m256i; 4]; R] = std::array::from_fn(|r| {
                // SAFETY: row r's super-block b (210 bytes) is in bounds; AVX-512VL has AVX2.
                unsafe { q6_k_codes(base.add(r * row_bytes + b * Q6_K_BYTES), h) }
            });
            for k in 0..4 {
                for s in 0..2 {
                    let v = 128 * h + 32 * k + LANES * s;
                    // SAFETY: x[256b + v..+ 16] is in bounds.
                    let xv = unsafe { _mm512_loadu_ps(x.as_ptr().add(b * QK_K + v)) };
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let half = if s == 0 {
                            _mm256_castsi256_si128(q[r][k])
                        } else {
                            _mm256_extracti128_si256::<1>(q[r][k])
                        };
                        let codes = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(half));
                        let w = _mm512_mul_ps(_mm512_set1_ps(dl[r][v / LANES]), codes);
                        *acc = _mm512_fmadd_ps(xv, w, *acc);
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

/// Half `h` (values `128h..128h + 128`) of the Q6_K super-block at `p` as
/// its 128 codes minus 32 (exact: -32..32 in i8), in value order, 32 to a
/// register. Value `128h + 32k + i` is the low (k = 0, 1) or high (k = 2,
/// 3) nibble of low byte `64h + 32(k % 2) + i`, under bits `2k, 2k + 1` of
/// high byte `128 + 32h + i` (the reference's `dequantize_q6_k`). Bytes have
/// no shifts: the 16-bit shifts move bits in from the neighbouring byte,
/// which the masks (0x0F, 0x30) clear.
///
/// # Safety
/// The CPU must have AVX2; `p` must be readable for 210 bytes and `h` < 2.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn q6_k_codes(p: *const u8, h: usize) -> [__m256i; 4] {
    let (low4, bits45, bias) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30), _mm256_set1_epi8(32));
    // SAFETY: the caller guarantees the super-block's 210 bytes.
    let (lo_a, lo_b, hi) = unsafe {
        (
            _mm256_loadu_si256(p.add(64 * h).cast()),
            _mm256_loadu_si256(p.add(64 * h + 32).cast()),
            _mm256_loadu_si256(p.add(128 + 32 * h).cast()),
        )
    };
    let code = |nib: __m256i, top: __m256i| {
        _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(nib, low4), _mm256_and_si256(top, bits45)), bias)
    };
    [
        code(lo_a, _mm256_slli_epi16::<4>(hi)),
        code(lo_b, _mm256_slli_epi16::<2>(hi)),
        code(_mm256_srli_epi16::<4>(lo_a), hi),
        code(_mm256_srli_epi16::<4>(lo_b), _mm256_srli_epi16::<2>(hi)),
    ]
}
