//! Matrix-vector kernels on quantized weights, and their scalar reference.
//!
//! `y[i] = Σ_j x[j] · w[i][j]`, where `w[i][j] = (q[i][j] as f32) * s` is the
//! dequantized weight (exactly the number [`crate::Quantized::dequantize`]
//! gives), computed as each code is read: the f32 matrix never exists.
//!
//! # Summation order (the contract every path keeps, bit for bit)
//! Each row keeps [`LANES`] = 16 partial sums, all starting at `+0.0`. Element
//! `j` goes to lane `j % 16`: `acc[j % 16] = fma(x[j], w[i][j], acc[j % 16])`,
//! in increasing `j` (one fused multiply-add, one rounding). The lanes are
//! then added as a tree: `acc[l] += acc[l + 8]` for `l < 8`, then `+ 4`, `+ 2`
//! and `+ 1`; `y[i]` is `acc[0]`. AVX-512 holds the 16 lanes in one register,
//! AVX2 in two, NEON in four, and a short tail is masked or zero-padded: a padded lane adds
//! `fma(0, 0, acc) = acc` (an accumulator that starts at `+0.0` is never
//! `-0.0`, so adding `+0.0` leaves it unchanged).
//!
//! Which table runs follows [`super::kernels`] (so `QUANTLAB_KERNEL` forces
//! these too): the decision is made once, in `arch/mod.rs`.

use std::sync::OnceLock;

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
}

/// The scalar reference.
pub(crate) static SCALAR: GemvKernels =
    GemvKernels { name: "scalar", gemv_i8: gemv_i8_scalar, gemv_i4: gemv_i4_scalar };

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

/// Every gemv table this CPU can run, best first (the scalar one last).
#[doc(hidden)]
pub fn gemv_tables() -> Vec<&'static GemvKernels> {
    let mut paths: Vec<&'static GemvKernels> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vbmi") && has!("fma") {
            paths.push(&super::x86_64::gemv_avx512::GEMV);
        }
        if has!("avx2") && has!("fma") {
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
        let rank = |name: &str| ["avx512", "avx2", "neon", "scalar"].iter().position(|n| *n == name).unwrap_or(3);
        tables.iter().copied().find(|t| rank(t.name) >= rank(chosen)).unwrap_or(&SCALAR)
    })
}
