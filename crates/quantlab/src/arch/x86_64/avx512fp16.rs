//! AVX-512 with AVX512-FP16 and AVX512-BF16 (Intel Sapphire Rapids on): the
//! `avx512bf16` kernels, with the f16 casts by AVX512-FP16's `vcvtps2phx`
//! and `vcvtph2psx`. Both round to nearest even (the MXCSR default, which
//! Rust leaves alone) and quiet NaN keeping its top payload bits, as `half`
//! does; subnormals are kept (MXCSR's DAZ and FTZ stay off).
//!
//! Measured on a Sapphire/Emerald Rapids Xeon (KVM, 2^16 values in cache):
//! no faster than AVX-512F's `vcvtps2ph`/`vcvtph2ps` (f32 -> f16 13.9 vs
//! 13.5-13.9 G/s, f16 -> f32 10.2-11.5 vs 10.2-10.6, within the noise); both
//! run at the L2 limit (copy: 10.5 G f32/s). The table stays so that the
//! forms are chosen, tested and measurable where a CPU differs.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use half::f16;

use super::avx512::{self, QUANTIZE_VARIANTS, dequantize_avx512};
use super::avx512bf16;

simd_kernels! {
    name: "avx512fp16",
    min_max: avx512::min_max_avx512,
    min_max_groups: avx512::min_max_groups_avx512,
    quantize_pack4_symmetric: avx512::quantize_pack4_symmetric_avx512,
    quantize_bytes: avx512::quantize_bytes_chosen,
    quantize_pack4: avx512::quantize_pack4_avx512,
    quantize_pack4_groups: avx512::quantize_pack4_groups_avx512,
    dequantize: dequantize_avx512,
    f32_to_bf16: avx512bf16::f32_to_bf16_avx512bf16,
    bf16_to_f32: avx512::bf16_to_f32_avx512,
    f32_to_f16: f32_to_f16_avx512fp16,
    f16_to_f32: f16_to_f32_avx512fp16,
    f32_to_e4m3fn: super::fp8_avx512::f32_to_e4m3fn,
    f32_to_e5m2: super::fp8_avx512::f32_to_e5m2,
    e4m3fn_to_f32: super::fp8_avx512::e4m3fn_to_f32,
    e5m2_to_f32: super::fp8_avx512::e5m2_to_f32,
    quantize_variants: &QUANTIZE_VARIANTS,
}

/// # Safety
/// The CPU must have AVX-512F, BW and FP16, and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512fp16,f16c")]
unsafe fn f32_to_f16_avx512fp16(x: &[f32], out: &mut [MaybeUninit<f16>]) {
    let n = x.len().min(out.len());
    let far = n >= avx512::STREAM_MIN;
    let body = n / 16 * 16;
    let (xs, _) = x[..body].as_chunks::<16>();
    let (os, _) = out[..body].as_chunks_mut::<16>();
    for (x16, o16) in xs.iter().zip(os) {
        if far {
            // Ahead of the hardware prefetcher: see `avx512::PREFETCH`.
            _mm_prefetch::<_MM_HINT_T0>(x16.as_ptr().wrapping_add(avx512::PREFETCH).cast());
        }
        // SAFETY: `x16` holds 16 f32 and `o16` room for 16 f16; unaligned
        // loads and stores are allowed.
        unsafe {
            let h = _mm512_cvtxps_ph(_mm512_loadu_ps(x16.as_ptr()));
            _mm256_storeu_si256(o16.as_mut_ptr().cast(), _mm256_castph_si256(h));
        }
    }
    // SAFETY: same features (the `avx512` kernel needs fewer).
    unsafe { avx512::f32_to_f16_avx512(&x[body..n], &mut out[body..n]) };
}

/// # Safety
/// The CPU must have AVX-512F, BW and FP16, and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512fp16,f16c")]
unsafe fn f16_to_f32_avx512fp16(x: &[f16], out: &mut [MaybeUninit<f32>]) {
    let n = x.len().min(out.len());
    let body = n / 16 * 16;
    let (xs, _) = x[..body].as_chunks::<16>();
    let (os, _) = out[..body].as_chunks_mut::<16>();
    for (x16, o16) in xs.iter().zip(os) {
        // SAFETY: `x16` holds 16 f16 and `o16` room for 16 f32.
        unsafe {
            let h = _mm256_castsi256_ph(_mm256_loadu_si256(x16.as_ptr().cast()));
            _mm512_storeu_ps(o16.as_mut_ptr().cast(), _mm512_cvtxph_ps(h));
        }
    }
    // SAFETY: same features.
    unsafe { avx512::f16_to_f32_avx512(&x[body..n], &mut out[body..n]) };
}
