//! AVX2 float8_e4m3fn / float8_e5m2 casts, 8 lanes: the formulas of
//! `arch::fp8` with blends, narrowed by a byte shuffle. A block holding a
//! value that needs an overflow policy goes to the scalar form, which stops
//! there (see `arch::fp8::encode`). Tails go to the scalar form.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use crate::arch::fp8::{self, E4M3FN, E5M2, Format, INFINITY, QUIET_NAN};

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn encode<const SHIFT: i32>(f: Format, x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    let (xs, _) = x[..body].as_chunks::<8>();
    let (os, _) = out[..body].as_chunks_mut::<8>();
    // Magnitudes are below 2^31, so signed comparisons order them.
    let (abs, special_less_one, min_normal) = (
        _mm256_set1_epi32(0x7FFF_FFFF),
        _mm256_set1_epi32(f.special as i32 - 1),
        _mm256_set1_epi32(f.min_normal as i32),
    );
    let (magic, offset, one, sign_bit) = (
        _mm256_set1_epi32(f.magic as i32),
        _mm256_set1_epi32(f.offset as i32),
        _mm256_set1_epi32(1),
        _mm256_set1_epi32(0x80),
    );
    // Byte 0 of each 32-bit lane to the low 4 bytes of each 128-bit half.
    let low_bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1,
    );
    for (b, (x8, o8)) in xs.iter().zip(os).enumerate() {
        // SAFETY: `x8` holds 8 f32 (unaligned loads are allowed).
        let v = unsafe { _mm256_loadu_si256(x8.as_ptr().cast()) };
        let a = _mm256_and_si256(v, abs);
        let special = _mm256_cmpgt_epi32(a, special_less_one);
        if _mm256_testz_si256(special, special) == 0 {
            return b * 8 + fp8::special_block(f, x8, o8);
        }
        let sub = _mm256_cmpgt_epi32(min_normal, a);
        let s = _mm256_sub_epi32(
            _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(magic))),
            magic,
        );
        let odd = _mm256_and_si256(_mm256_srli_epi32::<SHIFT>(a), one);
        let normal = _mm256_srli_epi32::<SHIFT>(_mm256_add_epi32(_mm256_add_epi32(a, offset), odd));
        let code = _mm256_blendv_epi8(normal, s, sub);
        let code = _mm256_or_si256(code, _mm256_and_si256(_mm256_srli_epi32::<24>(v), sign_bit));
        let packed = _mm256_shuffle_epi8(code, low_bytes);
        let bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(packed), _mm256_extracti128_si256::<1>(packed));
        // SAFETY: `o8` has room for 8 bytes.
        unsafe { _mm_storel_epi64(o8.as_mut_ptr().cast(), bytes) };
    }
    body + fp8::encode_scalar(f, &x[body..n], &mut out[body..n])
}

/// The f32 bits of 8 codes (one per 32-bit lane, below 256), as
/// `fp8::decode_lane` gives them: exact (the magnitude's bits moved into
/// an f32's place and multiplied by a power of two), NaN and infinity
/// blended in, the sign or'ed on. Also the MXFP8 dequantize's element values.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn values8<const SHIFT: i32>(f: Format, c: __m256i) -> __m256i {
    let mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    let scale = _mm256_castsi256_ps(_mm256_set1_epi32(f.scale as i32));
    let v = _mm256_castps_si256(_mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<SHIFT>(mag)), scale));
    let v = _mm256_blendv_epi8(
        v,
        _mm256_set1_epi32(INFINITY as i32),
        _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(f.inf as i32)),
    );
    // Magnitudes are below 128, so the signed compare orders them.
    let is_nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(f.nan as i32 - 1));
    let v = _mm256_blendv_epi8(v, _mm256_set1_epi32(QUIET_NAN as i32), is_nan);
    _mm256_or_si256(v, _mm256_slli_epi32::<24>(_mm256_and_si256(c, _mm256_set1_epi32(0x80))))
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn decode<const SHIFT: i32>(f: Format, x: &[u8], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    let (xs, _) = x[..body].as_chunks::<8>();
    let (os, _) = out[..body].as_chunks_mut::<8>();
    for (x8, o8) in xs.iter().zip(os) {
        // SAFETY: `x8` holds 8 bytes.
        let v = values8::<SHIFT>(f, _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(x8.as_ptr().cast()) }));
        // SAFETY: `o8` has room for 8 f32.
        unsafe { _mm256_storeu_si256(o8.as_mut_ptr().cast(), v) };
    }
    fp8::decode_scalar(f, &x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn f32_to_e4m3fn(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn f32_to_e5m2(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<21>(E5M2, x, out) }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn e4m3fn_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn e5m2_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<21>(E5M2, x, out) }
}
