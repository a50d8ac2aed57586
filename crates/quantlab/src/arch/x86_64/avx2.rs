//! AVX2 kernels, 8 f32 lanes. Each one gives the scalar reference's bits:
//! the quantize formula is evaluated in the same order (true division, round
//! half to even, add, clamp) with the same IEEE operations, only 8 at a time.
//! Tails shorter than a block go to the scalar kernels.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use half::{bf16, f16};

use super::super::scalar;
use crate::arch::{Affine, MinMax, clamp_never_acts, symmetric_groups};

simd_kernels! {
    name: "avx2",
    min_max: min_max_avx2,
    min_max_groups: min_max_groups_avx2,
    quantize_pack4_symmetric: quantize_pack4_symmetric_avx2,
    quantize_bytes: quantize_bytes_avx2,
    quantize_pack4: quantize_pack4_avx2,
    quantize_pack4_groups: quantize_pack4_groups_avx2,
    dequantize: dequantize_avx2,
    f32_to_bf16: f32_to_bf16_avx2,
    bf16_to_f32: bf16_to_f32_avx2,
    f32_to_f16: f32_to_f16_f16c,
    f16_to_f32: f16_to_f32_f16c,
    f32_to_e4m3fn: super::fp8_avx2::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8_avx2::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8_avx2::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8_avx2::e5m2_to_f32,
    quantize_variants: &[],
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn min_max_groups_avx2(x: &[f32], group: usize, out: &mut [MinMax]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(group.max(1))) {
        // SAFETY: same features.
        *o = unsafe { min_max_avx2(xs) };
    }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_pack4_symmetric_avx2(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    // The limits are broadcast once (see `quantize_pack4_symmetric_avx512`),
    // and the clamp is left out where it cannot act.
    let limits = Affine { zero_point: 0, ..limits };
    let fixed = consts(limits);
    let own_range = clamp_never_acts(limits);
    // SAFETY: same features.
    let max_abs = |xs: &[f32]| unsafe { max_abs_avx2(xs) };
    // SAFETY: same features.
    let pack = |xs: &[f32], scale: f32, os: &mut [MaybeUninit<u8>]| unsafe {
        let (c, a) = (Consts { scale: _mm256_set1_ps(scale), ..fixed }, Affine { scale, ..limits });
        if own_range { pack4_avx2::<true>(xs, c, a, os) } else { pack4_avx2::<false>(xs, c, a, os) }
    };
    symmetric_groups(x, group, limits, scales, out, max_abs, pack)
}

/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn max_abs_avx2(x: &[f32]) -> f32 {
    // As `scalar::max_abs`: the largest bit pattern with the sign cleared.
    let chunks = x.chunks_exact(8);
    let tail = scalar::max_abs_bits(chunks.remainder());
    let mut m = _mm256_setzero_si256();
    for c in chunks {
        // SAFETY: `c` has 8 f32.
        let v = unsafe { _mm256_loadu_si256(c.as_ptr().cast()) };
        m = _mm256_max_epu32(m, _mm256_and_si256(v, _mm256_set1_epi32(0x7FFF_FFFF)));
    }
    let m4 = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
    let m2 = _mm_max_epu32(m4, _mm_shuffle_epi32::<0b01_00_11_10>(m4));
    let m1 = _mm_max_epu32(m2, _mm_shuffle_epi32::<0b10_11_00_01>(m2));
    f32::from_bits((_mm_cvtsi128_si32(m1) as u32).max(tail))
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_pack4_groups_avx2(x: &[f32], group: usize, a: &[Affine], out: &mut [MaybeUninit<u8>]) {
    let group = group.max(2);
    for ((xs, os), &a) in x.chunks_exact(group).zip(out.chunks_exact_mut(group / 2)).zip(a) {
        // SAFETY: same features.
        unsafe { quantize_pack4_avx2(xs, a, os) };
    }
}

/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn min_max_avx2(x: &[f32]) -> MinMax {
    let (mut lo, mut hi) = (_mm256_set1_ps(f32::INFINITY), _mm256_set1_ps(f32::NEG_INFINITY));
    // `v - v` is +0.0 for every finite v and NaN otherwise: OR-ing the bits
    // leaves zero exactly when all values were finite.
    let mut bad = _mm256_setzero_ps();
    let chunks = x.chunks_exact(8);
    let tail = scalar::min_max(chunks.remainder());
    for c in chunks {
        // SAFETY: `c` has 8 f32; unaligned loads are allowed.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        // minps(v, lo) is `v < lo ? v : lo`: the scalar comparison, NaN skipped.
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
        bad = _mm256_or_ps(bad, _mm256_sub_ps(v, v));
    }
    let finite = _mm256_testz_si256(_mm256_castps_si256(bad), _mm256_castps_si256(bad)) == 1;
    // Lanes hold no NaN, so they merge in any order (zeros are made canonical below).
    let l4 = _mm_min_ps(_mm256_castps256_ps128(lo), _mm256_extractf128_ps::<1>(lo));
    let l2 = _mm_min_ps(l4, _mm_movehl_ps(l4, l4));
    let l = _mm_cvtss_f32(_mm_min_ss(l2, _mm_shuffle_ps::<1>(l2, l2)));
    let h4 = _mm_max_ps(_mm256_castps256_ps128(hi), _mm256_extractf128_ps::<1>(hi));
    let h2 = _mm_max_ps(h4, _mm_movehl_ps(h4, h4));
    let h = _mm_cvtss_f32(_mm_max_ss(h2, _mm_shuffle_ps::<1>(h2, h2)));
    scalar::canonical(MinMax {
        min: if l < tail.min { l } else { tail.min },
        max: if h > tail.max { h } else { tail.max },
        finite: finite && tail.finite,
    })
}

/// Broadcast quantization parameters.
#[derive(Clone, Copy)]
struct Consts {
    scale: __m256,
    zero: __m256,
    qmin: __m256,
    qmax: __m256,
}

#[target_feature(enable = "avx2")]
fn consts(a: Affine) -> Consts {
    Consts {
        scale: _mm256_set1_ps(a.scale),
        zero: _mm256_set1_ps(a.zero_point as f32),
        qmin: _mm256_set1_ps(a.qmin as f32),
        qmax: _mm256_set1_ps(a.qmax as f32),
    }
}

/// Eight codes as i32, as `scalar::quantize_one` computes them.
#[inline]
#[target_feature(enable = "avx2")]
fn codes(v: __m256, c: Consts) -> __m256i {
    let t = _mm256_add_ps(
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_div_ps(v, c.scale)),
        c.zero,
    );
    // maxps(a, b) returns b when either is NaN, so a NaN `t` survives both
    // clamps; it is then zeroed, as Rust's `NaN as i32` is 0.
    let clamped = _mm256_min_ps(c.qmax, _mm256_max_ps(c.qmin, t));
    let clamped = _mm256_and_ps(clamped, _mm256_cmp_ps::<_CMP_ORD_Q>(t, t));
    // Integral and in range already, so the conversion's rounding mode does not matter.
    _mm256_cvtps_epi32(clamped)
}

/// 32 codes as bytes, in order: each code's low byte, as `as i8`/`as u8`
/// keep it (the i32 to i16 pack saturates, but codes lie in `qmin..=qmax`).
/// `bad` collects `v - v` of every input (see `min_max_avx2`) to tell
/// non-finite input. With `OWN_RANGE` (zero point 0, and a scale its caller
/// chose from these values' largest magnitude: see
/// `arch::clamp_never_acts` for why the clamp then never acts), a
/// code is the quotient converted in the default rounding, half to even.
#[inline]
#[target_feature(enable = "avx2")]
fn codes32<const OWN_RANGE: bool>(p: &[f32; 32], c: Consts, bad: &mut __m256) -> __m256i {
    let mut v = |i: usize| {
        let lanes: &[f32; 8] = p[i..i + 8].try_into().expect("8 of the 32 values");
        // SAFETY: `lanes` holds 8 f32; unaligned loads are allowed.
        let v = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
        *bad = _mm256_or_ps(*bad, _mm256_sub_ps(v, v));
        if OWN_RANGE { _mm256_cvtps_epi32(_mm256_div_ps(v, c.scale)) } else { codes(v, c) }
    };
    let (a, b, d, e) = (v(0), v(8), v(16), v(24));
    let low = _mm256_set1_epi16(0x00FF);
    let ab = _mm256_and_si256(_mm256_packs_epi32(a, b), low);
    let de = _mm256_and_si256(_mm256_packs_epi32(d, e), low);
    let bytes = _mm256_packus_epi16(ab, de);
    // The packs work within 128-bit halves; this puts the 4-byte groups back in order.
    _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn quantize_bytes_avx2(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) -> bool {
    let n = x.len().min(out.len());
    let (x, out) = (&x[..n], &mut out[..n]);
    let c = consts(a);
    let mut bad = _mm256_setzero_ps();
    let body = n / 32 * 32;
    let (xs, _) = x.as_chunks::<32>();
    let (os, _) = out.as_chunks_mut::<32>();
    for (xs, os) in xs.iter().zip(os) {
        // SAFETY: `os` has 32 bytes.
        unsafe { _mm256_storeu_si256(os.as_mut_ptr().cast(), codes32::<false>(xs, c, &mut bad)) };
    }
    let bad = _mm256_castps_si256(bad);
    let mut finite = _mm256_testz_si256(bad, bad) == 1;
    for (o, &v) in out[body..].iter_mut().zip(&x[body..]) {
        finite &= v.is_finite();
        o.write(scalar::quantize_one(v, a) as u8);
    }
    finite
}

/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn quantize_pack4_avx2(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) {
    // SAFETY: same features.
    unsafe { pack4_avx2::<false>(x, consts(a), a, out) }
}

/// [`quantize_pack4_avx2`] with the parameters already broadcast (`c` is `consts(a)`).
///
/// # Safety
/// The CPU must have AVX2.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn pack4_avx2<const OWN_RANGE: bool>(x: &[f32], c: Consts, a: Affine, out: &mut [MaybeUninit<u8>]) {
    let n = x.len().min(2 * out.len());
    let body = n / 32 * 32;
    let (blocks, _) = x[..body].as_chunks::<32>();
    for (xs, os) in blocks.iter().zip(out.chunks_exact_mut(16)) {
        // Codes in order as bytes; as 16-bit words each holds (even, odd).
        let w = codes32::<OWN_RANGE>(xs, c, &mut _mm256_setzero_ps());
        let lo = _mm256_and_si256(w, _mm256_set1_epi16(0x000F));
        let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(w), _mm256_set1_epi16(0x00F0));
        let packed = _mm256_packus_epi16(_mm256_or_si256(lo, hi), _mm256_setzero_si256());
        let packed = _mm256_permute4x64_epi64::<0b00_00_10_00>(packed);
        // SAFETY: `os` has 16 bytes.
        unsafe { _mm_storeu_si128(os.as_mut_ptr().cast(), _mm256_castsi256_si128(packed)) };
    }
    if body < n {
        scalar::pack4_into(&x[body..n], a, &mut out[body / 2..]);
    }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn dequantize_avx2<const SIGNED: bool>(q: &[u8], scale: f32, zero_point: i32, out: &mut [MaybeUninit<f32>]) {
    let n = q.len().min(out.len());
    let (s, z) = (_mm256_set1_ps(scale), _mm256_set1_epi32(zero_point));
    let body = n / 8 * 8;
    for (qs, os) in q[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `qs` has 8 bytes, `os` 8 f32.
        unsafe {
            let b = _mm_loadl_epi64(qs.as_ptr().cast());
            let wide = if SIGNED { _mm256_cvtepi8_epi32(b) } else { _mm256_cvtepu8_epi32(b) };
            // (q - z) in i32, exactly converted, then one rounding in the multiply.
            let v = _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_sub_epi32(wide, z)));
            _mm256_storeu_ps(os.as_mut_ptr().cast(), v);
        }
    }
    for (o, &v) in out[body..n].iter_mut().zip(&q[body..n]) {
        let v = if SIGNED { i32::from(v as i8) } else { i32::from(v) };
        o.write(scalar::dequantize_one(v, scale, zero_point));
    }
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn f32_to_bf16_avx2(x: &[f32], out: &mut [MaybeUninit<bf16>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    let bf = |p: &[f32; 8]| {
        // SAFETY: `p` holds 8 f32; unaligned loads are allowed.
        let v = unsafe { _mm256_loadu_si256(p.as_ptr().cast()) };
        // half's rule: NaN keeps its top bits and gets the quiet bit; every
        // other value rounds to nearest even by adding 0x7FFF plus the lowest kept bit.
        let nan =
            _mm256_cmpgt_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7FFF_FFFF)), _mm256_set1_epi32(0x7F80_0000));
        let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(v), _mm256_set1_epi32(1));
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(0x7FFF)), lsb));
        let quiet = _mm256_or_si256(_mm256_srli_epi32::<16>(v), _mm256_set1_epi32(0x0040));
        _mm256_blendv_epi8(rounded, quiet, nan)
    };
    let (halves, _) = x[..body].as_chunks::<8>();
    for (xs, os) in halves.chunks_exact(2).zip(out[..body].chunks_exact_mut(16)) {
        // 0..=0xFFFF in each lane, so the unsigned saturating pack is exact.
        let packed = _mm256_packus_epi32(bf(&xs[0]), bf(&xs[1]));
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(packed);
        // SAFETY: `os` has 16 bf16.
        unsafe { _mm256_storeu_si256(os.as_mut_ptr().cast(), packed) };
    }
    scalar::f32_to_bf16(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
unsafe fn bf16_to_f32_avx2(x: &[bf16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    for (xs, os) in x[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `xs` has 8 bf16, `os` 8 f32.
        unsafe {
            let h = _mm256_cvtepu16_epi32(_mm_loadu_si128(xs.as_ptr().cast()));
            // NaN gets the quiet bit, as half's `to_f32` does.
            let nan = _mm256_cmpgt_epi32(_mm256_and_si256(h, _mm256_set1_epi32(0x7FFF)), _mm256_set1_epi32(0x7F80));
            let h = _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi32(0x0040)));
            _mm256_storeu_si256(os.as_mut_ptr().cast(), _mm256_slli_epi32::<16>(h));
        }
    }
    scalar::bf16_to_f32(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn f32_to_f16_f16c(x: &[f32], out: &mut [MaybeUninit<f16>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    for (xs, os) in x[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `xs` has 8 f32, `os` 8 f16. vcvtps2ph rounds to nearest
        // even and quiets NaN keeping its top payload bits, as half's software path does.
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(xs.as_ptr()));
            _mm_storeu_si128(os.as_mut_ptr().cast(), h);
        }
    }
    scalar::f32_to_f16(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn f16_to_f32_f16c(x: &[f16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    for (xs, os) in x[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `xs` has 8 f16, `os` 8 f32.
        unsafe { _mm256_storeu_ps(os.as_mut_ptr().cast(), _mm256_cvtph_ps(_mm_loadu_si128(xs.as_ptr().cast()))) };
    }
    scalar::f16_to_f32(&x[body..n], &mut out[body..n]);
}
