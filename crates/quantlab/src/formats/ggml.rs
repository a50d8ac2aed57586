//! llama.cpp's 32-value blocks: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and GGUF's MXFP4.
//!
//! Each block carries its own scale as f16 (MXFP4: an e8m0 byte), so a tensor
//! is a run of fixed-size blocks and nothing else. Every quantizer here gives,
//! byte for byte, what gguf-py 0.19's `gguf.quants.quantize` gives (which gguf-py
//! tests against libggml's `quantize_row_*_ref`): the arithmetic is f32 in the
//! same order, with no fused multiply-add, and the same float-to-integer casts.
//! The one place gguf-py and ggml differ is a block of `-0.0`: numpy's argmax
//! takes the first `-0.0` as the block maximum (d = +0.0), ggml keeps +0.0 (d =
//! -0.0); we follow gguf-py.

use half::f16;

/// Values in one block.
pub const QK: usize = 32;

/// The e2m1 values doubled, in GGUF's code order (`kvalues_mxfp4`).
pub(crate) const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// numpy's `float32.astype(uint8 / int8)` on x86-64: a truncating conversion to
/// i32 (`cvttps2dq`, which gives `i32::MIN` for NaN and out-of-range values),
/// then the low byte. gguf-py meets NaN and infinities here when a block's
/// scale is so small that `1 / d` overflows.
#[inline]
pub(crate) fn numpy_cast_u8(v: f32) -> u8 {
    let i = if (-2147483648.0..2147483648.0).contains(&v) { v as i32 } else { i32::MIN };
    i as u8
}

/// `1 / d`, or 0 where `d == 0` (gguf-py's `np.where(d == 0, 0, 1 / d)`).
#[inline]
fn inverse(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

/// The first value of largest magnitude (numpy's `argmax` of `abs`).
#[inline]
fn signed_max(b: &[f32]) -> f32 {
    let mut best = b[0];
    for &v in &b[1..] {
        if v.abs() > best.abs() {
            best = v;
        }
    }
    best
}

#[inline]
fn min_max(b: &[f32]) -> (f32, f32) {
    b.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

#[inline]
fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

#[inline]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Q8_0, 34 bytes a block: f16 `d = amax / 127`, then 32 × i8 `round(x / d)`
/// (half away from zero). Matches gguf-py 0.19 `Q8_0.quantize_blocks`.
pub(crate) fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(34)) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = inverse(d);
        o[..2].copy_from_slice(&f16_bytes(d));
        for (q, &v) in o[2..].iter_mut().zip(b) {
            *q = numpy_cast_u8((v * id).round());
        }
    }
}

/// Q8_0 back to f32: `q * d`. Matches gguf-py 0.19 `Q8_0.dequantize_blocks`.
pub(crate) fn dequantize_q8_0(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(34).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, &c) in o.iter_mut().zip(&b[2..]) {
            *y = f32::from(c as i8) * d;
        }
    }
}

/// The 4- or 5-bit code of gguf-py's `trunc(v + bias)` cast to u8, clipped to `max`.
#[inline]
fn code(v: f32, bias: f32, max: u8) -> u8 {
    numpy_cast_u8((v + bias).trunc()).min(max)
}

/// Q4_0, 18 bytes a block: f16 `d = m / -8` for the value `m` of largest
/// magnitude, then byte j = q[j] | q[j + 16] << 4 with q = trunc(x / d + 8.5)
/// clipped to 15. Matches gguf-py 0.19 `Q4_0.quantize_blocks`.
pub(crate) fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(18)) {
        let d = signed_max(b) / -8.0;
        let id = inverse(d);
        o[..2].copy_from_slice(&f16_bytes(d));
        for j in 0..QK / 2 {
            o[2 + j] = code(b[j] * id, 8.5, 15) | code(b[j + 16] * id, 8.5, 15) << 4;
        }
    }
}

/// Q4_0 back to f32: `d * (q - 8)`. Matches gguf-py 0.19 `Q4_0.dequantize_blocks`.
pub(crate) fn dequantize_q4_0(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(18).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for j in 0..QK / 2 {
            o[j] = d * f32::from((b[2 + j] & 15) as i8 - 8);
            o[j + 16] = d * f32::from((b[2 + j] >> 4) as i8 - 8);
        }
    }
}

/// Q4_1, 20 bytes a block: f16 `d = (max - min) / 15`, f16 `m = min`, then
/// nibbles as Q4_0 of q = trunc((x - min) / d + 0.5) clipped to 15. Matches
/// gguf-py 0.19 `Q4_1.quantize_blocks`.
pub(crate) fn quantize_q4_1(x: &[f32], out: &mut [u8]) {
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(20)) {
        let (min, max) = min_max(b);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        o[..2].copy_from_slice(&f16_bytes(d));
        o[2..4].copy_from_slice(&f16_bytes(min));
        for j in 0..QK / 2 {
            o[4 + j] = code((b[j] - min) * id, 0.5, 15) | code((b[j + 16] - min) * id, 0.5, 15) << 4;
        }
    }
}

/// Q4_1 back to f32: `d * q + m`. Matches gguf-py 0.19 `Q4_1.dequantize_blocks`.
pub(crate) fn dequantize_q4_1(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(20).zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for j in 0..QK / 2 {
            o[j] = d * f32::from(b[4 + j] & 15) + m;
            o[j + 16] = d * f32::from(b[4 + j] >> 4) + m;
        }
    }
}

/// The 5-bit codes' low nibbles (as Q4_0) and their fifth bits (bit j of a
/// little-endian u32 for value j).
fn pack5(q: &[u8; QK], qh: &mut [u8], qs: &mut [u8]) {
    let mut h = 0u32;
    for (j, &c) in q.iter().enumerate() {
        h |= u32::from(c >> 4 & 1) << j;
    }
    qh.copy_from_slice(&h.to_le_bytes());
    for j in 0..QK / 2 {
        qs[j] = (q[j] & 15) | q[j + 16] << 4;
    }
}

fn unpack5(qh: &[u8], qs: &[u8]) -> [u8; QK] {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = [0u8; QK];
    for j in 0..QK / 2 {
        q[j] = (qs[j] & 15) | ((h >> j & 1) as u8) << 4;
        q[j + 16] = (qs[j] >> 4) | ((h >> (j + 16) & 1) as u8) << 4;
    }
    q
}

/// Q5_0, 22 bytes a block: f16 `d = m / -16`, 4 bytes of fifth bits, 16 bytes
/// of low nibbles, with q = trunc(x / d + 16.5) clipped to 31. Matches gguf-py
/// 0.19 `Q5_0.quantize_blocks`.
pub(crate) fn quantize_q5_0(x: &[f32], out: &mut [u8]) {
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(22)) {
        let d = signed_max(b) / -16.0;
        let id = inverse(d);
        let mut q = [0u8; QK];
        for (c, &v) in q.iter_mut().zip(b) {
            *c = code(v * id, 16.5, 31);
        }
        o[..2].copy_from_slice(&f16_bytes(d));
        let (qh, qs) = o[2..].split_at_mut(4);
        pack5(&q, qh, qs);
    }
}

/// Q5_0 back to f32: `d * (q - 16)`. Matches gguf-py 0.19 `Q5_0.dequantize_blocks`.
pub(crate) fn dequantize_q5_0(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(22).zip(out.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, c) in o.iter_mut().zip(unpack5(&b[2..6], &b[6..])) {
            *y = d * f32::from(c as i8 - 16);
        }
    }
}

/// Q5_1, 24 bytes a block: f16 `d = (max - min) / 31`, f16 `m = min`, fifth
/// bits, low nibbles, with q = trunc((x - min) / d + 0.5) clipped to 31.
/// Matches gguf-py 0.19 `Q5_1.quantize_blocks`.
pub(crate) fn quantize_q5_1(x: &[f32], out: &mut [u8]) {
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(24)) {
        let (min, max) = min_max(b);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        let mut q = [0u8; QK];
        for (c, &v) in q.iter_mut().zip(b) {
            *c = code((v - min) * id, 0.5, 31);
        }
        o[..2].copy_from_slice(&f16_bytes(d));
        o[2..4].copy_from_slice(&f16_bytes(min));
        let (qh, qs) = o[4..].split_at_mut(4);
        pack5(&q, qh, qs);
    }
}

/// Q5_1 back to f32: `d * q + m`. Matches gguf-py 0.19 `Q5_1.dequantize_blocks`.
pub(crate) fn dequantize_q5_1(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(24).zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (y, c) in o.iter_mut().zip(unpack5(&b[4..8], &b[8..])) {
            *y = d * f32::from(c) + m;
        }
    }
}

/// `floor(np.log2(x))` for finite x > 0, as numpy 2.x computes it in f32.
///
/// numpy's float32 log2 is not correctly rounded, but next to every power of
/// two (where its floor can differ from the exponent: just below 2^k the
/// rounded logarithm can be k itself) its floor is that of the correctly
/// rounded log2, which this computes through f64. `formats_numerics` holds
/// numpy's answer for the 4096 floats below every power of two.
pub(crate) fn floor_log2_numpy(x: f32) -> f32 {
    ((f64::from(x)).log2() as f32).floor()
}

/// The e8m0 byte of a GGUF MXFP4 block whose largest magnitude is `amax`
/// (see [`quantize_mxfp4`]), for the SIMD kernels: the exponent field gives
/// `floor(log2(amax))` for a normal `amax` whose mantissa is below
/// `2 - 2^-11`, where `log2` is at least `2^-12` below the next integer, more
/// than the rounding of any f32 logarithm below 128 can make up; next to a
/// power of two, and for subnormals, numpy's own rounding decides.
pub(crate) fn mxfp4_e8m0(amax: f32) -> u8 {
    if amax.is_nan() || amax <= 0.0 {
        return 0;
    }
    let bits = amax.to_bits();
    let (exp, mantissa) = (bits >> 23, bits & 0x7f_ffff);
    let floor =
        if (1..255).contains(&exp) && mantissa < 0x7f_f000 { exp as f32 - 127.0 } else { floor_log2_numpy(amax) };
    numpy_cast_u8(floor - 2.0 + 127.0)
}

/// GGUF's e8m0 byte as half the scale it stands for (`ggml_e8m0_to_fp32_half`).
#[inline]
pub(crate) fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 { 0x0020_0000u32 << e } else { u32::from(e - 1) << 23 };
    f32::from_bits(bits)
}

/// GGUF's MXFP4, 17 bytes a block: e8m0 `e = floor(log2(amax)) - 2 + 127` (0
/// for an all-zero block; numpy's wrapping cast for amax below 2^-125), then
/// for each value the code whose doubled e2m1 value times `d = 2^(e-128)` is
/// nearest, the first in code order on ties (so ties go toward zero, unlike
/// the OCP rounding of [`super::mx`]), packed as Q4_0. Matches gguf-py 0.19
/// `MXFP4.quantize_blocks`.
pub(crate) fn quantize_mxfp4(x: &[f32], out: &mut [u8]) {
    let k: [f32; 16] = KVALUES_MXFP4.map(f32::from);
    for (b, o) in x.chunks_exact(QK).zip(out.chunks_exact_mut(17)) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let e = if amax > 0.0 { numpy_cast_u8(floor_log2_numpy(amax) - 2.0 + 127.0) } else { 0 };
        let d = e8m0_half(e);
        o[0] = e;
        let best = |v: f32| {
            let mut best = (0u8, (d * k[0] - v).abs());
            for (i, &kv) in k.iter().enumerate().skip(1) {
                let err = (d * kv - v).abs();
                if err < best.1 {
                    best = (i as u8, err);
                }
            }
            best.0
        };
        for j in 0..QK / 2 {
            o[1 + j] = best(b[j]) | best(b[j + 16]) << 4;
        }
    }
}

/// GGUF's MXFP4 back to f32: `d * kvalue`. Matches gguf-py 0.19 `MXFP4.dequantize_blocks`.
pub(crate) fn dequantize_mxfp4(q: &[u8], out: &mut [f32]) {
    for (b, o) in q.chunks_exact(17).zip(out.chunks_exact_mut(QK)) {
        let d = e8m0_half(b[0]);
        for j in 0..QK / 2 {
            o[j] = d * f32::from(KVALUES_MXFP4[usize::from(b[1 + j] & 15)]);
            o[j + 16] = d * f32::from(KVALUES_MXFP4[usize::from(b[1 + j] >> 4)]);
        }
    }
}
