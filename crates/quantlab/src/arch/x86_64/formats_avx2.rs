//! AVX2 (with F16C) kernels of the block formats, each bit-identical with its
//! scalar reference: the same operations as `formats_avx512.rs` (which says
//! why each is exact) on 8 lanes, with vector masks and blends where AVX-512
//! has mask registers, and packs where it has narrowing moves.

use std::arch::x86_64::*;

use super::fp8_avx2;
use crate::arch::fp8;
use crate::formats::ggml::{self, KVALUES_MXFP4, QK};
use crate::formats::mx::{self, MxElement, ScaleRule};

/// A block of 32 as four 8-lane vectors.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn load(b: &[f32; QK]) -> [__m256; 4] {
    // SAFETY: `b` holds 32 f32: four unaligned 8-lane loads.
    std::array::from_fn(|i| unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * i)) })
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
fn abs_bits(v: __m256) -> __m256i {
    _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fff_ffff))
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
fn abs(v: __m256) -> __m256 {
    _mm256_castsi256_ps(abs_bits(v))
}

/// The largest magnitude of 32 finite values (their bits' unsigned maximum).
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn amax(v: &[__m256; 4]) -> f32 {
    let m = _mm256_max_epu32(
        _mm256_max_epu32(abs_bits(v[0]), abs_bits(v[1])),
        _mm256_max_epu32(abs_bits(v[2]), abs_bits(v[3])),
    );
    let m = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
    let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
    let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
    f32::from_bits(_mm_cvtsi128_si32(m) as u32)
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
fn f16_bits(v: f32) -> [u8; 2] {
    (_mm_cvtsi128_si32(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) as u16).to_le_bytes()
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
fn f16_value(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes(b)))))
}

/// 16 i32 lanes, each 0..=255, as 16 bytes in lane order.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn bytes16(a: __m256i, b: __m256i) -> __m128i {
    // packus interleaves the 128-bit halves: [a0-3 b0-3 | a4-7 b4-7]; the permute restores the order.
    let p = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(a, b));
    _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256::<1>(p))
}

/// The low byte of each i32 lane (numpy's cast to u8 after `cvttps2dq`).
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn low_byte(v: __m256i) -> __m256i {
    _mm256_and_si256(v, _mm256_set1_epi32(0xFF))
}

/// 8 bytes as i32 lanes, signed or not.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn widen_u8(b: __m128i) -> __m256i {
    _mm256_cvtepu8_epi32(b)
}

/// Stores 32 f32 at `o`.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn store(o: &mut [f32; QK], v: [__m256; 4]) {
    for (i, v) in v.into_iter().enumerate() {
        // SAFETY: `o` holds 32 f32, lanes 8i..8i+8.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr().add(8 * i), v) };
    }
}

/// Q8_0 of whole 32-value blocks (34 bytes a block).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_epi32(1f32.to_bits() as i32);
    let sign_mask = _mm256_set1_epi32(i32::MIN);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<34>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let d = amax(&v) / 127.0;
        let id = _mm256_set1_ps(if d == 0.0 { 0.0 } else { 1.0 / d });
        o[..2].copy_from_slice(&f16_bits(d));
        let code = |v: __m256| {
            let v = _mm256_mul_ps(v, id);
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
            let away = _mm256_cmp_ps::<_CMP_GE_OQ>(abs(_mm256_sub_ps(v, t)), half);
            let step = _mm256_or_si256(_mm256_and_si256(_mm256_castps_si256(v), sign_mask), one);
            let r = _mm256_add_ps(t, _mm256_and_ps(_mm256_castsi256_ps(step), away));
            low_byte(_mm256_cvttps_epi32(r))
        };
        let q = _mm256_set_m128i(bytes16(code(v[2]), code(v[3])), bytes16(code(v[0]), code(v[1])));
        // SAFETY: `o` has 34 bytes: 2 for d, then 32 for the codes.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().add(2).cast(), q) };
    }
}

/// Q8_0 blocks back to f32: `q * d`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_q8_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<34>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm256_set1_ps(f16_value([b[0], b[1]]));
        let v = std::array::from_fn(|i| {
            // SAFETY: `b` has 34 bytes, the codes at 2..34: 8 of them at 2 + 8i.
            let c = unsafe { _mm_loadl_epi64(b.as_ptr().add(2 + 8 * i).cast()) };
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)), d)
        });
        store(o, v);
    }
}

/// gguf-py's 4-bit code `min(u8(trunc(v * id + bias)), 15)` of 8 lanes, as i32.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn nibbles(v: __m256, id: __m256, bias: __m256) -> __m256i {
    let t = _mm256_add_ps(_mm256_mul_ps(v, id), bias);
    _mm256_min_epu32(low_byte(_mm256_cvttps_epi32(t)), _mm256_set1_epi32(15))
}

/// Q4_0 of whole 32-value blocks (18 bytes a block).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    let bias = _mm256_set1_ps(8.5);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<18>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let am = _mm256_set1_epi32(amax(&v).to_bits() as i32);
        let at = |v: __m256| _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(abs_bits(v), am))) as u32;
        let mask = at(v[0]) | at(v[1]) << 8 | at(v[2]) << 16 | at(v[3]) << 24;
        // A finite block always has a lane at its maximum; `& 31` only keeps the index in range.
        let d = b[mask.trailing_zeros() as usize & 31] / -8.0;
        let id = _mm256_set1_ps(if d == 0.0 { 0.0 } else { 1.0 / d });
        o[..2].copy_from_slice(&f16_bits(d));
        let c: [__m256i; 4] = std::array::from_fn(|i| nibbles(v[i], id, bias));
        let pair = |l: __m256i, h: __m256i| _mm256_or_si256(l, _mm256_slli_epi32::<4>(h));
        let packed = bytes16(pair(c[0], c[2]), pair(c[1], c[3]));
        // SAFETY: `o` has 18 bytes: 2 for d, then 16 for the codes.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().add(2).cast(), packed) };
    }
}

/// 16 bytes of nibbles as 32 codes as i32: the low nibbles (values 0..16), then the high ones.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn halves(bytes: __m128i) -> [__m256i; 4] {
    let low = _mm_set1_epi8(15);
    let (lo, hi) = (_mm_and_si128(bytes, low), _mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
    [widen_u8(lo), widen_u8(_mm_srli_si128::<8>(lo)), widen_u8(hi), widen_u8(_mm_srli_si128::<8>(hi))]
}

/// Q4_0 blocks back to f32: `d * (q - 8)`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_q4_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<18>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let eight = _mm256_set1_epi32(8);
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm256_set1_ps(f16_value([b[0], b[1]]));
        // SAFETY: `b` has 18 bytes, the codes at 2..18.
        let c = halves(unsafe { _mm_loadu_si128(b.as_ptr().add(2).cast()) });
        store(o, c.map(|c| _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(c, eight)))));
    }
}

/// A 16-entry f32 table looked up by 8 i32 indices (0..16).
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn lookup16(table: &[__m256; 2], idx: __m256i) -> __m256 {
    let (lo, hi) = (_mm256_permutevar8x32_ps(table[0], idx), _mm256_permutevar8x32_ps(table[1], idx));
    // Bit 3 of the index, moved to the sign bit, picks the upper half.
    _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx)))
}

#[target_feature(enable = "avx2,f16c")]
#[inline]
fn table16(t: &[f32; 16]) -> [__m256; 2] {
    // SAFETY: `t` holds 16 f32: two 8-lane loads.
    unsafe { [_mm256_loadu_ps(t.as_ptr()), _mm256_loadu_ps(t.as_ptr().add(8))] }
}

/// GGUF's MXFP4 of whole 32-value blocks (17 bytes a block): every code's
/// error in code order, a later one taken only when strictly smaller.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_gguf_mxfp4(x: &[f32], out: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<17>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let e = ggml::mxfp4_e8m0(amax(&v));
        let d = ggml::e8m0_half(e);
        o[0] = e;
        let best = |v: __m256| {
            let mut err = abs(_mm256_sub_ps(_mm256_set1_ps(d * f32::from(KVALUES_MXFP4[0])), v));
            let mut code = _mm256_setzero_si256();
            for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
                let e = abs(_mm256_sub_ps(_mm256_set1_ps(d * f32::from(k)), v));
                let better = _mm256_cmp_ps::<_CMP_LT_OQ>(e, err);
                err = _mm256_blendv_ps(err, e, better);
                code = _mm256_blendv_epi8(code, _mm256_set1_epi32(i as i32), _mm256_castps_si256(better));
            }
            code
        };
        let c: [__m256i; 4] = std::array::from_fn(|i| best(v[i]));
        let pair = |l: __m256i, h: __m256i| _mm256_or_si256(l, _mm256_slli_epi32::<4>(h));
        let packed = bytes16(pair(c[0], c[2]), pair(c[1], c[3]));
        // SAFETY: `o` has 17 bytes: the scale, then 16 for the codes.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().add(1).cast(), packed) };
    }
}

/// GGUF's MXFP4 blocks back to f32: `d * kvalue`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_gguf_mxfp4(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<17>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let table = table16(&KVALUES_MXFP4.map(f32::from));
    for (b, o) in blocks.iter().zip(outs) {
        let d = _mm256_set1_ps(ggml::e8m0_half(b[0]));
        // SAFETY: `b` has 17 bytes, the codes at 1..17.
        let c = halves(unsafe { _mm_loadu_si128(b.as_ptr().add(1).cast()) });
        store(o, c.map(|c| _mm256_mul_ps(d, lookup16(&table, c))));
    }
}

/// The codes of 8 already scaled lanes in a small float of `EBITS` exponent
/// and `MBITS` mantissa bits (e2m1, e4m3fn or e5m2): see `formats_avx512::minifloat_codes`.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn minifloat_codes<const EBITS: u32, const MBITS: u32>(v: __m256) -> __m256i {
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
    let shift_v = _mm_cvtsi32_si128(shift as i32);
    let bits = _mm256_castps_si256(v);
    let mag_bits = abs_bits(v);
    let a = _mm256_castsi256_ps(mag_bits);
    let magic = _mm256_set1_ps(magic);
    let sub = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(a, magic)), _mm256_castps_si256(magic));
    let rebiased = _mm256_sub_epi32(mag_bits, _mm256_set1_epi32((127 - bias) << 23));
    let odd = _mm256_and_si256(_mm256_srl_epi32(rebiased, shift_v), _mm256_set1_epi32(1));
    let normal = _mm256_srl_epi32(
        _mm256_add_epi32(_mm256_add_epi32(rebiased, _mm256_set1_epi32((1 << (shift - 1)) - 1)), odd),
        shift_v,
    );
    let is_sub = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(a, _mm256_set1_ps(min_normal)));
    let is_max = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(a, _mm256_set1_ps(max)));
    // The reference's code is a byte (`as u8`): a NaN lane (0 times an infinite factor) takes the normal
    // path with a magnitude past 255, of which it keeps the low byte.
    let normal = _mm256_and_si256(normal, _mm256_set1_epi32(0xFF));
    let mag = _mm256_blendv_epi8(_mm256_blendv_epi8(normal, sub, is_sub), _mm256_set1_epi32(max_code), is_max);
    let sign = _mm256_srl_epi32(bits, _mm_cvtsi32_si128((31 - EBITS - MBITS) as i32));
    _mm256_or_si256(mag, _mm256_and_si256(sign, _mm256_set1_epi32(1 << (EBITS + MBITS))))
}

/// The e2m1 codes of 8 already scaled lanes.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn e2m1_codes(v: __m256) -> __m256i {
    minifloat_codes::<2, 1>(v)
}

/// 16 codes in byte order, two to a byte: the first in the low nibble (`high_first` false) or the high one.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn pair_nibbles(codes: __m128i, high_first: bool) -> __m128i {
    let w = if high_first {
        _mm_or_si128(_mm_slli_epi16::<4>(codes), _mm_srli_epi16::<8>(codes))
    } else {
        _mm_or_si128(codes, _mm_srli_epi16::<4>(codes))
    };
    let w = _mm_and_si128(w, _mm_set1_epi16(0xFF));
    _mm_packus_epi16(w, w)
}

/// MXFP8 with e4m3fn elements of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E4m3` (the block scale from its own function).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_mxfp8_e4m3(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<4, 3>(MxElement::E4m3, x, rule, scales, codes)
}

/// MXFP8 with e5m2 elements of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E5m2` (clamped to 57344, rounded half to even).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_mxfp8_e5m2(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<5, 2>(MxElement::E5m2, x, rule, scales, codes)
}

/// MXFP8 of `element` (e4m3fn: `EBITS` 4, `MBITS` 3; e5m2: 5, 2): the
/// reference's f32 multiply by the block's factor, then [`minifloat_codes`].
#[target_feature(enable = "avx2,f16c")]
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
        let v = load(b);
        let (biased, factor) = mx::block_scale(amax(&v), element, rule);
        *s = biased;
        let f = _mm256_set1_ps(factor);
        let c: [__m256i; 4] = std::array::from_fn(|i| minifloat_codes::<EBITS, MBITS>(_mm256_mul_ps(v[i], f)));
        let q = _mm256_set_m128i(bytes16(c[2], c[3]), bytes16(c[0], c[1]));
        // SAFETY: `o` has 32 bytes.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), q) };
    }
}

/// MXFP8 back to f32, as `mx::dequantize` of e4m3fn (`SHIFT` 20) or e5m2
/// (21) elements: each element's exact value (`fp8_avx2::values8`, the
/// plain cast's decoder, bit for bit `Minifloat::decode`) times the block's
/// `mx::e8m0_value`, the reference's one f32 multiply, NaN elements kept
/// as the reference keeps them under a NaN scale (see
/// `formats_avx512::dequantize_mxfp8`).
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn dequantize_mxfp8<const SHIFT: i32>(f: fp8::Format, scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<32>();
    let (outs, _) = out.as_chunks_mut::<32>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm256_set1_ps(mx::e8m0_value(s));
        store(
            o,
            std::array::from_fn(|i| {
                // SAFETY: `b` has 32 bytes, 8i..8i+8 for i < 4.
                let c = widen_u8(unsafe { _mm_loadl_epi64(b.as_ptr().add(8 * i).cast()) });
                let v = _mm256_castsi256_ps(fp8_avx2::values8::<SHIFT>(f, c));
                _mm256_blendv_ps(_mm256_mul_ps(v, scale), v, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v))
            }),
        );
    }
}

/// MXFP8 with e4m3fn elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_mxfp8_e4m3(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<20>(fp8::E4M3FN, scales, codes, out)
}

/// MXFP8 with e5m2 elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_mxfp8_e5m2(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<21>(fp8::E5M2, scales, codes, out)
}

/// NF4 of whole blocks of `block` values (a multiple of 16), as
/// `nf4::quantize_blocks`: codes counted by 15 compares with the boundaries.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_nf4(x: &[f32], block: usize, absmax: &mut [f32], packed: &mut [u8]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::quantize_blocks(x, block, absmax, packed);
    }
    let bounds = crate::formats::nf4::code_boundaries().map(|b| _mm256_set1_ps(b));
    let (one, minus_one) = (_mm256_set1_ps(1.0), _mm256_set1_ps(-1.0));
    for ((b, a), p) in x.chunks_exact(block).zip(absmax.iter_mut()).zip(packed.chunks_exact_mut(block / 2)) {
        let (vs, _) = b.as_chunks::<8>();
        // SAFETY: each `v` holds 8 f32.
        let load8 = |v: &[f32; 8]| unsafe { _mm256_loadu_ps(v.as_ptr()) };
        let m = vs.iter().fold(_mm256_setzero_si256(), |m, v| _mm256_max_epu32(m, abs_bits(load8(v))));
        let m = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
        let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
        let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
        let am = f32::from_bits(_mm_cvtsi128_si32(m) as u32);
        *a = am;
        let r = _mm256_set1_ps(crate::formats::nf4::reciprocal(am));
        let code = |v: __m256| {
            let t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, r), minus_one), one);
            bounds.iter().fold(_mm256_setzero_si256(), |c, &bound| {
                _mm256_sub_epi32(c, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(bound, t)))
            })
        };
        let (ps, _) = p.as_chunks_mut::<8>();
        for (v, o) in vs.chunks_exact(2).zip(ps) {
            let codes = bytes16(code(load8(&v[0])), code(load8(&v[1])));
            // SAFETY: `o` has 8 bytes.
            unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), pair_nibbles(codes, true)) };
        }
    }
}

/// 8 bytes of nibble pairs as 16 codes in order, as i32: the high nibble first or the low one.
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn unpair(bytes: __m128i, high_first: bool) -> [__m256i; 2] {
    let low = _mm_set1_epi8(15);
    let (lo, hi) = (_mm_and_si128(bytes, low), _mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
    let codes = if high_first { _mm_unpacklo_epi8(hi, lo) } else { _mm_unpacklo_epi8(lo, hi) };
    [widen_u8(codes), widen_u8(_mm_srli_si128::<8>(codes))]
}

/// Whole NF4 blocks back to f32: `code[q] * absmax`, as `nf4::dequantize_blocks`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_nf4(packed: &[u8], absmax: &[f32], block: usize, out: &mut [f32]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::dequantize_blocks(packed, absmax, block, out);
    }
    let table = table16(&crate::formats::NF4_CODE);
    for ((o, p), &a) in out.chunks_exact_mut(block).zip(packed.chunks_exact(block / 2)).zip(absmax) {
        let a = _mm256_set1_ps(a);
        let (os, _) = o.as_chunks_mut::<16>();
        let (ps, _) = p.as_chunks::<8>();
        for (y, b) in os.iter_mut().zip(ps) {
            // SAFETY: `b` has 8 bytes.
            let c = unpair(unsafe { _mm_loadl_epi64(b.as_ptr().cast()) }, true);
            // SAFETY: `y` holds 16 f32.
            unsafe {
                _mm256_storeu_ps(y.as_mut_ptr(), _mm256_mul_ps(lookup16(&table, c[0]), a));
                _mm256_storeu_ps(y.as_mut_ptr().add(8), _mm256_mul_ps(lookup16(&table, c[1]), a));
            }
        }
    }
}

/// NVFP4 of whole 16-value blocks, as `nvfp4::quantize` (the block scale from `nvfp4::block_scale`).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_nvfp4(x: &[f32], tensor_scale: Option<f32>, scales: &mut [u8], codes: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<16>();
    let (outs, _) = codes.as_chunks_mut::<8>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        // SAFETY: `b` holds 16 f32.
        let v = unsafe { [_mm256_loadu_ps(b.as_ptr()), _mm256_loadu_ps(b.as_ptr().add(8))] };
        let m = _mm256_max_epu32(abs_bits(v[0]), abs_bits(v[1]));
        let m = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
        let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
        let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
        let factor;
        (*s, factor) = crate::formats::nvfp4::block_scale(f32::from_bits(_mm_cvtsi128_si32(m) as u32), tensor_scale);
        let f = _mm256_set1_ps(factor);
        let c = bytes16(e2m1_codes(_mm256_mul_ps(v[0], f)), e2m1_codes(_mm256_mul_ps(v[1], f)));
        // SAFETY: `o` has 8 bytes.
        unsafe { _mm_storel_epi64(o.as_mut_ptr().cast(), pair_nibbles(c, false)) };
    }
}

/// Whole NVFP4 blocks back to f32: `e2m1 * (t * s)`, as `nvfp4::dequantize`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_nvfp4(scales: &[u8], tensor_scale: Option<f32>, codes: &[u8], out: &mut [f32]) {
    let table = table16(&std::array::from_fn(|c| MxElement::E2m1.decode(c as u8)));
    let (blocks, _) = codes.as_chunks::<8>();
    let (outs, _) = out.as_chunks_mut::<16>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm256_set1_ps(crate::formats::nvfp4::dequantize_scale(s, tensor_scale));
        // SAFETY: `b` has 8 bytes.
        let c = unpair(unsafe { _mm_loadl_epi64(b.as_ptr().cast()) }, false);
        // SAFETY: `o` holds 16 f32.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_mul_ps(lookup16(&table, c[0]), scale));
            _mm256_storeu_ps(o.as_mut_ptr().add(8), _mm256_mul_ps(lookup16(&table, c[1]), scale));
        }
    }
}

/// OCP MXFP4 (e2m1 elements) of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E2m1` (the block scale from its own function).
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn quantize_mxfp4(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<32>();
    let (outs, _) = codes.as_chunks_mut::<16>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        let v = load(b);
        let (biased, factor) = mx::block_scale(amax(&v), MxElement::E2m1, rule);
        *s = biased;
        let f = _mm256_set1_ps(factor);
        let c: [__m256i; 4] = std::array::from_fn(|i| e2m1_codes(_mm256_mul_ps(v[i], f)));
        // The 32 codes as bytes in order, then each 16-bit pair (first low) as one byte.
        let q = _mm256_set_m128i(bytes16(c[2], c[3]), bytes16(c[0], c[1]));
        let w = _mm256_and_si256(_mm256_or_si256(q, _mm256_srli_epi16::<4>(q)), _mm256_set1_epi16(0xFF));
        let packed = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
        // SAFETY: `o` has 16 bytes.
        unsafe { _mm_storeu_si128(o.as_mut_ptr().cast(), packed) };
    }
}

/// OCP MXFP4 back to f32, as `mx::dequantize` with `MxElement::E2m1`.
///
/// # Safety
/// The CPU must have AVX2 and F16C (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn dequantize_mxfp4(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<16>();
    let (outs, _) = out.as_chunks_mut::<32>();
    let table = table16(&std::array::from_fn(|c| MxElement::E2m1.decode(c as u8)));
    let low = _mm_set1_epi8(15);
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = _mm256_set1_ps(mx::e8m0_value(s));
        // SAFETY: `b` has 16 bytes.
        let bytes = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
        let (even, odd) = (_mm_and_si128(bytes, low), _mm_and_si128(_mm_srli_epi16::<4>(bytes), low));
        let (first, second) = (_mm_unpacklo_epi8(even, odd), _mm_unpackhi_epi8(even, odd));
        let c = [
            widen_u8(first),
            widen_u8(_mm_srli_si128::<8>(first)),
            widen_u8(second),
            widen_u8(_mm_srli_si128::<8>(second)),
        ];
        store(o, c.map(|c| _mm256_mul_ps(lookup16(&table, c), scale)));
    }
}

/// Whether every value of `x` is finite (`formats_kernels::all_finite_body`
/// compiled for this instruction set).
///
/// # Safety
/// The CPU must have the features of this file's kernels (checked by the caller's dispatch).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn all_finite(x: &[f32]) -> bool {
    crate::arch::formats_kernels::all_finite_body(x)
}
