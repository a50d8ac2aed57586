//! What the *block formats* lesson (`course/formats.ipynb`) shows, computed
//! with [`quantlab::formats`]: one outlier per block instead of per tensor,
//! MX's scale rules side by side, NVFP4's two scales, NF4's code table next to
//! the normal density it was cut from, and every format's error against its
//! true bits per weight on one heavy-tailed matrix.
//!
//! ```
//! use quantlab_lesson::blocks;
//! let w = blocks::heavy_tailed();
//! let rows = blocks::error_vs_bits(&w)?;
//! let mxfp4 = rows.rows.iter().find(|r| r.format.name() == "mxfp4").unwrap();
//! assert_eq!(mxfp4.bits, 4.25);
//! # Ok::<(), quantlab_lesson::Error>(())
//! ```

use ndarray::{Array2, ArrayView2};

use quantlab::formats::{BlockFormat, FORMAT_NAMES, MxElement, NF4_CODE, ScaleRule, Scales};
use quantlab::{DType, ErrorStats, QuantSpec, QuantizeExt, error_stats};

use crate::error::{Core, Result};
use crate::lesson::Table;
use crate::plot::{Figure, LineChart};

/// Seed of [`heavy_tailed`]: every figure of the lesson uses the same matrix.
pub const HEAVY_TAILED_SEED: u64 = 13;

/// The lesson's heavy-tailed matrix: 64 × 512 values of
/// [`crate::data::weights`] (Student-t tails, rows of different spread),
/// rows a multiple of every format's block (256 for the K-quants).
pub fn heavy_tailed() -> Array2<f32> {
    crate::data::weights(64, 512, HEAVY_TAILED_SEED)
}

/// The four MX scale rules, in the order the lesson shows them.
pub const SCALE_RULES: [ScaleRule; 4] = [ScaleRule::Floor, ScaleRule::Ceil, ScaleRule::Even, ScaleRule::Rceil];

/// Quantizes a row-major matrix in a block format and measures the round trip.
pub fn round_trip(x: ArrayView2<f32>, format: BlockFormat) -> Result<ErrorStats> {
    let flat: Vec<f32> = x.iter().copied().collect();
    let q = format.quantize(&flat, x.ncols())?;
    let y = Array2::from_shape_vec(x.dim(), q.dequantize()?).map_err(|e| Core::BadParams { reason: e.to_string() })?;
    Ok(error_stats(&x, &y)?)
}

/// Mean squared error of each block of `block` consecutive values (row-major).
pub fn block_mse(x: &[f32], y: &[f32], block: usize) -> Vec<f64> {
    x.chunks(block.max(1))
        .zip(y.chunks(block.max(1)))
        .map(|(a, b)| {
            a.iter().zip(b).map(|(&u, &v)| (f64::from(u) - f64::from(v)).powi(2)).sum::<f64>() / a.len() as f64
        })
        .collect()
}

/// Linear quantization of `x` with `spec` (e.g. int4 per tensor or per
/// group), and the MSE of each block of `block` values ([`block_mse`]).
/// Precompiled here so that a cell need not instantiate the generic quantizer.
pub fn linear_block_mse(x: &ndarray::Array1<f32>, spec: QuantSpec, block: usize) -> Result<Vec<f64>> {
    let y = x.quantize(spec)?.dequantize()?;
    Ok(block_mse(&x.to_vec(), &y.to_vec(), block))
}

/// One MX block taken apart: its E8M0 byte, the scale it stands for, the
/// element codes (one per byte) and the values they decode to.
#[derive(Debug, Clone, PartialEq)]
pub struct MxBlock {
    /// The shared exponent as stored: the E8M0 byte (scale 2^(byte - 127)).
    pub exponent: u8,
    /// The scale, 2^(exponent - 127).
    pub scale: f32,
    /// The 32 element codes.
    pub codes: Vec<u8>,
    /// The 32 dequantized values.
    pub values: Vec<f32>,
}

/// Quantizes one block of 32 values as MX `element` under `rule`.
pub fn mx_block(block: &[f32], element: MxElement, rule: ScaleRule) -> Result<MxBlock> {
    let q = BlockFormat::Mx { element, rule }.quantize(block, 32)?;
    let exponent = match &q.scales {
        Scales::E8m0(s) if s.len() == 1 => s[0],
        _ => return Err(Core::BlockMismatch { format: q.format.name().into(), block: 32, len: block.len() }.into()),
    };
    Ok(MxBlock {
        exponent,
        scale: 2f32.powi(i32::from(exponent) - 127),
        codes: q.element_codes().unwrap_or_default(),
        values: q.dequantize()?,
    })
}

/// MSE of MX formats under each of the four scale rules on one matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleErrors {
    /// One row per element type: its format name and the MSE under [`SCALE_RULES`].
    pub rows: Vec<(&'static str, [f64; 4])>,
}

/// MXFP4, MXFP6 (e2m3) and MXFP8 (e4m3) under every scale rule.
pub fn scale_rule_errors(x: ArrayView2<f32>) -> Result<RuleErrors> {
    let rows = [MxElement::E2m1, MxElement::E2m3, MxElement::E4m3]
        .into_iter()
        .map(|element| {
            let mut mse = [0.0; 4];
            for (m, rule) in mse.iter_mut().zip(SCALE_RULES) {
                *m = round_trip(x, BlockFormat::Mx { element, rule })?.mse;
            }
            Ok((BlockFormat::Mx { element, rule: ScaleRule::Floor }.name(), mse))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RuleErrors { rows })
}

impl RuleErrors {
    /// The MSEs as a table, with EVEN's error relative to FLOOR's.
    pub fn table(&self) -> Table {
        let mut t = Table::new("MSE by MX scale rule", ["format", "floor", "ceil", "even", "rceil", "even / floor"]);
        for (name, m) in &self.rows {
            let mut cells = vec![name.to_string()];
            cells.extend(m.iter().map(|v| format!("{v:.4e}")));
            cells.push(format!("{:.3}", m[2] / m[0]));
            t.row(cells);
        }
        t
    }

    /// Shows the table in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// NVFP4's scales decoded: the e4m3 block scales as values, and the f32 tensor scale.
pub fn nvfp4_scales(x: &[f32], tensor_scale: bool) -> Result<(Vec<f32>, Option<f32>)> {
    let q = BlockFormat::Nvfp4 { tensor_scale }.quantize(x, x.len())?;
    let e4m3 = DType::Float8E4M3Fn.minifloat().ok_or(Core::BadParams { reason: "e4m3 has no layout".into() })?;
    match q.scales {
        Scales::E4m3 { blocks, tensor } => {
            Ok((blocks.iter().map(|&b| e4m3.decode_f32(u16::from(b))).collect(), tensor))
        }
        _ => Err(Core::BadParams { reason: "nvfp4 keeps e4m3 block scales".into() }.into()),
    }
}

/// The standard normal's cumulative distribution.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// The standard normal's quantile (inverse of [`normal_cdf`]), by bisection
/// to f64 precision; `p` outside (0, 1) gives ±infinity.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The normal density with standard deviation `sigma` at `x`.
pub fn normal_density(x: f64, sigma: f64) -> f64 {
    (-(x / sigma).powi(2) / 2.0).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt())
}

/// bitsandbytes' `create_normal_map` offset: the largest code is the normal's
/// quantile at this probability, divided by itself (so the table spans -1..1).
pub const NF4_OFFSET: f64 = 0.9677083;

/// The standard deviation of the normal that NF4's table is cut from, once
/// scaled to -1..1: `1 / quantile(NF4_OFFSET)` (about 0.541).
pub fn nf4_sigma() -> f64 {
    1.0 / normal_quantile(NF4_OFFSET)
}

/// The probability that a value of N(0, [`nf4_sigma`]) rounds to each NF4
/// code (between the midpoints to its neighbours): nearly equal, which is
/// what a quantile code is for.
pub fn nf4_code_masses() -> [f64; 16] {
    let s = nf4_sigma();
    let mut m = [0.0; 16];
    for (i, mass) in m.iter_mut().enumerate() {
        let lo = if i == 0 { f64::NEG_INFINITY } else { f64::from(NF4_CODE[i - 1] + NF4_CODE[i]) / 2.0 };
        let hi = if i == 15 { f64::INFINITY } else { f64::from(NF4_CODE[i] + NF4_CODE[i + 1]) / 2.0 };
        *mass = normal_cdf(hi / s) - normal_cdf(lo / s);
    }
    m
}

/// NF4's 16 codes as points on the normal density they were cut from.
pub fn nf4_figure() -> Result<Figure> {
    let s = nf4_sigma();
    let curve = (0..=200).map(|i| {
        let x = -1.2 + 2.4 * f64::from(i) / 200.0;
        (x, normal_density(x, s))
    });
    let codes = NF4_CODE.iter().map(|&c| (f64::from(c), normal_density(f64::from(c), s)));
    LineChart::new("NF4 codes on the normal density")
        .axes("value (absmax = 1)", "density")
        .series(format!("normal density, sigma = {s:.3}"), curve)
        .series("NF4 code values", codes)
        .draw()
}

/// One format's round trip on a matrix, with its true bits per weight.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    /// The format.
    pub format: BlockFormat,
    /// Bits per weight, every block scale counted (per-tensor constants not).
    pub bits: f64,
    /// The round trip's error.
    pub stats: ErrorStats,
}

/// Every format's error on the same matrix (see [`error_vs_bits`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FormatErrors {
    /// Values in the matrix.
    pub numel: usize,
    /// One row per format, in [`FORMAT_NAMES`] order, then NF4 double-quantized.
    pub rows: Vec<FormatError>,
}

/// Quantizes `x` in every block format (defaults of [`BlockFormat::parse`],
/// plus NF4 with double quantization) and measures each round trip.
pub fn error_vs_bits(x: &Array2<f32>) -> Result<FormatErrors> {
    let mut formats = FORMAT_NAMES.iter().map(|n| BlockFormat::parse(n)).collect::<quantlab::Result<Vec<_>>>()?;
    formats.push(BlockFormat::nf4(64, true)?);
    let rows = formats
        .into_iter()
        .map(|format| Ok(FormatError { format, bits: format.bits_per_weight(), stats: round_trip(x.view(), format)? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(FormatErrors { numel: x.len(), rows })
}

/// The family a format is plotted in.
fn family(f: &BlockFormat) -> &'static str {
    match f {
        BlockFormat::Mx { .. } => "OCP MX (floor)",
        BlockFormat::Nvfp4 { .. } => "NVFP4",
        BlockFormat::Nf4 { .. } => "NF4",
        BlockFormat::Ggml(quantlab::formats::GgmlBlock::Q4K | quantlab::formats::GgmlBlock::Q6K) => "GGUF K-quants",
        BlockFormat::Ggml(_) => "GGUF legacy blocks",
    }
}

impl FormatErrors {
    /// The rows sorted by bits per weight, as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("Every block format on the same {} values", self.numel),
            ["format", "bits/weight", "MSE", "SQNR (dB)"],
        );
        let mut rows: Vec<&FormatError> = self.rows.iter().collect();
        rows.sort_by(|a, b| a.bits.total_cmp(&b.bits).then(b.stats.mse.total_cmp(&a.stats.mse)));
        for r in rows {
            t.row([
                r.format.to_string(),
                format!("{:.4}", r.bits),
                format!("{:.4e}", r.stats.mse),
                format!("{:.2}", r.stats.sqnr_db),
            ]);
        }
        t
    }

    /// Shows the table in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// MSE against bits per weight on a log scale, one line per family.
    pub fn figure(&self, title: &str) -> Result<Figure> {
        let mut lines: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
        for r in &self.rows {
            let key = family(&r.format);
            match lines.iter_mut().find(|(k, _)| *k == key) {
                Some((_, pts)) => pts.push((r.bits, r.stats.mse)),
                None => lines.push((key, vec![(r.bits, r.stats.mse)])),
            }
        }
        let mut chart = LineChart::new(title).axes("bits per weight (scales counted)", "mean squared error").log_y();
        for (name, mut pts) in lines {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
            chart = chart.series(name, pts);
        }
        chart.draw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nf4_table_is_the_normal_quantiles_bitsandbytes_cuts() {
        // create_normal_map: positive codes are quantile(linspace(offset, 0.5, 9)[:-1]) / quantile(offset).
        let top = normal_quantile(NF4_OFFSET);
        for k in 0..8 {
            let p = NF4_OFFSET - f64::from(k) * (NF4_OFFSET - 0.5) / 8.0;
            let want = normal_quantile(p) / top;
            assert!((f64::from(NF4_CODE[15 - k as usize]) - want).abs() < 1e-6, "code {}", 15 - k);
        }
        assert!((nf4_sigma() - 0.5412).abs() < 1e-3, "{}", nf4_sigma());
        let m = nf4_code_masses();
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Quantile codes: every code takes between 4% and 9% of the mass (uniform would be 6.25%).
        assert!(m.iter().all(|&p| (0.04..0.09).contains(&p)), "{m:?}");
        assert!((normal_quantile(normal_cdf(1.3)) - 1.3).abs() < 1e-12);
        assert!((normal_density(0.0, 1.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
    }

    #[test]
    fn even_beats_floor_on_the_heavy_tailed_matrix() {
        let r = scale_rule_errors(heavy_tailed().view()).unwrap();
        assert_eq!(r.rows.len(), 3);
        for (name, m) in &r.rows {
            assert!(m[2] < m[0], "{name}: even {} floor {}", m[2], m[0]);
            assert!(m.iter().all(|v| v.is_finite() && *v > 0.0));
        }
        let t = r.table();
        assert_eq!(t.rows()[0][0], "mxfp4");
    }

    #[test]
    fn mx_block_takes_its_exponent_from_the_largest_magnitude() {
        let mut block = [0.1f32; 32];
        block[7] = -5.0; // floor(log2 5) = 2; e2m1's emax is 2: 2^0, E8M0 127
        let b = mx_block(&block, MxElement::E2m1, ScaleRule::Floor).unwrap();
        assert_eq!((b.exponent, b.scale), (127, 1.0));
        // -5 lies halfway between e2m1's 4 and 6: ties go to the even code (4, 0b1110 with the sign).
        assert_eq!((b.values[7], b.codes[7], b.values[0]), (-4.0, 0b1110, 0.0));
        assert_eq!(b.codes.len(), 32);
        assert!(mx_block(&block[..16], MxElement::E2m1, ScaleRule::Floor).is_err());
    }

    #[test]
    fn one_outlier_spoils_one_block() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.25).collect();
        let mut y = x.clone();
        y[40] += 2.0; // exact in f32 for these values
        assert_eq!(block_mse(&x, &y, 32), vec![0.0, 4.0 / 32.0]);
        // int4 per tensor: the outlier's step zeroes the small values of the other block too.
        let mut v = ndarray::Array1::from(x);
        v[40] = 40.0;
        let int4 = QuantSpec::new(DType::Int4).symmetric();
        let whole = linear_block_mse(&v, int4, 32).unwrap();
        let grouped = linear_block_mse(&v, int4.per_group(32), 32).unwrap();
        assert_eq!(whole[1], grouped[1]);
        assert!(grouped[0] * 10.0 < whole[0], "{grouped:?} {whole:?}");
    }

    #[test]
    fn nvfp4_tensor_scale_is_amax_over_2688() {
        let x = heavy_tailed();
        let row: Vec<f32> = x.row(0).to_vec();
        let (blocks, t) = nvfp4_scales(&row, true).unwrap();
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(t, Some(amax / (448.0 * 6.0)));
        assert_eq!(blocks.len(), 512 / 16);
        let (plain, none) = nvfp4_scales(&row, false).unwrap();
        assert_eq!(none, None);
        assert_ne!(plain, blocks);
    }

    #[test]
    fn every_format_on_the_matrix() {
        let e = error_vs_bits(&heavy_tailed()).unwrap();
        assert_eq!(e.rows.len(), FORMAT_NAMES.len() + 1);
        let mse = |n: &str| e.rows.iter().find(|r| r.format.to_string() == n).unwrap().stats.mse;
        // More bits, less error, within a family.
        assert!(mse("q8_0") < mse("q6_k") && mse("q6_k") < mse("q4_k"));
        assert!(mse("mxint8 (floor)") < mse("mxfp8_e4m3 (floor)"));
        assert!(mse("mxfp6_e2m3 (floor)") < mse("mxfp4 (floor)"));
        let bits = |n: &str| e.rows.iter().find(|r| r.format.to_string() == n).unwrap().bits;
        assert_eq!((bits("q4_k"), bits("q6_k"), bits("nvfp4"), bits("mxfp4 (floor)")), (4.5, 6.5625, 4.5, 4.25));
        let t = e.table();
        assert_eq!(t.rows().len(), 17);
        assert_eq!(t.rows()[0][1], "4.1270");
        let fig = e.figure("Error against bits").unwrap();
        for want in ["NVFP4", "NF4", "GGUF K-quants", "OCP MX (floor)", "bits per weight"] {
            assert!(fig.svg().contains(want), "{want}");
        }
        assert!(nf4_figure().unwrap().svg().contains("NF4 code values"));
    }
}
