//! NEON float8_e4m3fn / float8_e5m2 casts, 16 values per step in four
//! registers: the formulas of `arch::fp8` with bit selects, narrowed by
//! `vmovn`. NEON is full IEEE here (FPCR.FZ off), so the subnormal magic
//! add and the decode's multiply are exact as on x86. A block holding a
//! value that needs an overflow policy goes to the scalar form, which stops
//! there (see `arch::fp8::encode`). Tails go to the scalar form.

use std::arch::aarch64::*;
use std::mem::MaybeUninit;

use crate::arch::fp8::{self, E4M3FN, E5M2, Format, INFINITY, QUIET_NAN};

/// The codes of 4 ordinary lanes, in the low byte of each 32-bit lane.
///
/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn codes4<const SHIFT: i32>(f: Format, v: uint32x4_t) -> uint32x4_t {
    let a = vandq_u32(v, vdupq_n_u32(0x7FFF_FFFF));
    let magic = vdupq_n_u32(f.magic);
    let sub = vcltq_u32(a, vdupq_n_u32(f.min_normal));
    let s = vsubq_u32(vreinterpretq_u32_f32(vaddq_f32(vreinterpretq_f32_u32(a), vreinterpretq_f32_u32(magic))), magic);
    let odd = vandq_u32(vshrq_n_u32::<SHIFT>(a), vdupq_n_u32(1));
    let normal = vshrq_n_u32::<SHIFT>(vaddq_u32(vaddq_u32(a, vdupq_n_u32(f.offset)), odd));
    let code = vbslq_u32(sub, s, normal);
    vorrq_u32(code, vandq_u32(vshrq_n_u32::<24>(v), vdupq_n_u32(0x80)))
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn encode<const SHIFT: i32>(f: Format, x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    // (`as_chunks` would say it without `try_into`, but Debian's Rust for
    // aarch64, which the qemu tests build with, may not have it.)
    for (b, (xs, os)) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)).enumerate() {
        // SAFETY: `xs` holds 16 f32.
        let v = unsafe { vld1q_u32_x4(xs.as_ptr().cast()) };
        let abs = vdupq_n_u32(0x7FFF_FFFF);
        let top = vmaxq_u32(
            vmaxq_u32(vandq_u32(v.0, abs), vandq_u32(v.1, abs)),
            vmaxq_u32(vandq_u32(v.2, abs), vandq_u32(v.3, abs)),
        );
        if vmaxvq_u32(top) >= f.special {
            return b * 16 + fp8::special_block(f, xs, os);
        }
        // SAFETY: same features.
        let (c0, c1, c2, c3) = unsafe {
            (codes4::<SHIFT>(f, v.0), codes4::<SHIFT>(f, v.1), codes4::<SHIFT>(f, v.2), codes4::<SHIFT>(f, v.3))
        };
        let lo = vcombine_u16(vmovn_u32(c0), vmovn_u32(c1));
        let hi = vcombine_u16(vmovn_u32(c2), vmovn_u32(c3));
        // SAFETY: `os` has room for 16 bytes.
        unsafe { vst1q_u8(os.as_mut_ptr().cast(), vcombine_u8(vmovn_u16(lo), vmovn_u16(hi))) };
    }
    body + fp8::encode_scalar(f, &x[body..n], &mut out[body..n])
}

/// The f32 bits of 4 codes (one per 32-bit lane, below 256), as
/// `fp8::decode_lane` gives them (exact). Also the MXFP8 dequantize's element values.
///
/// # Safety
/// The CPU must have NEON.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn values4<const SHIFT: i32>(f: Format, c: uint32x4_t) -> uint32x4_t {
    let mag = vandq_u32(c, vdupq_n_u32(0x7F));
    let scale = vreinterpretq_f32_u32(vdupq_n_u32(f.scale));
    let v = vreinterpretq_u32_f32(vmulq_f32(vreinterpretq_f32_u32(vshlq_n_u32::<SHIFT>(mag)), scale));
    let v = vbslq_u32(vceqq_u32(mag, vdupq_n_u32(f.inf)), vdupq_n_u32(INFINITY), v);
    let v = vbslq_u32(vcgeq_u32(mag, vdupq_n_u32(f.nan)), vdupq_n_u32(QUIET_NAN), v);
    vorrq_u32(v, vshlq_n_u32::<24>(vandq_u32(c, vdupq_n_u32(0x80))))
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
unsafe fn decode<const SHIFT: i32>(f: Format, x: &[u8], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    for (xs, os) in x[..body].chunks_exact(16).zip(out[..body].chunks_exact_mut(16)) {
        // SAFETY: `xs` holds 16 bytes.
        let c = unsafe { vld1q_u8(xs.as_ptr()) };
        let (lo, hi) = (vmovl_u8(vget_low_u8(c)), vmovl_high_u8(c));
        // SAFETY: same features.
        let v = unsafe {
            uint32x4x4_t(
                values4::<SHIFT>(f, vmovl_u16(vget_low_u16(lo))),
                values4::<SHIFT>(f, vmovl_high_u16(lo)),
                values4::<SHIFT>(f, vmovl_u16(vget_low_u16(hi))),
                values4::<SHIFT>(f, vmovl_high_u16(hi)),
            )
        };
        // SAFETY: `os` has room for 16 f32.
        unsafe { vst1q_u32_x4(os.as_mut_ptr().cast(), v) };
    }
    fp8::decode_scalar(f, &x[body..n], &mut out[body..n]);
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f32_to_e4m3fn(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f32_to_e5m2(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    // SAFETY: same features.
    unsafe { encode::<21>(E5M2, x, out) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn e4m3fn_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<20>(E4M3FN, x, out) }
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn e5m2_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    // SAFETY: same features.
    unsafe { decode::<21>(E5M2, x, out) }
}
