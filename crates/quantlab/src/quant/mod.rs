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
pub use fused::dequantize_packed;
pub use layout::Part;
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

    /// True for `Codes::Signed`.
    pub fn is_signed(&self) -> bool {
        matches!(self, Codes::Signed(_))
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
///
/// The parts always fit together: [`Quantized::new`] checks them, and the
/// quantizing methods of [`QuantizeExt`] build only consistent ones, so
/// [`Quantized::dequantize`] cannot meet a short scale or a bad axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized<D: Dimension> {
    dtype: DType,
    codes: Codes<D>,
    params: QuantParams,
}

impl<D: Dimension> Quantized<D> {
    /// Codes of `dtype` with their parameters, checked: `dtype` must be a
    /// quantization target, the codes of its signedness (`Codes::Signed` for
    /// int8/int4/int2) and within its range, and `params` must fit the codes'
    /// shape (one pair per tensor, channel or group, zero points in range).
    ///
    /// ```
    /// use quantlab::prelude::*;
    /// let codes = Codes::Signed(array![-15i8, 127]);
    /// let q = Quantized::new(DType::Int8, codes.clone(), QuantParams::per_tensor(3.5, -70))?;
    /// assert_eq!(q.dequantize()?, array![192.5f32, 689.5]);
    /// // One scale per channel of a 2-element tensor needs two scales:
    /// let short = QuantParams::per_channel(0, vec![1.0], vec![0]);
    /// assert!(Quantized::new(DType::Int8, codes, short).is_err());
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    pub fn new(dtype: DType, codes: Codes<D>, params: QuantParams) -> Result<Self> {
        params.check(dtype, codes.shape())?;
        let bad = |reason: String| Err(Error::BadQuantized { reason });
        if codes.is_signed() != dtype.is_signed() {
            let (has, wants) = if dtype.is_signed() { ("unsigned", "signed") } else { ("signed", "unsigned") };
            return bad(format!(
                "{dtype} needs {wants} codes, got {has} ones: use Codes::{}",
                if dtype.is_signed() { "Signed" } else { "Unsigned" }
            ));
        }
        let (qmin, qmax) = qrange(dtype);
        if let Some((index, code)) = codes.to_i32().iter().enumerate().find(|(_, c)| !(qmin..=qmax).contains(*c)) {
            return bad(format!("code {code} at flat index {index} is outside {dtype}'s range [{qmin}, {qmax}]"));
        }
        Ok(Quantized { dtype, codes, params })
    }

    /// The integer type of the codes.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The codes, in the tensor's shape.
    pub fn codes(&self) -> &Codes<D> {
        &self.codes
    }

    /// Scales and zero points.
    pub fn params(&self) -> &QuantParams {
        &self.params
    }

    /// The type, codes and parameters, taken apart.
    pub fn into_parts(self) -> (DType, Codes<D>, QuantParams) {
        (self.dtype, self.codes, self.params)
    }

    /// The scales.
    pub fn scale(&self) -> &Array1<f32> {
        &self.params.scale
    }

    /// The zero points.
    pub fn zero_point(&self) -> &Array1<i32> {
        &self.params.zero_point
    }

    /// Back to f32: `s * (q - z)` for every element.
    ///
    /// A `Quantized` is consistent by construction, so this fails only if
    /// memory for the result cannot be laid out in the tensor's shape.
    pub fn dequantize(&self) -> Result<Array<f32, D>> {
        let shape = self.codes.shape().to_vec();
        self.params.check(self.dtype, &shape)?;
        let k = arch::kernels();
        let (scale, zp) = (&self.params.scale, &self.params.zero_point);
        // Not zeroed first (in cache that doubled the time). SAFETY: on `Ok`
        // the segments have covered every element once, and the kernels write
        // every element of their output.
        let out = unsafe {
            buffer::try_filled::<f32, Error>(shape.iter().product(), |out| match &self.codes {
                Codes::Signed(a) => {
                    let a = a.as_standard_layout();
                    let q = standard_slice(&a)?;
                    for (p, r) in segments(&shape, self.params.granularity) {
                        (k.dequantize_i8)(&q[r.clone()], scale[p], zp[p], &mut out[r]);
                    }
                    Ok(())
                }
                Codes::Unsigned(a) => {
                    let a = a.as_standard_layout();
                    let q = standard_slice(&a)?;
                    for (p, r) in segments(&shape, self.params.granularity) {
                        (k.dequantize_u8)(&q[r.clone()], scale[p], zp[p], &mut out[r]);
                    }
                    Ok(())
                }
            })?
        };
        let dim = match &self.codes {
            Codes::Signed(a) => a.raw_dim(),
            Codes::Unsigned(a) => a.raw_dim(),
        };
        Array::from_shape_vec(dim, out)
            .map_err(|e| Error::BadQuantized { reason: format!("cannot shape the dequantized values: {e}") })
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
            // Quantization targets are 2, 4 or 8 bits wide, all packable.
            crate::pack::pack(&codes, self.dtype.bits()).unwrap_or_default()
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
        crate::metrics::error_stats(original, &self.dequantize()?)
    }
}

/// The elements of a standard-layout array, in order.
fn standard_slice<S: Data, D: Dimension>(a: &ArrayBase<S, D>) -> Result<&[S::Elem]> {
    a.as_slice().ok_or(Error::BadQuantized { reason: "the codes are not contiguous".into() })
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
/// assert_eq!(q.codes().to_i32(), array![[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]]);
/// assert_eq!(q.dequantize()?, array![[192.5f32, -14.0, 689.5], [91.0, 294.0, -185.5], [0.0, 686.0, 245.0]]);
///
/// let q = x.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(0))?;
/// assert_eq!(q.codes().to_i32(), array![[33, -2, 127], [40, 127, -79], [0, 127, 46]]);
/// # Ok::<(), quantlab::Error>(())
/// ```
///
/// Sealed: implemented for ndarray arrays only.
pub trait QuantizeExt<D: Dimension>: crate::sealed::Sealed {
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
    /// assert_eq!((bytes, params), (q.packed(), q.params().clone()));
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    fn quantize_packed(&self, spec: QuantSpec) -> Result<(Vec<u8>, QuantParams)>;

    /// Quantizes with the caller's parameters straight to packed bytes (the
    /// bytes of `self.quantize_with(dtype, params)?.packed()`), a block at a
    /// time: no byte-per-code copy of the tensor is ever made for 4-bit
    /// types, and at most one small block's for the others.
    ///
    /// ```
    /// use quantlab::prelude::*;
    /// let w = array![[0.5f32, -1.25, 2.0], [3.0, 1.0, -0.5]];
    /// let params = QuantParams::per_channel(0, vec![0.5, 0.25], vec![0, 1]);
    /// let bytes = w.quantize_packed_with(DType::Int4, &params)?;
    /// assert_eq!(bytes, w.quantize_with(DType::Int4, &params)?.packed());
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    fn quantize_packed_with(&self, dtype: DType, params: &QuantParams) -> Result<Vec<u8>>;
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

    fn quantize_packed_with(&self, dtype: DType, params: &QuantParams) -> Result<Vec<u8>> {
        let x = A::view_as_f32(self.view());
        let x = x.as_standard_layout();
        let data = standard_slice(&x)?;
        fused::quantize_packed_with(data, self.shape(), dtype, params)
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
