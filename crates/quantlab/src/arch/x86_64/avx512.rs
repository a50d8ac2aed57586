//! AVX-512 kernels (AVX-512F and BW), 16 f32 lanes. The same formulas as
//! `avx2.rs`, twice as wide, with masks for NaN and truncating narrows
//! (`vpmovdb`, `vpmovdw`) where codes already fit; f16 casts use the 512-bit
//! `vcvtps2ph`/`vcvtph2ps` (in cache, twice as fast as F16C's 256-bit form
//! that `half` runs).
//! Tails shorter than a block go to the scalar kernels.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use half::{bf16, f16};

use super::super::scalar;
use super::avx2;
use crate::arch::{
    Affine, MinMax, QuantizeVariant, clamp_never_acts, quantize_variant, reciprocal, symmetric_groups, uninit_i8_as_u8,
};

simd_kernels! {
    name: "avx512",
    min_max: min_max_avx512,
    min_max_groups: min_max_groups_avx512,
    quantize_pack4_symmetric: quantize_pack4_symmetric_avx512,
    quantize_bytes: quantize_bytes_chosen,
    quantize_pack4: quantize_pack4_avx512,
    quantize_pack4_groups: quantize_pack4_groups_avx512,
    dequantize: dequantize_avx512,
    f32_to_bf16: f32_to_bf16_avx512,
    bf16_to_f32: bf16_to_f32_avx512,
    f32_to_f16: f32_to_f16_avx512,
    f16_to_f32: f16_to_f32_avx512,
    f32_to_e4m3fn: super::fp8_avx512::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8_avx512::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8_avx512::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8_avx512::e5m2_to_f32,
    quantize_variants: &QUANTIZE_VARIANTS,
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn min_max_groups_avx512(x: &[f32], group: usize, out: &mut [MinMax]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(group.max(1))) {
        // SAFETY: same features.
        *o = unsafe { min_max_avx512(xs) };
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn max_abs_avx512(x: &[f32]) -> f32 {
    // As `scalar::max_abs`: the largest bit pattern with the sign cleared.
    let chunks = x.chunks_exact(16);
    let tail = scalar::max_abs_bits(chunks.remainder());
    let mut m = _mm512_setzero_si512();
    for c in chunks {
        // SAFETY: `c` has 16 f32.
        let v = unsafe { _mm512_loadu_si512(c.as_ptr().cast()) };
        m = _mm512_max_epu32(m, _mm512_and_si512(v, _mm512_set1_epi32(0x7FFF_FFFF)));
    }
    f32::from_bits(_mm512_reduce_max_epu32(m).max(tail))
}

/// The tables' symmetric int4 per group: the variant `arch::kernels` chose.
///
/// # Safety
/// The CPU must have AVX-512F and DQ.
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn quantize_pack4_symmetric_avx512(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    // SAFETY: same features.
    unsafe {
        if quantize_variant() == usize::from(QUARTER) {
            pack4_symmetric_avx512::<QUARTER>(x, group, limits, scales, out)
        } else {
            pack4_symmetric_avx512::<EVERY>(x, group, limits, scales, out)
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F and DQ.
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn pack4_symmetric_avx512<const VARIANT: Variant>(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    let far = x.len() >= STREAM_MIN;
    let max_abs = |xs: &[f32]| {
        if far {
            // Each group is read twice, from L1 the second time; ask ahead
            // for the one `PREFETCH` values on (see `PREFETCH`).
            let ahead = xs.as_ptr().wrapping_add(PREFETCH);
            for line in (0..xs.len()).step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
            }
        }
        // SAFETY: same features.
        unsafe { max_abs_avx512(xs) }
    };
    // The limits are broadcast once; a group's own `Affine` would go
    // through memory and stall on store forwarding, every group.
    let limits = Affine { zero_point: 0, ..limits };
    let fixed = consts(limits);
    let own_range = clamp_never_acts(limits);
    // Where the start-up timing found multiplying every vector faster than
    // dividing (a slow divider), the codes go by the checked reciprocal too;
    // else they divide (on Zen 5 the reciprocal was slower here: 13.8 -> 9.8 G/s).
    let by_reciprocal = VARIANT == EVERY;
    let pack = |xs: &[f32], scale: f32, os: &mut [MaybeUninit<u8>]| {
        let body = xs.len() / 16 * 16;
        let c = Consts { scale: _mm512_set1_ps(scale), ..fixed };
        let inv = reciprocal::of(Affine { scale, ..limits });
        // SAFETY: same features; `body` is a multiple of 16 within `xs`, and
        // `os` has room for half of `xs`.
        unsafe {
            match (own_range, inv) {
                (true, Some(inv)) if by_reciprocal => {
                    pack4_run::<OWN_RANGE_RECIPROCAL>(&xs[..body], c, _mm512_set1_ps(inv), os)
                }
                (true, _) => pack4_run::<OWN_RANGE>(&xs[..body], c, c.scale, os),
                (false, _) => pack4_run::<NO_ZERO>(&xs[..body], c, c.scale, os),
            }
        }
        if body < xs.len() {
            scalar::pack4_into(&xs[body..], Affine { scale, ..limits }, &mut os[body / 2..]);
        }
    };
    symmetric_groups(x, group, limits, scales, out, max_abs, pack)
}

/// # Safety
/// The CPU must have AVX-512F and DQ.
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn quantize_pack4_groups_avx512(x: &[f32], group: usize, a: &[Affine], out: &mut [MaybeUninit<u8>]) {
    // (Non-temporal 8-byte stores were tried here: they made int4 per-group
    // 20% slower at 2^24 elements, partial write-combining lines being costly.)
    let group = group.max(2);
    for ((xs, os), &a) in x.chunks_exact(group).zip(out.chunks_exact_mut(group / 2)).zip(a) {
        // Callers walk the data in blocks (`quant::fused`), so while this
        // block is quantized from cache, ask for the same place four blocks
        // on (measured at 2^24 values, G=128: 1 block ahead 5.5 -> 6.0 G/s,
        // 2 ahead 7.1, 4 ahead 7.7). A prefetch never faults, even past the end.
        let ahead = xs.as_ptr().wrapping_add(4 * x.len());
        for line in (0..xs.len()).step_by(16) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
        }
        // SAFETY: same features.
        unsafe { quantize_pack4_avx512(xs, a, os) };
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn min_max_avx512(x: &[f32]) -> MinMax {
    let (mut lo, mut hi) = (_mm512_set1_ps(f32::INFINITY), _mm512_set1_ps(f32::NEG_INFINITY));
    // `v - v` is +0.0 for finite v and NaN otherwise (see avx2.rs).
    let mut bad = _mm512_setzero_si512();
    let chunks = x.chunks_exact(16);
    let tail = scalar::min_max(chunks.remainder());
    for c in chunks {
        // SAFETY: `c` has 16 f32.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        // vminps(v, lo) is `v < lo ? v : lo`: the scalar comparison, NaN skipped.
        lo = _mm512_min_ps(v, lo);
        hi = _mm512_max_ps(v, hi);
        bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_sub_ps(v, v)));
    }
    let finite = _mm512_test_epi32_mask(bad, bad) == 0;
    // Lanes hold no NaN, so they merge in any order (zeros are made canonical below).
    let (l, h) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    scalar::canonical(MinMax {
        min: if l < tail.min { l } else { tail.min },
        max: if h > tail.max { h } else { tail.max },
        finite: finite && tail.finite,
    })
}

/// Outputs of at least this many elements are streamed past the cache (and
/// inputs prefetched): far larger than L2, so they would not stay there anyway.
pub(crate) const STREAM_MIN: usize = 4 << 20;

/// How many f32 ahead the kernels ask for their input (16 KiB) when it is
/// large (`STREAM_MIN` values or more): on the machine measured, the hardware
/// prefetcher alone left one thread well short of memory bandwidth (at 2^24
/// values, quantize to int8 went from 8.7 to 12-13 G/s, f32 to bf16 from 3.9
/// to 4.7 with a preallocated output). In cache it only costs.
pub(crate) const PREFETCH: usize = 4096;

/// Broadcast quantization parameters.
#[derive(Clone, Copy)]
struct Consts {
    scale: __m512,
    zero: __m512,
    qmin: __m512,
    qmax: __m512,
}

#[target_feature(enable = "avx512f")]
fn consts(a: Affine) -> Consts {
    Consts {
        scale: _mm512_set1_ps(a.scale),
        zero: _mm512_set1_ps(a.zero_point as f32),
        qmin: _mm512_set1_ps(a.qmin as f32),
        qmax: _mm512_set1_ps(a.qmax as f32),
    }
}

/// `round_ties_even(v / scale)`, lane by lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn rounded_quotient(v: __m512, c: Consts) -> __m512 {
    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_div_ps(v, c.scale))
}

/// [`rounded_quotient`] by a multiply by `inv`, `1 / scale` where
/// `reciprocal::of` allows it, when that gives the same integers in all
/// sixteen lanes (see `arch::reciprocal`), else by the division. An `inv` of
/// NaN fails the test in every lane: all divided.
#[inline]
#[target_feature(enable = "avx512f")]
fn rounded_by_reciprocal(v: __m512, c: Consts, inv: __m512) -> __m512 {
    let q = _mm512_mul_ps(v, inv);
    let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(q);
    let off_tie = _mm512_set1_ps(0.5 - reciprocal::TIE_MARGIN);
    let clear = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(_mm512_sub_ps(q, r)), off_tie);
    let far = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_abs_ps(q), _mm512_set1_ps(reciprocal::FAR));
    if clear | far == 0xFFFF { r } else { rounded_quotient(v, c) }
}

/// Sixteen codes as i32, as `scalar::quantize_one` computes them, from the
/// rounded quotients `r` ([`rounded_quotient`]).
///
/// (Skipping the NaN mask unless `vfpclassps` finds a non-finite input was
/// tried: a branch per vector made quantizing 10% slower in cache.)
#[inline]
#[target_feature(enable = "avx512f")]
fn codes(r: __m512, c: Consts) -> __m512i {
    let t = _mm512_add_ps(r, c.zero);
    // A NaN `t` survives both clamps (vmaxps returns its second operand) and
    // the ordered mask zeroes it, as Rust's `NaN as i32` is 0.
    let clamped = _mm512_min_ps(c.qmax, _mm512_max_ps(c.qmin, t));
    // Integral and in range already, so the conversion's rounding does not matter.
    _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(t, t), clamped)
}

/// The ways of quantizing (see `arch::Kernels::quantize_variants`): every
/// vector by the reciprocal, checked (Intel: the divider issues a 16-lane
/// division once per ~10 cycles, and dividing was 4.4 G/s in cache, the
/// checked multiply 9.9), or one vector in four for 8 bits and none for
/// symmetric 4 bits (tuned on AMD Zen 5, whose divider is fast: 19 G/s
/// there). Shared by every AVX-512 table.
pub(crate) static QUANTIZE_VARIANTS: [QuantizeVariant; 2] = [
    QuantizeVariant {
        name: "reciprocal-every",
        // SAFETY: these run only from tables handed out after detecting
        // AVX-512F, BW and DQ (`arch::candidates`); likewise below.
        quantize_i8: |x, a, out| unsafe { quantize_bytes_avx512::<EVERY>(x, a, uninit_i8_as_u8(out)) },
        // SAFETY: as above.
        quantize_u8: |x, a, out| unsafe { quantize_bytes_avx512::<EVERY>(x, a, out) },
        // SAFETY: as above.
        quantize_pack4_symmetric: |x, g, l, s, out| unsafe { pack4_symmetric_avx512::<EVERY>(x, g, l, s, out) },
    },
    QuantizeVariant {
        name: "reciprocal-quarter",
        // SAFETY: as above.
        quantize_i8: |x, a, out| unsafe { quantize_bytes_avx512::<QUARTER>(x, a, uninit_i8_as_u8(out)) },
        // SAFETY: as above.
        quantize_u8: |x, a, out| unsafe { quantize_bytes_avx512::<QUARTER>(x, a, out) },
        // SAFETY: as above.
        quantize_pack4_symmetric: |x, g, l, s, out| unsafe { pack4_symmetric_avx512::<QUARTER>(x, g, l, s, out) },
    },
];

/// Which vectors go by the reciprocal: all (checked per 64 values) or one in four.
type Variant = u8;
const EVERY: Variant = 0;
const QUARTER: Variant = 1;

/// The tables' 8-bit quantize: the variant `arch::kernels` chose.
///
/// # Safety
/// The CPU must have AVX-512F, BW and DQ.
#[target_feature(enable = "avx512f,avx512bw,avx512dq")]
pub(crate) unsafe fn quantize_bytes_chosen(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) -> bool {
    // SAFETY: same features.
    unsafe {
        if quantize_variant() == usize::from(QUARTER) {
            quantize_bytes_avx512::<QUARTER>(x, a, out)
        } else {
            quantize_bytes_avx512::<EVERY>(x, a, out)
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F, BW and DQ.
#[target_feature(enable = "avx512f,avx512bw,avx512dq")]
unsafe fn quantize_bytes_avx512<const VARIANT: Variant>(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) -> bool {
    let n = x.len().min(out.len());
    let c = consts(a);
    let inv = reciprocal::of(a);
    // The full int8 and uint8 ranges let a saturating narrow do half the clamp.
    let range = match (a.qmin, a.qmax) {
        (-128, 127) => INT8,
        (0, 255) => UINT8,
        _ => ANY,
    };
    let every = VARIANT == EVERY && range != ANY && inv.is_some();
    let inv = _mm512_set1_ps(inv.unwrap_or(f32::NAN));
    let mut finite = true;
    // Large outputs are written with non-temporal stores: they skip reading
    // each output line into cache before overwriting it (a sixth of the
    // traffic of this kernel). That needs aligned stores (64 bytes for the
    // every-vector kernel, which stores 64 codes at once, else 16), so the
    // first few codes go the scalar way.
    let stream = n >= STREAM_MIN;
    let align = if every { 64 } else { 16 };
    let head = if stream { out.as_ptr().align_offset(align).min(n) } else { 0 };
    for (o, &v) in out[..head].iter_mut().zip(&x[..head]) {
        finite &= v.is_finite();
        o.write(scalar::quantize_one(v, a) as u8);
    }
    let block = if every { 64 } else { 16 };
    let body = head + (n - head) / block * block;
    let (xs, os) = (&x[head..body], &mut out[head..body]);
    // SAFETY: same features; `os` is aligned as required when streaming,
    // and as long as `xs`, a multiple of `block` long.
    finite &= unsafe {
        match (every, stream, range) {
            (true, false, INT8) => quantize_every_avx512::<false, false>(xs, c, inv, a.zero_point, os),
            (true, false, _) => quantize_every_avx512::<false, true>(xs, c, inv, a.zero_point, os),
            (true, true, INT8) => quantize_every_avx512::<true, false>(xs, c, inv, a.zero_point, os),
            (true, true, _) => quantize_every_avx512::<true, true>(xs, c, inv, a.zero_point, os),
            (false, false, INT8) => quantize_run_avx512::<false, INT8>(xs, c, inv, os),
            (false, false, UINT8) => quantize_run_avx512::<false, UINT8>(xs, c, inv, os),
            (false, false, _) => quantize_run_avx512::<false, ANY>(xs, c, inv, os),
            (false, true, INT8) => quantize_run_avx512::<true, INT8>(xs, c, inv, os),
            (false, true, UINT8) => quantize_run_avx512::<true, UINT8>(xs, c, inv, os),
            (false, true, _) => quantize_run_avx512::<true, ANY>(xs, c, inv, os),
        }
    };
    if stream {
        // Non-temporal stores are weakly ordered: make them visible before returning.
        _mm_sfence();
    }
    for (o, &v) in out[body..n].iter_mut().zip(&x[body..n]) {
        finite &= v.is_finite();
        o.write(scalar::quantize_one(v, a) as u8);
    }
    finite
}

/// Quantizes `x` (a multiple of 64 long) to the full int8 range (or, with
/// `UNSIGNED`, uint8), every vector by the reciprocal `inv`, checked as
/// `arch::reciprocal` explains; a block of 64 values with any lane that
/// fails the check (a value near a rounding tie, or not finite) is divided
/// instead. Says whether every input was finite.
///
/// The accepted codes are `round(x * inv)` converted to i32, narrowed to i16
/// with saturation, plus the zero point with saturation, and narrowed to
/// bytes with saturation: exactly `clamp(round + z, qmin, qmax)`, as the
/// saturations only act beyond the limits (the proof bounds `|round|` by
/// 2^30, and the zero point is within 1023 of both limits).
///
/// # Safety
/// The CPU must have AVX-512F, BW and DQ; with `STREAM`, `out` must be
/// 64-byte aligned; `out` must be as long as `x`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq")]
unsafe fn quantize_every_avx512<const STREAM: bool, const UNSIGNED: bool>(
    x: &[f32],
    c: Consts,
    inv: __m512,
    zero_point: i32,
    out: &mut [MaybeUninit<u8>],
) -> bool {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let z16 = _mm512_set1_epi16(zero_point.clamp(i16::MIN.into(), i16::MAX.into()) as i16);
    let off_tie = _mm512_set1_ps(0.5 - reciprocal::TIE_MARGIN);
    let probe = _mm512_set1_ps(reciprocal::PROBE);
    // The packs work within 128-bit lanes: this puts the 4-byte groups back in order.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    let narrow =
        |ab: __m512i, cd: __m512i| if UNSIGNED { _mm512_packus_epi16(ab, cd) } else { _mm512_packs_epi16(ab, cd) };
    let mut bad = _mm512_setzero_si512();
    let (blocks, _) = x.as_chunks::<64>();
    let (outs, _) = out.as_chunks_mut::<64>();
    for (xs, os) in blocks.iter().zip(outs) {
        let (vs, _) = xs.as_chunks::<16>();
        if STREAM {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            for v in vs {
                _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().wrapping_add(PREFETCH).cast());
            }
        }
        // SAFETY: each `v` holds 16 f32; unaligned loads are allowed.
        let load = |i: usize| unsafe { _mm512_loadu_ps(vs[i].as_ptr()) };
        let mut codes = [_mm512_setzero_si512(); 4];
        let mut accepted = 0xFFFFu16;
        for (i, code) in codes.iter_mut().enumerate() {
            let q = _mm512_mul_ps(load(i), inv);
            let e = _mm512_fmadd_ps(q, probe, _mm512_reduce_ps::<NEAREST>(q));
            accepted &= _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(e), off_tie);
            *code = _mm512_cvt_roundps_epi32::<NEAREST>(q);
        }
        let bytes = if accepted == 0xFFFF {
            let ab = _mm512_adds_epi16(_mm512_packs_epi32(codes[0], codes[1]), z16);
            let cd = _mm512_adds_epi16(_mm512_packs_epi32(codes[2], codes[3]), z16);
            narrow(ab, cd)
        } else {
            for (i, code) in codes.iter_mut().enumerate() {
                let v = load(i);
                bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_sub_ps(v, v)));
                *code = self::codes(rounded_quotient(v, c), c);
            }
            // Codes within the limits: the saturating narrows keep them.
            narrow(_mm512_packs_epi32(codes[0], codes[1]), _mm512_packs_epi32(codes[2], codes[3]))
        };
        let bytes = _mm512_permutexvar_epi32(order, bytes);
        // SAFETY: `os` has 64 bytes (64-byte aligned when streaming).
        unsafe {
            if STREAM {
                _mm512_stream_si512(os.as_mut_ptr().cast(), bytes);
            } else {
                _mm512_storeu_si512(os.as_mut_ptr().cast(), bytes);
            }
        }
    }
    _mm512_test_epi32_mask(bad, bad) == 0
}

/// Code ranges `quantize_run_avx512` has a shortcut for.
const ANY: u8 = 0;
const INT8: u8 = 1;
const UINT8: u8 = 2;

/// Sixteen codes as bytes, for the full int8 (`RANGE == INT8`) or uint8
/// range or (`ANY`) whatever `c` says.
///
/// For int8 only the upper clamp is done in f32: below it, a value under
/// -128 converts to at most -129, or to i32::MIN when beyond i32, and the
/// signed saturating narrow `vpmovsdb` makes either -128, as the clamp
/// would. For uint8 only the lower clamp: a value over 255 converts to at
/// least 256, or to 0x8000_0000 when beyond i32, and the unsigned saturating
/// narrow `vpmovusdb` makes either 255. NaN is zeroed by the mask as in `codes`.
/// `r` is the rounded quotient ([`rounded_quotient`]).
#[inline]
#[target_feature(enable = "avx512f")]
fn code_bytes<const RANGE: u8>(r: __m512, c: Consts) -> __m128i {
    let t = _mm512_add_ps(r, c.zero);
    let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(t, t);
    match RANGE {
        INT8 => _mm512_cvtsepi32_epi8(_mm512_maskz_cvtps_epi32(ordered, _mm512_min_ps(c.qmax, t))),
        UINT8 => _mm512_cvtusepi32_epi8(_mm512_maskz_cvtps_epi32(ordered, _mm512_max_ps(c.qmin, t))),
        _ => _mm512_cvtepi32_epi8(codes(r, c)),
    }
}

/// Quantizes `x` (a multiple of 16 long) into `out`, one vector in four by
/// the reciprocal ([`rounded_by_reciprocal`]); says whether every input was finite.
///
/// # Safety
/// The CPU must have AVX-512F; with `STREAM`, `out` must be 16-byte aligned;
/// `out` must be as long as `x`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn quantize_run_avx512<const STREAM: bool, const RANGE: u8>(
    x: &[f32],
    c: Consts,
    inv: __m512,
    out: &mut [MaybeUninit<u8>],
) -> bool {
    // `v - v` of every input: nonzero bits where one was not finite (see `min_max_avx512`).
    let mut bad = _mm512_setzero_si512();
    let mut step = |xs: &[f32; 16], os: &mut [MaybeUninit<u8>; 16], by_reciprocal: bool| {
        if STREAM {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(xs.as_ptr().wrapping_add(PREFETCH).cast());
        }
        // SAFETY: `xs` holds 16 f32 and `os` 16 bytes (16-byte aligned when
        // streaming). Codes fit a byte, so the truncating narrow is exact
        // for int8 and uint8 alike.
        unsafe {
            let v = _mm512_loadu_ps(xs.as_ptr());
            bad = _mm512_or_si512(bad, _mm512_castps_si512(_mm512_sub_ps(v, v)));
            let r = if by_reciprocal { rounded_by_reciprocal(v, c, inv) } else { rounded_quotient(v, c) };
            let q = code_bytes::<RANGE>(r, c);
            if STREAM {
                _mm_stream_si128(os.as_mut_ptr().cast(), q);
            } else {
                _mm_storeu_si128(os.as_mut_ptr().cast(), q);
            }
        }
    };
    // One vector in four goes by the reciprocal: the divider and the other
    // units then both work (on Zen 5, in cache: 17 G/s with all divided, 19
    // with one in four multiplied, 13 with two in four, the checks being the cost).
    let (xs, xtail) = x.as_chunks::<16>();
    let (os, _) = out.as_chunks_mut::<16>();
    let wide = xs.len() / 4 * 4;
    for (i, (x16, o16)) in xs.iter().zip(os.iter_mut()).enumerate() {
        step(x16, o16, i < wide && i % 4 == 3);
    }
    debug_assert!(xtail.is_empty());
    _mm512_test_epi32_mask(bad, bad) == 0
}

/// How [`nibbles`] computes codes: with a zero point; with none (the
/// symmetric schemes); or with none for values whose scale came from their
/// own largest magnitude (see `arch::clamp_never_acts`).
type Nibbles = u8;
const WITH_ZERO: Nibbles = 0;
const NO_ZERO: Nibbles = 1;
const OWN_RANGE: Nibbles = 2;
/// `OWN_RANGE` by the checked reciprocal (see `arch::reciprocal`): no clamp
/// acts, and a code here is below 8 in magnitude, far under `FAR`.
const OWN_RANGE_RECIPROCAL: Nibbles = 3;

/// Sixteen 4-bit codes, each in the low nibble of an i32 lane (the rest of
/// the lane is not the scalar code: only the nibble is kept by packing).
///
/// Leaner than [`codes`], as only the nibble matters: NaN needs no mask, as
/// the conversion turns it into 0x8000_0000, whose low nibble is the 0 that
/// `NaN as i32` gives; and with no zero point the clamp can come before the
/// rounding, which the conversion then does: rounding is monotone and the
/// limits are integers, so clamping first gives the same code. `OWN_RANGE`
/// drops the clamp: its caller proves it never acts.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn nibbles<const HOW: Nibbles>(v: __m512, c: Consts, inv: __m512) -> __m512i {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    if HOW == OWN_RANGE_RECIPROCAL {
        let q = _mm512_mul_ps(v, inv);
        let e = _mm512_fmadd_ps(q, _mm512_set1_ps(reciprocal::PROBE), _mm512_reduce_ps::<NEAREST>(q));
        let off_tie = _mm512_set1_ps(0.5 - reciprocal::TIE_MARGIN);
        if _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(e), off_tie) == 0xFFFF {
            return _mm512_cvt_roundps_epi32::<NEAREST>(q);
        }
        return _mm512_cvt_roundps_epi32::<NEAREST>(_mm512_div_ps(v, c.scale));
    }
    let q = _mm512_div_ps(v, c.scale);
    // vmaxps/vminps return their second operand when either is NaN: NaN survives both.
    match HOW {
        OWN_RANGE => _mm512_cvt_roundps_epi32::<NEAREST>(q),
        NO_ZERO => _mm512_cvt_roundps_epi32::<NEAREST>(_mm512_min_ps(c.qmax, _mm512_max_ps(c.qmin, q))),
        _ => {
            let t = _mm512_add_ps(_mm512_roundscale_ps::<NEAREST>(q), c.zero);
            _mm512_cvtps_epi32(_mm512_min_ps(c.qmax, _mm512_max_ps(c.qmin, t)))
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F and DQ.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) unsafe fn quantize_pack4_avx512(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) {
    let n = x.len().min(2 * out.len());
    let body = n / 16 * 16;
    // SAFETY: same features; `body` is a multiple of 16 within both slices.
    unsafe {
        let c = consts(a);
        if a.zero_point == 0 {
            pack4_run::<NO_ZERO>(&x[..body], c, c.scale, out);
        } else {
            pack4_run::<WITH_ZERO>(&x[..body], c, c.scale, out);
        }
    }
    if body < n {
        scalar::pack4_into(&x[body..n], a, &mut out[body / 2..]);
    }
}

/// Packs the codes of `x` (a multiple of 16 long) two to a byte; `inv` is
/// `1 / scale` for `OWN_RANGE_RECIPROCAL` (ignored otherwise).
///
/// # Safety
/// The CPU must have AVX-512F and DQ.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn pack4_run<const HOW: Nibbles>(x: &[f32], c: Consts, inv: __m512, out: &mut [MaybeUninit<u8>]) {
    for (xs, os) in x.chunks_exact(16).zip(out.chunks_exact_mut(8)) {
        // SAFETY: `xs` has 16 f32, `os` 8 bytes.
        unsafe {
            let q = nibbles::<HOW>(_mm512_loadu_ps(xs.as_ptr()), c, inv);
            // As 64-bit lanes each holds (even code, odd code << 32): shifted
            // right by 28, the odd code's low nibble sits in bits 4..8. Only
            // the low byte of each lane is kept by the narrow, so one bitwise
            // select (mask ? q : shifted, mask 0x0F) builds the packed byte.
            let shifted = _mm512_srli_epi64::<28>(q);
            let bytes = _mm512_cvtepi64_epi8(_mm512_ternarylogic_epi64::<0xD8>(shifted, q, _mm512_set1_epi64(0x0F)));
            _mm_storel_epi64(os.as_mut_ptr().cast(), bytes);
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn dequantize_avx512<const SIGNED: bool>(
    q: &[u8],
    scale: f32,
    zero_point: i32,
    out: &mut [MaybeUninit<f32>],
) {
    let n = q.len().min(out.len());
    let (s, z) = (_mm512_set1_ps(scale), _mm512_set1_epi32(zero_point));
    // (Streaming a large output past the cache with aligned non-temporal
    // stores, as `quantize_bytes_avx512` does, was tried: on the Intel Xeon
    // measured, at 2^24 values, dequantizing into a fresh array got slower,
    // 0.85-1.36 -> 0.49-0.64 G/s, the OS having just zeroed those lines.)
    let far = n >= STREAM_MIN;
    let body = n / 16 * 16;
    for (qs, os) in q[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        if far {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(qs.as_ptr().wrapping_add(PREFETCH).cast());
        }
        // SAFETY: `qs` has 16 bytes, `os` 16 f32.
        unsafe {
            let b = _mm_loadu_si128(qs.as_ptr().cast());
            let wide = if SIGNED { _mm512_cvtepi8_epi32(b) } else { _mm512_cvtepu8_epi32(b) };
            // (q - z) in i32, exactly converted, then one rounding in the multiply.
            _mm512_storeu_ps(os.as_mut_ptr().cast(), _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_sub_epi32(wide, z))));
        }
    }
    for (o, &v) in out[body..n].iter_mut().zip(&q[body..n]) {
        let v = if SIGNED { i32::from(v as i8) } else { i32::from(v) };
        o.write(scalar::dequantize_one(v, scale, zero_point));
    }
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn f32_to_bf16_avx512(x: &[f32], out: &mut [MaybeUninit<bf16>]) {
    // (Streaming stores, as in `quantize_bytes_avx512`, gained nothing here:
    // a fresh 32 MiB output is bound by the OS zeroing its pages.)
    let n = x.len().min(out.len());
    let far = n >= STREAM_MIN;
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        if far {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(xs.as_ptr().wrapping_add(PREFETCH).cast());
        }
        // SAFETY: `xs` has 16 f32, `os` 16 bf16.
        unsafe {
            let v = _mm512_loadu_si512(xs.as_ptr().cast());
            // half's rule (see avx2.rs). Not vcvtneps2bf16: AVX512-BF16 flushes
            // subnormals to zero, which half does not.
            let nan = _mm512_cmpgt_epu32_mask(
                _mm512_and_si512(v, _mm512_set1_epi32(0x7FFF_FFFF)),
                _mm512_set1_epi32(0x7F80_0000),
            );
            let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(v), _mm512_set1_epi32(1));
            let rounded =
                _mm512_srli_epi32::<16>(_mm512_add_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(0x7FFF)), lsb));
            let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(v), _mm512_set1_epi32(0x0040));
            let r = _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet));
            _mm256_storeu_si256(os.as_mut_ptr().cast(), r);
        }
    }
    scalar::f32_to_bf16(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn bf16_to_f32_avx512(x: &[bf16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        // SAFETY: `xs` has 16 bf16, `os` 16 f32.
        unsafe {
            let h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(xs.as_ptr().cast()));
            // NaN gets the quiet bit, as half's `to_f32` does.
            let nan =
                _mm512_cmpgt_epu32_mask(_mm512_and_si512(h, _mm512_set1_epi32(0x7FFF)), _mm512_set1_epi32(0x7F80));
            let h = _mm512_mask_or_epi32(h, nan, h, _mm512_set1_epi32(0x0040));
            _mm512_storeu_si512(os.as_mut_ptr().cast(), _mm512_slli_epi32::<16>(h));
        }
    }
    scalar::bf16_to_f32(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn f32_to_f16_avx512(x: &[f32], out: &mut [MaybeUninit<f16>]) {
    let n = x.len().min(out.len());
    let far = n >= STREAM_MIN;
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        if far {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(xs.as_ptr().wrapping_add(PREFETCH).cast());
        }
        // SAFETY: `xs` has 16 f32, `os` 16 f16. vcvtps2ph rounds to nearest
        // even and quiets NaN keeping its top payload bits, as F16C's form does.
        unsafe {
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_loadu_ps(xs.as_ptr()));
            _mm256_storeu_si256(os.as_mut_ptr().cast(), h);
        }
    }
    // SAFETY: the table's features include F16C.
    unsafe { avx2::f32_to_f16_f16c(&x[body..n], &mut out[body..n]) };
}

/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn f16_to_f32_avx512(x: &[f16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        // SAFETY: `xs` has 16 f16, `os` 16 f32.
        unsafe { _mm512_storeu_ps(os.as_mut_ptr().cast(), _mm512_cvtph_ps(_mm256_loadu_si256(xs.as_ptr().cast()))) };
    }
    // SAFETY: the table's features include F16C.
    unsafe { avx2::f16_to_f32_f16c(&x[body..n], &mut out[body..n]) };
}
