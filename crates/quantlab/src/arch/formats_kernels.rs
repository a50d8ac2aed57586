//! The block formats' kernels: one table per instruction set, chosen with the
//! crate's kernel path ([`super::kernel`]), so a format kernel runs only when
//! the path it belongs to was detected (and not forced off with
//! `QUANTLAB_KERNEL`). Every kernel is bit-identical with the format's scalar
//! reference (tests/formats_kernels.rs runs every table on the same inputs).
//!
//! The kernels work on whole blocks (`as_chunks`), stop at the shorter of
//! input and output, and expect finite inputs (quantizing refuses NaN and
//! infinities before calling them, or, for the MX kernels, by what they
//! return); given others they write some bytes but neither panic nor read
//! or write out of bounds.

use crate::formats::mx::ScaleRule;
use crate::formats::{ggml, mx, nf4, nvfp4};

/// `quantize(x, out)`: whole blocks of `x` into their packed bytes.
pub type QuantizeBlocks = fn(&[f32], &mut [u8]);
/// `dequantize(q, out)`: whole packed blocks back into f32.
pub type DequantizeBlocks = fn(&[u8], &mut [f32]);
/// `quantize(x, rule, scales, codes)`: MX blocks, one scale byte a block
/// apart from the codes; returns whether every value of `x` was finite (if
/// not, the bytes written mean nothing). The check is the kernel's, so a
/// kernel can fold it into its block maxima and read `x` once.
pub type QuantizeMx = fn(&[f32], ScaleRule, &mut [u8], &mut [u8]) -> bool;
/// `dequantize(scales, codes, out)`: MX blocks back into f32.
pub type DequantizeMx = fn(&[u8], &[u8], &mut [f32]);

/// `quantize(x, block, absmax, packed)`: NF4 of whole blocks of `block` values.
pub type QuantizeNf4 = fn(&[f32], usize, &mut [f32], &mut [u8]);
/// `dequantize(packed, absmax, block, out)`: whole NF4 blocks back into f32.
pub type DequantizeNf4 = fn(&[u8], &[f32], usize, &mut [f32]);

/// `quantize(x, tensor_scale, scales, codes)`: NVFP4 of whole blocks of 16.
pub type QuantizeNvfp4 = fn(&[f32], Option<f32>, &mut [u8], &mut [u8]);
/// `dequantize(scales, tensor_scale, codes, out)`: whole NVFP4 blocks back into f32.
pub type DequantizeNvfp4 = fn(&[u8], Option<f32>, &[u8], &mut [f32]);

/// One instruction set's block-format kernels.
///
/// Internal: public (and hidden) only so tests and benchmarks can drive each table.
#[doc(hidden)]
pub struct FormatKernels {
    /// The kernel path this table belongs to (`"scalar"`, `"avx2"`, `"avx512"`, `"neon"`).
    pub name: &'static str,
    /// gguf-py 0.19 Q8_0 (34 bytes a block).
    pub quantize_q8_0: QuantizeBlocks,
    /// Q8_0 back to f32.
    pub dequantize_q8_0: DequantizeBlocks,
    /// gguf-py 0.19 Q4_0 (18 bytes a block).
    pub quantize_q4_0: QuantizeBlocks,
    /// Q4_0 back to f32.
    pub dequantize_q4_0: DequantizeBlocks,
    /// gguf-py 0.19 MXFP4 (17 bytes a block, ties toward zero).
    pub quantize_gguf_mxfp4: QuantizeBlocks,
    /// GGUF's MXFP4 back to f32.
    pub dequantize_gguf_mxfp4: DequantizeBlocks,
    /// torchao 0.18 `to_mx` MXFP4 (e2m1 codes two a byte, e8m0 scales apart).
    pub quantize_mxfp4: QuantizeMx,
    /// torchao 0.18 `to_dtype` of MXFP4.
    pub dequantize_mxfp4: DequantizeMx,
    /// torchao 0.18 `to_mx` MXFP8 with e4m3fn elements (one byte a code; the
    /// scalar reference on paths without a kernel of their own).
    pub quantize_mxfp8_e4m3: QuantizeMx,
    /// torchao 0.18 `to_mx` MXFP8 with e5m2 elements (one byte a code).
    pub quantize_mxfp8_e5m2: QuantizeMx,
    /// torchao 0.18 `to_dtype` of MXFP8 with e4m3fn elements.
    pub dequantize_mxfp8_e4m3: DequantizeMx,
    /// torchao 0.18 `to_dtype` of MXFP8 with e5m2 elements.
    pub dequantize_mxfp8_e5m2: DequantizeMx,
    /// bitsandbytes 0.50 CPU `quantize_4bit` NF4, whole blocks (the scalar
    /// reference on paths without a kernel of their own).
    pub quantize_nf4: QuantizeNf4,
    /// bitsandbytes 0.50 CPU `dequantize_4bit` NF4, whole blocks.
    pub dequantize_nf4: DequantizeNf4,
    /// torchao 0.18 `nvfp4_quantize` (the scalar reference on paths without a kernel of their own).
    pub quantize_nvfp4: QuantizeNvfp4,
    /// torchao 0.18 `NVFP4Tensor.dequantize`.
    pub dequantize_nvfp4: DequantizeNvfp4,
    /// Whether every value is finite: the check quantizing makes first.
    pub all_finite: fn(&[f32]) -> bool,
}

/// Whether every value of `x` is finite, as one OR over all of them (no
/// early exit, so the compiler vectorizes it at the width it compiles
/// for): an exponent of all ones, plus one at its lowest bit, carries into
/// the sign bit, which no other exponent reaches.
#[inline(always)]
pub(crate) fn all_finite_body(x: &[f32]) -> bool {
    x.iter().fold(0u32, |a, v| a | ((v.to_bits() & 0x7f80_0000) + 0x0080_0000)) & 0x8000_0000 == 0
}

/// The scalar references.
static SCALAR: FormatKernels = FormatKernels {
    name: "scalar",
    quantize_q8_0: ggml::quantize_q8_0,
    dequantize_q8_0: ggml::dequantize_q8_0,
    quantize_q4_0: ggml::quantize_q4_0,
    dequantize_q4_0: ggml::dequantize_q4_0,
    quantize_gguf_mxfp4: ggml::quantize_mxfp4,
    dequantize_gguf_mxfp4: ggml::dequantize_mxfp4,
    quantize_mxfp4: mxfp4_scalar,
    dequantize_mxfp4: |scales, codes, out| mx::dequantize(mx::MxElement::E2m1, scales, codes, out),
    quantize_mxfp8_e4m3: mxfp8_e4m3_scalar,
    quantize_mxfp8_e5m2: mxfp8_e5m2_scalar,
    dequantize_mxfp8_e4m3: |scales, codes, out| mx::dequantize(mx::MxElement::E4m3, scales, codes, out),
    dequantize_mxfp8_e5m2: |scales, codes, out| mx::dequantize(mx::MxElement::E5m2, scales, codes, out),
    quantize_nf4: nf4::quantize_blocks,
    dequantize_nf4: nf4::dequantize_blocks,
    quantize_nvfp4: nvfp4::quantize,
    dequantize_nvfp4: nvfp4::dequantize,
    all_finite: all_finite_body,
};

fn mxfp4_scalar(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) -> bool {
    checked(all_finite_body, x, scales, codes, 16, |x, s, c| mx::quantize(x, mx::MxElement::E2m1, rule, s, c))
}

fn mxfp8_e4m3_scalar(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) -> bool {
    checked(all_finite_body, x, scales, codes, 32, |x, s, c| mx::quantize(x, mx::MxElement::E4m3, rule, s, c))
}

fn mxfp8_e5m2_scalar(x: &[f32], rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) -> bool {
    checked(all_finite_body, x, scales, codes, 32, |x, s, c| mx::quantize(x, mx::MxElement::E5m2, rule, s, c))
}

/// Values an MX kernel that does not check finiteness itself is given at a
/// time, each step checked just before it is quantized, while it is still
/// in cache (32 KiB of f32, a multiple of the 32-value block).
const CHECK_STEP: usize = 8192;

/// An MX kernel that does not check finiteness itself (`quantize(x, scales,
/// codes)`, `block_bytes` code bytes per 32 values), with the table's own
/// check a step at a time: one pass over memory, not two. Stops at the
/// first step with a NaN or infinity.
#[inline(always)]
fn checked(
    all_finite: impl Fn(&[f32]) -> bool,
    x: &[f32],
    scales: &mut [u8],
    codes: &mut [u8],
    block_bytes: usize,
    mut quantize: impl FnMut(&[f32], &mut [u8], &mut [u8]),
) -> bool {
    let steps = x
        .chunks(CHECK_STEP)
        .zip(scales.chunks_mut(CHECK_STEP / 32))
        .zip(codes.chunks_mut(CHECK_STEP / 32 * block_bytes));
    for ((x, s), c) in steps {
        if !all_finite(x) {
            return false;
        }
        quantize(x, s, c);
    }
    true
}

/// Declares a table whose every entry is one `#[target_feature]` kernel of `$m`.
///
/// Soundness of every generated call: [`tables`] hands a table out only when
/// the kernel path of the same name is available, i.e. after detecting the
/// features that path's kernels (and these) are compiled for.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! format_table {
    ($name:literal, $m:path) => {{
        use $m as k;
        FormatKernels {
            name: $name,
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_q8_0: |x, out| unsafe { k::quantize_q8_0(x, out) },
            // SAFETY: as above.
            dequantize_q8_0: |q, out| unsafe { k::dequantize_q8_0(q, out) },
            // SAFETY: as above.
            quantize_q4_0: |x, out| unsafe { k::quantize_q4_0(x, out) },
            // SAFETY: as above.
            dequantize_q4_0: |q, out| unsafe { k::dequantize_q4_0(q, out) },
            // SAFETY: as above.
            quantize_gguf_mxfp4: |x, out| unsafe { k::quantize_gguf_mxfp4(x, out) },
            // SAFETY: as above.
            dequantize_gguf_mxfp4: |q, out| unsafe { k::dequantize_gguf_mxfp4(q, out) },
            // SAFETY: as above.
            dequantize_mxfp4: |s, c, out| unsafe { k::dequantize_mxfp4(s, c, out) },
            // The MX quantize entries: each table sets its own (they differ in how they check finiteness).
            quantize_mxfp4: mxfp4_scalar,
            quantize_mxfp8_e4m3: mxfp8_e4m3_scalar,
            quantize_mxfp8_e5m2: mxfp8_e5m2_scalar,
            // SAFETY: as above.
            dequantize_mxfp8_e4m3: |s, c, out| unsafe { k::dequantize_mxfp8_e4m3(s, c, out) },
            // SAFETY: as above.
            dequantize_mxfp8_e5m2: |s, c, out| unsafe { k::dequantize_mxfp8_e5m2(s, c, out) },
            quantize_nf4: nf4::quantize_blocks,
            dequantize_nf4: nf4::dequantize_blocks,
            quantize_nvfp4: nvfp4::quantize,
            dequantize_nvfp4: nvfp4::dequantize,
            // SAFETY: as above.
            all_finite: |x| unsafe { k::all_finite(x) },
        }
    }};
}

/// AVX-512 (F, BW, VL) with F16C: the `avx512` path and the ones built on it.
#[cfg(target_arch = "x86_64")]
static AVX512: FormatKernels = FormatKernels {
    // SAFETY: as in `format_table!`: handed out only where the avx512 path was
    // detected. This kernel checks finiteness in its block maxima.
    quantize_mxfp4: |x, rule, s, c| unsafe { super::x86_64::formats_avx512::quantize_mxfp4(x, rule, s, c) },
    // SAFETY: as in `format_table!`: handed out only where the avx512 path was detected.
    quantize_mxfp8_e4m3: |x, rule, s, c| unsafe {
        checked(
            |x| super::x86_64::formats_avx512::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::x86_64::formats_avx512::quantize_mxfp8_e4m3(x, rule, s, c),
        )
    },
    // SAFETY: as above.
    quantize_mxfp8_e5m2: |x, rule, s, c| unsafe {
        checked(
            |x| super::x86_64::formats_avx512::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::x86_64::formats_avx512::quantize_mxfp8_e5m2(x, rule, s, c),
        )
    },
    // SAFETY: as in `format_table!`: handed out only where the avx512 path was detected.
    quantize_nf4: |x, block, a, p| unsafe { super::x86_64::formats_avx512::quantize_nf4(x, block, a, p) },
    // SAFETY: as above.
    dequantize_nf4: |p, a, block, out| unsafe { super::x86_64::formats_avx512::dequantize_nf4(p, a, block, out) },
    // SAFETY: as above.
    quantize_nvfp4: |x, t, s, c| unsafe { super::x86_64::formats_avx512::quantize_nvfp4(x, t, s, c) },
    // SAFETY: as above.
    dequantize_nvfp4: |s, t, c, out| unsafe { super::x86_64::formats_avx512::dequantize_nvfp4(s, t, c, out) },
    ..format_table!("avx512", super::x86_64::formats_avx512)
};

/// AVX2 with F16C: the `avx2` path.
#[cfg(target_arch = "x86_64")]
static AVX2: FormatKernels = FormatKernels {
    // SAFETY: as in `format_table!`: handed out only where the avx2 path was detected.
    quantize_mxfp4: |x, rule, s, c| unsafe {
        checked(
            |x| super::x86_64::formats_avx2::all_finite(x),
            x,
            s,
            c,
            16,
            |x, s, c| super::x86_64::formats_avx2::quantize_mxfp4(x, rule, s, c),
        )
    },
    // SAFETY: as in `format_table!`: handed out only where the avx2 path was detected.
    quantize_mxfp8_e4m3: |x, rule, s, c| unsafe {
        checked(
            |x| super::x86_64::formats_avx2::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::x86_64::formats_avx2::quantize_mxfp8_e4m3(x, rule, s, c),
        )
    },
    // SAFETY: as above.
    quantize_mxfp8_e5m2: |x, rule, s, c| unsafe {
        checked(
            |x| super::x86_64::formats_avx2::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::x86_64::formats_avx2::quantize_mxfp8_e5m2(x, rule, s, c),
        )
    },
    // SAFETY: as above.
    quantize_nf4: |x, block, a, p| unsafe { super::x86_64::formats_avx2::quantize_nf4(x, block, a, p) },
    // SAFETY: as above.
    dequantize_nf4: |p, a, block, out| unsafe { super::x86_64::formats_avx2::dequantize_nf4(p, a, block, out) },
    // SAFETY: as above.
    quantize_nvfp4: |x, t, s, c| unsafe { super::x86_64::formats_avx2::quantize_nvfp4(x, t, s, c) },
    // SAFETY: as above.
    dequantize_nvfp4: |s, t, c, out| unsafe { super::x86_64::formats_avx2::dequantize_nvfp4(s, t, c, out) },
    ..format_table!("avx2", super::x86_64::formats_avx2)
};

/// NEON: the `neon` path.
#[cfg(target_arch = "aarch64")]
static NEON: FormatKernels = FormatKernels {
    // SAFETY: as in `format_table!`: handed out only where the neon path was detected.
    quantize_mxfp4: |x, rule, s, c| unsafe {
        checked(
            |x| super::aarch64::formats_neon::all_finite(x),
            x,
            s,
            c,
            16,
            |x, s, c| super::aarch64::formats_neon::quantize_mxfp4(x, rule, s, c),
        )
    },
    // SAFETY: as in `format_table!`: handed out only where the neon path was detected.
    quantize_mxfp8_e4m3: |x, rule, s, c| unsafe {
        checked(
            |x| super::aarch64::formats_neon::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::aarch64::formats_neon::quantize_mxfp8_e4m3(x, rule, s, c),
        )
    },
    // SAFETY: as above.
    quantize_mxfp8_e5m2: |x, rule, s, c| unsafe {
        checked(
            |x| super::aarch64::formats_neon::all_finite(x),
            x,
            s,
            c,
            32,
            |x, s, c| super::aarch64::formats_neon::quantize_mxfp8_e5m2(x, rule, s, c),
        )
    },
    // SAFETY: as above.
    quantize_nf4: |x, block, a, p| unsafe { super::aarch64::formats_neon::quantize_nf4(x, block, a, p) },
    // SAFETY: as above.
    dequantize_nf4: |p, a, block, out| unsafe { super::aarch64::formats_neon::dequantize_nf4(p, a, block, out) },
    // SAFETY: as above.
    quantize_nvfp4: |x, t, s, c| unsafe { super::aarch64::formats_neon::quantize_nvfp4(x, t, s, c) },
    // SAFETY: as above.
    dequantize_nvfp4: |s, t, c, out| unsafe { super::aarch64::formats_neon::dequantize_nvfp4(s, t, c, out) },
    ..format_table!("neon", super::aarch64::formats_neon)
};

/// Every table this CPU can run, best first, the scalar reference last.
fn tables() -> Vec<&'static FormatKernels> {
    let available = super::available_kernels();
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_variables))]
    let has = |name: &str| available.contains(&name);
    #[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(unused_mut))]
    let mut t: Vec<&'static FormatKernels> = Vec::new();
    // The avx512 path's kernels need AVX-512F/BW and F16C, which its detection checks.
    #[cfg(target_arch = "x86_64")]
    if has("avx512") {
        t.push(&AVX512);
    }
    // The avx2 path's detection checks AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    if has("avx2") {
        t.push(&AVX2);
    }
    // The neon path's detection checks NEON.
    #[cfg(target_arch = "aarch64")]
    if has("neon") {
        t.push(&NEON);
    }
    t.push(&SCALAR);
    t
}

/// Every block-format kernel table this CPU can run, best first, the scalar
/// reference last, whatever `QUANTLAB_KERNEL` says: for tests and benchmarks.
pub(crate) fn format_tables() -> Vec<&'static FormatKernels> {
    tables()
}

/// The table of the chosen kernel path: the AVX-512 paths with more
/// instructions use the `avx512` formats table.
pub(crate) fn chosen() -> &'static FormatKernels {
    use std::sync::OnceLock;
    static CHOSEN: OnceLock<&'static FormatKernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let path = super::kernel();
        let family = if path.starts_with("avx512") { "avx512" } else { path };
        tables().into_iter().find(|t| t.name == family).unwrap_or(&SCALAR)
    })
}
