//! AVX-512 float8_e4m3fn / float8_e5m2 casts, 16 lanes: the formulas of
//! `arch::fp8` with masks, narrowed by `vpmovdb`. A block holding a value
//! that needs an overflow policy goes to the scalar form, which stops there
//! (see `arch::fp8::encode`). Tails shorter than a block go to the scalar form.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use crate::arch::fp8::{self, E4M3FN, E5M2, Format, INFINITY, QUIET_NAN};

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn encode<const SHIFT: u32>(f: Format, x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    let (xs, _) = x[..body].as_chunks::<16>();
    let (os, _) = out[..body].as_chunks_mut::<16>();
    let (abs, special, min_normal) =
        (_mm512_set1_epi32(0x7FFF_FFFF), _mm512_set1_epi32(f.special as i32), _mm512_set1_epi32(f.min_normal as i32));
    let (magic, offset, one, sign_bit) = (
        _mm512_set1_epi32(f.magic as i32),
        _mm512_set1_epi32(f.offset as i32),
        _mm512_set1_epi32(1),
        _mm512_set1_epi32(0x80),
    );
    for (b, (x16, o16)) in xs.iter().zip(os).enumerate() {
        // SAFETY: `x16` holds 16 f32 (unaligned loads are allowed).
        let v = unsafe { _mm512_loadu_si512(x16.as_ptr().cast()) };
        let a = _mm512_and_si512(v, abs);
        if _mm512_cmpge_epu32_mask(a, special) != 0 {
            return b * 16 + fp8::special_block(f, x16, o16);
        }
        let sub = _mm512_cmplt_epu32_mask(a, min_normal);
        let s = _mm512_sub_epi32(
            _mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(magic))),
            magic,
        );
        let odd = _mm512_and_si512(_mm512_srli_epi32::<SHIFT>(a), one);
        let normal = _mm512_srli_epi32::<SHIFT>(_mm512_add_epi32(_mm512_add_epi32(a, offset), odd));
        let code = _mm512_mask_blend_epi32(sub, normal, s);
        let code = _mm512_or_si512(code, _mm512_and_si512(_mm512_srli_epi32::<24>(v), sign_bit));
        // SAFETY: `o16` has room for 16 bytes.
        unsafe { _mm_storeu_si128(o16.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(code)) };
    }
    body + fp8::encode_scalar(f, &x[body..n], &mut out[body..n])
}

/// The f32 bits of 16 codes (one per 32-bit lane, below 256), as
/// `fp8::decode_lane` gives them: exact (the magnitude's bits moved into
/// an f32's place and multiplied by a power of two), NaN and infinity
/// blended in, the sign or'ed on. Also the MXFP8 dequantize's element values.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn values16<const SHIFT: u32>(f: Format, c: __m512i) -> __m512i {
    let mag = _mm512_and_si512(c, _mm512_set1_epi32(0x7F));
    let scale = _mm512_castsi512_ps(_mm512_set1_epi32(f.scale as i32));
    let v = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(_mm512_slli_epi32::<SHIFT>(mag)), scale));
    let v = _mm512_mask_mov_epi32(
        v,
        _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(f.inf as i32)),
        _mm512_set1_epi32(INFINITY as i32),
    );
    let v = _mm512_mask_mov_epi32(
        v,
        _mm512_cmpge_epu32_mask(mag, _mm512_set1_epi32(f.nan as i32)),
        _mm512_set1_epi32(QUIET_NAN as i32),
    );
    _mm512_or_si512(v, _mm512_slli_epi32::<24>(_mm512_and_si512(c, _mm512_set1_epi32(0x80))))
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn decode<const SHIFT: u32>(f: Format, x: &[u8], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    let (xs, _) = x[..body].as_chunks::<16>();
    let (os, _) = out[..body].as_chunks_mut::<16>();
    for (x16, o16) in xs.iter().zip(os) {
        // SAFETY: `x16` holds 16 bytes.
        let v = values16::<SHIFT>(f, _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(x16.as_ptr().cast()) }));
        // SAFETY: `o16` has room for 16 f32.
        unsafe { _mm512_storeu_si512(o16.as_mut_ptr().cast(), v) };
    }
    fp8::decode_scalar(f, &x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn f32_to_e4m3fn(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn f32_to_e5m2(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<21>(E5M2, x, out) }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn e4m3fn_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn e5m2_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<21>(E5M2, x, out) }
}
