//! NEON kernels, 4 f32 lanes per register, 16 values per step. Each one gives
//! the scalar reference's bits: the quantize formula runs in the same order
//! (true division `vdivq_f32`, round half to even `vrndnq_f32`, add, clamp)
//! with the same IEEE operations. NEON on AArch64 is full IEEE (no flushing
//! of subnormals unless FPCR.FZ is set, which Linux and macOS leave off).
//! f16 casts use `half`'s slice conversions, which use FEAT_FP16 when present.
//! Tails shorter than a block go to the scalar kernels.

use std::arch::aarch64::*;
use std::mem::MaybeUninit;

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

use super::super::scalar;
use crate::arch::{Affine, MinMax, clamp_never_acts, symmetric_groups};

simd_kernels! {
    name: "neon",
    min_max: min_max_neon,
    min_max_groups: min_max_groups_neon,
    quantize_pack4_symmetric: quantize_pack4_symmetric_neon,
    quantize_bytes: quantize_bytes_neon,
    quantize_pack4: quantize_pack4_neon,
    quantize_pack4_groups: quantize_pack4_groups_neon,
    dequantize: dequantize_neon,
    f32_to_bf16: f32_to_bf16_neon,
    bf16_to_f32: bf16_to_f32_neon,
    f32_to_f16: f32_to_f16_half,
    f16_to_f32: f16_to_f32_half,
    f32_to_e4m3fn: super::fp8_neon::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8_neon::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8_neon::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8_neon::e5m2_to_f32,
    quantize_variants: &[],
}

// f16: `half`'s slice conversions already use FEAT_FP16 when the CPU has it.
// They write into initialized slices, so the output is zeroed first.
fn f32_to_f16_half(x: &[f32], out: &mut [MaybeUninit<f16>]) {
    let n = x.len().min(out.len());
    let out = init_zeroed(&mut out[..n], f16::ZERO);
    out.convert_from_f32_slice(&x[..n]);
}

fn f16_to_f32_half(x: &[f16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let out = init_zeroed(&mut out[..n], 0.0);
    x[..n].convert_to_f32_slice(out);
}

/// Writes `zero` into every element and views them as initialized.
fn init_zeroed<T: Copy>(out: &mut [MaybeUninit<T>], zero: T) -> &mut [T] {
    for o in out.iter_mut() {
        o.write(zero);
    }
    // SAFETY: every element was just written; `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn min_max_groups_neon(x: &[f32], group: usize, out: &mut [MinMax]) {
    for (o, xs) in out.iter_mut().zip(x.chunks_exact(group.max(1))) {
        // SAFETY: same features.
        *o = unsafe { min_max_neon(xs) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_pack4_symmetric_neon(
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
    let max_abs = |xs: &[f32]| unsafe { max_abs_neon(xs) };
    // SAFETY: same features.
    let pack = |xs: &[f32], scale: f32, os: &mut [MaybeUninit<u8>]| unsafe {
        let (c, a) = (Consts { scale: vdupq_n_f32(scale), ..fixed }, Affine { scale, ..limits });
        if own_range { pack4_neon::<true>(xs, c, a, os) } else { pack4_neon::<false>(xs, c, a, os) }
    };
    symmetric_groups(x, group, limits, scales, out, max_abs, pack)
}

/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn max_abs_neon(x: &[f32]) -> f32 {
    // As `scalar::max_abs`: the largest bit pattern with the sign cleared.
    let chunks = x.chunks_exact(4);
    let tail = scalar::max_abs_bits(chunks.remainder());
    let mut m = vdupq_n_u32(0);
    for c in chunks {
        // SAFETY: `c` has 4 f32.
        let v = unsafe { vld1q_u32(c.as_ptr().cast()) };
        m = vmaxq_u32(m, vandq_u32(v, vdupq_n_u32(0x7FFF_FFFF)));
    }
    f32::from_bits(vmaxvq_u32(m).max(tail))
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_pack4_groups_neon(x: &[f32], group: usize, a: &[Affine], out: &mut [MaybeUninit<u8>]) {
    let group = group.max(2);
    for ((xs, os), &a) in x.chunks_exact(group).zip(out.chunks_exact_mut(group / 2)).zip(a) {
        // SAFETY: same features.
        unsafe { quantize_pack4_neon(xs, a, os) };
    }
}

/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn min_max_neon(x: &[f32]) -> MinMax {
    let (mut lo, mut hi) = (vdupq_n_f32(f32::INFINITY), vdupq_n_f32(f32::NEG_INFINITY));
    // `v - v` is +0.0 for finite v and NaN otherwise: OR-ing the bits leaves
    // zero exactly when all values were finite.
    let mut bad = vdupq_n_u32(0);
    let chunks = x.chunks_exact(4);
    let tail = scalar::min_max(chunks.remainder());
    for c in chunks {
        // SAFETY: `c` has 4 f32.
        let v = unsafe { vld1q_f32(c.as_ptr()) };
        // Select on a comparison, as the scalar fold does: false for NaN, so
        // NaN is skipped (vminq_f32 would propagate it, vminnmq_f32 treats
        // signalling NaN differently).
        lo = vbslq_f32(vcltq_f32(v, lo), v, lo);
        hi = vbslq_f32(vcgtq_f32(v, hi), v, hi);
        bad = vorrq_u32(bad, vreinterpretq_u32_f32(vsubq_f32(v, v)));
    }
    let finite = vmaxvq_u32(bad) == 0;
    let mut m = MinMax { min: tail.min, max: tail.max, finite: finite && tail.finite };
    // Lanes hold no NaN, so plain comparisons merge them in any order.
    let (l, h) = (vminvq_f32(lo), vmaxvq_f32(hi));
    if l < m.min {
        m.min = l;
    }
    if h > m.max {
        m.max = h;
    }
    scalar::canonical(m)
}

/// Broadcast quantization parameters.
#[derive(Clone, Copy)]
struct Consts {
    scale: float32x4_t,
    zero: float32x4_t,
    qmin: float32x4_t,
    qmax: float32x4_t,
}

#[target_feature(enable = "neon")]
fn consts(a: Affine) -> Consts {
    Consts {
        scale: vdupq_n_f32(a.scale),
        zero: vdupq_n_f32(a.zero_point as f32),
        qmin: vdupq_n_f32(a.qmin as f32),
        qmax: vdupq_n_f32(a.qmax as f32),
    }
}

/// Four codes as i32, as `scalar::quantize_one` computes them.
#[inline]
#[target_feature(enable = "neon")]
fn codes(v: float32x4_t, c: Consts) -> int32x4_t {
    let t = vaddq_f32(vrndnq_f32(vdivq_f32(v, c.scale)), c.zero);
    // FMAX/FMIN propagate NaN, and FCVTZS turns NaN into 0, as Rust's
    // `NaN as i32` does; the value is integral, so truncation is exact.
    vcvtq_s32_f32(vminq_f32(vmaxq_f32(t, c.qmin), c.qmax))
}

/// Sixteen codes as bytes, in order (the narrows truncate: codes fit a byte).
/// `bad` collects the bits of `v - v` of every input (see `min_max_neon`) to
/// tell non-finite input. With `OWN_RANGE` (zero point 0, and a scale its
/// caller chose from these values' largest magnitude: see
/// `arch::clamp_never_acts` for why the clamp then never acts), a
/// code is one FCVTNS of the quotient, which rounds half to even.
#[inline]
#[target_feature(enable = "neon")]
fn codes16<const OWN_RANGE: bool>(p: &[f32; 16], c: Consts, bad: &mut uint32x4_t) -> uint8x16_t {
    let mut v = |i: usize| {
        let lanes: &[f32; 4] = p[i..i + 4].try_into().expect("4 of the 16 values");
        // SAFETY: `lanes` holds 4 f32.
        let v = unsafe { vld1q_f32(lanes.as_ptr()) };
        *bad = vorrq_u32(*bad, vreinterpretq_u32_f32(vsubq_f32(v, v)));
        if OWN_RANGE { vcvtnq_s32_f32(vdivq_f32(v, c.scale)) } else { codes(v, c) }
    };
    let lo = vcombine_s16(vmovn_s32(v(0)), vmovn_s32(v(4)));
    let hi = vcombine_s16(vmovn_s32(v(8)), vmovn_s32(v(12)));
    vreinterpretq_u8_s8(vcombine_s8(vmovn_s16(lo), vmovn_s16(hi)))
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_bytes_neon(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) -> bool {
    let n = x.len().min(out.len());
    let c = consts(a);
    let mut bad = vdupq_n_u32(0);
    let body = n / 16 * 16;
    // (`as_chunks` would say it without `try_into`, but Debian's Rust for
    // the qemu tests, 1.85, predates it.)
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        let xs: &[f32; 16] = xs.try_into().expect("chunks of 16");
        // SAFETY: `os` has 16 bytes.
        unsafe { vst1q_u8(os.as_mut_ptr().cast(), codes16::<false>(xs, c, &mut bad)) };
    }
    let mut finite = vmaxvq_u32(bad) == 0;
    for (o, &v) in out[body..n].iter_mut().zip(&x[body..n]) {
        finite &= v.is_finite();
        o.write(scalar::quantize_one(v, a) as u8);
    }
    finite
}

/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn quantize_pack4_neon(x: &[f32], a: Affine, out: &mut [MaybeUninit<u8>]) {
    // SAFETY: same features.
    unsafe { pack4_neon::<false>(x, consts(a), a, out) }
}

/// [`quantize_pack4_neon`] with the parameters already broadcast (`c` is `consts(a)`).
///
/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn pack4_neon<const OWN_RANGE: bool>(x: &[f32], c: Consts, a: Affine, out: &mut [MaybeUninit<u8>]) {
    let n = x.len().min(2 * out.len());
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out.chunks_exact_mut(8)) {
        let xs: &[f32; 16] = xs.try_into().expect("chunks of 16");
        // As 16-bit lanes each holds (even code, odd code << 8): keep the even
        // one's low nibble, move the odd one's next to it, narrow to bytes.
        let w = vreinterpretq_u16_u8(codes16::<OWN_RANGE>(xs, c, &mut vdupq_n_u32(0)));
        let packed = vorrq_u16(vandq_u16(w, vdupq_n_u16(0x000F)), vandq_u16(vshrq_n_u16::<4>(w), vdupq_n_u16(0x00F0)));
        // SAFETY: `os` has 8 bytes.
        unsafe { vst1_u8(os.as_mut_ptr().cast(), vmovn_u16(packed)) };
    }
    if body < n {
        scalar::pack4_into(&x[body..n], a, &mut out[body / 2..]);
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn dequantize_neon<const SIGNED: bool>(q: &[u8], scale: f32, zero_point: i32, out: &mut [MaybeUninit<f32>]) {
    let n = q.len().min(out.len());
    let (s, z) = (vdupq_n_f32(scale), vdupq_n_s32(zero_point));
    let body = n / 8 * 8;
    for (qs, os) in q[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `qs` has 8 bytes, `os` 8 f32.
        unsafe {
            let b = vld1_u8(qs.as_ptr());
            let wide = if SIGNED { vmovl_s8(vreinterpret_s8_u8(b)) } else { vreinterpretq_s16_u16(vmovl_u8(b)) };
            // (q - z) in i32, exactly converted, then one rounding in the multiply.
            let f = |w: int32x4_t| vmulq_f32(s, vcvtq_f32_s32(vsubq_s32(w, z)));
            vst1q_f32(os.as_mut_ptr().cast(), f(vmovl_s16(vget_low_s16(wide))));
            vst1q_f32(os.as_mut_ptr().add(4).cast(), f(vmovl_high_s16(wide)));
        }
    }
    for (o, &v) in out[body..n].iter_mut().zip(&q[body..n]) {
        let v = if SIGNED { i32::from(v as i8) } else { i32::from(v) };
        o.write(scalar::dequantize_one(v, scale, zero_point));
    }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn f32_to_bf16_neon(x: &[f32], out: &mut [MaybeUninit<bf16>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    let bf = |p: &[f32; 4]| {
        // SAFETY: `p` holds 4 f32.
        let v = unsafe { vld1q_u32(p.as_ptr().cast()) };
        // half's rule: NaN keeps its top bits and gets the quiet bit; every
        // other value rounds to nearest even by adding 0x7FFF plus the lowest kept bit.
        let nan = vcgtq_u32(vandq_u32(v, vdupq_n_u32(0x7FFF_FFFF)), vdupq_n_u32(0x7F80_0000));
        let lsb = vandq_u32(vshrq_n_u32::<16>(v), vdupq_n_u32(1));
        let rounded = vshrq_n_u32::<16>(vaddq_u32(vaddq_u32(v, vdupq_n_u32(0x7FFF)), lsb));
        let quiet = vorrq_u32(vshrq_n_u32::<16>(v), vdupq_n_u32(0x0040));
        vmovn_u32(vbslq_u32(nan, quiet, rounded))
    };
    for (xs, os) in x[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        let (lo, hi): (&[f32; 4], &[f32; 4]) =
            (xs[..4].try_into().expect("4 of 8"), xs[4..].try_into().expect("4 of 8"));
        // SAFETY: `os` has 8 bf16.
        unsafe { vst1q_u16(os.as_mut_ptr().cast(), vcombine_u16(bf(lo), bf(hi))) };
    }
    scalar::f32_to_bf16(&x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn bf16_to_f32_neon(x: &[bf16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 8 * 8;
    for (xs, os) in x[..body].chunks_exact(8).zip(out[..body].chunks_exact_mut(8)) {
        // SAFETY: `xs` has 8 bf16, `os` 8 f32.
        unsafe {
            let h = vld1q_u16(xs.as_ptr().cast());
            // NaN gets the quiet bit, as half's `to_f32` does.
            let nan = vcgtq_u16(vandq_u16(h, vdupq_n_u16(0x7FFF)), vdupq_n_u16(0x7F80));
            let h = vorrq_u16(h, vandq_u16(nan, vdupq_n_u16(0x0040)));
            vst1q_u32(os.as_mut_ptr().cast(), vshll_n_u16::<16>(vget_low_u16(h)));
            vst1q_u32(os.as_mut_ptr().add(4).cast(), vshll_high_n_u16::<16>(h));
        }
    }
    scalar::bf16_to_f32(&x[body..n], &mut out[body..n]);
}
