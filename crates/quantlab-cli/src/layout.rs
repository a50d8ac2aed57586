//! The layout `quantize` writes and `dequantize` reads.
//!
//! For each quantized tensor `NAME` the file holds `NAME` (the codes: I8, or
//! U8 for unsigned and for packed sub-byte codes), `NAME.scale` (F32) and
//! `NAME.zero_point` (I32), and the metadata key `quantlab` maps every `NAME`
//! to a [`Entry`].

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use quantlab::{DType, Granularity};
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

/// The metadata key that holds the layout.
pub const KEY: &str = "quantlab";

/// How one tensor was quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The code type's name, e.g. `int4`.
    pub dtype: String,
    /// The original tensor's shape.
    pub shape: Vec<usize>,
    /// Whether the symmetric scheme was used.
    pub symmetric: bool,
    /// The per-channel axis, if any.
    pub axis: Option<usize>,
    /// The per-group size, if any.
    pub group_size: Option<usize>,
}

/// The whole `quantlab` metadata value, ordered by name.
pub type Layout = BTreeMap<String, Entry>;

impl Entry {
    /// The granularity this entry describes.
    pub fn granularity(&self) -> Result<Granularity> {
        Ok(match (self.axis, self.group_size) {
            (None, None) => Granularity::PerTensor,
            (Some(axis), None) => Granularity::PerChannel { axis },
            (None, Some(size)) => Granularity::PerGroup { size },
            (Some(_), Some(_)) => bail!("both an axis and a group size are given"),
        })
    }

    /// The code type, which must be a quantization target.
    pub fn code_dtype(&self) -> Result<DType> {
        let dtype: DType = self.dtype.parse()?;
        if !DType::QUANTIZED.contains(&dtype) {
            bail!("{dtype} is not a quantized type (expected int8, uint8, int4, uint4, int2 or uint2)");
        }
        Ok(dtype)
    }
}

/// The safetensors type the codes of `dtype` are stored in.
pub fn code_storage(dtype: DType) -> Dtype {
    if dtype == DType::Int8 { Dtype::I8 } else { Dtype::U8 }
}

/// The shape the codes of a tensor of `shape` are stored in: the tensor's own
/// for 8-bit codes, one dimension of packed bytes for sub-byte codes.
pub fn code_shape(dtype: DType, shape: &[usize]) -> Vec<usize> {
    if dtype.is_sub_byte() {
        let numel: usize = shape.iter().product();
        vec![dtype.storage_bytes(numel as u64) as usize]
    } else {
        shape.to_vec()
    }
}

/// The shape of the scales and zero points: `[]` per tensor, `[shape[axis]]`
/// per channel, `[numel / G]` per group.
pub fn param_shape(granularity: Granularity, count: usize) -> Vec<usize> {
    match granularity {
        Granularity::PerTensor => vec![],
        _ => vec![count],
    }
}

/// Parses the `quantlab` metadata value.
pub fn parse(json: &str) -> Result<Layout> {
    serde_json::from_str(json).context("the `quantlab` metadata is not valid JSON of the expected form")
}

/// Serialises the layout for the metadata.
pub fn to_json(layout: &Layout) -> String {
    serde_json::to_string(layout).expect("maps of strings, numbers and bools always serialise")
}
