//! NVFP4: blocks of 16 e2m1 values, an e4m3fn scale per block and an optional
//! f32 scale for the whole tensor.
//!
//! Matches torchao 0.18's `nvfp4_quantize` / `NVFP4Tensor.dequantize`
//! (`torchao/prototype/mx_formats/nvfp4_tensor.py`) byte for byte, rows of the
//! 2-D tensor in blocks of 16 along the last axis:
//! - without a tensor scale: `s = e4m3(clamp(amax / 6, 2^-6, 448))`, values
//!   times `1 / s`;
//! - with one, `t = amax_tensor / (448 * 6)`: `s = e4m3(clamp((amax / 6) / t,
//!   2^-6, 448))`, values times `(1 / t) / s`;
//!
//! then clamped to ±6 and rounded to nearest even e2m1, packed two to a byte
//! with the first in the low nibble. Dequantized: `e2m1 * s` (times `t`).
//! An all-zero tensor with a tensor scale gets `t = 0`; torchao's arithmetic
//! then turns every block scale into NaN, so quantlab refuses a tensor scale
//! for an all-zero tensor (quantize it without one).

use super::mx::Minifloat;

/// Values in one NVFP4 block.
pub const BLOCK: usize = 16;

/// torch.finfo(float8_e4m3fn).tiny, torchao's lower clamp of a block scale.
const E4M3_TINY: f32 = 0.015625;

/// torchao's `per_tensor_amax_to_scale`: `amax / (448 * 6)`.
pub fn tensor_scale_of(amax: f32) -> f32 {
    amax / 2688.0
}

/// A block's e4m3fn scale byte and the factor its values are multiplied by,
/// from its largest magnitude and the optional tensor scale (torchao's arithmetic).
#[inline]
pub(crate) fn block_scale(amax: f32, tensor_scale: Option<f32>) -> (u8, f32) {
    let e4m3 = Minifloat::E4M3;
    let block_scale = amax / 6.0;
    match tensor_scale {
        None => {
            let s = e4m3.encode(block_scale.clamp(E4M3_TINY, 448.0));
            (s, 1.0 / e4m3.decode(s))
        }
        Some(t) => {
            let s = e4m3.encode((block_scale / t).clamp(E4M3_TINY, 448.0));
            (s, (1.0 / t) / e4m3.decode(s))
        }
    }
}

/// What a block's e2m1 values are multiplied by to dequantize: `s` (times `t`).
#[inline]
pub(crate) fn dequantize_scale(s: u8, tensor_scale: Option<f32>) -> f32 {
    let e4m3 = Minifloat::E4M3;
    match tensor_scale {
        None => e4m3.decode(s),
        Some(t) => t * e4m3.decode(s),
    }
}

/// Quantizes rows (multiples of 16 values): an e4m3fn byte per block into
/// `scales`, packed e2m1 codes into `codes` (8 bytes a block). The scalar
/// reference of the SIMD kernels.
pub(crate) fn quantize(x: &[f32], tensor_scale: Option<f32>, scales: &mut [u8], codes: &mut [u8]) {
    let e2m1 = Minifloat::E2M1;
    for ((b, s), out) in x.chunks_exact(BLOCK).zip(scales.iter_mut()).zip(codes.chunks_exact_mut(BLOCK / 2)) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let factor;
        (*s, factor) = block_scale(amax, tensor_scale);
        for (o, p) in out.iter_mut().zip(b.chunks_exact(2)) {
            let c = |v: f32| e2m1.encode((v * factor).clamp(-6.0, 6.0));
            *o = c(p[0]) | c(p[1]) << 4;
        }
    }
}

/// NVFP4 back to f32: `e2m1 * (t * s)`. Matches torchao 0.18
/// `NVFP4Tensor.dequantize`. The scalar reference of the SIMD kernels.
pub(crate) fn dequantize(scales: &[u8], tensor_scale: Option<f32>, codes: &[u8], out: &mut [f32]) {
    let e2m1 = Minifloat::E2M1;
    for ((o, &s), b) in out.chunks_exact_mut(BLOCK).zip(scales).zip(codes.chunks_exact(BLOCK / 2)) {
        let scale = dequantize_scale(s, tensor_scale);
        for (p, &byte) in o.chunks_exact_mut(2).zip(b) {
            p[0] = e2m1.decode(byte & 15) * scale;
            p[1] = e2m1.decode(byte >> 4) * scale;
        }
    }
}
