//! NEON kernels of the block formats, each bit-identical with its scalar
//! reference: the same operations as `x86_64/formats_avx512.rs` (which says
//! why each is exact) on 4 lanes. Two differences from x86 are handled
//! here: NEON's float-to-integer conversion saturates (`+big` to `i32::MAX`,
//! NaN to 0) where numpy's x86 cast gives `i32::MIN`, whose low byte is 0;
//! and the f16 scales are converted by `half`, as the scalar code does.
//! NEON on AArch64 is full IEEE (no flushing of subnormals unless FPCR.FZ is
//! set, which Linux and macOS leave off).

use std::arch::aarch64::*;

use half::f16;

use super::fp8_neon;
use crate::arch::fp8;
use crate::formats::ggml::{self, KVALUES_MXFP4, QK};
use crate::formats::mx::{self, MxElement, ScaleRule};

/// A block of 32 as eight 4-lane vectors.
#[target_feature(enable = "neon")]
#[inline]
fn load(b: &[f32; QK]) -> [float32x4_t; 8] {
    // SAFETY: `b` holds 32 f32: eight unaligned 4-lane loads.
    std::array::from_fn(|i| unsafe { vld1q_f32(b.as_ptr().add(4 * i)) })
}

#[target_feature(enable = "neon")]
#[inline]
fn abs_bits(v: float32x4_t) -> uint32x4_t {
    vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x7fff_ffff))
}

/// The largest magnitude of 32 finite values (their bits' unsigned maximum).
#[target_feature(enable = "neon")]
#[inline]
fn amax(v: &[float32x4_t; 8]) -> f32 {
    let m = v.iter().fold(vdupq_n_u32(0), |m, &v| vmaxq_u32(m, abs_bits(v)));
    f32::from_bits(vmaxvq_u32(m))
}

/// numpy's x86 cast of f32 to i32 (`cvttps2dq`), up to the value of lanes
/// that become `i32::MIN` there: truncation, and 0 where x86 gives
/// `i32::MIN` for values from 2^31 up (NEON saturates them to `i32::MAX`);
/// NaN is already 0. Only the low byte is used, which is 0 for both.
#[target_feature(enable = "neon")]
#[inline]
fn numpy_i32(v: float32x4_t) -> uint32x4_t {
    let c = vreinterpretq_u32_s32(vcvtq_s32_f32(v));
    vbicq_u32(c, vcgeq_f32(v, vdupq_n_f32(2_147_483_648.0)))
}

/// 16 u32 lanes, each 0..=255, as 16 bytes in lane order.
#[target_feature(enable = "neon")]
#[inline]
fn bytes16(a: uint32x4_t, b: uint32x4_t, c: uint32x4_t, d: uint32x4_t) -> uint8x16_t {
    let lo = vcombine_u16(vmovn_u32(a), vmovn_u32(b));
    let hi = vcombine_u16(vmovn_u32(c), vmovn_u32(d));
    vcombine_u8(vmovn_u16(lo), vmovn_u16(hi))
}

/// Bytes 0..16 as four vectors of u32 lanes.
#[target_feature(enable = "neon")]
#[inline]
fn widen(b: uint8x16_t) -> [uint32x4_t; 4] {
    let (lo, hi) = (vmovl_u8(vget_low_u8(b)), vmovl_u8(vget_high_u8(b)));
    [
        vmovl_u16(vget_low_u16(lo)),
        vmovl_u16(vget_high_u16(lo)),
        vmovl_u16(vget_low_u16(hi)),
        vmovl_u16(vget_high_u16(hi)),
    ]
}

/// Stores 32 f32 at `o`.
#[target_feature(enable = "neon")]
#[inline]
fn store(o: &mut [f32; QK], v: [float32x4_t; 8]) {
    for (i, v) in v.into_iter().enumerate() {
        // SAFETY: `o` holds 32 f32, lanes 4i..4i+4.
        unsafe { vst1q_f32(o.as_mut_ptr().add(4 * i), v) };
    }
}

/// A 16-entry f32 table, looked up by byte shuffles of its 64 bytes.
#[target_feature(enable = "neon")]
#[inline]
fn table16(t: &[f32; 16]) -> uint8x16x4_t {
    // SAFETY: `t` holds 16 f32, 64 bytes: four 16-byte loads.
    unsafe {
        let p = t.as_ptr().cast::<u8>();
        uint8x16x4_t(vld1q_u8(p), vld1q_u8(p.add(16)), vld1q_u8(p.add(32)), vld1q_u8(p.add(48)))
    }
}

/// The table's entries at 4 indices (0..16).
#[target_feature(enable = "neon")]
#[inline]
fn lookup16(t: uint8x16x4_t, idx: uint32x4_t) -> float32x4_t {
    // Byte k of entry i is table byte 4i + k.
    let bytes = vaddq_u32(vmulq_n_u32(idx, 0x0404_0404), vdupq_n_u32(0x0302_0100));
    vreinterpretq_f32_u8(vqtbl4q_u8(t, vreinterpretq_u8_u32(bytes)))
}

/// Q8_0 of whole 32-value blocks (34 bytes a block).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    let half = vdupq_n_f32(0.5);
    let one = vdupq_n_u32(1f32.to_bits());
    let sign_mask = vdupq_n_u32(0x8000_0000);
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<34>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let d = amax(&v) / 127.0;
        let id = vdupq_n_f32(if d == 0.0 { 0.0 } else { 1.0 / d });
        o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        let code = |v: float32x4_t| {
            let v = vmulq_f32(v, id);
            let t = vrndq_f32(v);
            let away = vcgeq_f32(vabsq_f32(vsubq_f32(v, t)), half);
            let step = vorrq_u32(vandq_u32(vreinterpretq_u32_f32(v), sign_mask), one);
            let r = vaddq_f32(t, vreinterpretq_f32_u32(vandq_u32(step, away)));
            vandq_u32(numpy_i32(r), vdupq_n_u32(0xFF))
        };
        let c: [uint32x4_t; 8] = std::array::from_fn(|i| code(v[i]));
        let (lo, hi) = (bytes16(c[0], c[1], c[2], c[3]), bytes16(c[4], c[5], c[6], c[7]));
        // SAFETY: `o` has 34 bytes: 2 for d, then 32 for the codes.
        unsafe {
            vst1q_u8(o.as_mut_ptr().add(2), lo);
            vst1q_u8(o.as_mut_ptr().add(18), hi);
        }
    }
}

/// Q8_0 blocks back to f32: `q * d`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_q8_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<34>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    for (b, o) in blocks.iter().zip(outs) {
        let d = vdupq_n_f32(f16::from_le_bytes([b[0], b[1]]).to_f32());
        // SAFETY: `b` has 34 bytes, the codes at 2..34.
        let (lo, hi) = unsafe { (vld1q_s8(b.as_ptr().add(2).cast()), vld1q_s8(b.as_ptr().add(18).cast())) };
        let w = [
            vmovl_s8(vget_low_s8(lo)),
            vmovl_s8(vget_high_s8(lo)),
            vmovl_s8(vget_low_s8(hi)),
            vmovl_s8(vget_high_s8(hi)),
        ];
        let v = std::array::from_fn(|i| {
            let h = if i % 2 == 0 { vget_low_s16(w[i / 2]) } else { vget_high_s16(w[i / 2]) };
            vmulq_f32(vcvtq_f32_s32(vmovl_s16(h)), d)
        });
        store(o, v);
    }
}

/// gguf-py's 4-bit code `min(u8(trunc(v * id + bias)), 15)` of 4 lanes.
#[target_feature(enable = "neon")]
#[inline]
fn nibbles(v: float32x4_t, id: float32x4_t, bias: float32x4_t) -> uint32x4_t {
    let t = vaddq_f32(vmulq_f32(v, id), bias);
    vminq_u32(vandq_u32(numpy_i32(t), vdupq_n_u32(0xFF)), vdupq_n_u32(15))
}

/// Q4_0 of whole 32-value blocks (18 bytes a block).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q4_0(x: &[f32], out: &mut [u8]) {
    let bias = vdupq_n_f32(8.5);
    let lane_bits = [1u32, 2, 4, 8];
    // SAFETY: `lane_bits` holds 4 u32.
    let lane_bits = unsafe { vld1q_u32(lane_bits.as_ptr()) };
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<18>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let am = vdupq_n_u32(amax(&v).to_bits());
        let mask = v
            .iter()
            .enumerate()
            .fold(0u32, |m, (i, &v)| m | vaddvq_u32(vandq_u32(vceqq_u32(abs_bits(v), am), lane_bits)) << (4 * i));
        // A finite block always has a lane at its maximum; `& 31` only keeps the index in range.
        let d = b[mask.trailing_zeros() as usize & 31] / -8.0;
        let id = vdupq_n_f32(if d == 0.0 { 0.0 } else { 1.0 / d });
        o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        let c: [uint32x4_t; 8] = std::array::from_fn(|i| nibbles(v[i], id, bias));
        let pair = |l: uint32x4_t, h: uint32x4_t| vorrq_u32(l, vshlq_n_u32::<4>(h));
        let packed = bytes16(pair(c[0], c[4]), pair(c[1], c[5]), pair(c[2], c[6]), pair(c[3], c[7]));
        // SAFETY: `o` has 18 bytes: 2 for d, then 16 for the codes.
        unsafe { vst1q_u8(o.as_mut_ptr().add(2), packed) };
    }
}

/// 16 bytes of nibbles as 32 codes: the low nibbles (values 0..16), then the high ones.
#[target_feature(enable = "neon")]
#[inline]
fn halves(bytes: uint8x16_t) -> [uint32x4_t; 8] {
    let low = vdupq_n_u8(15);
    let (lo, hi) = (widen(vandq_u8(bytes, low)), widen(vshrq_n_u8::<4>(bytes)));
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]
}

/// Q4_0 blocks back to f32: `d * (q - 8)`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_q4_0(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<18>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let eight = vdupq_n_s32(8);
    for (b, o) in blocks.iter().zip(outs) {
        let d = vdupq_n_f32(f16::from_le_bytes([b[0], b[1]]).to_f32());
        // SAFETY: `b` has 18 bytes, the codes at 2..18.
        let c = halves(unsafe { vld1q_u8(b.as_ptr().add(2)) });
        store(o, c.map(|c| vmulq_f32(d, vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(c), eight)))));
    }
}

/// GGUF's MXFP4 of whole 32-value blocks (17 bytes a block): every code's
/// error in code order, a later one taken only when strictly smaller.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_gguf_mxfp4(x: &[f32], out: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<QK>();
    let (outs, _) = out.as_chunks_mut::<17>();
    for (b, o) in blocks.iter().zip(outs) {
        let v = load(b);
        let e = ggml::mxfp4_e8m0(amax(&v));
        let d = ggml::e8m0_half(e);
        o[0] = e;
        let best = |v: float32x4_t| {
            let mut err = vabsq_f32(vsubq_f32(vdupq_n_f32(d * f32::from(KVALUES_MXFP4[0])), v));
            let mut code = vdupq_n_u32(0);
            for (i, &k) in KVALUES_MXFP4.iter().enumerate().skip(1) {
                let e = vabsq_f32(vsubq_f32(vdupq_n_f32(d * f32::from(k)), v));
                let better = vcltq_f32(e, err);
                err = vbslq_f32(better, e, err);
                code = vbslq_u32(better, vdupq_n_u32(i as u32), code);
            }
            code
        };
        let c: [uint32x4_t; 8] = std::array::from_fn(|i| best(v[i]));
        let pair = |l: uint32x4_t, h: uint32x4_t| vorrq_u32(l, vshlq_n_u32::<4>(h));
        let packed = bytes16(pair(c[0], c[4]), pair(c[1], c[5]), pair(c[2], c[6]), pair(c[3], c[7]));
        // SAFETY: `o` has 17 bytes: the scale, then 16 for the codes.
        unsafe { vst1q_u8(o.as_mut_ptr().add(1), packed) };
    }
}

/// GGUF's MXFP4 blocks back to f32: `d * kvalue`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_gguf_mxfp4(q: &[u8], out: &mut [f32]) {
    let (blocks, _) = q.as_chunks::<17>();
    let (outs, _) = out.as_chunks_mut::<QK>();
    let table = table16(&KVALUES_MXFP4.map(f32::from));
    for (b, o) in blocks.iter().zip(outs) {
        let d = vdupq_n_f32(ggml::e8m0_half(b[0]));
        // SAFETY: `b` has 17 bytes, the codes at 1..17.
        let c = halves(unsafe { vld1q_u8(b.as_ptr().add(1)) });
        store(o, c.map(|c| vmulq_f32(d, lookup16(table, c))));
    }
}

/// The codes of 4 already scaled lanes in a small float of `EBITS` exponent
/// and `MBITS` mantissa bits (e2m1, e4m3fn or e5m2): see `formats_avx512::minifloat_codes`.
#[target_feature(enable = "neon")]
#[inline]
fn minifloat_codes<const EBITS: u32, const MBITS: u32>(v: float32x4_t) -> uint32x4_t {
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
    // Right shifts by a run-time count: NEON shifts left by a signed count.
    let right = |x: uint32x4_t, n: u32| vshlq_u32(x, vdupq_n_s32(-(n as i32)));
    let bits = vreinterpretq_u32_f32(v);
    let mag_bits = abs_bits(v);
    let a = vreinterpretq_f32_u32(mag_bits);
    let magic = vdupq_n_f32(magic);
    let sub = vsubq_u32(vreinterpretq_u32_f32(vaddq_f32(a, magic)), vreinterpretq_u32_f32(magic));
    let rebiased = vsubq_u32(mag_bits, vdupq_n_u32(((127 - bias) as u32) << 23));
    let odd = vandq_u32(right(rebiased, shift), vdupq_n_u32(1));
    let normal = right(vaddq_u32(vaddq_u32(rebiased, vdupq_n_u32((1 << (shift - 1)) - 1)), odd), shift);
    let is_sub = vcltq_f32(a, vdupq_n_f32(min_normal));
    let is_max = vcgeq_f32(a, vdupq_n_f32(max));
    // The reference's code is a byte (`as u8`): a NaN lane (0 times an infinite factor) takes the normal
    // path with a magnitude past 255, of which it keeps the low byte.
    let normal = vandq_u32(normal, vdupq_n_u32(0xFF));
    let mag = vbslq_u32(is_max, vdupq_n_u32(max_code), vbslq_u32(is_sub, sub, normal));
    let sign = right(bits, 31 - EBITS - MBITS);
    vorrq_u32(mag, vandq_u32(sign, vdupq_n_u32(1 << (EBITS + MBITS))))
}

/// The e2m1 codes of 4 already scaled lanes.
#[target_feature(enable = "neon")]
#[inline]
fn e2m1_codes(v: float32x4_t) -> uint32x4_t {
    minifloat_codes::<2, 1>(v)
}

/// 16 codes in byte order, two to a byte (8 bytes): the first in the low nibble or the high one.
#[target_feature(enable = "neon")]
#[inline]
fn pair_nibbles(codes: uint8x16_t, high_first: bool) -> uint8x8_t {
    let (even, odd) = (vuzp1q_u8(codes, codes), vuzp2q_u8(codes, codes));
    let pairs = if high_first { vorrq_u8(vshlq_n_u8::<4>(even), odd) } else { vorrq_u8(even, vshlq_n_u8::<4>(odd)) };
    vget_low_u8(pairs)
}

/// 8 bytes of nibble pairs as 16 codes in order: the high nibble first or the low one.
#[target_feature(enable = "neon")]
#[inline]
fn unpair(bytes: uint8x8_t, high_first: bool) -> [uint32x4_t; 4] {
    let (lo, hi) = (vand_u8(bytes, vdup_n_u8(15)), vshr_n_u8::<4>(bytes));
    let (first, second) = if high_first { (hi, lo) } else { (lo, hi) };
    widen(vcombine_u8(vzip1_u8(first, second), vzip2_u8(first, second)))
}

/// The largest magnitude of finite 4-lane vectors.
#[target_feature(enable = "neon")]
#[inline]
fn amax_of(v: &[float32x4_t]) -> f32 {
    f32::from_bits(vmaxvq_u32(v.iter().fold(vdupq_n_u32(0), |m, &v| vmaxq_u32(m, abs_bits(v)))))
}

/// MXFP8 with e4m3fn elements of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E4m3` (the block scale from its own function).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_mxfp8_e4m3(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<4, 3>(MxElement::E4m3, x, rule, scales, codes)
}

/// MXFP8 with e5m2 elements of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E5m2` (clamped to 57344, rounded half to even).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_mxfp8_e5m2(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    quantize_mxfp8::<5, 2>(MxElement::E5m2, x, rule, scales, codes)
}

/// MXFP8 of `element` (e4m3fn: `EBITS` 4, `MBITS` 3; e5m2: 5, 2): the
/// reference's f32 multiply by the block's factor, then [`minifloat_codes`].
#[target_feature(enable = "neon")]
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
        let c: [uint32x4_t; 8] = std::array::from_fn(|i| minifloat_codes::<EBITS, MBITS>(vmulq_n_f32(v[i], factor)));
        // SAFETY: `o` has 32 bytes.
        unsafe {
            vst1q_u8(o.as_mut_ptr(), bytes16(c[0], c[1], c[2], c[3]));
            vst1q_u8(o.as_mut_ptr().add(16), bytes16(c[4], c[5], c[6], c[7]));
        }
    }
}

/// MXFP8 back to f32, as `mx::dequantize` of e4m3fn (`SHIFT` 20) or e5m2
/// (21) elements: each element's exact value (`fp8_neon::values4`, the
/// plain cast's decoder, bit for bit `Minifloat::decode`) times the block's
/// `mx::e8m0_value`, the reference's one f32 multiply, NaN elements kept
/// as the reference keeps them under a NaN scale (see
/// `formats_avx512::dequantize_mxfp8`).
#[target_feature(enable = "neon")]
#[inline]
fn dequantize_mxfp8<const SHIFT: i32>(f: fp8::Format, scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<32>();
    let (outs, _) = out.as_chunks_mut::<32>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = vdupq_n_f32(mx::e8m0_value(s));
        // SAFETY: `b` has 32 bytes.
        let (lo, hi) = unsafe { (vld1q_u8(b.as_ptr()), vld1q_u8(b.as_ptr().add(16))) };
        let (a, c) = (widen(lo), widen(hi));
        let codes = [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3]];
        store(
            o,
            codes.map(|c| {
                // SAFETY: same features.
                let v = vreinterpretq_f32_u32(unsafe { fp8_neon::values4::<SHIFT>(f, c) });
                vbslq_f32(vceqq_f32(v, v), vmulq_f32(v, scale), v)
            }),
        );
    }
}

/// MXFP8 with e4m3fn elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_mxfp8_e4m3(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<20>(fp8::E4M3FN, scales, codes, out)
}

/// MXFP8 with e5m2 elements back to f32 (see [`dequantize_mxfp8`]).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_mxfp8_e5m2(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    dequantize_mxfp8::<21>(fp8::E5M2, scales, codes, out)
}

/// NF4 of whole blocks of `block` values (a multiple of 16), as
/// `nf4::quantize_blocks`: codes counted by 15 compares with the boundaries.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_nf4(x: &[f32], block: usize, absmax: &mut [f32], packed: &mut [u8]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::quantize_blocks(x, block, absmax, packed);
    }
    let bounds = crate::formats::nf4::code_boundaries();
    for ((b, a), p) in x.chunks_exact(block).zip(absmax.iter_mut()).zip(packed.chunks_exact_mut(block / 2)) {
        let (vs, _) = b.as_chunks::<16>();
        // SAFETY: each `v` holds 16 f32: four 4-lane loads.
        let load16 = |v: &[f32; 16]| -> [float32x4_t; 4] {
            std::array::from_fn(|i| unsafe { vld1q_f32(v.as_ptr().add(4 * i)) })
        };
        let am = f32::from_bits(vs.iter().fold(0u32, |m, v| m.max(amax_of(&load16(v)).to_bits())));
        *a = am;
        let r = crate::formats::nf4::reciprocal(am);
        let code = |v: float32x4_t| {
            let t = vminq_f32(vmaxq_f32(vmulq_n_f32(v, r), vdupq_n_f32(-1.0)), vdupq_n_f32(1.0));
            bounds.iter().fold(vdupq_n_u32(0), |c, &bound| vsubq_u32(c, vcltq_f32(vdupq_n_f32(bound), t)))
        };
        let (ps, _) = p.as_chunks_mut::<8>();
        for (v, o) in vs.iter().zip(ps) {
            let v = load16(v);
            let codes = bytes16(code(v[0]), code(v[1]), code(v[2]), code(v[3]));
            // SAFETY: `o` has 8 bytes.
            unsafe { vst1_u8(o.as_mut_ptr(), pair_nibbles(codes, true)) };
        }
    }
}

/// Whole NF4 blocks back to f32: `code[q] * absmax`, as `nf4::dequantize_blocks`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_nf4(packed: &[u8], absmax: &[f32], block: usize, out: &mut [f32]) {
    if !block.is_multiple_of(16) || block == 0 {
        return crate::formats::nf4::dequantize_blocks(packed, absmax, block, out);
    }
    let table = table16(&crate::formats::NF4_CODE);
    for ((o, p), &a) in out.chunks_exact_mut(block).zip(packed.chunks_exact(block / 2)).zip(absmax) {
        let (os, _) = o.as_chunks_mut::<16>();
        let (ps, _) = p.as_chunks::<8>();
        for (y, b) in os.iter_mut().zip(ps) {
            // SAFETY: `b` has 8 bytes.
            let c = unpair(unsafe { vld1_u8(b.as_ptr()) }, true);
            for (i, c) in c.into_iter().enumerate() {
                // SAFETY: `y` holds 16 f32, lanes 4i..4i+4.
                unsafe { vst1q_f32(y.as_mut_ptr().add(4 * i), vmulq_n_f32(lookup16(table, c), a)) };
            }
        }
    }
}

/// NVFP4 of whole 16-value blocks, as `nvfp4::quantize` (the block scale from `nvfp4::block_scale`).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_nvfp4(x: &[f32], tensor_scale: Option<f32>, scales: &mut [u8], codes: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<16>();
    let (outs, _) = codes.as_chunks_mut::<8>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        // SAFETY: `b` holds 16 f32: four 4-lane loads.
        let v: [float32x4_t; 4] = std::array::from_fn(|i| unsafe { vld1q_f32(b.as_ptr().add(4 * i)) });
        let factor;
        (*s, factor) = crate::formats::nvfp4::block_scale(amax_of(&v), tensor_scale);
        let c: [uint32x4_t; 4] = std::array::from_fn(|i| e2m1_codes(vmulq_n_f32(v[i], factor)));
        // SAFETY: `o` has 8 bytes.
        unsafe { vst1_u8(o.as_mut_ptr(), pair_nibbles(bytes16(c[0], c[1], c[2], c[3]), false)) };
    }
}

/// Whole NVFP4 blocks back to f32: `e2m1 * (t * s)`, as `nvfp4::dequantize`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_nvfp4(scales: &[u8], tensor_scale: Option<f32>, codes: &[u8], out: &mut [f32]) {
    let table = table16(&std::array::from_fn(|c| MxElement::E2m1.decode(c as u8)));
    let (blocks, _) = codes.as_chunks::<8>();
    let (outs, _) = out.as_chunks_mut::<16>();
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = crate::formats::nvfp4::dequantize_scale(s, tensor_scale);
        // SAFETY: `b` has 8 bytes.
        let c = unpair(unsafe { vld1_u8(b.as_ptr()) }, false);
        for (i, c) in c.into_iter().enumerate() {
            // SAFETY: `o` holds 16 f32, lanes 4i..4i+4.
            unsafe { vst1q_f32(o.as_mut_ptr().add(4 * i), vmulq_n_f32(lookup16(table, c), scale)) };
        }
    }
}

/// OCP MXFP4 (e2m1 elements) of whole 32-value blocks, as `mx::quantize`
/// with `MxElement::E2m1` (the block scale from its own function).
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_mxfp4(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    let (blocks, _) = x.as_chunks::<32>();
    let (outs, _) = codes.as_chunks_mut::<16>();
    for ((b, s), o) in blocks.iter().zip(scales.iter_mut()).zip(outs) {
        let v = load(b);
        let (biased, factor) = mx::block_scale(amax(&v), MxElement::E2m1, rule);
        *s = biased;
        let c: [uint32x4_t; 8] = std::array::from_fn(|i| e2m1_codes(vmulq_n_f32(v[i], factor)));
        let (first, second) = (bytes16(c[0], c[1], c[2], c[3]), bytes16(c[4], c[5], c[6], c[7]));
        // Codes 2i and 2i + 1 into byte i, the first in the low nibble.
        let (even, odd) = (vuzp1q_u8(first, second), vuzp2q_u8(first, second));
        // SAFETY: `o` has 16 bytes.
        unsafe { vst1q_u8(o.as_mut_ptr(), vorrq_u8(even, vshlq_n_u8::<4>(odd))) };
    }
}

/// OCP MXFP4 back to f32, as `mx::dequantize` with `MxElement::E2m1`.
///
/// # Safety
/// The CPU must have NEON (every AArch64 CPU does).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dequantize_mxfp4(scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let (blocks, _) = codes.as_chunks::<16>();
    let (outs, _) = out.as_chunks_mut::<32>();
    let table = table16(&std::array::from_fn(|c| MxElement::E2m1.decode(c as u8)));
    for ((b, &s), o) in blocks.iter().zip(scales).zip(outs) {
        let scale = vdupq_n_f32(mx::e8m0_value(s));
        // SAFETY: `b` has 16 bytes.
        let bytes = unsafe { vld1q_u8(b.as_ptr()) };
        let (even, odd) = (vandq_u8(bytes, vdupq_n_u8(15)), vshrq_n_u8::<4>(bytes));
        let (a, c) = (widen(vzip1q_u8(even, odd)), widen(vzip2q_u8(even, odd)));
        let codes = [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3]];
        store(o, codes.map(|c| vmulq_f32(lookup16(table, c), scale)));
    }
}

/// Whether every value of `x` is finite (`formats_kernels::all_finite_body`
/// compiled for this instruction set).
///
/// # Safety
/// The CPU must have the features of this file's kernels (checked by the caller's dispatch).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn all_finite(x: &[f32]) -> bool {
    crate::arch::formats_kernels::all_finite_body(x)
}
