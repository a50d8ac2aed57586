//! Linear quantization: `q = clamp(round(x / s) + z, qmin, qmax)` and back,
//! `x ≈ s * (q - z)`, per tensor, per channel or per group.
//!
//! All arithmetic is f32 with a true division and round-half-to-even, so codes
//! are bit-exact with PyTorch evaluating the same formula on float32 tensors.

mod fused;
mod layout;
mod params;
mod spec;

use std::fmt;

use ndarray::{Array, Array1, ArrayBase, Data, Dimension};

pub use params::{QuantParams, asymmetric_params, symmetric_scale};
pub use spec::{Granularity, QuantSpec, Scheme};

use crate::arch::{self, Affine};
use crate::buffer;
use crate::dtype::DType;
use crate::element::Element;
use crate::error::{Error, Result};
use crate::metrics::ErrorStats;
pub(crate) use layout::param_count;
use layout::segments;
use params::non_finite_error;
use spec::qrange;

/// Quantized codes: `i8` for the signed types (int8, int4, int2), `u8` for
/// the unsigned ones. Sub-byte codes are kept one per byte here; see
/// [`Quantized::packed`] for the packed form.
#[derive(Debug, Clone, PartialEq)]
pub enum Codes<D: Dimension> {
    /// Codes of int8, int4 or int2.
    Signed(Array<i8, D>),
    /// Codes of uint8, uint4 or uint2.
    Unsigned(Array<u8, D>),
}

impl<D: Dimension> Codes<D> {
    /// The codes widened to `i32`, whatever their type.
    pub fn to_i32(&self) -> Array<i32, D> {
        match self {
            Codes::Signed(a) => a.mapv(i32::from),
            Codes::Unsigned(a) => a.mapv(i32::from),
        }
    }

    /// The codes in row-major order, widened to `i32`.
    pub fn to_vec(&self) -> Vec<i32> {
        self.to_i32().iter().copied().collect()
    }

    /// The shape of the tensor.
    pub fn shape(&self) -> &[usize] {
        match self {
            Codes::Signed(a) => a.shape(),
            Codes::Unsigned(a) => a.shape(),
        }
    }

    /// The codes in row-major order, as raw bytes (`i8` reinterpreted).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Codes::Signed(a) => a.iter().map(|&v| v as u8).collect(),
            Codes::Unsigned(a) => a.iter().copied().collect(),
        }
    }
}

impl<D: Dimension> fmt::Display for Codes<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codes::Signed(a) => a.fmt(f),
            Codes::Unsigned(a) => a.fmt(f),
        }
    }
}

/// A quantized tensor: codes, the type they belong to, and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized<D: Dimension> {
    /// The integer type of the codes.
    pub dtype: DType,
    /// The codes, in the tensor's shape.
    pub codes: Codes<D>,
    /// Scales and zero points.
    pub params: QuantParams,
}

impl<D: Dimension> Quantized<D> {
    /// The scales.
    pub fn scale(&self) -> &Array1<f32> {
        &self.params.scale
    }

    /// The zero points.
    pub fn zero_point(&self) -> &Array1<i32> {
        &self.params.zero_point
    }

    /// Back to f32: `s * (q - z)` for every element.
    pub fn dequantize(&self) -> Array<f32, D> {
        let shape = self.codes.shape().to_vec();
        let k = arch::kernels();
        let (scale, zp) = (&self.params.scale, &self.params.zero_point);
        // Not zeroed first (in cache that doubled the time). SAFETY: the
        // segments cover every element once, and the kernels write every
        // element of their output.
        let out = unsafe {
            buffer::filled::<f32>(shape.iter().product(), |out| match &self.codes {
                Codes::Signed(a) => {
                    let a = a.as_standard_layout();
                    let q = a.as_slice().expect("standard layout is contiguous");
                    for (p, r) in segments(&shape, self.params.granularity) {
                        (k.dequantize_i8)(&q[r.clone()], scale[p], zp[p], &mut out[r]);
                    }
                }
                Codes::Unsigned(a) => {
                    let a = a.as_standard_layout();
                    let q = a.as_slice().expect("standard layout is contiguous");
                    for (p, r) in segments(&shape, self.params.granularity) {
                        (k.dequantize_u8)(&q[r.clone()], scale[p], zp[p], &mut out[r]);
                    }
                }
            })
        };
        let dim = match &self.codes {
            Codes::Signed(a) => a.raw_dim(),
            Codes::Unsigned(a) => a.raw_dim(),
        };
        Array::from_shape_vec(dim, out).expect("same element count")
    }

    /// The codes packed as they are stored: one byte each for 8-bit types,
    /// several to a byte for the sub-byte types (first value in the lowest bits).
    ///
    /// ```
    /// use quantlab::prelude::*;
    /// let q = array![0.0f32, 1.0, 2.0, 3.0].quantize_with(DType::UInt2, &QuantParams::per_tensor(1.0, 0))?;
    /// assert_eq!(q.packed(), [0b11_10_01_00]);
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    pub fn packed(&self) -> Vec<u8> {
        let bytes = self.codes.to_bytes();
        if self.dtype.is_sub_byte() {
            let codes: Vec<i8> = bytes.iter().map(|&b| b as i8).collect();
            crate::pack::pack(&codes, self.dtype.bits()).expect("sub-byte widths are packable")
        } else {
            bytes
        }
    }

    /// Bytes this tensor takes stored: packed codes plus an f32 scale and an
    /// i32 zero point per parameter pair.
    pub fn storage_bytes(&self) -> u64 {
        let numel: usize = self.codes.shape().iter().product();
        self.dtype.storage_bytes(numel as u64) + 8 * self.params.scale.len() as u64
    }

    /// MSE, max abs error and SQNR of the round trip against `original`.
    pub fn error_stats<A: Element, S: Data<Elem = A>>(&self, original: &ArrayBase<S, D>) -> Result<ErrorStats> {
        crate::metrics::error_stats(original, &self.dequantize())
    }
}

/// Quantization for ndarray arrays of any float element type and dimension.
///
/// Data is converted to f32 first (as `torch.tensor(..., dtype=torch.float32)`
/// would), then quantized.
///
/// ```
/// use quantlab::prelude::*;
/// let x = array![[191.6, -13.5, 728.6], [92.14, 295.5, -184.0], [0.0, 684.6, 245.5]];
/// let q = x.quantize_with(DType::Int8, &QuantParams::per_tensor(3.5, -70))?;
/// assert_eq!(q.codes.to_i32(), array![[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]]);
/// assert_eq!(q.dequantize(), array![[192.5f32, -14.0, 689.5], [91.0, 294.0, -185.5], [0.0, 686.0, 245.0]]);
///
/// let q = x.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(0))?;
/// assert_eq!(q.codes.to_i32(), array![[33, -2, 127], [40, 127, -79], [0, 127, 46]]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub trait QuantizeExt<D: Dimension> {
    /// The scales and zero points `spec` would choose for this data.
    fn quant_params(&self, spec: QuantSpec) -> Result<QuantParams>;

    /// Quantizes with parameters chosen from the data.
    fn quantize(&self, spec: QuantSpec) -> Result<Quantized<D>>;

    /// Quantizes with the caller's parameters.
    fn quantize_with(&self, dtype: DType, params: &QuantParams) -> Result<Quantized<D>>;

    /// Quantizes and packs in one go: the bytes and parameters of
    /// `self.quantize(spec)?.packed()`, without storing one code per byte
    /// first. For int4/uint4 per-group, each group's range, parameters and
    /// packed codes are computed while the group is in cache (one pass over
    /// the data instead of three).
    ///
    /// ```
    /// use quantlab::prelude::*;
    /// let w = array![[0.5f32, -1.25, 2.0, 0.0], [3.0, 1.0, -0.5, 0.25]];
    /// let spec = QuantSpec::new(DType::Int4).symmetric().per_group(4);
    /// let (bytes, params) = w.quantize_packed(spec)?;
    /// let q = w.quantize(spec)?;
    /// assert_eq!((bytes, params), (q.packed(), q.params));
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    fn quantize_packed(&self, spec: QuantSpec) -> Result<(Vec<u8>, QuantParams)>;
}

impl<A, S, D> QuantizeExt<D> for ArrayBase<S, D>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    fn quant_params(&self, spec: QuantSpec) -> Result<QuantParams> {
        let x = A::view_as_f32(self.view());
        let x = x.as_standard_layout();
        params::choose(x.as_slice().expect("standard layout is contiguous"), self.shape(), spec)
    }

    fn quantize(&self, spec: QuantSpec) -> Result<Quantized<D>> {
        let x = A::view_as_f32(self.view());
        let x = x.as_standard_layout();
        let data = x.as_slice().expect("standard layout is contiguous");
        let params = params::choose(data, self.shape(), spec)?;
        Ok(apply(data, self.raw_dim(), spec.dtype, params).0)
    }

    fn quantize_with(&self, dtype: DType, params: &QuantParams) -> Result<Quantized<D>> {
        if self.is_empty() {
            return Err(Error::Empty { what: "quantization" });
        }
        params.check(dtype, self.shape())?;
        let x = A::view_as_f32(self.view());
        let x = x.as_standard_layout();
        let data = x.as_slice().expect("standard layout is contiguous");
        // The kernels report non-finite input as they go: one pass, not two.
        let (q, finite) = apply(data, self.raw_dim(), dtype, params.clone());
        if !finite {
            return Err(non_finite_error(data, "quantization"));
        }
        Ok(q)
    }

    fn quantize_packed(&self, spec: QuantSpec) -> Result<(Vec<u8>, QuantParams)> {
        let x = A::view_as_f32(self.view());
        let x = x.as_standard_layout();
        let data = x.as_slice().expect("standard layout is contiguous");
        match fused::quantize_packed(data, self.shape(), spec)? {
            Some(done) => Ok(done),
            None => self.quantize(spec).map(|q| (q.packed(), q.params)),
        }
    }
}

/// Quantizes row-major `data` with checked `params`, and says whether all
/// of `data` was finite (the codes mean nothing if not).
fn apply<D: Dimension>(data: &[f32], dim: D, dtype: DType, params: QuantParams) -> (Quantized<D>, bool) {
    let shape = dim.slice().to_vec();
    let (qmin, qmax) = qrange(dtype);
    let k = arch::kernels();
    let affine = |p: usize| Affine { scale: params.scale[p], zero_point: params.zero_point[p], qmin, qmax };
    let mut finite = true;
    let codes = if dtype.is_signed() {
        // SAFETY: the segments cover 0..numel, and each kernel call writes its whole range.
        let out = unsafe {
            buffer::filled::<i8>(data.len(), |out| {
                for (p, r) in segments(&shape, params.granularity) {
                    finite &= (k.quantize_i8)(&data[r.clone()], affine(p), &mut out[r]);
                }
            })
        };
        Codes::Signed(Array::from_shape_vec(dim, out).expect("same element count"))
    } else {
        // SAFETY: as above.
        let out = unsafe {
            buffer::filled::<u8>(data.len(), |out| {
                for (p, r) in segments(&shape, params.granularity) {
                    finite &= (k.quantize_u8)(&data[r.clone()], affine(p), &mut out[r]);
                }
            })
        };
        Codes::Unsigned(Array::from_shape_vec(dim, out).expect("same element count"))
    };
    (Quantized { dtype, codes, params }, finite)
}

#[cfg(test)]
mod tests;
