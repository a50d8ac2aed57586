//! AVX-512 kernels of the block formats, each bit-identical with its scalar
//! reference (tests/formats_kernels.rs runs both on the same inputs):
//! gguf-py 0.19's Q8_0, Q4_0 and MXFP4 (`formats::ggml`), and torchao 0.18's
//! OCP MXFP4 and MXFP8 (`formats::mx`, e2m1, e4m3fn and e5m2 elements).
//!
//! How each stays exact. The arithmetic is the references' f32 operations in
//! their order, lane by lane, with no fused multiply-add. Block maxima are
//! taken over the magnitudes' bits as unsigned integers, which order finite
//! non-negative floats as the floats do (inputs are finite: quantizing
//! refuses NaN and infinities first). numpy's float-to-integer cast
//! (`cvttps2dq`, `i32::MIN` for NaN and out-of-range, then the low byte) is
//! the same instruction here. The per-block scale, one f16 or e8m0 byte, is
//! computed by the scalar code's own functions.

use std::arch::x86_64::*;

use super::fp8_avx512;
use crate::arch::fp8;
use crate::formats::ggml::{self, KVALUES_MXFP4, QK};
use crate::formats::mx::{self, MxElement, ScaleRule};

/// The largest magnitude of a block of 32 finite values, from its two halves.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn amax(lo: __m512, hi: __m512) -> f32 {
    let abs = _mm512_set1_epi32(0x7fff_ffff);
    let m = _mm512_max_epu32(
        _mm512_and_si512(_mm512_castps_si512(lo), abs),
        _mm512_and_si512(_mm512_castps_si512(hi), abs),
    );
    f32::from_bits(_mm512_reduce_max_epu32(m) as u32)
}

/// The block's two 16-value halves.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn load(b: &[f32; QK]) -> (__m512, __m512) {
    // SAFETY: `b` holds 32 f32: two unaligned 16-lane loads.
    unsafe { (_mm512_loadu_ps(b.as_ptr()), _mm512_loadu_ps(b.as_ptr().add(16))) }
}

/// f32 to f16 bits, round to nearest even (as `half::f16::from_f32`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn f16_bits(v: f32) -> [u8; 2] {
    (_mm_cvtsi128_si32(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) as u16).to_le_bytes()
}

/// f16 bits to f32 (exact).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn f16_value(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(b)))))
}

/// Q8_0 of whole 32-value blocks of `x` into `out` (34 bytes a block).
///
/// Round half away from zero as `trunc(v) ± (|v - trunc(v)| >= 0.5)` (exact:
/// `v - trunc(v)` is), as `f32::round` rounds.
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let half = _mm512_set1_ps(0.5);
    let one = _mm512_set1_ps(1.0);
    let sign_mask = _mm512_set1_epi32(i32::MIN);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<34>();
    for (b, o) in blocks.iter().zip(outs) {
        let (lo, hi) = load(b);
        let d = amax(lo, hi) / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        o[..2].copy_from_slice(&f16_bits(d));
        let idv = _mm512_set1_ps(id);
        let abs = |v: __m512| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        let code = |v: __m512| {
            let v = _mm512_mul_ps(v, idv);
            let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
            let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(abs(_mm512_sub_ps(v, t)), half);
            let step = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(v), sign_mask),
                _mm512_castps_si512(one),
            ));
            let r = _mm512_mask_add_ps(t, away, t, step);
            _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r))
        };
        let (ql, qh) = (code(lo), code(hi));
        // SAFETY: `o` has 34 bytes: 2 for d, then 32 for the codes.
        unsafe {
            _mm_storeu_si128(o.as_mut_ptr().add(2).cast(), ql);
            _mm_storeu_si128(o.as_mut_ptr().add(18).cast(), qh);
        }
    }
}

/// Q8_0 blocks back to f32: `q * d`.
///
/// # Safety
/// The CPU must have AVX-512F and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_q8_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<34>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm512_set1_ps(f16_value([b[0], b[1]]));
        // SAFETY: `b` has 34 bytes, the codes at 2..34; `o` holds 32 f32.
        unsafe {
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(b.as_ptr().add(2).cast())));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(b.as_ptr().add(18).cast())));
            _mm512_storeu_ps(o.as_mut_ptr(), _mm512_mul_ps(lo, d));
            _mm512_storeu_ps(o.as_mut_ptr().add(16), _mm512_mul_ps(hi, d));
        }
    }
}

/// gguf-py's 4-bit code `min(u8(trunc(v * id + bias)), 15)` of 16 lanes, as bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn nibbles(v: __m512, id: __m512, bias: __m512) -> __m128i {
    let t = _mm512_add_ps(_mm512_mul_ps(v, id), bias);
    _mm_min_epu8(_mm512_cvtepi32_epi8(_mm512_cvttps_epi32(t)), _mm_set1_epi8(15))
}

/// Q4_0 of whole 32-value blocks of `x` into `out` (18 bytes a block).
///
/// The scale's value `m` is the block's first value of largest magnitude
/// (numpy's `argmax`): the lowest lane whose magnitude equals the maximum.
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let bias = _mm512_set1_ps(8.5);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<18>();
    for (b, o) in blocks.iter().zip(outs) {
        let (lo, hi) = load(b);
        let am = _mm512_set1_epi32(amax(lo, hi).to_bits() as i32);
        let at = |v: __m512| _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v), abs_mask), am);
        let first = (u32::from(at(lo)) | u32::from(at(hi)) << 16).trailing_zeros();
        // A finite block always has a lane at its maximum; `& 31` only keeps the index in range.
        let d = b[first as usize & 31] / -8.0;
        let id = _mm512_set1_ps(if d == 0.0 { 0.0 } else { 1.0 / d });
        o[..2].copy_from_slice(&f16_bits(d));
        let (ql, qh) = (nibbles(lo, id, bias), nibbles(hi, id, bias));
        let packed = _mm_or_si128(ql, _mm_slli_epi16::<4>(qh));
        // SAFETY: `o` has 18 bytes: 2 for d, then 16 for the codes.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().add(2).cast(), packed) };
    }
}

/// Q4_0 blocks back to f32: `d * (q - 8)`.
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_q4_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<18>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let eight = _mm512_set1_epi32(8);
    let low = _mm_set1_epi8(15);
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm512_set1_ps(f16_value([b[0], b[1]]));
        // SAFETY: `b` has 18 bytes, the codes at 2..18.
        let bytes = unsafe { _mm_loadu_si128(b.as_ptr().add(2).cast()) };
        let value = |n: __m128i| _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(n), eight)));
        let lo = value(_mm_and_si128(bytes, low));
        let hi = value(_mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
        // SAFETY: `o` holds 32 f32.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), lo);
            _mm512_storeu_ps(o.as_mut_ptr().add(16), hi);
        }
    }
}

/// GGUF's MXFP4 of whole 32-value blocks of `x` into `out` (17 bytes a block).
///
/// Each code is chosen as the reference chooses it: the error
/// `|d * kvalue - v|` of all 16 codes in code order, a later code taken only
/// when its error is strictly smaller (so ties go to the first).
///
/// # Safety
/// The CPU must have AVX-512F, AVX-512BW and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_gguf_mxfp4(x: &[f32], out: &mut [u8]) {
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<17>();
    for (b, o) in blocks.iter().zip(outs) {
        let (lo, hi) = load(b);
        let e = ggml::mxfp4_e8m0(amax(lo, hi));
        let d = ggml::e8m0_half(e);
        o[0] = e;
        let abs = |v: __m512| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        let best = |v: __m512| {
            let mut err = abs(_mm512_sub_ps(_mm512_set1_ps(d * f32::from(KVALUES_MXFP4[0])), v));
            let mut code = _mm512_setzero_si512();
            for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
                let e = abs(_mm512_sub_ps(_mm512_set1_ps(d * f32::from(k)), v));
                let better = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(e, err);
                err = _mm512_mask_mov_ps(err, better, e);
                code = _mm512_mask_mov_epi32(code, better, _mm512_set1_epi32(i as i32));
            }
            _mm512_cvtepi32_epi8(code)
        };
        let packed = _mm_or_si128(best(lo), _mm_slli_epi16::<4>(best(hi)));
        // SAFETY: `o` has 17 bytes: the scale, then 16 for the codes.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().add(1).cast(), packed) };
    }
}

/// GGUF's MXFP4 blocks back to f32: `d * kvalue`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_gguf_mxfp4(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<17>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let table = KVALUES_MXFP4.map(f32::from);
    // SAFETY: `table` holds 16 f32.
    let table = unsafe { _mm512_loadu_ps(table.as_ptr()) };
    let low = _mm_set1_epi8(15);
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm512_set1_ps(ggml::e8m0_half(b[0]));
        // SAFETY: `b` has 17 bytes, the codes at 1..17.
        let bytes = unsafe { _mm_loadu_si128(b.as_ptr().add(1).cast()) };
        let value = |n: __m128i| _mm512_mul_ps(d, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(n), table));
        let lo = value(_mm_and_si128(bytes, low));
        let hi = value(_mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
        // SAFETY: `o` holds 32 f32.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), lo);
            _mm512_storeu_ps(o.as_mut_ptr().add(16), hi);
        }
    }
}

/// The codes of 16 already scaled lanes in a small float of `EBITS`
/// exponent and `MBITS` mantissa bits (e2m1, e4m3fn with its largest code
/// 0x7E, or e5m2 with 0x7B), as `mx::Minifloat::encode` of the value clamped to the largest
/// finite value gives them: the largest code from that value up; below the
/// smallest normal, the subnormal step by adding the power of two whose last
/// place it is (the float adder rounds half to even); above, the exponent
/// re-biased and the mantissa rounded half to even, carrying into the
/// exponent; the sign bit kept (also of zero).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn minifloat_codes<const EBITS: u32, const MBITS: u32>(v: __m512) -> __m512i {
    let bias = (1i32 << (EBITS - 1)) - 1;
    // The largest finite value and its code: e4m3fn 448 (0x7F is NaN), e5m2
    // 57344 (0x7C up are infinity and NaN), e2m1 6; the reference clamps to it first.
    let (max, max_code) = match EBITS {
        4 => (448.0, 0x7E),
        5 => (57344.0, 0x7B),
        _ => (6.0, 7),
    };
    let min_normal = f32::from_bits(((1 - bias + 127) as u32) << 23);
    let magic = f32::from_bits(((127 - bias + 23 - MBITS as i32 + 1) as u32) << 23);
    let shift = 23 - MBITS;
    let bits = _mm512_castps_si512(v);
    let mag_bits = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    let a = _mm512_castsi512_ps(mag_bits);
    let magic = _mm512_set1_ps(magic);
    let sub = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(a, magic)), _mm512_castps_si512(magic));
    let rebiased = _mm512_sub_epi32(mag_bits, _mm512_set1_epi32((127 - bias) << 23));
    let shift_v = _mm_cvtsi32_si128(shift as i32);
    let odd = _mm512_and_si512(_mm512_srl_epi32(rebiased, shift_v), _mm512_set1_epi32(1));
    let normal = _mm512_srl_epi32(
        _mm512_add_epi32(_mm512_add_epi32(rebiased, _mm512_set1_epi32((1 << (shift - 1)) - 1)), odd),
        shift_v,
    );
    let is_sub = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(min_normal));
    let is_max = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, _mm512_set1_ps(max));
    // The reference's code is a byte (`as u8`): a NaN lane (0 times an infinite factor) takes the normal
    // path with a magnitude past 255, of which it keeps the low byte.
    let normal = _mm512_and_si512(normal, _mm512_set1_epi32(0xFF));
    let mag = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(normal, is_sub, sub), is_max, _mm512_set1_epi32(max_code));
    let sign = _mm512_srl_epi32(bits, _mm_cvtsi32_si128((31 - EBITS - MBITS) as i32));
    _mm512_or_si512(mag, _mm512_and_si512(sign, _mm512_set1_epi32(1 << (EBITS + MBITS))))
}

/// The e2m1 codes of 16 already scaled lanes (see [`minifloat_codes`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn e2m1_codes(v: __m512) -> __m512i {
    minifloat_codes::<2, 1>(v)
}

/// MXFP8 with e4m3fn elements of whole 32-value blocks: one e8m0 byte a
/// block into `scales`, 32 code bytes into `codes`, as `mx::quantize` with
/// `MxElement::E4m3` gives them (the block scale from its own function).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_mxfp8_e4m3(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<4, 3>(MxElement::E4m3, x, rule, scales, codes)
}

/// MXFP8 with e5m2 elements of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E5m2` (clamped to 57344, rounded half to even, the
/// subnormal step 2^-16; the block scale from its own function).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_mxfp8_e5m2(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<5, 2>(MxElement::E5m2, x, rule, scales, codes)
}

/// MXFP8 of `element` (e4m3fn: `EBITS` 4, `MBITS` 3; e5m2: 5, 2): the
/// reference's f32 multiply by the block's factor, then [`minifloat_codes`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn quantize_mxfp8<const EBITS: u32, const MBITS: u32>(
    element: MxElement,
    x: &[f32],
    rule: ScaleRule,
    scales: &mut [u8],
    codes: &mut [u8],
) {
    let (blocks, _) = x.as_chunks::<32>();
    let (outs, _) = codes.as_chunks_mut::<32>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        let (lo, hi) = load(b);
        let (biased, factor) = mx::block_scale(amax(lo, hi), element, rule);
        *s = biased;
        let f = _mm512_set1_ps(factor);
        let ql = _mm512_cvtepi32_epi8(minifloat_codes::<EBITS, MBITS>(_mm512_mul_ps(lo, f)));
        let qh = _mm512_cvtepi32_epi8(minifloat_codes::<EBITS, MBITS>(_mm512_mul_ps(hi, f)));
        // SAFETY: `o` has 32 bytes.
        unsafe {
            _mm_storeu_si128(o.as_mut_ptr().cast(), ql);
            _mm_storeu_si128(o.as_mut_ptr().add(16).cast(), qh);
        }
    }
}

/// 16 codes (one per 32-bit lane, each below 16) packed two to a byte, the
/// first in the low nibble: 8 bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn pack_pairs(c: __m512i) -> __m128i {
    _mm512_cvtepi64_epi8(_mm512_or_si512(c, _mm512_srli_epi64::<28>(c)))
}

/// OCP MXFP4 (e2m1 elements) of whole 32-value blocks: one e8m0 byte a block
/// into `scales`, 16 bytes of codes into `codes`, as `mx::quantize` with
/// `MxElement::E2m1` gives them (the block scale from its own function).
/// Returns whether every value was finite, read off the block maxima (a
/// NaN's or infinity's magnitude bits are above every finite one's).
///
/// # Safety
/// The CPU must have AVX-512F, BW and VL (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_mxfp4(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) -> bool {
    let (blocks, _) = x.as_chunks::<32>();
    let (outs, _) = codes.as_chunks_mut::<16>();
    let n = blocks.len().min(outs.len()).min(scales.len());
    let (blocks, outs, scales) = (&blocks[..n], &mut outs[..n], &mut scales[..n]);
    // FLOOR, the default: 16 blocks at a time, their maxima and scales in vectors.
    let (done, mut finite) =
        if rule == ScaleRule::Floor { mxfp4_floor_groups(blocks, scales, outs) } else { (0, true) };
    for ((b, s), o) in blocks[done..].iter().zip(scales[done..].iter_mut()).zip(&mut outs[done..]) {
        let (lo, hi) = load(b);
        let m = amax(lo, hi);
        finite &= m.is_finite();
        let (biased, factor) = mx::block_scale(m, MxElement::E2m1, rule);
        *s = biased;
        mxfp4_block(b, factor, o);
    }
    // Values past the last whole block are not quantized but are part of `x`.
    finite && x[n * 32..].iter().all(|v| v.is_finite())
}

/// One block's e2m1 codes as the reference gives them: each value times
/// the block's `factor`, then [`e2m1_codes`], packed two to a byte.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn mxfp4_block(b: &[f32; 32], factor: f32, o: &mut [u8; 16]) {
    let (lo, hi) = load(b);
    let f = _mm512_set1_ps(factor);
    let ql = pack_pairs(e2m1_codes(_mm512_mul_ps(lo, f)));
    let qh = pack_pairs(e2m1_codes(_mm512_mul_ps(hi, f)));
    // SAFETY: `o` has 16 bytes.
    unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), _mm_unpacklo_epi64(ql, qh)) };
}

/// The maxima of 16 blocks' magnitudes (each given as the lane-wise maximum
/// of its two halves' bits), lane j block j: a transposing tree of
/// unpacks, shuffles and maxima (15 of each level's pairs) instead of 16
/// horizontal reductions.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn block_maxima(m: &[__m512i; 16]) -> __m512i {
    // Level 1: pairs of blocks, each 128-bit lane keeping two partial maxima of each.
    let c: [__m512i; 8] = std::array::from_fn(|k| {
        let (a, b) = (m[2 * k], m[2 * k + 1]);
        _mm512_max_epu32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b))
    });
    // Level 2: four blocks, one maximum of each per 128-bit lane.
    let d: [__m512i; 4] = std::array::from_fn(|k| {
        let (a, b) = (c[2 * k], c[2 * k + 1]);
        _mm512_max_epu32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
    });
    // Levels 3 and 4: across the 128-bit lanes, which end up holding blocks 0-3, 4-7, 8-11, 12-15.
    let across = |a: __m512i, b: __m512i| {
        _mm512_max_epu32(_mm512_shuffle_i32x4::<0b10_00_10_00>(a, b), _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b))
    };
    across(across(d[0], d[1]), across(d[2], d[3]))
}

/// MXFP4 under FLOOR of the leading groups of 16 blocks; returns how many
/// blocks it did and whether they were all finite. The scale is `mx::block_scale`'s FLOOR rule in lanes: the
/// biased exponent `max(e - 2, 0)` of the maximum's exponent field `e`.
/// Groups whose every block has `e` in 6..=254 take [`e2m1_floor_codes`];
/// the others (tiny blocks, where f32 subnormals could scale to a nonzero
/// code, and non-finite ones) multiply by the factor
/// `1 / max(2^(biased - 127), 2^-126)`, the power of two whose exponent
/// field is `min(254 - biased, 253)` (normal: `biased <= 252`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn mxfp4_floor_groups(blocks: &[[f32; 32]], scales: &mut [u8], outs: &mut [[u8; 16]]) -> (usize, bool) {
    let abs = _mm512_set1_epi32(0x7fff_ffff);
    let (mut done, mut finite) = (0, true);
    let far = blocks.len() * 32 >= super::avx512::STREAM_MIN;
    for ((g, s), o) in blocks.chunks_exact(16).zip(scales.chunks_exact_mut(16)).zip(outs.chunks_exact_mut(16)) {
        // The blocks are read twice, the second time from L1: holding all 32
        // vectors in registers would spill them to the stack instead.
        // Magnitudes as unsigned integers, not `vrangeps`: that returns the
        // other operand for a quiet NaN, and the maxima must keep NaN.
        let m: [__m512i; 16] = std::array::from_fn(|j| {
            let (lo, hi) = load(&g[j]);
            _mm512_max_epu32(
                _mm512_and_si512(_mm512_castps_si512(lo), abs),
                _mm512_and_si512(_mm512_castps_si512(hi), abs),
            )
        });
        let e = _mm512_srli_epi32::<23>(block_maxima(&m));
        let biased = _mm512_max_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(2)), _mm512_setzero_si512());
        // SAFETY: `s` has 16 bytes.
        unsafe { _mm_storeu_si128(s.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(biased)) };
        let finite_blocks = _mm512_cmple_epi32_mask(e, _mm512_set1_epi32(254));
        finite &= finite_blocks == 0xFFFF;
        if _mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(6)) & finite_blocks == 0xFFFF {
            let mut offsets = [0i32; 16];
            // SAFETY: `offsets` holds 16 i32.
            unsafe {
                _mm512_storeu_si512(
                    offsets.as_mut_ptr().cast(),
                    _mm512_slli_epi32::<23>(_mm512_sub_epi32(e, _mm512_set1_epi32(5))),
                )
            };
            for ((b, off), o) in g.chunks_exact(2).zip(offsets.chunks_exact(2)).zip(o.chunks_exact_mut(2)) {
                if far {
                    // Ahead of the hardware prefetcher, as the int8 kernels (see
                    // `avx512::PREFETCH`), a few lines at a time: asking for a
                    // whole group's 32 lines at its start took 2^24 values from
                    // 9.2 to 4.8 G/s here.
                    let ahead = b.as_ptr().cast::<f32>().wrapping_add(super::avx512::PREFETCH);
                    for line in (0..64).step_by(16) {
                        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
                    }
                }
                let (b0, b1) = (load(&b[0]), load(&b[1]));
                let (o0, o1) = (_mm512_set1_epi32(off[0]), _mm512_set1_epi32(off[1]));
                let v = [b0.0, b0.1, b1.0, b1.1].map(|h| _mm512_castps_si512(h));
                let codes = e2m1_floor_magnitudes([(v[0], o0), (v[1], o0), (v[2], o1), (v[3], o1)]);
                // SAFETY: `o` is two blocks' 16 bytes, contiguous.
                unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), pack_two_blocks(codes, v)) };
            }
        } else {
            let fexp = _mm512_min_epi32(_mm512_sub_epi32(_mm512_set1_epi32(254), biased), _mm512_set1_epi32(253));
            let mut factors = [0f32; 16];
            // SAFETY: `factors` holds 16 f32.
            unsafe { _mm512_storeu_ps(factors.as_mut_ptr(), _mm512_castsi512_ps(_mm512_slli_epi32::<23>(fexp))) };
            for ((b, f), o) in g.iter().zip(factors).zip(o) {
                mxfp4_block(b, f, o);
            }
        }
        done += 16;
    }
    (done, finite)
}

/// Two blocks' e2m1 codes packed two to a byte in value order, the first in
/// the low nibble: 32 bytes. `magnitudes` are the codes without their sign
/// (one per 32-bit lane, below 8) and `bits` the values, each as the two
/// blocks' four 16-value halves. Narrowing by saturating packs keeps every
/// magnitude, and each value's sign as the sign bit of a byte;
/// it keeps each 128-bit lane's values in order, in pairs, so adjacent
/// values share a 16-bit lane and pair up by one shift and OR; the packs
/// interleave the 128-bit lanes, which one word permutation puts back.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn pack_two_blocks(magnitudes: [__m512i; 4], bits: [__m512i; 4]) -> __m256i {
    let [m0, m1, m2, m3] = magnitudes;
    let [b0, b1, b2, b3] = bits;
    // Per 128-bit lane l: half 0's values 4l..4l+4, half 1's, half 2's, half 3's, as bytes.
    let mags = _mm512_packus_epi16(_mm512_packus_epi32(m0, m1), _mm512_packus_epi32(m2, m3));
    let signs = _mm512_packs_epi16(_mm512_packs_epi32(b0, b1), _mm512_packs_epi32(b2, b3));
    // magnitude | (sign & 8): a byte's sign moved to its bit 3 (a 16-bit
    // shift moves each byte's bit 7 to its own bit 3; the bits it brings in
    // from the byte above are masked off).
    let codes = _mm512_ternarylogic_epi32::<0xF8>(mags, _mm512_srli_epi16::<4>(signs), _mm512_set1_epi8(8));
    // Byte 2i | byte 2i + 1 << 4 in the low byte of each 16-bit lane.
    let pairs = _mm512_cvtepi16_epi8(_mm512_or_si512(codes, _mm512_srli_epi16::<4>(codes)));
    // Word 4l + h (l the 128-bit lane, h the half) holds values 8l..8l+8 of
    // half h; in order, word 4h + l.
    const ORDER: [i16; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    // SAFETY: `ORDER` holds 16 i16.
    let order = unsafe { _mm256_loadu_si256(ORDER.as_ptr().cast()) };
    _mm256_permutexvar_epi16(order, pairs)
}

/// e2m1 code magnitudes (the sign left out) under FLOOR straight from the
/// bits of four 16-value halves, each with its block's `off` =
/// `(e - 5) << 23` for a block maximum of exponent field `e` in 6..=254:
/// the magnitudes of scaling by the factor `2^(129 - e)` and [`e2m1_codes`].
///
/// Why it is exact. Scaling by a power of two only moves the exponent, so
/// `w = |bits| - off` is the scaled magnitude's bits less those of 0.125,
/// wherever the scaled value is a normal float of at least 0.125; the
/// maximum scales into [4, 8), so `w < 6 << 23`. Anything smaller (f32
/// subnormals too: below 2^-126, they scale below 2^-3 as `e >= 6`) gives
/// `w <= 0`, raised to 1, and code 0, as rounding it would. `w >> 21` is
/// the quarter-binade bucket (0.125-0.15625, ..., 7-8): within one bucket
/// every value rounds (to nearest, ties to even, clamped at 6) to the same
/// code, except its first value where that value is a tie that rounds down
/// (0.25, 1.25, 2.5, 5), which is one code lower. So the code is the
/// bucket's table entry less, for a value at the start of its bucket (`w`'s
/// 21 low bits zero, which the raised 1 never is), the bucket's correction;
/// such values are rare in real data, so the correction is looked up only
/// when one of the 64 lanes has one. (Leaving out the subtraction, with a
/// table rotated for each block's `e`, was slower: 11.0 -> 9.7 G/s in cache.)
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn e2m1_floor_magnitudes(halves: [(__m512i, __m512i); 4]) -> [__m512i; 4] {
    // Bucket k covers [0.125, 8) in quarter binades: four of 0.125-0.25, ..., four of 4-8.
    const CODES: [i32; 32] =
        [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0];
    // One less at the first value of buckets 4 (0.25), 13 (1.25), 17 (2.5) and 21 (5).
    const TIES_DOWN: [i32; 32] =
        [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    // SAFETY: each table holds 32 i32, two 16-lane loads.
    let table = |t: &[i32; 32]| unsafe {
        (_mm512_loadu_si512(t.as_ptr().cast()), _mm512_loadu_si512(t.as_ptr().add(16).cast()))
    };
    let (c_lo, c_hi) = table(&CODES);
    let low = _mm512_set1_epi32(0x1F_FFFF);
    let mut at_start = 0u16;
    let mut w = [_mm512_setzero_si512(); 4];
    let mut codes = [_mm512_setzero_si512(); 4];
    for (i, (bits, off)) in halves.into_iter().enumerate() {
        let u = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
        w[i] = _mm512_max_epi32(_mm512_sub_epi32(u, off), _mm512_set1_epi32(1));
        codes[i] = _mm512_permutex2var_epi32(c_lo, _mm512_srli_epi32::<21>(w[i]), c_hi);
        at_start |= _mm512_testn_epi32_mask(w[i], low);
    }
    if at_start != 0 {
        let (t_lo, t_hi) = table(&TIES_DOWN);
        for (w, c) in w.into_iter().zip(&mut codes) {
            let down = _mm512_maskz_permutex2var_epi32(
                _mm512_testn_epi32_mask(w, low),
                t_lo,
                _mm512_srli_epi32::<21>(w),
                t_hi,
            );
            *c = _mm512_sub_epi32(*c, down);
        }
    }
    codes
}

/// OCP MXFP4 back to f32: element value times 2^(e - 127) (NaN for 0xFF),
/// as `mx::dequantize` with `MxElement::E2m1`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_mxfp4(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<16>();
    let (outs, _) = out.as_chunks_mut::<32>();
    let table: [f32; 16] = std::array::from_fn(|c| MxElement::E2m1.decode(c as u8));
    // SAFETY: `table` holds 16 f32.
    let table = unsafe { _mm512_loadu_ps(table.as_ptr()) };
    let low = _mm_set1_epi8(15);
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm512_set1_ps(mx::e8m0_value(s));
        // SAFETY: `b` has 16 bytes.
        let bytes = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
        let (even, odd) = (_mm_and_si128(bytes, low), _mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
        let value = |n: __m128i| _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(n), table), scale);
        // SAFETY: `o` holds 32 f32.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), value(_mm_unpacklo_epi8(even, odd)));
            _mm512_storeu_ps(o.as_mut_ptr().add(16), value(_mm_unpackhi_epi8(even, odd)));
        }
    }
}

/// MXFP8 back to f32, as `mx::dequantize` of e4m3fn (`SHIFT` 20) or e5m2
/// (21) elements: each element's exact value (`fp8_avx512::values16`, the
/// plain cast's decoder, bit for bit `Minifloat::decode`, NaN and
/// infinities included) times the block's `mx::e8m0_value` (NaN for 0xFF),
/// the reference's one f32 multiply, so every finite or infinite product is
/// its. A NaN element under a NaN scale: the reference's `value * scale`
/// keeps the element's NaN (x86 returns the first of two NaNs), but the
/// compiler may swap a multiply's operands, so NaN element lanes are set to
/// the element's NaN explicitly rather than left to the order.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
#[inline]
fn dequantize_mxfp8<const SHIFT: u32>(f: fp8::Format, scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<32>();
    let (outs, _) = out.as_chunks_mut::<32>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm512_set1_ps(mx::e8m0_value(s));
        let value = |i: usize| {
            // SAFETY: `b` has 32 bytes, 16i..16i+16 for i < 2.
            let c = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(b.as_ptr().add(16 * i).cast()) });
            let v = _mm512_castsi512_ps(fp8_avx512::values16::<SHIFT>(f, c));
            _mm512_mask_mov_ps(_mm512_mul_ps(v, scale), _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v), v)
        };
        // SAFETY: `o` holds 32 f32.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), value(0));
            _mm512_storeu_ps(o.as_mut_ptr().add(16), value(1));
        }
    }
}

/// MXFP8 with e4m3fn elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_mxfp8_e4m3(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<20>(fp8::E4M3FN, scales, codes, out)
}

/// MXFP8 with e5m2 elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_mxfp8_e5m2(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<21>(fp8::E5M2, scales, codes, out)
}

/// NF4 of whole blocks of `block` values (a multiple of 16, as every block
/// size bitsandbytes takes is): each block's absmax into `absmax`, its codes
/// two to a byte, the first in the high nibble, as `nf4::quantize_blocks`.
/// A code is the number of the 15 boundaries below the clamped value
/// (`torch.bucketize`), counted by 15 compares.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_nf4(x: &[f32], block: usize, absmax: &mut [f32], packed: &mut [u8]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::quantize_blocks(x, block, absmax, packed);
    }
    let bounds = crate::formats::nf4::code_boundaries().map(|b| _mm512_set1_ps(b));
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let (one, minus_one) = (_mm512_set1_ps(1.0), _mm512_set1_ps(-1.0));
    for ((b, a), p) in x.chunks_exact(block).zip(absmax.iter_mut()).zip(packed.chunks_exact_mut(block / 2)) {
        let (vs, _) = b.as_chunks::<16>();
        // SAFETY: each `v` holds 16 f32.
        let load = |v: &[f32; 16]| unsafe { _mm512_loadu_ps(v.as_ptr()) };
        let m = vs.iter().fold(_mm512_setzero_si512(), |m, v| {
            _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(load(v)), abs_mask))
        });
        let am = f32::from_bits(_mm512_reduce_max_epu32(m) as u32);
        *a = am;
        let r = _mm512_set1_ps(crate::formats::nf4::reciprocal(am));
        let (ps, _) = p.as_chunks_mut::<8>();
        for (v, o) in vs.iter().zip(ps) {
            let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(load(v), r), minus_one), one);
            let code = bounds.iter().fold(_mm512_setzero_si512(), |c, &bound| {
                let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(bound, t);
                _mm512_mask_sub_epi32(c, below, c, _mm512_set1_epi32(-1))
            });
            // Lanes 2i and 2i + 1 into byte i, the first in the high nibble.
            let pairs = _mm512_or_si512(_mm512_slli_epi64::<4>(code), _mm512_srli_epi64::<32>(code));
            // SAFETY: `o` has 8 bytes.
            unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), _mm512_cvtepi64_epi8(pairs)) };
        }
    }
}

/// Whole NF4 blocks back to f32: `code[q] * absmax`, as `nf4::dequantize_blocks`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_nf4(packed: &[u8], absmax: &[f32], block: usize, out: &mut [f32]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::dequantize_blocks(packed, absmax, block, out);
    }
    let table = crate::formats::NF4_CODE;
    // SAFETY: `table` holds 16 f32.
    let table = unsafe { _mm512_loadu_ps(table.as_ptr()) };
    let low = _mm_set1_epi8(15);
    for ((o, p), &a) in out.chunks_exact_mut(block).zip(packed.chunks_exact(block / 2)).zip(absmax) {
        let a = _mm512_set1_ps(a);
        let (os, _) = o.as_chunks_mut::<16>();
        let (ps, _) = p.as_chunks::<8>();
        for (y, b) in os.iter_mut().zip(ps) {
            // SAFETY: `b` has 8 bytes.
            let bytes = unsafe { _mm_loadl_epi64(b.as_ptr().cast()) };
            let (first, second) = (_mm_and_si128(_mm_srli_epi16::<4>(bytes), low), _mm_and_si128(bytes, low));
            let codes = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(first, second));
            // SAFETY: `y` holds 16 f32.
            unsafe { _mm512_storeu_ps(y.as_mut_ptr(), _mm512_mul_ps(_mm512_permutexvar_ps(codes, table), a)) };
        }
    }
}

/// NVFP4 of whole 16-value blocks: an e4m3fn scale byte a block (from
/// `nvfp4::block_scale`, the reference's own function) and 8 bytes of e2m1
/// codes, the first in the low nibble, as `nvfp4::quantize`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn quantize_nvfp4(x: &[f32], tensor_scale: Option<f32>, scales: &mut [u8], codes: &mut [u8]) {
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let (blocks, _) = x.as_chunks::<16>();
    let (outs, _) = codes.as_chunks_mut::<8>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        // SAFETY: `b` holds 16 f32.
        let v = unsafe { _mm512_loadu_ps(b.as_ptr()) };
        let am = f32::from_bits(_mm512_reduce_max_epu32(_mm512_and_si512(_mm512_castps_si512(v), abs_mask)) as u32);
        let factor;
        (*s, factor) = crate::formats::nvfp4::block_scale(am, tensor_scale);
        let c = pack_pairs(e2m1_codes(_mm512_mul_ps(v, _mm512_set1_ps(factor))));
        // SAFETY: `o` has 8 bytes.
        unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), c) };
    }
}

/// Whole NVFP4 blocks back to f32: `e2m1 * (t * s)`, as `nvfp4::dequantize`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn dequantize_nvfp4(scales: &[u8], tensor_scale: Option<f32>, codes: &[u8], out: &mut [f32]) {
    let table: [f32; 16] = std::array::from_fn(|c| MxElement::E2m1.decode(c as u8));
    // SAFETY: `table` holds 16 f32.
    let table = unsafe { _mm512_loadu_ps(table.as_ptr()) };
    let low = _mm_set1_epi8(15);
    let (blocks, _) = codes.as_chunks::<8>();
    let (outs, _) = out.as_chunks_mut::<16>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm512_set1_ps(crate::formats::nvfp4::dequantize_scale(s, tensor_scale));
        // SAFETY: `b` has 8 bytes.
        let bytes = unsafe { _mm_loadl_epi64(b.as_ptr().cast()) };
        let (even, odd) = (_mm_and_si128(bytes, low), _mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
        let c = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(even, odd));
        // SAFETY: `o` holds 16 f32.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), _mm512_mul_ps(_mm512_permutexvar_ps(c, table), scale)) };
    }
}

/// Whether every value of `x` is finite (`formats_kernels::all_finite_body`
/// compiled for this instruction set).
///
/// # Safety
/// The CPU must have the features of this file's kernels (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
pub(crate) unsafe fn all_finite(x: &[f32]) -> bool {
    crate::arch::formats_kernels::all_finite_body(x)
}
