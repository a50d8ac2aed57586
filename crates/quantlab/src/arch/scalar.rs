//! The reference kernels: plain Rust, one value at a time. Every other path
//! must give exactly these bits.

use std::mem::MaybeUninit;

use half::{bf16, f16};

use super::{Affine, Kernels, MinMax};

pub(crate) static KERNELS: Kernels = Kernels {
    name: "scalar",
    min_max,
    min_max_groups,
    quantize_pack4_symmetric,
    quantize_i8,
    quantize_u8,
    quantize_pack4,
    quantize_pack4_groups,
    dequantize_i8,
    dequantize_u8,
    f32_to_bf16,
    bf16_to_f32,
    f32_to_f16,
    f16_to_f32,
    f32_to_e4m3fn: super::fp8::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8::e5m2_to_f32,
    quantize_variants: &[],
};

pub(crate) fn min_max(x: &[f32]) -> MinMax {
    let mut acc = MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY, finite: true };
    for &v in x {
        acc.finite &= v.is_finite();
        // Plain comparisons (false for NaN, so NaN is skipped), exactly what
        // SIMD `min`/`max` lanes compute; `f32::min` leaves ±0 unspecified.
        if v < acc.min {
            acc.min = v;
        }
        if v > acc.max {
            acc.max = v;
        }
    }
    canonical(acc)
}

pub(crate) fn min_max_groups(x: &[f32], group: usize, out: &mut [MinMax]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(group.max(1))) {
        *o = min_max(xs);
    }
}

/// The largest magnitude in `x`, over the bit patterns with the sign
/// cleared: non-negative floats order as their bit patterns do, and every
/// non-finite pattern is above every finite one, so this is `max |v|` when
/// all are finite and inf or NaN when not. (0 for an empty slice.)
pub(crate) fn max_abs(x: &[f32]) -> f32 {
    f32::from_bits(max_abs_bits(x))
}

/// [`max_abs`] as bits, for the SIMD paths' tails.
pub(crate) fn max_abs_bits(x: &[f32]) -> u32 {
    x.iter().fold(0, |m, v| m.max(v.to_bits() & 0x7FFF_FFFF))
}

pub(crate) fn quantize_pack4_symmetric(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
) -> bool {
    let pack =
        |xs: &[f32], scale, os: &mut [MaybeUninit<u8>]| pack4_into(xs, Affine { scale, zero_point: 0, ..limits }, os);
    super::symmetric_groups(x, group, limits, scales, out, max_abs, pack)
}

/// Reports a zero min or max as `+0.0` (`-0.0 + 0.0` is `+0.0`; every other
/// value is unchanged), so the result does not depend on the order in which
/// a path met `-0.0` and `0.0`.
#[inline(always)]
pub(crate) fn canonical(m: MinMax) -> MinMax {
    MinMax { min: m.min + 0.0, max: m.max + 0.0, finite: m.finite }
}

/// One code: a true division (not a multiply by 1/s), rounding half to even,
/// the zero point added in f32, then the clamp, exactly as PyTorch evaluates
/// `torch.clamp(torch.round(x / s) + z, qmin, qmax)` in float32.
#[inline(always)]
pub(crate) fn quantize_one(x: f32, a: Affine) -> i32 {
    ((x / a.scale).round_ties_even() + a.zero_point as f32).clamp(a.qmin as f32, a.qmax as f32) as i32
}

/// One dequantized value: `s * (q - z)`.
#[inline(always)]
pub(crate) fn dequantize_one(q: i32, scale: f32, zero_point: i32) -> f32 {
    scale * (q - zero_point) as f32
}

pub(crate) fn quantize_i8(x: &[f32], a: Affine, out: &mut [MaybeUninit<i8>]) -> bool {
    let mut finite = true;
    for (o, &v) in out.iter_mut().zip(x) {
        finite &= v.is_finite();
        o.write(quantize_one(v, a) as i8);
    }
    finite
}

pub(crate) fn quantize_u8(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) -> bool {
    let mut finite = true;
    for (o, &v) in out.iter_mut().zip(x) {
        finite &= v.is_finite();
        o.write(quantize_one(v, a) as u8);
    }
    finite
}

pub(crate) fn quantize_pack4(x: &[f32], a: Affine, out: &mut [u8]) {
    pack4_into(x, a, as_uninit(out));
}

/// [`quantize_pack4`] into a buffer that may be uninitialized.
pub(crate) fn pack4_into(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) {
    for (o, pair) in out.iter_mut().zip(x.chunks(2)) {
        let lo = quantize_one(pair[0], a) & 0xF;
        let hi = pair.get(1).map_or(0, |&v| quantize_one(v, a) & 0xF);
        o.write((lo | hi << 4) as u8);
    }
}

/// Views initialized bytes as maybe-uninitialized ones, for kernels that
/// write either kind.
pub(crate) fn as_uninit<T: Copy>(out: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: same layout; kernels only ever write initialized values
    // through the result, so `out` stays initialized.
    unsafe { &mut *(out as *mut [T] as *mut [MaybeUninit<T>]) }
}

pub(crate) fn quantize_pack4_groups(x: &[f32], group: usize, a: &[Affine], out: &mut [MaybeUninit<u8>]) {
    let group = group.max(2);
    for ((xs, os), &a) in x.chunks_exact(group).zip(out.chunks_exact_mut(group / 2)).zip(a) {
        pack4_into(xs, a, os);
    }
}

pub(crate) fn dequantize_i8(q: &[i8], scale: f32, zero_point: i32, out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(q) {
        o.write(dequantize_one(i32::from(v), scale, zero_point));
    }
}

pub(crate) fn dequantize_u8(q: &[u8], scale: f32, zero_point: i32, out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(q) {
        o.write(dequantize_one(i32::from(v), scale, zero_point));
    }
}

pub(crate) fn f32_to_bf16(x: &[f32], out: &mut [MaybeUninit<bf16>]) {
    // half rounds to nearest even and keeps NaN a (quiet) NaN.
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(bf16::from_f32(v));
    }
}

pub(crate) fn bf16_to_f32(x: &[bf16], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(v.to_f32());
    }
}

pub(crate) fn f32_to_f16(x: &[f32], out: &mut [MaybeUninit<f16>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f16::from_f32(v));
    }
}

pub(crate) fn f16_to_f32(x: &[f16], out: &mut [MaybeUninit<f32>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(v.to_f32());
    }
}
