//! The layout quantlab stores quantized tensors in, inside a safetensors file.
//!
//! For each quantized tensor `NAME` the file holds `NAME` (the codes: I8, or
//! U8 for unsigned and for packed sub-byte codes), `NAME.scale` (F32) and
//! `NAME.zero_point` (I32), and the metadata key [`KEY`] maps every `NAME`
//! to an [`Entry`].

use std::collections::BTreeMap;

use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::quant::{Granularity, QuantSpec, Scheme};

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

fn bad(reason: impl Into<String>) -> Error {
    Error::BadLayout { reason: reason.into() }
}

impl Entry {
    /// The entry of a tensor of `shape` quantized with `spec`.
    pub fn new(spec: QuantSpec, shape: &[usize]) -> Entry {
        let (axis, group_size) = match spec.granularity {
            Granularity::PerTensor => (None, None),
            Granularity::PerChannel { axis } => (Some(axis), None),
            Granularity::PerGroup { size } => (None, Some(size)),
        };
        Entry {
            dtype: spec.dtype.name().to_string(),
            shape: shape.to_vec(),
            symmetric: spec.scheme == Scheme::Symmetric,
            axis,
            group_size,
        }
    }

    /// The granularity this entry describes.
    pub fn granularity(&self) -> Result<Granularity> {
        Ok(match (self.axis, self.group_size) {
            (None, None) => Granularity::PerTensor,
            (Some(axis), None) => Granularity::PerChannel { axis },
            (None, Some(size)) => Granularity::PerGroup { size },
            (Some(_), Some(_)) => return Err(bad("both an axis and a group size are given")),
        })
    }

    /// The code type, which must be a quantization target.
    pub fn code_dtype(&self) -> Result<DType> {
        let dtype: DType = self.dtype.parse()?;
        if !DType::QUANTIZED.contains(&dtype) {
            return Err(bad(format!(
                "{dtype} is not a quantized type (expected int8, uint8, int4, uint4, int2 or uint2)"
            )));
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
    serde_json::from_str(json)
        .map_err(|e| bad(format!("the `{KEY}` metadata is not valid JSON of the expected form: {e}")))
}

/// Serialises the layout for the metadata.
pub fn to_json(layout: &Layout) -> String {
    // Maps of strings, numbers and bools always serialise.
    serde_json::to_string(layout).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_json() {
        let spec = QuantSpec::new(DType::Int4).symmetric().per_group(32);
        let mut layout = Layout::new();
        layout.insert("w".into(), Entry::new(spec, &[4, 64]));
        let json = to_json(&layout);
        assert_eq!(json, r#"{"w":{"dtype":"int4","shape":[4,64],"symmetric":true,"axis":null,"group_size":32}}"#);
        let back = parse(&json).unwrap();
        assert_eq!(back["w"].granularity().unwrap(), Granularity::PerGroup { size: 32 });
        assert_eq!(back["w"].code_dtype().unwrap(), DType::Int4);
        assert_eq!(code_shape(DType::Int4, &[4, 63]), [126]);
        assert!(parse("[1]").is_err());
        let both = Entry { axis: Some(0), ..back["w"].clone() };
        assert!(both.granularity().unwrap_err().to_string().contains("both an axis and a group size"));
        let float = Entry { dtype: "float16".into(), ..back["w"].clone() };
        assert!(float.code_dtype().is_err());
    }
}
