//! Memory footprint: what a tensor or a whole model takes in each data type,
//! with the scales and zero points of quantized storage counted.

use std::fmt;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::quant::{Granularity, QuantSpec};

/// Bytes stored per parameter pair of a quantized tensor: an f32 scale and an
/// i32 zero point (what the `quantlab` command line writes).
pub const PARAM_PAIR_BYTES: u64 = 8;

/// How a tensor is stored: plainly in a data type, or linearly quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// Every element in `DType` (sub-byte types packed).
    Plain(DType),
    /// Quantized codes plus their scales and zero points.
    Quantized(QuantSpec),
}

impl From<DType> for Storage {
    fn from(d: DType) -> Self {
        Storage::Plain(d)
    }
}

impl From<QuantSpec> for Storage {
    fn from(s: QuantSpec) -> Self {
        Storage::Quantized(s)
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Plain(d) => d.fmt(f),
            Storage::Quantized(s) => match s.granularity {
                Granularity::PerTensor => write!(f, "{}", s.dtype),
                Granularity::PerChannel { axis } => write!(f, "{} per-channel({axis})", s.dtype),
                Granularity::PerGroup { size } => write!(f, "{} g{size}", s.dtype),
            },
        }
    }
}

/// Bytes a tensor of `shape` takes in `storage`.
///
/// ```
/// use quantlab::{tensor_bytes, DType, QuantSpec};
/// assert_eq!(tensor_bytes(&[4096, 4096], DType::Float32.into())?, 67_108_864);
/// assert_eq!(tensor_bytes(&[4096, 4096], DType::BFloat16.into())?, 33_554_432);
/// // int4 codes pack two to a byte; each group of 128 adds a scale and a zero point.
/// let int4 = QuantSpec::new(DType::Int4).per_group(128);
/// assert_eq!(tensor_bytes(&[4096, 4096], int4.into())?, 8_388_608 + 131_072 * 8);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn tensor_bytes(shape: &[usize], storage: Storage) -> Result<u64> {
    let numel: u64 = shape.iter().map(|&d| d as u64).product();
    match storage {
        Storage::Plain(dtype) => Ok(dtype.storage_bytes(numel)),
        Storage::Quantized(spec) => {
            spec.check()?;
            let pairs = crate::quant::param_count(shape, spec.granularity)? as u64;
            Ok(spec.dtype.storage_bytes(numel) + pairs * PARAM_PAIR_BYTES)
        }
    }
}

/// Bytes `n_params` parameters take in `storage`, when only their count is
/// known (a published model size such as 7B). Per-group storage needs the
/// group to divide the count; per-channel needs shapes, so use [`model_footprint`].
///
/// ```
/// use quantlab::{params_bytes, DType, QuantSpec};
/// assert_eq!(params_bytes(7_000_000_000, DType::Float16.into())?, 14_000_000_000);
/// let int4 = QuantSpec::new(DType::Int4).symmetric().per_group(128);
/// assert_eq!(params_bytes(7_000_000_000, int4.into())?, 3_500_000_000 + 437_500_000);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn params_bytes(n_params: u64, storage: Storage) -> Result<u64> {
    if let Storage::Quantized(QuantSpec { granularity: Granularity::PerChannel { .. }, .. }) = storage {
        return Err(Error::BadParams {
            reason: "a per-channel footprint needs the tensors' shapes: use model_footprint".into(),
        });
    }
    tensor_bytes(&[n_params as usize], storage)
}

/// Compression against f32: `4 * numel / bytes`.
pub fn compression_ratio(numel: u64, bytes: u64) -> f64 {
    (4 * numel) as f64 / bytes as f64
}

/// One tensor's line in a model footprint.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorFootprint {
    /// The tensor's name.
    pub name: String,
    /// Its number of elements.
    pub numel: u64,
    /// Bytes in the chosen storage.
    pub bytes: u64,
}

/// The footprint of a whole model in one storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFootprint {
    /// The storage measured.
    pub storage: Storage,
    /// Per tensor, in the order given.
    pub tensors: Vec<TensorFootprint>,
    /// Elements in all tensors.
    pub numel: u64,
    /// Bytes of all tensors.
    pub total_bytes: u64,
}

impl ModelFootprint {
    /// Compression against f32 for the whole model.
    pub fn ratio(&self) -> f64 {
        compression_ratio(self.numel, self.total_bytes)
    }
}

/// The footprint of a model given as named tensor shapes, in `storage`.
///
/// ```
/// use quantlab::{model_footprint, DType, QuantSpec};
/// let layers = [("w1", vec![256, 64]), ("b1", vec![256]), ("w2", vec![10, 256])];
/// let f = model_footprint(layers.iter().map(|(n, s)| (*n, s.as_slice())), DType::Float32.into())?;
/// assert_eq!((f.numel, f.total_bytes), (19_200, 76_800));
/// let q = model_footprint(layers.iter().map(|(n, s)| (*n, s.as_slice())), QuantSpec::new(DType::Int8).into())?;
/// assert_eq!(q.total_bytes, 19_200 + 3 * 8);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn model_footprint<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a [usize])>,
    storage: Storage,
) -> Result<ModelFootprint> {
    let tensors = tensors
        .into_iter()
        .map(|(name, shape)| {
            Ok(TensorFootprint {
                name: name.to_string(),
                numel: shape.iter().map(|&d| d as u64).product(),
                bytes: tensor_bytes(shape, storage)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ModelFootprint {
        storage,
        numel: tensors.iter().map(|t| t.numel).sum(),
        total_bytes: tensors.iter().map(|t| t.bytes).sum(),
        tensors,
    })
}

/// Bytes in binary units, e.g. `13.04 GiB`.
///
/// ```
/// assert_eq!(quantlab::human_bytes(1536), "1.50 KiB");
/// assert_eq!(quantlab::human_bytes(14_000_000_000), "13.04 GiB");
/// assert_eq!(quantlab::human_bytes(12), "12 B");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.2} {}", UNITS[unit]) }
}
