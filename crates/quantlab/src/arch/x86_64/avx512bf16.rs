//! AVX-512 with AVX512-BF16 (Intel Cooper Lake and Sapphire Rapids on, AMD
//! Zen 4 on): the `avx512` kernels, with f32 to bf16 by the hardware
//! conversion `vcvtne2ps2bf16` (32 values per instruction).
//!
//! That instruction rounds to nearest even and quiets NaN keeping its top
//! payload bits, as `half` does, but it treats subnormal inputs as zero
//! (`half` rounds them: 0x0001_16C2 becomes 0x0001, not 0x0000). So a block
//! of 32 holding a subnormal goes the integer way (`avx512`'s kernel): one
//! `vfpclassps` per vector tells. Normal inputs never give subnormal
//! results (bf16 has f32's exponent range), so nothing else differs.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use half::bf16;

use super::avx512::{self, QUANTIZE_VARIANTS, dequantize_avx512};

simd_kernels! {
    name: "avx512bf16",
    min_max: avx512::min_max_avx512,
    min_max_groups: avx512::min_max_groups_avx512,
    quantize_pack4_symmetric: avx512::quantize_pack4_symmetric_avx512,
    quantize_bytes: avx512::quantize_bytes_chosen,
    quantize_pack4: avx512::quantize_pack4_avx512,
    quantize_pack4_groups: avx512::quantize_pack4_groups_avx512,
    dequantize: dequantize_avx512,
    f32_to_bf16: f32_to_bf16_avx512bf16,
    bf16_to_f32: avx512::bf16_to_f32_avx512,
    f32_to_f16: avx512::f32_to_f16_avx512,
    f16_to_f32: avx512::f16_to_f32_avx512,
    f32_to_e4m3fn: super::fp8_avx512::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8_avx512::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8_avx512::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8_avx512::e5m2_to_f32,
    quantize_variants: &QUANTIZE_VARIANTS,
}

/// `vfpclassps` category bit for subnormal (denormal) values, either sign.
pub(crate) const SUBNORMAL: i32 = 0x20;

/// # Safety
/// The CPU must have AVX-512F, BW, DQ and BF16.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512bf16")]
pub(crate) unsafe fn f32_to_bf16_avx512bf16(x: &[f32], out: &mut [MaybeUninit<bf16>]) {
    let n = x.len().min(out.len());
    let far = n >= avx512::STREAM_MIN;
    let body = n / 32 * 32;
    let (xs, _) = x[..body].as_chunks::<32>();
    let (os, _) = out[..body].as_chunks_mut::<32>();
    for (x32, o32) in xs.iter().zip(os) {
        if far {
            // Ahead of the hardware prefetcher: see `avx512::PREFETCH`.
            for line in [0, 16] {
                _mm_prefetch::<_MM_HINT_T0>(x32.as_ptr().wrapping_add(avx512::PREFETCH + line).cast());
            }
        }
        // SAFETY: `x32` holds 32 f32 (two vectors); unaligned loads are allowed.
        let (a, b) = unsafe { (_mm512_loadu_ps(x32.as_ptr()), _mm512_loadu_ps(x32.as_ptr().add(16))) };
        if _mm512_fpclass_ps_mask::<SUBNORMAL>(a) | _mm512_fpclass_ps_mask::<SUBNORMAL>(b) != 0 {
            // SAFETY: same features (the `avx512` kernel needs fewer).
            unsafe { avx512::f32_to_bf16_avx512(x32, o32) };
            continue;
        }
        // The first 16 results from `a` in the low half.
        let r = _mm512_cvtne2ps_pbh(b, a);
        // SAFETY: `o32` has room for 32 bf16; unaligned stores are allowed;
        // `__m512bh` and `__m512i` are both 64 bytes of plain bits.
        unsafe { _mm512_storeu_si512(o32.as_mut_ptr().cast(), std::mem::transmute::<__m512bh, __m512i>(r)) };
    }
    // SAFETY: same features.
    unsafe { avx512::f32_to_bf16_avx512(&x[body..n], &mut out[body..n]) };
}
