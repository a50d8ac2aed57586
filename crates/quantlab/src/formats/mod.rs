//! Block-scaled formats, bit-exact with the code their ecosystems run.
//!
//! | format | block | reference it matches | bits per weight |
//! |---|---|---|---|
//! | `mxfp8_e4m3` `mxfp8_e5m2` `mxfp6_e2m3` `mxfp6_e3m2` `mxfp4` | 32 | torchao 0.18 `to_mx` / `to_dtype` | 8.25, 6.25, 4.25 |
//! | `mxint8` | 32 | the OCP MX v1.0 rule (torchao 0.18 has none) | 8.25 |
//! | `nvfp4` | 16 | torchao 0.18 `nvfp4_quantize` | 4.5 (+ 32 bits a tensor) |
//! | `nf4` | 64 (32..4096) | bitsandbytes 0.50 `quantize_4bit` (CPU) | 4.5; ~4.127 double-quantized |
//! | `q8_0` `q4_0` `q4_1` `q5_0` `q5_1` | 32 | gguf-py 0.19 `gguf.quants.quantize` | 8.5, 4.5, 5, 5.5, 6 |
//! | `q4_k` `q6_k` | 256 | ggml `quantize_row_q{4,6}_K_ref` (ggml-python 0.0.45) | 4.5, 6.5625 |
//! | `gguf_mxfp4` | 32 | gguf-py 0.19 MXFP4 (ties toward zero) | 4.25 |
//!
//! [`BlockFormat::quantize`] takes rows of f32 (a row-major tensor whose last
//! axis has `cols` values) and gives a [`BlockQuantized`]: the packed bytes
//! and, where the format keeps them apart, its scales. Rows must be whole
//! blocks, except for NF4, which (as bitsandbytes) blocks the flat tensor and
//! allows a short last block. NaN and infinities are refused: none of these
//! references defines what they become.

pub(crate) mod ggml;
pub(crate) mod kquants;
pub(crate) mod lut4;
pub(crate) mod mx;
pub(crate) mod nf4;
pub(crate) mod nvfp4;

pub use kquants::{Q4_K_BYTES, Q4KParts, q4_k_parts};
pub use mx::{MxElement, ScaleRule};
pub use nf4::{DOUBLE_QUANT_BLOCK as NF4_DOUBLE_QUANT_BLOCK, DYNAMIC_CODE, NF4_CODE};
pub use nvfp4::tensor_scale_of;

use crate::arch::formats_kernels::chosen as kernels;
use crate::arch::formats_kernels::{DequantizeNf4, QuantizeNf4};
use crate::error::{Error, Result};

/// A ggml block type (the names are GGUF's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlBlock {
    /// 32 × i8 and an f16 scale.
    Q8_0,
    /// 32 × 4 bits, symmetric, f16 scale.
    Q4_0,
    /// 32 × 4 bits, f16 scale and minimum.
    Q4_1,
    /// 32 × 5 bits, symmetric.
    Q5_0,
    /// 32 × 5 bits, scale and minimum.
    Q5_1,
    /// 256-value super-blocks of 4 bits with 6-bit sub-block scales and mins.
    Q4K,
    /// 256-value super-blocks of 6 bits with 8-bit sub-block scales.
    Q6K,
    /// GGUF's MXFP4: an e8m0 byte and 32 e2m1 codes.
    Mxfp4,
}

impl GgmlBlock {
    /// Values in one block.
    pub fn block_size(self) -> usize {
        match self {
            GgmlBlock::Q4K | GgmlBlock::Q6K => kquants::QK_K,
            _ => ggml::QK,
        }
    }

    /// Bytes of one block.
    pub fn type_size(self) -> usize {
        match self {
            GgmlBlock::Q8_0 => 34,
            GgmlBlock::Q4_0 => 18,
            GgmlBlock::Q4_1 => 20,
            GgmlBlock::Q5_0 => 22,
            GgmlBlock::Q5_1 => 24,
            GgmlBlock::Q4K => kquants::Q4_K_BYTES,
            GgmlBlock::Q6K => kquants::Q6_K_BYTES,
            GgmlBlock::Mxfp4 => 17,
        }
    }

    /// The ggml type id GGUF files store (`GGMLQuantizationType`).
    pub fn ggml_type(self) -> u32 {
        match self {
            GgmlBlock::Q4_0 => 2,
            GgmlBlock::Q4_1 => 3,
            GgmlBlock::Q5_0 => 6,
            GgmlBlock::Q5_1 => 7,
            GgmlBlock::Q8_0 => 8,
            GgmlBlock::Q4K => 12,
            GgmlBlock::Q6K => 14,
            GgmlBlock::Mxfp4 => 39,
        }
    }

    /// The block type of a ggml type id, if quantlab has it.
    pub fn from_ggml_type(id: u32) -> Option<Self> {
        ALL_GGML.into_iter().find(|b| b.ggml_type() == id)
    }

    /// The GGUF name (`Q4_K`).
    pub fn gguf_name(self) -> &'static str {
        match self {
            GgmlBlock::Q8_0 => "Q8_0",
            GgmlBlock::Q4_0 => "Q4_0",
            GgmlBlock::Q4_1 => "Q4_1",
            GgmlBlock::Q5_0 => "Q5_0",
            GgmlBlock::Q5_1 => "Q5_1",
            GgmlBlock::Q4K => "Q4_K",
            GgmlBlock::Q6K => "Q6_K",
            GgmlBlock::Mxfp4 => "MXFP4",
        }
    }

    /// Quantizes whole blocks of `x` into `out` (`x.len() / block * type_size` bytes).
    pub(crate) fn quantize_blocks(self, x: &[f32], out: &mut [u8]) {
        match self {
            GgmlBlock::Q8_0 => (kernels().quantize_q8_0)(x, out),
            GgmlBlock::Q4_0 => (kernels().quantize_q4_0)(x, out),
            GgmlBlock::Q4_1 => ggml::quantize_q4_1(x, out),
            GgmlBlock::Q5_0 => ggml::quantize_q5_0(x, out),
            GgmlBlock::Q5_1 => ggml::quantize_q5_1(x, out),
            GgmlBlock::Q4K => kquants::quantize_q4_k(x, out),
            GgmlBlock::Q6K => kquants::quantize_q6_k(x, out),
            GgmlBlock::Mxfp4 => (kernels().quantize_gguf_mxfp4)(x, out),
        }
    }

    /// Dequantizes whole blocks (`q.len() / type_size * block` values into `out`).
    pub(crate) fn dequantize_blocks(self, q: &[u8], out: &mut [f32]) {
        match self {
            GgmlBlock::Q8_0 => (kernels().dequantize_q8_0)(q, out),
            GgmlBlock::Q4_0 => (kernels().dequantize_q4_0)(q, out),
            GgmlBlock::Q4_1 => ggml::dequantize_q4_1(q, out),
            GgmlBlock::Q5_0 => ggml::dequantize_q5_0(q, out),
            GgmlBlock::Q5_1 => ggml::dequantize_q5_1(q, out),
            GgmlBlock::Q4K => kquants::dequantize_q4_k(q, out),
            GgmlBlock::Q6K => kquants::dequantize_q6_k(q, out),
            GgmlBlock::Mxfp4 => (kernels().dequantize_gguf_mxfp4)(q, out),
        }
    }

    /// Dequantizes `n` values from their blocks, checking the byte count.
    pub fn dequantize(self, q: &[u8], n: usize) -> Result<Vec<f32>> {
        let block = self.block_size();
        if !n.is_multiple_of(block) {
            return Err(Error::BlockMismatch { format: self.gguf_name().to_string(), block, len: n });
        }
        let expected = n / block * self.type_size();
        if q.len() != expected {
            return Err(Error::WrongByteLength {
                what: format!("{} blocks", self.gguf_name()),
                expected,
                got: q.len(),
            });
        }
        let mut out = crate::buffer::zeroed::<f32>(n);
        self.dequantize_blocks(q, &mut out);
        Ok(out)
    }
}

const ALL_GGML: [GgmlBlock; 8] = [
    GgmlBlock::Q8_0,
    GgmlBlock::Q4_0,
    GgmlBlock::Q4_1,
    GgmlBlock::Q5_0,
    GgmlBlock::Q5_1,
    GgmlBlock::Q4K,
    GgmlBlock::Q6K,
    GgmlBlock::Mxfp4,
];

/// A block-scaled format and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockFormat {
    /// OCP MX: 32 elements sharing an E8M0 scale.
    Mx {
        /// The element type.
        element: MxElement,
        /// How the shared exponent is chosen.
        rule: ScaleRule,
    },
    /// NVFP4: 16 e2m1 values, an e4m3fn scale, optionally an f32 tensor scale.
    Nvfp4 {
        /// Whether to use the per-tensor scale (torchao's `per_tensor_scale`).
        tensor_scale: bool,
    },
    /// bitsandbytes NF4.
    Nf4 {
        /// Values per absmax: a power of two from 32 to 4096.
        block: usize,
        /// Double quantization of the absmaxes (`compress_statistics`).
        double_quant: bool,
    },
    /// A ggml block type, exactly as stored in GGUF files.
    Ggml(GgmlBlock),
}

/// Every format name [`BlockFormat::parse`] accepts.
pub const FORMAT_NAMES: [&str; 16] = [
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxfp4",
    "mxint8",
    "nvfp4",
    "nf4",
    "q8_0",
    "q4_0",
    "q4_1",
    "q5_0",
    "q5_1",
    "q4_k",
    "q6_k",
    "gguf_mxfp4",
];

impl BlockFormat {
    /// A format from its name (see [`FORMAT_NAMES`]), with the defaults: MX
    /// scale rule FLOOR, NVFP4 with a tensor scale, NF4 blocks of 64 without
    /// double quantization. Case-insensitive.
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let mx = |element| BlockFormat::Mx { element, rule: ScaleRule::Floor };
        Ok(match lower.as_str() {
            "mxfp8_e4m3" => mx(MxElement::E4m3),
            "mxfp8_e5m2" => mx(MxElement::E5m2),
            "mxfp6_e2m3" => mx(MxElement::E2m3),
            "mxfp6_e3m2" => mx(MxElement::E3m2),
            "mxfp4" => mx(MxElement::E2m1),
            "mxint8" => mx(MxElement::Int8),
            "nvfp4" => BlockFormat::Nvfp4 { tensor_scale: true },
            "nf4" => BlockFormat::Nf4 { block: 64, double_quant: false },
            "q8_0" => BlockFormat::Ggml(GgmlBlock::Q8_0),
            "q4_0" => BlockFormat::Ggml(GgmlBlock::Q4_0),
            "q4_1" => BlockFormat::Ggml(GgmlBlock::Q4_1),
            "q5_0" => BlockFormat::Ggml(GgmlBlock::Q5_0),
            "q5_1" => BlockFormat::Ggml(GgmlBlock::Q5_1),
            "q4_k" => BlockFormat::Ggml(GgmlBlock::Q4K),
            "q6_k" => BlockFormat::Ggml(GgmlBlock::Q6K),
            "gguf_mxfp4" => BlockFormat::Ggml(GgmlBlock::Mxfp4),
            _ => return Err(Error::UnknownFormat { name: name.to_string(), known: FORMAT_NAMES.join(", ") }),
        })
    }

    /// The format's name (as [`BlockFormat::parse`] takes it; options not included).
    pub fn name(&self) -> &'static str {
        match *self {
            BlockFormat::Mx { element, .. } => match element {
                MxElement::E4m3 => "mxfp8_e4m3",
                MxElement::E5m2 => "mxfp8_e5m2",
                MxElement::E2m3 => "mxfp6_e2m3",
                MxElement::E3m2 => "mxfp6_e3m2",
                MxElement::E2m1 => "mxfp4",
                MxElement::Int8 => "mxint8",
            },
            BlockFormat::Nvfp4 { .. } => "nvfp4",
            BlockFormat::Nf4 { .. } => "nf4",
            BlockFormat::Ggml(b) => match b {
                GgmlBlock::Q8_0 => "q8_0",
                GgmlBlock::Q4_0 => "q4_0",
                GgmlBlock::Q4_1 => "q4_1",
                GgmlBlock::Q5_0 => "q5_0",
                GgmlBlock::Q5_1 => "q5_1",
                GgmlBlock::Q4K => "q4_k",
                GgmlBlock::Q6K => "q6_k",
                GgmlBlock::Mxfp4 => "gguf_mxfp4",
            },
        }
    }

    /// The same MX format with another scale rule (other formats unchanged).
    pub fn with_scale_rule(self, rule: ScaleRule) -> Self {
        match self {
            BlockFormat::Mx { element, .. } => BlockFormat::Mx { element, rule },
            other => other,
        }
    }

    /// NF4 with another block size (checked: a power of two from 32 to 4096) and double quantization.
    pub fn nf4(block: usize, double_quant: bool) -> Result<Self> {
        if !(32..=4096).contains(&block) || !block.is_power_of_two() {
            return Err(Error::BadParams {
                reason: format!("NF4 block size {block} is not one bitsandbytes takes: use 32, 64, 128, ..., 4096"),
            });
        }
        Ok(BlockFormat::Nf4 { block, double_quant })
    }

    /// Values per block (NF4: per absmax).
    pub fn block_size(&self) -> usize {
        match *self {
            BlockFormat::Mx { .. } => 32,
            BlockFormat::Nvfp4 { .. } => nvfp4::BLOCK,
            BlockFormat::Nf4 { block, .. } => block,
            BlockFormat::Ggml(b) => b.block_size(),
        }
    }

    /// Whether rows must be whole blocks (all but NF4).
    pub fn needs_whole_rows(&self) -> bool {
        !matches!(self, BlockFormat::Nf4 { .. })
    }

    /// True bits per weight, every per-block scale counted (per-tensor
    /// constants are in [`BlockFormat::bits_per_tensor`]): MXFP4 4.25, NVFP4
    /// 4.5, NF4 4.5 (4 + 8/64 + 32/(64 × 256) ≈ 4.127 double-quantized), Q4_K
    /// 4.5, Q6_K 6.5625, Q8_0 8.5.
    pub fn bits_per_weight(&self) -> f64 {
        match *self {
            BlockFormat::Mx { element, .. } => f64::from(element.bits()) + 8.0 / 32.0,
            BlockFormat::Nvfp4 { .. } => 4.0 + 8.0 / 16.0,
            BlockFormat::Nf4 { block, double_quant: false } => 4.0 + 32.0 / block as f64,
            BlockFormat::Nf4 { block, double_quant: true } => {
                4.0 + 8.0 / block as f64 + 32.0 / (block * nf4::DOUBLE_QUANT_BLOCK) as f64
            }
            BlockFormat::Ggml(b) => (b.type_size() * 8) as f64 / b.block_size() as f64,
        }
    }

    /// Bits stored once per tensor: NVFP4's f32 tensor scale, NF4's f32 offset when double-quantized.
    pub fn bits_per_tensor(&self) -> u64 {
        match *self {
            BlockFormat::Nvfp4 { tensor_scale: true } | BlockFormat::Nf4 { double_quant: true, .. } => 32,
            _ => 0,
        }
    }

    /// Quantizes a row-major tensor of `x.len()` values whose last axis has
    /// `cols` values. Errors: an empty tensor, `cols` not dividing the length,
    /// rows that are not whole blocks, NaN or infinity.
    pub fn quantize(&self, x: &[f32], cols: usize) -> Result<BlockQuantized> {
        let what = "block quantization";
        if x.is_empty() || cols == 0 {
            return Err(Error::Empty { what });
        }
        if !x.len().is_multiple_of(cols) {
            return Err(Error::ShapeMismatch { what, left: vec![x.len()], right: vec![cols] });
        }
        let block = self.block_size();
        if self.needs_whole_rows() && !cols.is_multiple_of(block) {
            return Err(Error::BlockMismatch { format: self.name().to_string(), block, len: cols });
        }
        let (rows, n) = (x.len() / cols, x.len());
        // The formats whose blocks are independent are checked a step at a
        // time, each step quantized while it is still in cache: one pass
        // over memory rather than two.
        let (data, scales) = match *self {
            BlockFormat::Ggml(b) => {
                let mut out = crate::buffer::zeroed::<u8>(n / block * b.type_size());
                let out_step = STEP / block * b.type_size();
                for (i, (x, out)) in x.chunks(STEP).zip(out.chunks_mut(out_step)).enumerate() {
                    check_finite(x, i * STEP)?;
                    b.quantize_blocks(x, out);
                }
                (out, Scales::InBlocks)
            }
            BlockFormat::Mx { element, rule } => {
                let mut scales = vec![0u8; n / 32];
                let mut codes = crate::buffer::zeroed::<u8>(element.packed_len(n));
                // The kernels of e2m1, e4m3 and e5m2 check finiteness themselves
                // (in their block maxima where they can): one call over the tensor.
                let kernel = match element {
                    MxElement::E2m1 => Some(kernels().quantize_mxfp4),
                    MxElement::E4m3 => Some(kernels().quantize_mxfp8_e4m3),
                    MxElement::E5m2 => Some(kernels().quantize_mxfp8_e5m2),
                    _ => None,
                };
                if let Some(kernel) = kernel {
                    if !kernel(x, rule, &mut scales, &mut codes) {
                        check_finite(x, 0)?;
                    }
                } else {
                    let steps = x
                        .chunks(STEP)
                        .zip(scales.chunks_mut(STEP / 32))
                        .zip(codes.chunks_mut(element.packed_len(STEP)));
                    for (i, ((x, scales), codes)) in steps.enumerate() {
                        check_finite(x, i * STEP)?;
                        mx::quantize(x, element, rule, scales, codes);
                    }
                }
                (codes, Scales::E8m0(scales))
            }
            BlockFormat::Nvfp4 { tensor_scale } => {
                check_finite(x, 0)?;
                let t = if tensor_scale {
                    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                    if amax == 0.0 {
                        return Err(Error::BadParams {
                            reason: "an all-zero tensor has no NVFP4 tensor scale (torchao's would be 0 and every block scale NaN): quantize it without one".into(),
                        });
                    }
                    Some(tensor_scale_of(amax))
                } else {
                    None
                };
                let mut scales = vec![0u8; n / nvfp4::BLOCK];
                let mut codes = crate::buffer::zeroed::<u8>(n / 2);
                (kernels().quantize_nvfp4)(x, t, &mut scales, &mut codes);
                (codes, Scales::E4m3 { blocks: scales, tensor: t })
            }
            BlockFormat::Nf4 { block, double_quant } => {
                check_finite(x, 0)?;
                let q = nf4::quantize(x, block, kernels().quantize_nf4);
                let scales = if double_quant {
                    let dq = nf4::double_quantize(&q.absmax);
                    Scales::DoubleQuant { codes: dq.codes, absmax2: dq.absmax2, offset: dq.offset }
                } else {
                    Scales::Absmax(q.absmax)
                };
                (q.packed, scales)
            }
        };
        Ok(BlockQuantized { format: *self, rows, cols, data, scales })
    }
}

/// Values quantized per step where blocks are independent: 32 KiB of f32,
/// a multiple of every block size, small enough to stay in L1 or L2 cache.
const STEP: usize = 8192;

/// `NonFinite` for the first NaN or infinity of `x`, whose first value is
/// value `offset` of the tensor: the chosen kernels' scan at full vector
/// width, and only for a slice that has a non-finite value a search for where.
fn check_finite(x: &[f32], offset: usize) -> Result<()> {
    if (kernels().all_finite)(x) {
        return Ok(());
    }
    let index = x.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Err(Error::NonFinite { what: "block quantization", value: x[index].to_string(), index: offset + index })
}

impl std::fmt::Display for BlockFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BlockFormat::Mx { rule, .. } => write!(f, "{} ({})", self.name(), rule.name()),
            BlockFormat::Nvfp4 { tensor_scale } => {
                write!(f, "nvfp4{}", if tensor_scale { "" } else { " (no tensor scale)" })
            }
            BlockFormat::Nf4 { block, double_quant } => {
                write!(f, "nf4 (block {block}{})", if double_quant { ", double quant" } else { "" })
            }
            BlockFormat::Ggml(_) => f.write_str(self.name()),
        }
    }
}

impl std::str::FromStr for BlockFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BlockFormat::parse(s)
    }
}

/// Where a block format keeps its scales.
#[derive(Debug, Clone, PartialEq)]
pub enum Scales {
    /// Inside each block (the ggml types).
    InBlocks,
    /// One E8M0 byte per block of 32 (MX).
    E8m0(Vec<u8>),
    /// One e4m3fn byte per block of 16 and the optional tensor scale (NVFP4).
    E4m3 {
        /// The block scales.
        blocks: Vec<u8>,
        /// The f32 per-tensor scale.
        tensor: Option<f32>,
    },
    /// One f32 absmax per block (NF4).
    Absmax(Vec<f32>),
    /// NF4's absmaxes double-quantized: dynamic-code bytes, an f32 absmax per
    /// 256 of them, and the mean taken off.
    DoubleQuant {
        /// One byte per NF4 block ([`DYNAMIC_CODE`] indices).
        codes: Vec<u8>,
        /// One f32 per 256 NF4 blocks.
        absmax2: Vec<f32>,
        /// The mean of the absmaxes.
        offset: f32,
    },
}

/// A tensor in a block format: its packed bytes and scales.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockQuantized {
    /// The format.
    pub format: BlockFormat,
    /// Rows (the product of all but the last axis).
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// The packed bytes: ggml blocks, MX/NVFP4 element codes, NF4 nibbles.
    pub data: Vec<u8>,
    /// The scales, where the format keeps them apart from `data`.
    pub scales: Scales,
}

impl BlockQuantized {
    /// Values held.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes stored, scales included.
    pub fn nbytes(&self) -> usize {
        self.data.len()
            + match &self.scales {
                Scales::InBlocks => 0,
                Scales::E8m0(s) => s.len(),
                Scales::E4m3 { blocks, tensor } => blocks.len() + if tensor.is_some() { 4 } else { 0 },
                Scales::Absmax(a) => 4 * a.len(),
                Scales::DoubleQuant { codes, absmax2, .. } => codes.len() + 4 * absmax2.len() + 4,
            }
    }

    /// Checks that the parts' lengths fit the format and shape (for parts read from a file).
    pub fn validate(&self) -> Result<()> {
        let n = self.len();
        let block = self.format.block_size();
        if self.format.needs_whole_rows() && !self.cols.is_multiple_of(block) {
            return Err(Error::BlockMismatch { format: self.format.name().to_string(), block, len: self.cols });
        }
        let name = self.format.name();
        let check = |what: &str, expected: usize, got: usize| {
            if expected == got {
                Ok(())
            } else {
                Err(Error::WrongByteLength { what: format!("{name} {what}"), expected, got })
            }
        };
        match (&self.format, &self.scales) {
            (BlockFormat::Ggml(b), Scales::InBlocks) => check("blocks", n / block * b.type_size(), self.data.len()),
            (BlockFormat::Mx { element, .. }, Scales::E8m0(s)) => {
                check("codes", element.packed_len(n), self.data.len())?;
                check("scales", n / 32, s.len())
            }
            (BlockFormat::Nvfp4 { .. }, Scales::E4m3 { blocks, .. }) => {
                check("codes", n / 2, self.data.len())?;
                check("scales", n / nvfp4::BLOCK, blocks.len())
            }
            (BlockFormat::Nf4 { .. }, Scales::Absmax(a)) => {
                check("codes", n.div_ceil(2), self.data.len())?;
                check("absmax values", n.div_ceil(block), a.len())
            }
            (BlockFormat::Nf4 { .. }, Scales::DoubleQuant { codes, absmax2, .. }) => {
                check("codes", n.div_ceil(2), self.data.len())?;
                check("absmax codes", n.div_ceil(block), codes.len())?;
                check("second-level absmax values", codes.len().div_ceil(nf4::DOUBLE_QUANT_BLOCK), absmax2.len())
            }
            _ => Err(Error::BadParams { reason: format!("{name} does not keep its scales that way") }),
        }
    }

    /// Back to f32, row-major, as the format's reference dequantizes.
    pub fn dequantize(&self) -> Result<Vec<f32>> {
        self.validate()?;
        let n = self.len();
        let mut out = crate::buffer::zeroed::<f32>(n);
        match (&self.format, &self.scales) {
            (BlockFormat::Ggml(b), _) => b.dequantize_blocks(&self.data, &mut out),
            (BlockFormat::Mx { element: MxElement::E2m1, .. }, Scales::E8m0(s)) => {
                (kernels().dequantize_mxfp4)(s, &self.data, &mut out)
            }
            (BlockFormat::Mx { element: MxElement::E4m3, .. }, Scales::E8m0(s)) => {
                (kernels().dequantize_mxfp8_e4m3)(s, &self.data, &mut out)
            }
            (BlockFormat::Mx { element: MxElement::E5m2, .. }, Scales::E8m0(s)) => {
                (kernels().dequantize_mxfp8_e5m2)(s, &self.data, &mut out)
            }
            (BlockFormat::Mx { element, .. }, Scales::E8m0(s)) => mx::dequantize(*element, s, &self.data, &mut out),
            (BlockFormat::Nvfp4 { .. }, Scales::E4m3 { blocks, tensor }) => {
                (kernels().dequantize_nvfp4)(blocks, *tensor, &self.data, &mut out)
            }
            (BlockFormat::Nf4 { block, .. }, Scales::Absmax(a)) => {
                nf4::dequantize(&self.data, a, *block, &mut out, kernels().dequantize_nf4)
            }
            (BlockFormat::Nf4 { block, .. }, Scales::DoubleQuant { codes, absmax2, offset }) => {
                let dq = nf4::DoubleQuant { codes: codes.clone(), absmax2: absmax2.clone(), offset: *offset };
                nf4::dequantize(&self.data, &nf4::double_dequantize(&dq), *block, &mut out, kernels().dequantize_nf4)
            }
            _ => return Err(Error::BadParams { reason: format!("{} does not keep its scales that way", self.format) }),
        }
        Ok(out)
    }

    /// MX or NVFP4 element codes one per byte (fp6 unpacked into the low 6
    /// bits, fp4 into the low nibble), as torchao holds fp6.
    pub fn element_codes(&self) -> Option<Vec<u8>> {
        match self.format {
            BlockFormat::Mx { element, .. } => {
                Some(self.data.chunks_exact(element.packed_len(32)).flat_map(|b| mx::unpack(element, b)).collect())
            }
            BlockFormat::Nvfp4 { .. } => Some(self.data.iter().flat_map(|&b| [b & 15, b >> 4]).collect()),
            _ => None,
        }
    }
}

#[doc(hidden)]
pub use crate::arch::formats_kernels::{FormatKernels, QuantizeMx};

/// Every block-format kernel table this CPU can run (best first, the scalar
/// reference last), whatever `QUANTLAB_KERNEL` says: for tests that compare
/// each with the reference, and benchmarks.
#[doc(hidden)]
pub fn format_kernels() -> Vec<&'static FormatKernels> {
    crate::arch::formats_kernels::format_tables()
}

#[doc(hidden)]
/// Internal numerics exposed for the golden tests: torch's f32 sum, numpy's floor(log2), torch's ceil(log2).
pub mod numerics {
    /// torch 2.15's single-thread f32 `sum` of a contiguous vector (see the NF4 module).
    pub fn torch_sum(x: &[f32]) -> f32 {
        super::nf4::torch_sum(x)
    }
    /// `floor(np.log2(x))` as numpy computes it in f32.
    pub fn floor_log2_numpy(x: f32) -> f32 {
        super::ggml::floor_log2_numpy(x)
    }
    /// `ceil(torch.log2(x))` as torch computes it in f32.
    pub fn ceil_log2_torch(x: f32) -> f32 {
        super::mx::ceil_log2_torch(x)
    }
}
