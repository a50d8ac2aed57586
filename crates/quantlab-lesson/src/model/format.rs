//! Weight formats for the encoder's linear layers, by name: what `--format`
//! and a notebook cell accept.
//!
//! - `f32`: as loaded;
//! - `int8`: int8 symmetric, one scale per output row (axis 0), run by the
//!   int8 kernels of [`quantlab::linear`];
//! - `int4`: int4 symmetric, groups of 32 (`int4-g128`: of 128, any multiple
//!   of 16 dividing the rows), run by the int4 kernels;
//! - the command line's integer types and schemes, `uint8`, `int2`, `uint4-g64`,
//!   `int8-asym`, ...: the weight is replaced by its quantize + dequantize round trip
//!   (what `quantlab quantize` + `quantlab dequantize` give), run in f32;
//! - the float types `bf16`, `f16`, `float8_e4m3fn`, `float8_e5m2`: the cast round trip, in f32;
//! - the block formats of [`quantlab::formats`] (`mxfp4`, `nvfp4`, `nf4`, `q4_k`,
//!   `q8_0`, ...; see [`quantlab::formats::FORMAT_NAMES`]): kept as their
//!   blocks and run by the block layer of [`quantlab::linear`] (rows are
//!   blocked as the format's reference does, NF4 over the flat tensor), which
//!   never builds the f32 weight: `q8_0`, `q4_0`, `mxfp4`, `nvfp4` and `nf4`
//!   have kernels that decode each block in registers, the others go through
//!   the generic block path (one block decoded at a time by the format's own
//!   dequantization). Either way the numbers are the format's dequantized
//!   ones. Rows that are not whole blocks (MiniLM's 384 for the K-quants'
//!   256-value super-blocks) are the library's typed error.
//!
//! Only the 2-D weight matrices of the encoder are touched: the token,
//! position and type tables are lookups, not products, and biases and
//! LayerNorm are 1-D and tiny (0.3% of the encoder), so they stay f32, as
//! they do in bitsandbytes' and torchao's weight-only schemes.

use std::fmt;

use ndarray::Array2;
use quantlab::formats::BlockFormat;
use quantlab::linear::Linear;
use quantlab::{CastExt, CastOptions, DType, QuantSpec, QuantizeExt};

use super::error::{ModelError, Result};

/// A weight format for [`super::MiniLm::with_format`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Format {
    /// The weights as loaded.
    F32,
    /// int8 symmetric per output row, computed on the codes.
    Int8,
    /// int4 symmetric per group of this many values of a row, computed on the codes.
    Int4 {
        /// Values per scale.
        group: usize,
    },
    /// The quantize + dequantize round trip of `spec`, computed in f32.
    RoundTrip(QuantSpec),
    /// The cast round trip through a float type, computed in f32.
    Cast(DType),
    /// A block format (MX, NVFP4, NF4, ggml), computed on its blocks
    /// ([`Linear::block`]).
    Block(BlockFormat),
}

const KNOWN: &str = "f32, int8, int4, int4-gG (G a multiple of 16, e.g. int4-g128), an integer type with \
    -gG or -axis0 and -asym (uint8, int2-g32, uint4-asym-g64, ...), bf16, f16, float8_e4m3fn, float8_e5m2, or a block format (mxfp4, nvfp4, nf4, q4_k, q8_0, ...)";

impl Format {
    /// Parses a format name (see the module's list).
    pub fn parse(name: &str) -> Result<Self> {
        let unknown = || ModelError::UnknownFormat { name: name.to_string(), known: KNOWN.to_string() };
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "f32" | "float32" => return Ok(Format::F32),
            "int8" => return Ok(Format::Int8),
            "int4" => return Ok(Format::Int4 { group: 32 }),
            _ => {}
        }
        if let Ok(block) = BlockFormat::parse(&lower) {
            return Ok(Format::Block(block));
        }
        let mut parts = lower.split('-');
        let dtype = parts.next().unwrap_or_default().parse::<DType>().map_err(|_| unknown())?;
        if dtype.is_float() {
            return if parts.next().is_none() && dtype != DType::Float64 {
                Ok(Format::Cast(dtype))
            } else {
                Err(unknown())
            };
        }
        let (mut asym, mut group, mut axis) = (false, None, false);
        for p in parts {
            match p {
                "asym" => asym = true,
                "sym" => asym = false,
                "axis0" => axis = true,
                g if g.starts_with('g') => group = Some(g[1..].parse::<usize>().map_err(|_| unknown())?),
                _ => return Err(unknown()),
            }
        }
        let spec = QuantSpec::new(dtype);
        // Signed types default to symmetric, unsigned ones can only be asymmetric.
        let spec = if asym || !dtype.is_signed() { spec.asymmetric() } else { spec.symmetric() };
        let spec = match (group, axis) {
            (Some(_), true) => return Err(unknown()),
            (Some(g), false) => spec.per_group(g),
            (None, _) => spec.per_channel(0),
        };
        // A type linear quantization does not take (int5, ...) is not a format either.
        spec.check().map_err(|_| unknown())?;
        Ok(match (spec.dtype, spec.scheme, spec.granularity) {
            (DType::Int8, quantlab::Scheme::Symmetric, quantlab::Granularity::PerChannel { axis: 0 }) => Format::Int8,
            (DType::Int4, quantlab::Scheme::Symmetric, quantlab::Granularity::PerGroup { size })
                if size.is_multiple_of(16) =>
            {
                Format::Int4 { group: size }
            }
            _ => Format::RoundTrip(spec),
        })
    }

    /// `layer` with its weight in this format (the bias kept).
    pub fn apply(&self, layer: &Linear) -> Result<Linear> {
        let bias = layer.bias().cloned();
        let w = layer.dequantized_weight();
        Ok(match self {
            Format::F32 => Linear::new(w, bias)?,
            Format::Int8 => Linear::int8_per_channel(w.view(), bias)?,
            Format::Int4 { group } => Linear::int4_per_group(w.view(), *group, bias)?,
            Format::RoundTrip(spec) => Linear::new(w.quantize(*spec)?.dequantize()?, bias)?,
            Format::Cast(dtype) => Linear::new(cast_round_trip(&w, *dtype)?, bias)?,
            Format::Block(block) => Linear::block(w.view(), *block, bias)?,
        })
    }

    /// Bits per weight this format stores (scales included), for a layer of `cols` inputs.
    pub fn bits_per_weight(&self, cols: usize) -> f64 {
        match self {
            Format::F32 => 32.0,
            Format::Int8 => 8.0 + 32.0 / cols as f64,
            Format::Int4 { group } => 4.0 + 32.0 / *group as f64,
            Format::RoundTrip(spec) => {
                let per = match spec.granularity {
                    quantlab::Granularity::PerGroup { size } => size,
                    _ => cols,
                };
                f64::from(spec.dtype.bits()) + 64.0 / per as f64
            }
            Format::Cast(dtype) => f64::from(dtype.bits()),
            Format::Block(block) => block.bits_per_weight(),
        }
    }
}

fn cast_round_trip(w: &Array2<f32>, dtype: DType) -> Result<Array2<f32>> {
    use quantlab::float8::{F8E4M3, F8E5M2};
    use quantlab::half::{bf16, f16};
    let opts = CastOptions::default();
    Ok(match dtype {
        DType::Float32 => w.clone(),
        DType::BFloat16 => w.cast_with::<bf16>(opts)?.cast::<f32>()?,
        DType::Float16 => w.cast_with::<f16>(opts)?.cast::<f32>()?,
        DType::Float8E4M3Fn => w.cast_with::<F8E4M3>(CastOptions::saturating())?.cast::<f32>()?,
        DType::Float8E5M2 => w.cast_with::<F8E5M2>(opts)?.cast::<f32>()?,
        other => {
            return Err(ModelError::UnknownFormat { name: other.to_string(), known: KNOWN.to_string() });
        }
    })
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::F32 => f.write_str("f32"),
            Format::Int8 => f.write_str("int8 symmetric per-channel (axis 0)"),
            Format::Int4 { group } => write!(f, "int4 symmetric per-group (G={group})"),
            Format::RoundTrip(spec) => write!(f, "{spec}"),
            Format::Cast(dtype) => write!(f, "{dtype}"),
            Format::Block(block) => f.write_str(block.name()),
        }
    }
}
