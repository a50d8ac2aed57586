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
    Affine, MinMax, QuantizeVariant, clamp_never_acts, quantize_variant, reciprocal, symmetric_groups, symmetric_scale,
    uninit_i8_as_u8,
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
/// The CPU must have AVX-512F, BW and DQ.
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
/// The CPU must have AVX-512F, BW and DQ.
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn pack4_symmetric_avx512<const VARIANT: Variant>(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    // With VBMI, both variants go by the fused reciprocal below, which
    // needs no division (on Zen 5, in cache, 9.4 -> 18 G/s at G = 128).
    if vbmi_applies(group, limits) {
        // SAFETY: the caller's features (BW included), and VBMI was just detected.
        // Groups of 128 from memory go in one pass, the rest in blocks (see
        // `pack4_symmetric_g128` for why each where it is).
        return unsafe {
            if group == 128 && x.len() >= STREAM_MIN {
                pack4_symmetric_g128(x, limits, scales, out)
            } else {
                pack4_symmetric_vbmi(x, group, limits, scales, out)
            }
        };
    }
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

/// Whether [`pack4_symmetric_vbmi`] applies: groups of whole blocks of 128
/// values, codes within ±7 whose clamp never acts (see
/// `arch::clamp_never_acts`), and a CPU with AVX-512 VBMI (`vpermt2b`).
fn vbmi_applies(group: usize, limits: Affine) -> bool {
    group.is_multiple_of(128)
        && (1..=7).contains(&limits.qmax)
        && clamp_never_acts(limits)
        && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// What the codes' multiply-add adds to `x * r`: see [`pack4_symmetric_vbmi`].
const GRID_BIAS: f32 = 136.5;

/// Symmetric 4-bit codes per group, for groups of a multiple of 128 values
/// with codes within ±7 ([`vbmi_applies`]): `arch::symmetric_groups`'s
/// results (scales and packed bytes, bit for bit) with less work per value.
///
/// Ranges. For a block of 16 groups of 128 (or fewer, larger groups: 2048
/// values, or one group when larger, so that the second look finds them in
/// L1), each group's vectors are folded into one
/// (`max_abs_bits8`: on the bit patterns with the sign cleared, as
/// `scalar::max_abs`), then the 16 vectors are folded into one
/// holding each group's largest magnitude in its lane, so the scales and
/// reciprocals of 16 groups take one division each.
///
/// Codes, by the reciprocal `r = fl(1/s)` (normal: `s >= EPSILON` and `r`
/// is checked), without dividing and without a conversion. `t = fl(x * r +
/// 136.5)` rounds once (a fused multiply-add), and as `|x * r| < 7.00001`
/// (`|x| <= m`, `s >= fl(m / qmax) >= (m / qmax)(1 - 2^-24)`, qmax <= 7), the
/// sum lies in [128, 256), where floats are the multiples of 2^-16: `t =
/// 136.5 + g` with `g` the exact product `p = x * r` rounded to a multiple of
/// 2^-16. So the bits of `t` are those of 136.0 (0x4308_0000) plus `(g +
/// 1/2) * 2^16`: the low 16 bits are the fraction of `g + 1/2`, and bits
/// 16..24 hold `8 + floor(g + 1/2)`, from 1 to 15 (`|g| < 7.00001`), with
/// nothing above it from the sum. When the low 16 bits are not 0, `g` is not a half-integer,
/// so `p` is at least 2^-17 from every half-integer (else the nearest
/// multiple of 2^-16 would be that half-integer) and `floor(g + 1/2)` is
/// `round(p)`. And `p` is within `2^-24 |x/s|` of `x / s` (`r` is normal)
/// and `fl(x / s)`, the scalar quotient, within as much again (or 2^-150
/// where subnormal), with `|x/s| <= qmax / (1 - 2^-24)`: `2^-23 * 7.00001 +
/// 2^-150 < 2^-17`, so no half-integer lies between `p` and `fl(x / s)`,
/// which round to the same code. A block of 128 values with any low half at 0
/// (about one in 500 on random data) is divided instead, as the scalar path
/// does; so is every block of a group whose `r` is not normal (`r` is made
/// NaN there, and `t` is then 0x7FC0_0000, whose low half is 0).
///
/// Packing (`pack_codes`): the byte holding `8 + code` of each lane is
/// gathered by `vpermt2b` (two vectors' 32 codes a time), adjacent codes
/// are paired on 16-bit lanes by `vpmaddubsw` (`lo + 16 * hi`, clean
/// nibbles, so no carry), narrowed by `vpackuswb`, and `^ 0x88` turns each
/// `8 + code` into the code's low nibble. The gather puts codes where the
/// pack's per-lane order wants them: no permute after.
///
/// # Safety
/// The CPU must have AVX-512F, BW, DQ and VBMI; [`vbmi_applies`] must hold.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vbmi")]
unsafe fn pack4_symmetric_vbmi(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    debug_assert!(vbmi_applies(group, limits));
    let count = (x.len() / group).min(out.len() / (group / 2)).min(scales.len());
    let per_block = (2048 / group).clamp(1, 16);
    let far = x.len() >= STREAM_MIN;
    let qmax = _mm512_set1_ps(limits.qmax as f32);
    let fold = |g: usize| {
        // SAFETY: same features; the group is a multiple of 128 long.
        unsafe { fold_max_abs(&x[g * group..(g + 1) * group], far) }
    };
    // The block's reciprocals, each broadcast from here in turn.
    #[repr(align(64))]
    struct Lanes([f32; 16]);
    let mut inv = Lanes([0.0; 16]);
    let mut folded = [_mm512_setzero_si512(); 16];
    for (g, f) in folded[..per_block.min(count)].iter_mut().enumerate() {
        *f = fold(g);
    }
    // A software pipeline: the next block's ranges are taken group by group
    // between the codes of this block's, so its loads (from memory, when
    // large) overlap this block's arithmetic instead of waiting for it
    // (measured at 2^24 values, G = 128, which now goes in one pass instead:
    // 7.0 G/s in turn, 9.4 interleaved).
    for first in (0..count).step_by(per_block) {
        let n = per_block.min(count - first);
        let lanes = ((1u32 << n) - 1) as u16;
        let m = group_maxima(&folded);
        // Every lane in use finite: below the bits of infinity.
        if _mm512_mask_cmplt_epu32_mask(lanes, m, _mm512_set1_epi32(0x7F80_0000)) != lanes {
            return false;
        }
        // `symmetric_scale`, 16 at once: the same division and `max`.
        let s = _mm512_max_ps(_mm512_div_ps(_mm512_castsi512_ps(m), qmax), _mm512_set1_ps(f32::EPSILON));
        let r = _mm512_div_ps(_mm512_set1_ps(1.0), s);
        let subnormal = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(r, _mm512_set1_ps(f32::MIN_POSITIVE));
        let r = _mm512_mask_blend_ps(subnormal, r, _mm512_set1_ps(f32::NAN));
        // SAFETY: `scales` has `count >= first + n` elements: the mask
        // writes lanes `..n` only (masked lanes never fault); `inv` is aligned.
        unsafe {
            _mm512_mask_storeu_ps(scales.as_mut_ptr().add(first), lanes, s);
            _mm512_store_ps(inv.0.as_mut_ptr(), r);
        }
        let next = (count - first - n).min(per_block);
        for g in 0..n {
            if g < next {
                folded[g] = fold(first + n + g);
            }
            let (at, half) = ((first + g) * group, (first + g) * group / 2);
            let r = _mm512_set1_ps(inv.0[g]);
            let (xs, _) = x[at..at + group].as_chunks::<128>();
            let (os, _) = out[half..half + group / 2].as_chunks_mut::<64>();
            for (xs, os) in xs.iter().zip(os) {
                // SAFETY: same features.
                unsafe { pack_block(xs, r, scales[first + g], os) };
            }
        }
    }
    true
}

/// [`pack4_symmetric_vbmi`] for groups of exactly 128 values, in one pass:
/// each group's 8 vectors are loaded once, and its range (folded, then
/// reduced across lanes by four shuffle-and-max steps that leave it in
/// every lane), scale, reciprocal and codes all come from those registers.
/// The codes are [`pack4_symmetric_vbmi`]'s (the same `pack_loaded`), and
/// so is the scale: the same largest magnitude, then `symmetric_scale`.
///
/// Used for inputs from memory (`STREAM_MIN` values or more): there, with
/// one read of each value and a steady stream of prefetches, it was 11.7
/// G/s at 2^24 values against 8.5 for the blocks; from cache the blocks,
/// whose scales take one division per 16 groups and whose groups do not
/// each wait on their own range, were faster (2^16 values: 18.1 against
/// 13.7 G/s; 2^20: 15.3 against 13.2; Zen 5, measured when choosing, with
/// an earlier fold of the ranges).
///
/// # Safety
/// The CPU must have AVX-512F, BW, DQ and VBMI; [`vbmi_applies`] must hold.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vbmi")]
unsafe fn pack4_symmetric_g128(x: &[f32], limits: Affine, scales: &mut [f32], out: &mut [MaybeUninit<u8>]) -> bool {
    let count = (x.len() / 128).min(out.len() / 64).min(scales.len());
    let far = x.len() >= STREAM_MIN;
    let (xs, _) = x[..count * 128].as_chunks::<128>();
    let (os, _) = out[..count * 64].as_chunks_mut::<64>();
    for ((xs, os), scale) in xs.iter().zip(os).zip(&mut scales[..count]) {
        if far {
            // Ahead of the hardware prefetcher: see `PREFETCH`.
            let ahead = xs.as_ptr().wrapping_add(PREFETCH);
            for line in (0..128).step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
            }
        }
        // SAFETY: `xs` holds 128 f32.
        let v: [__m512; 8] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(xs.as_ptr().add(16 * i)) });
        let m = max_abs_bits8(&v);
        let m = _mm512_max_epu32(m, _mm512_shuffle_i64x2::<0x4E>(m, m));
        let m = _mm512_max_epu32(m, _mm512_shuffle_i64x2::<0xB1>(m, m));
        let m = _mm512_max_epu32(m, _mm512_shuffle_epi32::<0x4E>(m));
        let m = _mm512_max_epu32(m, _mm512_shuffle_epi32::<0xB1>(m));
        let bits = _mm_cvtsi128_si32(_mm512_castsi512_si128(m)) as u32;
        if bits >= 0x7F80_0000 {
            return false;
        }
        let s = symmetric_scale(f32::from_bits(bits), limits.qmax);
        *scale = s;
        let r = 1.0 / s;
        let r = if r.is_normal() { r } else { f32::NAN };
        // SAFETY: same features.
        unsafe { pack_loaded(&v, xs, _mm512_set1_ps(r), s, os) };
    }
    true
}

/// A group's vectors folded into one whose largest lane (as bits) is the
/// group's largest magnitude (see [`pack4_symmetric_vbmi`]); `far` asks
/// ahead for the input (see `PREFETCH`).
///
/// # Safety
/// The CPU must have AVX-512F and DQ; `x` is a multiple of 128 long.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn fold_max_abs(x: &[f32], far: bool) -> __m512i {
    let (blocks, _) = x.as_chunks::<128>();
    let mut acc = _mm512_setzero_si512();
    for b in blocks {
        if far {
            // Ahead of the hardware prefetcher, as `PREFETCH` explains, but
            // in two steps: into L2 far ahead, into L1 near, as each block
            // is read twice and L1 has to hold two blocks as well (measured
            // at 2^24 values, G = 128, before that went in one pass: into L1
            // alone, 16 KiB ahead 8.5 G/s, 8 KiB 8.9; with L2 64 KiB ahead, 9.4).
            let (near, far) = (b.as_ptr().wrapping_add(PREFETCH / 2), b.as_ptr().wrapping_add(4 * PREFETCH));
            for line in (0..128).step_by(16) {
                _mm_prefetch::<_MM_HINT_T1>(far.wrapping_add(line).cast());
            }
            for line in (0..128).step_by(16) {
                _mm_prefetch::<_MM_HINT_T0>(near.wrapping_add(line).cast());
            }
        }
        // SAFETY: `b` holds 128 f32.
        let v = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(b.as_ptr().add(16 * i)) });
        acc = _mm512_max_epu32(acc, max_abs_bits8(&v));
    }
    acc
}

/// Eight vectors folded into one, lane by lane the largest bit pattern with
/// the sign cleared, as `scalar::max_abs` (so a NaN or infinity stays one).
/// (`vrangeps`, largest magnitude with the sign cleared in one instruction
/// per two vectors, was tried: it drops a NaN against a number.)
#[inline]
#[target_feature(enable = "avx512f")]
fn max_abs_bits8(v: &[__m512; 8]) -> __m512i {
    let abs = |i: usize| _mm512_and_si512(_mm512_castps_si512(v[i]), _mm512_set1_epi32(0x7FFF_FFFF));
    let max = _mm512_max_epu32;
    max(max(max(abs(0), abs(1)), max(abs(2), abs(3))), max(max(abs(4), abs(5)), max(abs(6), abs(7))))
}

/// Lane `g` of the result: the largest lane (unsigned) of `a[g]`, for 16
/// vectors at once: four rounds of halving, each round's shuffles pairing
/// the vectors so that every maximum does useful work (15 per 16 groups
/// rather than 4 for each group), then one permute for the order.
#[inline]
#[target_feature(enable = "avx512f")]
fn group_maxima(a: &[__m512i; 16]) -> __m512i {
    let max = _mm512_max_epu32;
    // 256-bit halves: lanes 0..8 of b[i] are a[2i]'s, 8..16 a[2i+1]'s.
    let b: [__m512i; 8] = std::array::from_fn(|i| {
        let (x, y) = (a[2 * i], a[2 * i + 1]);
        max(_mm512_shuffle_i64x2::<0x44>(x, y), _mm512_shuffle_i64x2::<0xEE>(x, y))
    });
    // 128-bit lanes: lane l of c[j] is group 4j + l's.
    let c: [__m512i; 4] = std::array::from_fn(|j| {
        let (x, y) = (b[2 * j], b[2 * j + 1]);
        max(_mm512_shuffle_i64x2::<0x88>(x, y), _mm512_shuffle_i64x2::<0xDD>(x, y))
    });
    // Within lanes (dwords, as floats only to shuffle): in lane l of d[k],
    // dwords 0-1 are group 8k + l's, 2-3 group 8k + 4 + l's.
    let pairs = |x: __m512i, y: __m512i| {
        let (x, y) = (_mm512_castsi512_ps(x), _mm512_castsi512_ps(y));
        max(_mm512_castps_si512(_mm512_shuffle_ps::<0x88>(x, y)), _mm512_castps_si512(_mm512_shuffle_ps::<0xDD>(x, y)))
    };
    let d = [pairs(c[0], c[1]), pairs(c[2], c[3])];
    // Dword 4l + j of e is group 4j + l's.
    let e = pairs(d[0], d[1]);
    _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), e)
}

/// The packed codes of 128 values of a group whose scale is `s` and
/// reciprocal (or NaN) `r`: see [`pack4_symmetric_vbmi`].
///
/// # Safety
/// The CPU must have AVX-512F, BW, DQ and VBMI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vbmi")]
unsafe fn pack_block(xs: &[f32; 128], r: __m512, s: f32, os: &mut [MaybeUninit<u8>; 64]) {
    // SAFETY: `xs` holds 128 f32.
    let v = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(xs.as_ptr().add(16 * i)) });
    // SAFETY: same features.
    unsafe { pack_loaded(&v, xs, r, s, os) }
}

/// [`pack_block`] of `xs` already loaded into `v`.
///
/// # Safety
/// The CPU must have AVX-512F, BW, DQ and VBMI.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vbmi")]
unsafe fn pack_loaded(v: &[__m512; 8], xs: &[f32; 128], r: __m512, s: f32, os: &mut [MaybeUninit<u8>; 64]) {
    let bias = _mm512_set1_ps(GRID_BIAS);
    let t: [__m512i; 8] = std::array::from_fn(|i| _mm512_castps_si512(_mm512_fmadd_ps(v[i], r, bias)));
    // Any low half at 0 (a value near a rounding tie, or no usable `r`)?
    let mut low = t[0];
    for &v in &t[1..] {
        low = _mm512_min_epu16(low, v);
    }
    // (The high halves, 0x4301 to 0x430F or NaN's 0x7FC0, are never 0.)
    if _mm512_testn_epi16_mask(low, low) != 0 {
        // SAFETY: same features.
        return unsafe { divided_block(xs, s, os) };
    }
    // SAFETY: `os` has 64 bytes.
    unsafe { _mm512_storeu_si512(os.as_mut_ptr().cast(), pack_codes(&t)) };
}

/// [`pack_block`] by the division, as `scalar::quantize_one`: the rounded
/// quotient (an integer within ±7: no clamp acts) plus 136 is exact, so
/// bits 16..24 hold `8 + code` as on the fast path.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VBMI.
#[cold]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn divided_block(xs: &[f32; 128], s: f32, os: &mut [MaybeUninit<u8>; 64]) {
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    let s = _mm512_set1_ps(s);
    // SAFETY: `xs` holds 128 f32.
    let t = std::array::from_fn(|i| unsafe {
        let q = _mm512_roundscale_ps::<NEAREST>(_mm512_div_ps(_mm512_loadu_ps(xs.as_ptr().add(16 * i)), s));
        _mm512_castps_si512(_mm512_add_ps(q, _mm512_set1_ps(GRID_BIAS - 0.5)))
    });
    // SAFETY: `os` has 64 bytes.
    unsafe { _mm512_storeu_si512(os.as_mut_ptr().cast(), pack_codes(&t)) };
}

/// 128 codes, `8 + code` in bits 16..24 of each lane of `t`, packed two to a
/// byte (see [`pack4_symmetric_vbmi`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn pack_codes(t: &[__m512i; 8]) -> __m512i {
    // Byte 2 of each dword of the first table in bytes 0..16 of the result,
    // of the second in 16..32 (`LOW`), or in 32..48 and 48..64 (`HIGH`).
    const fn gather(at: usize) -> [u8; 64] {
        let mut idx = [0u8; 64];
        let mut i = 0;
        while i < 32 {
            idx[(at + i) % 64] = (4 * (i % 16) + 2 + 64 * (i / 16)) as u8;
            i += 1;
        }
        idx
    }
    const LOW: [u8; 64] = gather(0);
    const HIGH: [u8; 64] = gather(32);
    // SAFETY: 64-byte arrays, read unaligned.
    let (low, high) = unsafe { (_mm512_loadu_si512(LOW.as_ptr().cast()), _mm512_loadu_si512(HIGH.as_ptr().cast())) };
    // `vpackuswb` takes 128-bit lane l of its output from lane l of each
    // operand (8 words each): so lane l of the first holds the codes of
    // vector 2l, of the second those of 2l + 1.
    let bytes = |a: usize| {
        let lo = _mm512_permutex2var_epi8(t[a], low, t[a + 2]);
        let hi = _mm512_permutex2var_epi8(t[a + 4], high, t[a + 6]);
        _mm512_mask_blend_epi64(0xF0, lo, hi)
    };
    // Adjacent codes as `lo + 16 * hi` on 16-bit lanes (at most 255).
    let pair = |b: __m512i| _mm512_maddubs_epi16(b, _mm512_set1_epi16(0x1001));
    _mm512_xor_si512(_mm512_packus_epi16(pair(bytes(0)), pair(bytes(1))), _mm512_set1_epi8(0x88u8 as i8))
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
