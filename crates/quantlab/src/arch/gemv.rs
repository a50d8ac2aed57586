//! Matrix-vector kernels on quantized weights, and their scalar reference.
//!
//! `y[i] = Σ_j x[j] · w[i][j]`, where `w[i][j] = (q[i][j] as f32) * s` is the
//! dequantized weight (exactly the number [`crate::Quantized::dequantize`]
//! gives), computed as each code is read: the f32 matrix never exists.
//! The same holds for the block formats: ggml Q8_0 and Q4_0 blocks are read
//! as stored (`w = q · d`, `d` the block's f16 scale), and MXFP4, NVFP4 and
//! NF4 codes are looked up in a table of their 16 values (`w = table[q] · s`,
//! `s` the block's scale as f32): in each case the product the format's own
//! dequantization rounds, so `y` is the contract's sum of the dequantized
//! weights. Q4_K and Q6_K super-blocks are read as stored too: their packed
//! sub-block scales are unpacked to integers (exact), and each weight is
//! the reference's own f32 operations on the same operands in the same
//! order (Q4_K `(d · sc) · q - dmin · m`, Q6_K `(d · sc) · (q - 32)`, each
//! operation rounded alone, no fused multiply-add), so the decoded values
//! are bit for bit those of `dequantize_q4_k` / `dequantize_q6_k`.
//!
//! # Summation order (the contract every path keeps, bit for bit)
//! Each row keeps [`LANES`] = 16 partial sums, all starting at `+0.0`. Element
//! `j` goes to lane `j % 16`: `acc[j % 16] = fma(x[j], w[i][j], acc[j % 16])`,
//! in increasing `j` (one fused multiply-add, one rounding). The lanes are
//! then added as a tree: `acc[l] += acc[l + 8]` for `l < 8`, then `+ 4`, `+ 2`
//! and `+ 1`; `y[i]` is `acc[0]`. AVX-512 holds the 16 lanes in one register,
//! AVX2 in two, NEON in four, and a short tail is masked or zero-padded: a
//! padded lane adds `fma(0, 0, acc) = acc` (an accumulator that starts at `+0.0` is never
//! `-0.0`, so adding `+0.0` leaves it unchanged).
//!
//! # int8 activations (W8A8; `arch::gemv_a8`)
//! The other contract, that of PyTorch's dynamic quantized `Linear` (fbgemm)
//! and llama.cpp's `vec_dot_q8_0_q8_0`: `x` (a multiple of 32 values) is
//! first quantized as ggml Q8_0 by quantlab's own quantizer (byte-exact with
//! gguf-py): block `b` gets `d_b = amax / 127` stored as f16 (used as the f32
//! it converts to, exactly) and 32 codes `xq = round(x / d)`. Then, for row
//! `i` and block `b`, `isum = Σ_k w[i][32b + k] · xq[32b + k]` is taken in
//! i32, where it is exact (at most `32 · 128 · 128 = 2^19` in magnitude, so
//! any order of integer adds gives the same number, and so does its
//! conversion to f32). The blocks are combined in f32 in one fixed order,
//! 16 lanes as above but one block to a lane:
//! - int8 weights (one scale `s_i` a row): `acc[b % 16] = fma(d_b, isum as
//!   f32, acc[b % 16])` for increasing `b`, all lanes from `+0.0`; the same
//!   lane tree; `y[i] = acc[0] · s_i`.
//! - Q8_0 weights (block scale `dw` as f32): `acc[b % 16] = fma(dw · d_b,
//!   isum as f32, acc[b % 16])` (the product of the two scales rounded to
//!   f32 first, as llama.cpp does); the lane tree; `y[i] = acc[0]`.
//!
//! Lanes past the last block stay `+0.0`, so a SIMD path that pads a short
//! last group of blocks with zero sums and zero scales adds `fma(0, 0, acc) =
//! acc`. Every path (scalar, AVX-512 VNNI, AVX-VNNI, AVX2, NEON with and
//! without `sdot`) gives the scalar reference's bits. What it costs in
//! accuracy: each activation is rounded to one of 255 levels of its block's
//! range (a relative error up to `1/254` of the block's largest magnitude,
//! about 0.2 %, plus the f16 rounding of `d`), on top of the weight's own
//! quantization; the sum itself adds no error beyond the f32 combination.
//!
//! # Why not AMX
//! AMX (`tdpbssd`, int8 tiles of 16 rows × 64 bytes) multiplies a 16 × 64
//! tile of one operand by a 64 × 16 tile of the other. A matrix-vector
//! product has one activation vector: it fills 1 of the 16 rows of its tile,
//! so 15/16 of the tile work is spent on zeros, the weight still has to be
//! re-laid out (VNNI-packed in groups of 4 rows) for `tdpbssd`, and the
//! product stays bound by reading the weight from memory, which AVX-512 VNNI
//! already keeps up with. AMX pays off for batches of 16 or more vectors (a
//! matrix-matrix product); this CPU (AMD Zen 5) has no AMX, so nothing here
//! could be run or measured, and none is used.
//!
//! Which table runs follows [`super::kernels`] (so `QUANTLAB_KERNEL` forces
//! these too): the decision is made once, in `arch/mod.rs`.

use std::sync::OnceLock;

use crate::formats::GgmlBlock;
use crate::formats::kquants::QK_K;

/// Partial sums per row (the AVX-512 width).
pub(crate) const LANES: usize = 16;

/// `gemv_i8(codes, scales, x, y)`: `codes` is `y.len()` rows of `x.len()`
/// codes, row-major; one scale per row.
#[doc(hidden)]
pub type GemvI8 = fn(&[i8], &[f32], &[f32], &mut [f32]);

/// `gemv_i4(packed, scales, group, x, y)`: `y.len()` rows of `x.len()` 4-bit
/// signed codes, two to a byte (the first in the low nibble), row-major;
/// one scale per `group` consecutive codes (`group` a multiple of 16 that
/// divides `x.len()`).
#[doc(hidden)]
pub type GemvI4 = fn(&[u8], &[f32], usize, &[f32], &mut [f32]);

/// `gemv_blocks(blocks, x, y)`: `y.len()` rows of `x.len() / 32` ggml
/// blocks each (Q8_0: 34 bytes, Q4_0: 18), row-major, read as they are
/// stored (`x.len()` a multiple of 32).
#[doc(hidden)]
pub type GemvBlocks = fn(&[u8], &[f32], &mut [f32]);

/// `gemv_lut4(packed, scales, block, table, high_first, x, y)`: `y.len()`
/// rows of `x.len()` 4-bit codes, two to a byte (the first in the low nibble,
/// or the high one when `high_first`), row-major; value `k` of the flat
/// tensor is `table[code] * scales[k / block]` (blocks run over the flat
/// tensor). `block` is a power of two from 16, `x.len()` a multiple of 16
/// (the SIMD paths do nothing otherwise). MXFP4, NVFP4, NF4.
#[doc(hidden)]
pub type GemvLut4 = fn(&[u8], &[f32], usize, &[f32; 16], bool, &[f32], &mut [f32]);

/// `decode(b, out)` writes block `b` of a weight (blocks numbered over the
/// flat, row-major tensor) as its `out.len()` f32 values: the format's own
/// dequantization of that one block.
#[doc(hidden)]
pub type DecodeBlock<'a> = &'a dyn Fn(usize, &mut [f32]);

/// `gemv_decoded(decode, block, x, y)`: `y.len()` rows of `x.len() / block`
/// blocks each, every block decoded by `decode` into a buffer of `block`
/// values (a multiple of 16, at most [`MAX_BLOCK`]) just before its dot with
/// `x`, in the contract's order (value `k` of a block to lane `k % 16`, since
/// blocks are whole 16-lane steps). `x.len()` a multiple of `block` (the
/// paths do nothing otherwise). The block formats without a kernel of their
/// own: Q4_1, Q5_0, Q5_1, GGUF MXFP4, the MX types but MXFP4 (and Q4_K,
/// Q6_K on the scalar path, which is their reference).
#[doc(hidden)]
pub type GemvDecoded = fn(DecodeBlock<'_>, usize, &[f32], &mut [f32]);

/// One instruction set's matrix-vector kernels.
///
/// Internal: public (and hidden) only so tests and benchmarks can drive every path.
#[doc(hidden)]
pub struct GemvKernels {
    /// The path's name, as in [`super::Kernels::name`].
    pub name: &'static str,
    /// int8 codes, one scale per row.
    pub gemv_i8: GemvI8,
    /// int4 codes, one scale per group.
    pub gemv_i4: GemvI4,
    /// ggml Q8_0 blocks.
    pub gemv_q8_0: GemvBlocks,
    /// ggml Q4_0 blocks.
    pub gemv_q4_0: GemvBlocks,
    /// 4-bit codes through a value table, f32 block scales.
    pub gemv_lut4: GemvLut4,
    /// Any block format, one decoded block at a time.
    pub gemv_decoded: GemvDecoded,
    /// ggml Q4_K super-blocks (144 bytes a 256 values; `x.len()` a multiple of 256).
    pub gemv_q4_k: GemvBlocks,
    /// ggml Q6_K super-blocks (210 bytes a 256 values; `x.len()` a multiple of 256).
    pub gemv_q6_k: GemvBlocks,
}

/// The scalar reference.
pub(crate) static SCALAR: GemvKernels = GemvKernels {
    name: "scalar",
    gemv_i8: gemv_i8_scalar,
    gemv_i4: gemv_i4_scalar,
    gemv_q8_0: gemv_q8_0_scalar,
    gemv_q4_0: gemv_q4_0_scalar,
    gemv_lut4: gemv_lut4_scalar,
    gemv_decoded: gemv_decoded_scalar,
    gemv_q4_k: |q, x, y| kquant_decoded(GgmlBlock::Q4K, gemv_decoded_scalar, q, x, y),
    gemv_q6_k: |q, x, y| kquant_decoded(GgmlBlock::Q6K, gemv_decoded_scalar, q, x, y),
};

/// The largest block [`GemvDecoded`] takes (a K-quant super-block).
pub(crate) const MAX_BLOCK: usize = 256;

/// Values in a ggml block (Q8_0, Q4_0).
pub(crate) const QK: usize = 32;
/// Bytes of a Q8_0 block: an f16 scale, 32 × i8.
pub(crate) const Q8_0_BYTES: usize = 34;
/// Bytes of a Q4_0 block: an f16 scale, 16 bytes of nibbles.
pub(crate) const Q4_0_BYTES: usize = 18;

/// The 4-bit code `n` (0..16) as the signed value it stands for.
#[inline(always)]
pub(crate) fn i4_value(n: u8) -> i8 {
    ((n & 0x0F) ^ 8) as i8 - 8
}

/// The tree that adds the lanes (see the module's documentation).
#[inline(always)]
pub(crate) fn reduce_lanes(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// One row: `Σ x[j] · weight(j)` in the contract's order.
#[inline(always)]
fn row_dot(x: &[f32], weight: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    for (j, &xj) in x.iter().enumerate() {
        let l = j % LANES;
        acc[l] = xj.mul_add(weight(j), acc[l]);
    }
    reduce_lanes(acc)
}

/// How many rows of an int8 product the slices hold whole: `y`, `scales`
/// and `codes` (`n` codes a row) bound it; the SIMD paths compute that many.
pub(crate) fn i8_rows(codes: usize, scales: usize, n: usize, y: usize) -> usize {
    y.min(scales).min(codes.checked_div(n).unwrap_or(usize::MAX))
}

/// How many rows of an int4 product the slices hold whole (`n / 2` packed
/// bytes and `n / group` scales a row), or `None` when `group` is not a
/// multiple of the SIMD width dividing `n` (the SIMD paths then do nothing).
pub(crate) fn i4_rows(packed: usize, scales: usize, group: usize, n: usize, y: usize) -> Option<usize> {
    if group == 0 || !group.is_multiple_of(LANES) || !n.is_multiple_of(group) {
        return None;
    }
    Some(y.min(scales / (n / group).max(1)).min((packed * 2).checked_div(n).unwrap_or(usize::MAX)))
}

/// How many rows of a ggml block product the slices hold whole (`n / 32`
/// blocks of `block_bytes` a row), or `None` when `n` is not whole blocks.
pub(crate) fn block_rows(bytes: usize, block_bytes: usize, n: usize, y: usize) -> Option<usize> {
    if !n.is_multiple_of(QK) {
        return None;
    }
    Some(y.min(bytes.checked_div(n / QK * block_bytes).unwrap_or(usize::MAX)))
}

/// How many rows of a table-lookup product the slices hold whole (`n / 2`
/// bytes a row, and the scales of every block a row touches), or `None` when
/// `block` is not a power of two from 16 or `n` not a multiple of 16 (a
/// 16-lane step then always lies in one block, found by a shift).
pub(crate) fn lut4_rows(packed: usize, scales: usize, block: usize, n: usize, y: usize) -> Option<usize> {
    if block < LANES || !block.is_power_of_two() || !n.is_multiple_of(LANES) {
        return None;
    }
    let by_scales = (scales.saturating_mul(block)).checked_div(n).unwrap_or(usize::MAX);
    Some(y.min(by_scales).min((packed * 2).checked_div(n).unwrap_or(usize::MAX)))
}

/// How many rows of a K-quant product (Q4_K, Q6_K) the slices hold whole
/// (`n / 256` super-blocks of `block_bytes` a row), or `None` when `n` is not
/// whole super-blocks (every path then does nothing).
pub(crate) fn kquant_rows(bytes: usize, block_bytes: usize, n: usize, y: usize) -> Option<usize> {
    if !n.is_multiple_of(QK_K) {
        return None;
    }
    Some(y.min(bytes.checked_div(n / QK_K * block_bytes).unwrap_or(usize::MAX)))
}

/// A K-quant product through a path's generic decoded-block kernel: each
/// super-block decoded by the format's scalar dequantization (gguf-py's
/// numbers), the reference every K-quant kernel is held to, and what the
/// paths without a kernel of their own run.
pub(crate) fn kquant_decoded(format: GgmlBlock, decoded: GemvDecoded, blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let size = format.type_size();
    let Some(rows) = kquant_rows(blocks.len(), size, x.len(), y.len()) else { return };
    let decode = |b: usize, out: &mut [f32]| format.dequantize_blocks(&blocks[b * size..(b + 1) * size], out);
    decoded(&decode, QK_K, x, &mut y[..rows]);
}

/// Q4_K's eight 6-bit sub-block scales and eight 6-bit mins from the 12
/// packed bytes of a super-block (bytes 4..16), as 16 bytes: the scales of
/// sub-blocks 0..8, then their mins. ggml's `kmask` shuffle of the AVX2
/// `vec_dot_q4_K`: the same bits as `get_scale_min_k4` (`kquants`) for
/// every byte pattern (checked exhaustively per byte in the tests), in four
/// word operations instead of sixteen byte look-ups.
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn q4_k_scales_mins(packed: [u8; 12]) -> [u8; 16] {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let word = |k: usize| u32::from_le_bytes([packed[4 * k], packed[4 * k + 1], packed[4 * k + 2], packed[4 * k + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    // Sub-blocks 0..4: the low 6 bits of bytes 0..4 (scales) and 4..8 (mins).
    // Sub-blocks 4..8: a nibble of bytes 8..12 (low: scale, high: min) under
    // the top 2 bits of bytes 0..4 (scale) or 4..8 (min). Each `>> 6` moves
    // a byte's top 2 bits to its bottom (what spills in from the next byte
    // is masked off by LOW2), `<< 4` puts them above the nibble.
    let scales_hi = (c & LOW4) | (((a >> 6) & LOW2) << 4);
    let mins_hi = ((c >> 4) & LOW4) | (((b >> 6) & LOW2) << 4);
    let mut out = [0u8; 16];
    for (k, w) in [a & LOW6, scales_hi, b & LOW6, mins_hi].into_iter().enumerate() {
        out[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// Whether a decoded-block product fits: `block` a multiple of 16 up to
/// [`MAX_BLOCK`] that divides `n` (every path does nothing otherwise).
pub(crate) fn decoded_fits(block: usize, n: usize) -> bool {
    block != 0 && block <= MAX_BLOCK && block.is_multiple_of(LANES) && n.is_multiple_of(block)
}

/// A ggml block's f16 scale (its first two bytes, little-endian) as f32.
#[inline(always)]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))] // x86 converts with F16C
pub(crate) fn f16_scale(block: &[u8]) -> f32 {
    half::f16::from_le_bytes([block[0], block[1]]).to_f32()
}

/// Walks `rows` rows as the SIMD paths do: `rows_from(i, true)` for each
/// whole block of `R` rows from row `i`, then `rows_from(i, false)` for each
/// row left over (one at a time).
pub(crate) fn row_blocks<const R: usize>(rows: usize, mut rows_from: impl FnMut(usize, bool)) {
    let whole = rows - rows % R;
    (0..whole).step_by(R).for_each(|i| rows_from(i, true));
    (whole..rows).for_each(|i| rows_from(i, false));
}

fn gemv_i8_scalar(codes: &[i8], scales: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    for (i, (yi, &s)) in y.iter_mut().zip(scales).enumerate() {
        let row = &codes[i * n..(i + 1) * n];
        *yi = row_dot(x, |j| f32::from(row[j]) * s);
    }
}

fn gemv_i4_scalar(packed: &[u8], scales: &[f32], group: usize, x: &[f32], y: &mut [f32]) {
    let n = x.len();
    for (i, yi) in y.iter_mut().enumerate() {
        let row = &packed[i * n / 2..(i + 1) * n / 2];
        let s = &scales[i * n / group..(i + 1) * n / group];
        *yi = row_dot(x, |j| f32::from(i4_value(row[j / 2] >> (4 * (j % 2)))) * s[j / group]);
    }
}

/// The ggml block rows of `y`: each block is dequantized as the format's
/// scalar reference does ([`GgmlBlock::dequantize_blocks`]: gguf-py's
/// numbers), 32 values at a time, and its values summed in the contract's
/// order (blocks are whole 16-lane steps, so value `k` of block `b` goes to
/// lane `k % 16`). Only one block's values exist at a time.
fn gemv_blocks_scalar(format: GgmlBlock, block_bytes: usize, blocks: &[u8], x: &[f32], y: &mut [f32]) {
    let Some(rows) = block_rows(blocks.len(), block_bytes, x.len(), y.len()) else { return };
    let row_bytes = x.len() / QK * block_bytes;
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        let row = &blocks[i * row_bytes..(i + 1) * row_bytes];
        let mut acc = [0f32; LANES];
        let mut w = [0f32; QK];
        for (b, xb) in row.chunks_exact(block_bytes).zip(x.chunks_exact(QK)) {
            format.dequantize_blocks(b, &mut w);
            for (k, (&xk, &wk)) in xb.iter().zip(&w).enumerate() {
                acc[k % LANES] = xk.mul_add(wk, acc[k % LANES]);
            }
        }
        *yi = reduce_lanes(acc);
    }
}

fn gemv_q8_0_scalar(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    gemv_blocks_scalar(GgmlBlock::Q8_0, Q8_0_BYTES, blocks, x, y)
}

fn gemv_q4_0_scalar(blocks: &[u8], x: &[f32], y: &mut [f32]) {
    gemv_blocks_scalar(GgmlBlock::Q4_0, Q4_0_BYTES, blocks, x, y)
}

/// The decoded-block rows of `y`, as [`gemv_blocks_scalar`] does them for
/// Q8_0 and Q4_0 but with any block's decoder: one block's values exist at a
/// time, on the stack.
fn gemv_decoded_scalar(decode: DecodeBlock<'_>, block: usize, x: &[f32], y: &mut [f32]) {
    if !decoded_fits(block, x.len()) {
        return;
    }
    let per_row = x.len() / block;
    let mut buf = [0f32; MAX_BLOCK];
    let w = &mut buf[..block];
    for (i, yi) in y.iter_mut().enumerate() {
        let mut acc = [0f32; LANES];
        for (b, xb) in x.chunks_exact(block).enumerate() {
            decode(i * per_row + b, w);
            for (k, (&xk, &wk)) in xb.iter().zip(w.iter()).enumerate() {
                acc[k % LANES] = xk.mul_add(wk, acc[k % LANES]);
            }
        }
        *yi = reduce_lanes(acc);
    }
}

fn gemv_lut4_scalar(
    packed: &[u8],
    scales: &[f32],
    block: usize,
    table: &[f32; 16],
    high_first: bool,
    x: &[f32],
    y: &mut [f32],
) {
    let n = x.len();
    let Some(rows) = lut4_rows(packed.len(), scales.len(), block, n, y.len()) else { return };
    for (i, yi) in y[..rows].iter_mut().enumerate() {
        *yi = row_dot(x, |j| {
            let k = i * n + j;
            let b = packed[k / 2];
            let code = if k.is_multiple_of(2) != high_first { b & 15 } else { b >> 4 };
            table[usize::from(code)] * scales[k / block]
        });
    }
}

/// Every gemv table this CPU can run, best first (the scalar one last).
#[doc(hidden)]
pub fn gemv_tables() -> Vec<&'static GemvKernels> {
    let mut paths: Vec<&'static GemvKernels> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vbmi") && has!("fma") && has!("f16c")
        {
            paths.push(&super::x86_64::gemv_avx512::GEMV);
        }
        if has!("avx2") && has!("fma") && has!("f16c") {
            paths.push(&super::x86_64::gemv_avx2::GEMV);
        }
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("neon") {
        paths.push(&super::aarch64::gemv_neon::GEMV);
    }
    paths.push(&SCALAR);
    paths
}

/// The gemv table of the path [`super::kernels`] chose (or the best below it
/// this CPU can run).
pub(crate) fn gemv_kernels() -> &'static GemvKernels {
    static CHOSEN: OnceLock<&'static GemvKernels> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let chosen = super::kernels().name;
        let tables = gemv_tables();
        // `avx512bf16` and `avx512fp16` are AVX-512 paths with one more
        // conversion instruction: their matrix-vector kernels are AVX-512's.
        tables.iter().copied().find(|t| family_rank(t.name) >= family_rank(chosen)).unwrap_or(&SCALAR)
    })
}

/// Where a path's family stands, best first: `avx512*` 0, `avx2` 1, `neon` 2, else 3.
pub(crate) fn family_rank(name: &str) -> usize {
    let family = if name.starts_with("avx512") { "avx512" } else { name };
    ["avx512", "avx2", "neon", "scalar"].iter().position(|n| *n == family).unwrap_or(3)
}

/// The name of the matrix-vector path [`crate::linear::Linear`] runs: that of
/// [`super::kernel`], or the best below it this CPU has (the AVX-512 one
/// needs VBMI too), e.g. `"avx512"`, `"avx2"`, `"neon"` or `"scalar"`.
pub fn gemv_kernel() -> &'static str {
    gemv_kernels().name
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each output bit of the shuffle depends on at most two input bytes
    /// (same position in different words), so running every value of every
    /// byte against a few backgrounds covers every code of every scale/min.
    #[test]
    fn q4_k_shuffle_gives_get_scale_min_k4_for_every_byte() {
        for background in [0u8, 0xFF, 0x55, 0xAA] {
            for at in 0..12 {
                for v in 0..=255u8 {
                    let mut packed = [background; 12];
                    packed[at] = v;
                    let got = q4_k_scales_mins(packed);
                    for j in 0..8 {
                        let (s, m) = crate::formats::kquants::scale_min_k4(j, &packed);
                        assert_eq!((got[j], got[8 + j]), (s, m), "byte {at} = {v:#x}, sub-block {j}");
                    }
                }
            }
        }
    }
}
