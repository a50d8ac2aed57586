//! Matrix-vector products on int8 activations (W8A8): `x` quantized as ggml
//! Q8_0, each 32-value block's dot with an int8 weight row taken in integers,
//! then combined in f32 in a fixed order. The contract is written in
//! [`super::gemv`]'s module documentation ("int8 activations"); this module
//! holds the quantized activations, the scalar reference and the choice of
//! table.

use std::sync::OnceLock;

use super::gemv::{LANES, Q8_0_BYTES, QK, i8_rows, reduce_lanes};
use crate::formats::ggml::quantize_q8_0;

/// An activation vector quantized as ggml Q8_0, split for the kernels: the
/// codes in one run (`len` values), each block's f16 scale as f32 (exact),
/// and each block's `128 · Σ codes`, which the x86 kernels subtract because
/// `vpdpbusd` multiplies an unsigned byte (`w ^ 0x80 = w + 128`) by a
/// signed one: `Σ (w + 128) · x = Σ w · x + 128 · Σ x`, a term of `x` alone,
/// computed here once per vector instead of once per row.
///
/// Internal: public (and hidden) only so tests and benchmarks can drive every path.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct Q8Activations {
    codes: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
}

impl Q8Activations {
    /// `x` quantized by quantlab's Q8_0 quantizer (byte-exact with gguf-py:
    /// `d = amax / 127` stored as f16, codes `round(x / d)`), or `None`
    /// unless `x.len()` is a non-zero multiple of 32.
    pub fn quantize(x: &[f32]) -> Option<Self> {
        if x.is_empty() || !x.len().is_multiple_of(QK) {
            return None;
        }
        let mut blocks = vec![0u8; x.len() / QK * Q8_0_BYTES];
        quantize_q8_0(x, &mut blocks);
        let mut codes = Vec::with_capacity(x.len());
        let mut scales = Vec::with_capacity(x.len() / QK);
        for b in blocks.chunks_exact(Q8_0_BYTES) {
            scales.push(half::f16::from_le_bytes([b[0], b[1]]).to_f32());
            codes.extend(b[2..].iter().map(|&c| c as i8));
        }
        Self::from_parts(codes, scales)
    }

    /// Activations from their codes and block scales, or `None` unless there
    /// are a non-zero multiple of 32 codes and one scale per 32.
    pub fn from_parts(codes: Vec<i8>, scales: Vec<f32>) -> Option<Self> {
        if codes.is_empty() || !codes.len().is_multiple_of(QK) || scales.len() != codes.len() / QK {
            return None;
        }
        let offsets = codes.chunks_exact(QK).map(|b| 128 * b.iter().map(|&c| i32::from(c)).sum::<i32>()).collect();
        Some(Q8Activations { codes, scales, offsets })
    }

    /// The codes, `len()` of them.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }

    /// One scale per 32 codes.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// `128 · Σ codes` of each block.
    pub fn offsets(&self) -> &[i32] {
        &self.offsets
    }

    /// Values (a multiple of 32).
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Never true (there is at least one block); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Blocks of 32.
    pub fn blocks(&self) -> usize {
        self.scales.len()
    }
}

/// `gemv_i8a8(codes, scales, x, y)`: `y.len()` rows of `x.len()` int8 codes,
/// row-major, one scale per row, times Q8_0 activations.
#[doc(hidden)]
pub type GemvI8A8 = fn(&[i8], &[f32], &Q8Activations, &mut [f32]);

/// `gemv_q8a8(blocks, x, y)`: `y.len()` rows of `x.len() / 32` ggml Q8_0
/// blocks (34 bytes), row-major, times Q8_0 activations.
#[doc(hidden)]
pub type GemvQ8A8 = fn(&[u8], &Q8Activations, &mut [f32]);

/// One instruction set's int8-activation kernels.
///
/// Internal: public (and hidden) only so tests and benchmarks can drive every path.
#[doc(hidden)]
pub struct A8Kernels {
    /// The path's name: `"avx512vnni"`, `"avxvnni"`, `"avx2"`, `"neon-dotprod"`, `"neon"` or `"scalar"`.
    pub name: &'static str,
    /// The f32 gemv family it belongs to (what `QUANTLAB_KERNEL` names).
    pub family: &'static str,
    /// int8 weight rows, one scale per row.
    pub gemv_i8: GemvI8A8,
    /// ggml Q8_0 weight blocks.
    pub gemv_q8_0: GemvQ8A8,
}

/// The scalar reference.
pub(crate) static SCALAR: A8Kernels =
    A8Kernels { name: "scalar", family: "scalar", gemv_i8: gemv_i8a8_scalar, gemv_q8_0: gemv_q8a8_scalar };

/// How many rows of an int8 x Q8_0 product the slices hold whole.
pub(crate) fn i8a8_rows(codes: usize, scales: usize, x: &Q8Activations, y: usize) -> usize {
    i8_rows(codes, scales, x.len(), y)
}

/// How many rows of a Q8_0 x Q8_0 product the slices hold whole.
pub(crate) fn q8a8_rows(bytes: usize, x: &Q8Activations, y: usize) -> usize {
    y.min(bytes / (x.blocks() * Q8_0_BYTES))
}

/// Block `b`'s integer dot: exact in i32 (at most 32 · 128 · 128 = 2^19 in magnitude).
#[inline(always)]
pub(crate) fn block_dot(w: &[i8], x: &[i8]) -> i32 {
    w.iter().zip(x).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum()
}

fn gemv_i8a8_scalar(codes: &[i8], scales: &[f32], x: &Q8Activations, y: &mut [f32]) {
    let n = x.len();
    let rows = i8a8_rows(codes.len(), scales.len(), x, y.len());
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &codes[i * n..(i + 1) * n];
        let mut acc = [0f32; LANES];
        for (b, (w, (xq, &d))) in row.chunks_exact(QK).zip(x.codes.chunks_exact(QK).zip(&x.scales)).enumerate() {
            acc[b % LANES] = d.mul_add(block_dot(w, xq) as f32, acc[b % LANES]);
        }
        *yi = reduce_lanes(acc) * scales[i];
    }
}

fn gemv_q8a8_scalar(blocks: &[u8], x: &Q8Activations, y: &mut [f32]) {
    let rows = q8a8_rows(blocks.len(), x, y.len());
    let row_bytes = x.blocks() * Q8_0_BYTES;
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &blocks[i * row_bytes..(i + 1) * row_bytes];
        let mut acc = [0f32; LANES];
        for (b, (wb, (xq, &d))) in row.chunks_exact(Q8_0_BYTES).zip(x.codes.chunks_exact(QK).zip(&x.scales)).enumerate()
        {
            let dw = half::f16::from_le_bytes([wb[0], wb[1]]).to_f32();
            let w: [i8; QK] = std::array::from_fn(|k| wb[2 + k] as i8);
            acc[b % LANES] = (dw * d).mul_add(block_dot(&w, xq) as f32, acc[b % LANES]);
        }
        *yi = reduce_lanes(acc);
    }
}

/// Every int8-activation table this CPU can run, best first (the scalar one last).
#[doc(hidden)]
pub fn a8_tables() -> Vec<&'static A8Kernels> {
    let mut paths: Vec<&'static A8Kernels> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") && has!("fma") {
            paths.push(&super::x86_64::gemv_a8_avx512::VNNI);
        }
        if has!("avx2") && has!("fma") && has!("f16c") {
            if has!("avxvnni") {
                paths.push(&super::x86_64::gemv_a8_avx2::VNNI);
            }
            paths.push(&super::x86_64::gemv_a8_avx2::PLAIN);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        if has!("neon") && has!("dotprod") {
            paths.push(&super::aarch64::gemv_a8_neon::DOTPROD);
        }
        if has!("neon") {
            paths.push(&super::aarch64::gemv_a8_neon::PLAIN);
        }
    }
    paths.push(&SCALAR);
    paths
}

/// The int8-activation table of the gemv family [`super::gemv::gemv_kernels`]
/// chose (so `QUANTLAB_KERNEL` forces these too), or the best below it.
pub(crate) fn a8_kernels() -> &'static A8Kernels {
    static CHOSEN: OnceLock<&'static A8Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let chosen = super::gemv::family_rank(super::gemv::gemv_kernels().name);
        a8_tables().into_iter().find(|t| super::gemv::family_rank(t.family) >= chosen).unwrap_or(&SCALAR)
    })
}

/// The name of the int8-activation path [`crate::linear::Linear`] runs
/// (e.g. `"avx512vnni"`, `"avxvnni"`, `"avx2"`, `"neon-dotprod"`, `"neon"`, `"scalar"`).
pub fn a8_kernel() -> &'static str {
    a8_kernels().name
}
