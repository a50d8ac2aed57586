//! The reference kernels: plain Rust, one value at a time. Every other path
//! must give exactly these bits.

use half::{bf16, f16};

use super::{Affine, Kernels, MinMax};

pub(crate) static KERNELS: Kernels = Kernels {
    name: "scalar",
    min_max,
    quantize_i8,
    quantize_u8,
    dequantize_i8,
    dequantize_u8,
    f32_to_bf16,
    bf16_to_f32,
    f32_to_f16,
    f16_to_f32,
};

pub(crate) fn min_max(x: &[f32]) -> MinMax {
    let mut acc = MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY, finite: true };
    for &v in x {
        acc.finite &= v.is_finite();
        acc.min = acc.min.min(v);
        acc.max = acc.max.max(v);
    }
    acc
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

pub(crate) fn quantize_i8(x: &[f32], a: Affine, out: &mut [i8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_one(v, a) as i8;
    }
}

pub(crate) fn quantize_u8(x: &[f32], a: Affine, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_one(v, a) as u8;
    }
}

pub(crate) fn dequantize_i8(q: &[i8], scale: f32, zero_point: i32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(q) {
        *o = dequantize_one(i32::from(v), scale, zero_point);
    }
}

pub(crate) fn dequantize_u8(q: &[u8], scale: f32, zero_point: i32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(q) {
        *o = dequantize_one(i32::from(v), scale, zero_point);
    }
}

pub(crate) fn f32_to_bf16(x: &[f32], out: &mut [bf16]) {
    // half rounds to nearest even and keeps NaN a (quiet) NaN.
    for (o, &v) in out.iter_mut().zip(x) {
        *o = bf16::from_f32(v);
    }
}

pub(crate) fn bf16_to_f32(x: &[bf16], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.to_f32();
    }
}

pub(crate) fn f32_to_f16(x: &[f32], out: &mut [f16]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(v);
    }
}

pub(crate) fn f16_to_f32(x: &[f16], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.to_f32();
    }
}
