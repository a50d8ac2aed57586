//! AVX-512 matrix-vector kernels on int8 and int4 weights: the 16 lanes of
//! `arch::gemv`'s summation order in one register, four rows at a time
//! (sharing each load of `x`), the tail of a row masked.

use std::arch::x86_64::*;

use crate::arch::gemv::{self, GemvKernels, LANES};

/// Rows that share one pass over `x`.
const ROWS: usize = 4;

pub(crate) static GEMV: GemvKernels = GemvKernels {
    name: "avx512",
    // SAFETY: `gemv_tables` hands this table out only after detecting AVX-512F, BW, VL, VBMI and FMA.
    gemv_i8: |q, s, x, y| unsafe { gemv_i8_avx512(q, s, x, y) },
    // SAFETY: as above, the CPU has AVX-512F, BW, VL, VBMI and FMA.
    gemv_i4: |q, s, g, x, y| unsafe { gemv_i4_avx512(q, s, g, x, y) },
};

/// The lane tree of `arch::gemv` over one register: `l + 8`, `+ 4`, `+ 2`, `+ 1`.
///
/// # Safety
/// The CPU must have AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn reduce16(v: __m512) -> f32 {
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
