//! Casting tensors between data types.
//!
//! Float to float rounds to nearest, ties to even, in one step from the exact
//! value (never through an intermediate type, so there is no double rounding:
//! an f64 goes to f16 or bf16 from its own bits). **PyTorch and ml_dtypes round
//! f64 -> bf16 twice (through f32), PyTorch f64 -> f16 too**: for an f64 just
//! beside a bf16 tie, e.g. 954.0000000000001, they give 952 and quantlab the
//! correctly rounded 956 (numpy's f64 -> f16 rounds once, as quantlab does).
//!
//! NaN stays NaN where the type has one. Overflow goes to ±inf in types that
//! have infinities (f16, bf16, float8_e5m2, float8_e4m3, float8_e3m4); the
//! others have none, so an out-of-range value is an [`Error::OutOfRange`]
//! unless [`CastOptions::overflow`] names another [`Overflow`] policy:
//! `Saturate` (±max, what PyTorch does for float8_e4m3fn), `Nan` (ml_dtypes'
//! rule) or `PyTorch` (PyTorch's rule, type by type). Where the peers differ:
//!
//! | target | quantlab default | PyTorch 2.15 | ml_dtypes 0.6 |
//! |---|---|---|---|
//! | f16, bf16, f32 | ±inf (`Saturate`: ±max) | ±inf | ±inf |
//! | float8_e4m3fn | error | ±448, inf too | NaN |
//! | float8_e5m2, e4m3, e3m4 | ±inf | ±inf (e5m2) | ±inf |
//! | float8_e4m3fnuz, e5m2fnuz | error | NaN (0x80) | NaN (0x80) |
//! | float8_e4m3b11fnuz | error | (no such type) | NaN (0x80) |
//! | float6_e2m3fn, e3m2fn, float4_e2m1fn | error; NaN: error | (no casts) | ±max; NaN -> -0 |
//! | float8_e8m0fnu overflow | error | NaN | NaN |
//! | float8_e8m0fnu of 0 / of x < 0 | error | 2^-127 / takes \|x\| | NaN / NaN |
//!
//! float8_e8m0fnu rounds ties up (1.5 -> 2), as both peers do. One more
//! difference: both peers round an `f32` *subnormal* in (2^-127, 1.5 * 2^-127)
//! up to 2^-126 (their rounding looks at the wrong bit for subnormal inputs);
//! quantlab gives the nearest, 2^-127.
//!
//! Float to integer rounds half to even and saturates at `iinfo`'s bounds.
//! **PyTorch truncates toward zero instead** (`torch.tensor(2.7).to(torch.int8)`
//! is 2, here it is 3), and wraps on overflow; quantlab rounds because that is
//! what quantization needs. NaN has no integer and is an error.

use ndarray::{Array, ArrayBase, Data, DataMut, Dimension};

use crate::arch;
use crate::dtype::DType;
use crate::element::{Element, narrow_error};
use crate::error::{Error, Result};
use crate::minifloat::Overflow;

/// How a cast treats values the target type cannot hold.
///
/// ```
/// use quantlab::prelude::*;
/// let x = array![70000.0f32, 1000.0];
/// assert!(x.cast::<f16>()?[0].is_infinite());
/// assert_eq!(x.cast_with::<f16>(CastOptions::saturating())?[0].to_f32(), 65504.0);
/// assert!(x.cast::<F8E4M3>().is_err()); // 1000 is beyond 448 and e4m3fn has no infinity
/// assert_eq!(x.cast_with::<F8E4M3>(Overflow::PyTorch.into())?[1].to_f32(), 448.0);
/// assert!(x.cast_with::<F8E4M3>(Overflow::Nan.into())?[1].to_f32().is_nan()); // ml_dtypes
/// # Ok::<(), quantlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CastOptions {
    /// What happens to values the target cannot hold (see [`Overflow`]).
    /// (This replaces the former `saturate: bool`: `saturate: true` is
    /// `overflow: Overflow::Saturate`, or [`CastOptions::saturating`].)
    pub overflow: Overflow,
}

impl CastOptions {
    /// Clamp out-of-range values to ±max instead of failing or going to infinity.
    pub const fn saturating() -> Self {
        CastOptions { overflow: Overflow::Saturate }
    }

    /// `saturating()` when `saturate`, the default otherwise (for a command-line flag).
    pub const fn saturate(saturate: bool) -> Self {
        CastOptions { overflow: if saturate { Overflow::Saturate } else { Overflow::Error } }
    }
}

impl From<Overflow> for CastOptions {
    fn from(overflow: Overflow) -> Self {
        CastOptions { overflow }
    }
}

/// Casting for ndarray arrays of any dimension, views included.
///
/// ```
/// use quantlab::prelude::*;
/// let x = array![1.0f32 / 3.0, 70000.0, -2.5];
/// let h: Array1<f16> = x.cast()?;
/// assert_eq!(h[0].to_f64(), 0.333251953125);
/// assert!(h[1].is_infinite()); // f16 tops out at 65504
/// let i: Array1<i8> = x.cast()?;
/// assert_eq!(i, array![0i8, 127, -2]); // half to even, saturating
/// # Ok::<(), quantlab::Error>(())
/// ```
///
/// Sealed: implemented for ndarray arrays only.
pub trait CastExt<D: Dimension>: crate::sealed::Sealed {
    /// Casts every element to `T` with the default options.
    fn cast<T: Element>(&self) -> Result<Array<T, D>> {
        self.cast_with(CastOptions::default())
    }

    /// Casts every element to `T`.
    fn cast_with<T: Element>(&self, options: CastOptions) -> Result<Array<T, D>>;

    /// Casts every element into `out`, an array of the same shape, instead
    /// of allocating a new one: what `numpy.copyto(out, x, casting="unsafe")`
    /// and PyTorch's `out.copy_(x)` do. Reusing one output saves the
    /// allocation and, for a large tensor, the operating system zeroing its
    /// fresh pages, which can take as long as the cast itself.
    ///
    /// On error, `out` holds the values cast before the failing one.
    ///
    /// ```
    /// use quantlab::prelude::*;
    /// let x = array![[0.1f32, 2.0], [-3.5, 1e9]];
    /// let mut out = Array2::from_elem((2, 2), bf16::ZERO);
    /// x.cast_into(&mut out, CastOptions::default())?;
    /// assert_eq!(out[[0, 0]].to_f32(), 0.10009765625);
    /// assert!(x.cast_into(&mut Array2::from_elem((2, 3), bf16::ZERO), CastOptions::default()).is_err());
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    fn cast_into<T: Element, S2: DataMut<Elem = T>>(
        &self,
        out: &mut ArrayBase<S2, D>,
        options: CastOptions,
    ) -> Result<()>;
}

impl<A, S, D> CastExt<D> for ArrayBase<S, D>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    fn cast_with<T: Element>(&self, options: CastOptions) -> Result<Array<T, D>> {
        // The SIMD paths take contiguous row-major slices (f32 <-> bf16/f16,
        // which cannot fail; f32 <-> float8_e4m3fn/e5m2, whose kernels hand
        // the values needing a policy to the scalar model); strided views
        // and other pairs take the scalar path.
        if let Some(src) = self.as_slice()
            && let Some(out) = arch::cast_fp8::<A, T, Error>(src, |i| cast_one(src[i], options, i))
        {
            return Ok(Array::from_shape_vec(self.raw_dim(), out?).expect("same element count"));
        }
        if let Some(src) = self.as_slice()
            && let Some(mut out) = arch::cast_fast::<A, T>(src)
        {
            fix_kernel_overflow(src, &mut out, options)?;
            return Ok(Array::from_shape_vec(self.raw_dim(), out).expect("same element count"));
        }
        let mut out = Vec::with_capacity(self.len());
        for (index, &v) in self.iter().enumerate() {
            out.push(cast_one::<A, T>(v, options, index)?);
        }
        Ok(Array::from_shape_vec(self.raw_dim(), out).expect("same element count"))
    }

    fn cast_into<T: Element, S2: DataMut<Elem = T>>(
        &self,
        out: &mut ArrayBase<S2, D>,
        options: CastOptions,
    ) -> Result<()> {
        if self.shape() != out.shape() {
            return Err(Error::ShapeMismatch {
                what: "cast_into (the output must have the input's shape)",
                left: self.shape().to_vec(),
                right: out.shape().to_vec(),
            });
        }
        if let (Some(src), Some(dst)) = (self.as_slice(), out.as_slice_mut())
            && let Some(done) = arch::cast_fp8_into(src, dst, |i| cast_one(src[i], options, i))
        {
            return done;
        }
        if let (Some(src), Some(dst)) = (self.as_slice(), out.as_slice_mut())
            && arch::cast_fast_into(src, dst)
        {
            return fix_kernel_overflow(src, dst, options);
        }
        // Both iterate in logical (row-major) order, whatever the memory layouts.
        for (index, (o, &v)) in out.iter_mut().zip(self.iter()).enumerate() {
            *o = cast_one::<A, T>(v, options, index)?;
        }
        Ok(())
    }
}

/// The SIMD kernels (f32 -> f16/bf16) round like IEEE and overflow to ±inf;
/// when the options ask for something else, the few infinities that came from
/// finite inputs are redone by the scalar model (one cheap pass, and only then).
fn fix_kernel_overflow<A: Element, T: Element>(src: &[A], out: &mut [T], options: CastOptions) -> Result<()> {
    if options.overflow != Overflow::Saturate {
        return Ok(()); // every other policy keeps infinities in types that have them
    }
    for (index, (o, &v)) in out.iter_mut().zip(src).enumerate() {
        if o.to_f64().is_infinite() && v.to_f64().is_finite() {
            *o = cast_one(v, options, index)?;
        }
    }
    Ok(())
}

/// Casts one value, with `index` to name it in an error.
pub(crate) fn cast_one<A: Element, T: Element>(v: A, options: CastOptions, index: usize) -> Result<T> {
    let x = v.to_f64();
    T::narrow(x, options.overflow).map_err(|why| narrow_error(why, x, index, T::DTYPE))
}

impl DType {
    /// The value this type stores for `x`: what `torch.tensor(x, dtype=...).item()` gives.
    ///
    /// ```
    /// use quantlab::DType;
    /// let third = 1.0 / 3.0;
    /// assert_eq!(format!("{:.12}", DType::Float16.nearest(third)?), "0.333251953125");
    /// assert_eq!(DType::BFloat16.nearest(third)?, 0.333984375);
    /// assert_eq!(DType::Int4.nearest(9.0)?, 7.0); // saturates
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    pub fn nearest(self, x: f64) -> Result<f64> {
        self.nearest_with(x, Overflow::Error)
    }

    /// [`DType::nearest`] with an [`Overflow`] policy.
    ///
    /// ```
    /// use quantlab::{DType, Overflow};
    /// assert_eq!(DType::Float4E2M1Fn.nearest_with(5.0, Overflow::Error)?, 4.0); // tie to even
    /// assert_eq!(DType::Float8E4M3Fn.nearest_with(1000.0, Overflow::PyTorch)?, 448.0);
    /// assert!(DType::Float8E4M3Fn.nearest_with(1000.0, Overflow::Nan)?.is_nan());
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    pub fn nearest_with(self, x: f64, overflow: Overflow) -> Result<f64> {
        let fail = |why| narrow_error(why, x, 0, self);
        if let Some(m) = self.minifloat() {
            return m.encode_raw(x, overflow).map(|c| m.decode(c)).map_err(fail);
        }
        match self {
            DType::Float64 => Ok(x),
            DType::Float32 => <f32 as Element>::narrow(x, overflow).map(f64::from).map_err(fail),
            _ => {
                if x.is_nan() {
                    return Err(fail(crate::element::Narrow::NaN));
                }
                let (lo, hi) = self.int_range().expect("non-float types are integers");
                Ok(x.round_ties_even().clamp(lo as f64, hi as f64))
            }
        }
    }
}

/// Casts `src` to `dtype` and returns its little-endian bytes, as checkpoint
/// formats store them: sub-byte integers and floats packed as a bit stream,
/// first value in the low bits (float4 two a byte, low nibble first, as
/// PyTorch's `float4_e2m1fn_x2`; float6 four in three bytes).
///
/// ```
/// use quantlab::{cast_to_bytes, CastOptions, DType};
/// let x = ndarray::array![1.0f32, -2.0, 3.0];
/// assert_eq!(cast_to_bytes(&x, DType::BFloat16, CastOptions::default())?, [0x80, 0x3f, 0x00, 0xc0, 0x40, 0x40]);
/// assert_eq!(cast_to_bytes(&x, DType::Int4, CastOptions::default())?, [0xe1, 0x03]);
/// assert_eq!(cast_to_bytes(&x, DType::Float4E2M1Fn, CastOptions::default())?, [0xc2, 0x05]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn cast_to_bytes<A, S, D>(src: &ArrayBase<S, D>, dtype: DType, options: CastOptions) -> Result<Vec<u8>>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    use crate::element::*;
    use float8::{F8E4M3, F8E5M2};
    use half::{bf16, f16};
    fn bytes_of<A: Element, T: Element, S: Data<Elem = A>, D: Dimension>(
        src: &ArrayBase<S, D>,
        options: CastOptions,
    ) -> Result<Vec<u8>> {
        let cast: Array<T, D> = src.cast_with(options)?;
        let mut out = Vec::with_capacity(cast.len() * T::DTYPE.bits().div_ceil(8) as usize);
        cast.iter().for_each(|v| v.write_le(&mut out));
        Ok(out)
    }
    let bytes = match dtype {
        DType::Float64 => bytes_of::<A, f64, _, _>(src, options),
        DType::Float32 => bytes_of::<A, f32, _, _>(src, options),
        DType::Float16 => bytes_of::<A, f16, _, _>(src, options),
        DType::BFloat16 => bytes_of::<A, bf16, _, _>(src, options),
        DType::Float8E4M3Fn => bytes_of::<A, F8E4M3, _, _>(src, options),
        DType::Float8E5M2 => bytes_of::<A, F8E5M2, _, _>(src, options),
        DType::Float8E4M3Fnuz => bytes_of::<A, Float8E4M3Fnuz, _, _>(src, options),
        DType::Float8E5M2Fnuz => bytes_of::<A, Float8E5M2Fnuz, _, _>(src, options),
        DType::Float8E4M3 => bytes_of::<A, Float8E4M3, _, _>(src, options),
        DType::Float8E3M4 => bytes_of::<A, Float8E3M4, _, _>(src, options),
        DType::Float8E4M3B11Fnuz => bytes_of::<A, Float8E4M3B11Fnuz, _, _>(src, options),
        DType::Float8E8M0Fnu => bytes_of::<A, Float8E8M0Fnu, _, _>(src, options),
        DType::Float6E2M3Fn => bytes_of::<A, Float6E2M3Fn, _, _>(src, options),
        DType::Float6E3M2Fn => bytes_of::<A, Float6E3M2Fn, _, _>(src, options),
        DType::Float4E2M1Fn => bytes_of::<A, Float4E2M1Fn, _, _>(src, options),
        DType::Int8 => bytes_of::<A, i8, _, _>(src, options),
        DType::Int16 => bytes_of::<A, i16, _, _>(src, options),
        DType::Int32 => bytes_of::<A, i32, _, _>(src, options),
        DType::Int64 => bytes_of::<A, i64, _, _>(src, options),
        DType::UInt8 => bytes_of::<A, u8, _, _>(src, options),
        DType::UInt16 => bytes_of::<A, u16, _, _>(src, options),
        DType::UInt32 => bytes_of::<A, u32, _, _>(src, options),
        DType::UInt64 => bytes_of::<A, u64, _, _>(src, options),
        _ => {
            // Sub-byte integers: rounded and saturated as codes, packed below.
            let codes = src
                .iter()
                .enumerate()
                .map(|(index, &v)| {
                    dtype.nearest(v.to_f64()).map(|q| q as i8 as u8).map_err(|e| match e {
                        Error::NonFinite { what, value, .. } => Error::NonFinite { what, value, index },
                        other => other,
                    })
                })
                .collect::<Result<Vec<u8>>>()?;
            return crate::pack::pack_codes(&codes, dtype.bits());
        }
    }?;
    if dtype.is_sub_byte() { crate::pack::pack_codes(&bytes, dtype.bits()) } else { Ok(bytes) }
}

/// The values stored in `bytes` as [`cast_to_bytes`] writes them: `count`
/// values of `dtype`, little-endian, sub-byte types packed. Exact for every
/// type (64-bit integers beyond 2^53 excepted).
///
/// ```
/// use quantlab::{values_from_bytes, DType};
/// assert_eq!(values_from_bytes(&[0xc2, 0x05], DType::Float4E2M1Fn, 3)?, [1.0, -2.0, 3.0]);
/// assert_eq!(values_from_bytes(&[0xe1, 0x03], DType::Int4, 3)?, [1.0, -2.0, 3.0]);
/// assert!(values_from_bytes(&[0xff], DType::Float8E8M0Fnu, 1)?[0].is_nan());
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn values_from_bytes(bytes: &[u8], dtype: DType, count: usize) -> Result<Vec<f64>> {
    let bits = dtype.bits();
    if dtype.is_sub_byte() {
        let codes = crate::pack::unpack_codes(bytes, bits, count)?;
        return Ok(match dtype.minifloat() {
            Some(m) => codes.iter().map(|&c| m.decode(u16::from(c))).collect(),
            None => {
                let shift = 8 - bits; // sign-extends a signed field
                codes
                    .iter()
                    .map(|&c| if dtype.is_signed() { f64::from(((c << shift) as i8) >> shift) } else { f64::from(c) })
                    .collect()
            }
        });
    }
    let size = (bits / 8) as usize;
    if bytes.len() < count * size {
        return Err(Error::ShortBuffer { got: bytes.len(), count, bits, needed: count * size });
    }
    let chunks = bytes.chunks_exact(size).take(count);
    fn all<T: Element>(chunks: std::iter::Take<std::slice::ChunksExact<'_, u8>>) -> Vec<f64> {
        chunks.map(|c| T::read_le(c).to_f64()).collect()
    }
    Ok(match dtype {
        DType::Float64 => all::<f64>(chunks),
        DType::Float32 => all::<f32>(chunks),
        DType::Int8 => all::<i8>(chunks),
        DType::Int16 => all::<i16>(chunks),
        DType::Int32 => all::<i32>(chunks),
        DType::Int64 => all::<i64>(chunks),
        DType::UInt8 => all::<u8>(chunks),
        DType::UInt16 => all::<u16>(chunks),
        DType::UInt32 => all::<u32>(chunks),
        DType::UInt64 => all::<u64>(chunks),
        _ => {
            let m = dtype.minifloat().expect("the remaining byte-sized types are narrow floats");
            let code = |c: &[u8]| if size == 2 { u16::from_le_bytes([c[0], c[1]]) } else { u16::from(c[0]) };
            chunks.map(|c| m.decode(code(c))).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};
    use ndarray::{Array2, array, s};

    #[test]
    fn one_third_in_every_float_type_has_pytorchs_digits() {
        let third = 1.0f64 / 3.0;
        let digits = |d: DType| format!("{:.60}", d.nearest(third).unwrap());
        assert_eq!(digits(DType::Float64), "0.333333333333333314829616256247390992939472198486328125000000");
        assert_eq!(digits(DType::Float32), "0.333333343267440795898437500000000000000000000000000000000000");
        assert_eq!(digits(DType::Float16), "0.333251953125000000000000000000000000000000000000000000000000");
        assert_eq!(digits(DType::BFloat16), "0.333984375000000000000000000000000000000000000000000000000000");
    }

    #[test]
    fn casts_views_with_strides() {
        let x = Array2::from_shape_fn((4, 6), |(i, j)| (i * 6 + j) as f64 + 0.5);
        let view = x.slice(s![..;2, 1..;2]);
        let got: Array2<i16> = view.cast().unwrap();
        assert_eq!(got, array![[2i16, 4, 6], [14, 16, 18]]); // x.5 rounds to even
    }

    #[test]
    fn overflow_nan_and_saturation() {
        let x = array![1e6f64, f64::NAN, -1e6];
        let h: ndarray::Array1<f16> = x.cast().unwrap();
        assert!(h[0].is_infinite() && h[1].is_nan() && h[2] == f16::NEG_INFINITY);
        let b: ndarray::Array1<bf16> = x.cast_with(CastOptions::saturating()).unwrap();
        assert_eq!(b[0].to_f64(), 999424.0);
        let err = x.cast::<float8::F8E4M3>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "1e+06 at flat index 0 is out of range for float8_e4m3fn (largest magnitude 448): scale the data down or ask to saturate"
        );
        let err = x.cast::<i32>().unwrap_err();
        assert!(matches!(err, Error::NonFinite { index: 1, .. }), "{err}");
    }

    #[test]
    fn cast_into_writes_what_cast_returns() {
        // Contiguous f32 -> bf16/f16 (the SIMD kernels), and back.
        let x = Array2::from_shape_fn((3, 37), |(i, j)| ((i * 37 + j) as f32 * 0.731).sin() * 70000.0);
        let mut b = Array2::from_elem((3, 37), bf16::ZERO);
        x.cast_into(&mut b, CastOptions::default()).unwrap();
        assert_eq!(b, x.cast::<bf16>().unwrap());
        let mut h = Array2::from_elem((3, 37), f16::ZERO);
        x.cast_into(&mut h, CastOptions::default()).unwrap();
        assert_eq!(h.mapv(f16::to_bits), x.cast::<f16>().unwrap().mapv(f16::to_bits));
        let mut back = Array2::<f32>::zeros((3, 37));
        b.cast_into(&mut back, CastOptions::default()).unwrap();
        assert_eq!(back, b.cast::<f32>().unwrap());
        // A strided source and a transposed (non-contiguous) output: the scalar path.
        let mut t = Array2::from_elem((37, 3), f16::ZERO);
        let mut tv = t.view_mut().reversed_axes();
        x.cast_into(&mut tv, CastOptions::default()).unwrap();
        assert_eq!(t.t().mapv(f16::to_bits), h.mapv(f16::to_bits));
        let view = x.slice(s![.., ..;5]);
        let mut i = Array2::<i16>::zeros(view.raw_dim());
        view.cast_into(&mut i, CastOptions::saturating()).unwrap();
        assert_eq!(i, view.cast_with::<i16>(CastOptions::saturating()).unwrap());
    }

    #[test]
    fn cast_into_errors() {
        let x = array![1.0f32, 2.0, 1000.0, 3.0];
        let err = x.cast_into(&mut ndarray::Array1::from_elem(3, bf16::ZERO), CastOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shape mismatch: cast_into (the output must have the input's shape) needs equal shapes, got [4] and [3]"
        );
        // float8_e4m3fn tops out at 448: the values before 1000 are written, then the error.
        let mut out = ndarray::Array1::<float8::F8E4M3>::from_elem(4, float8::F8E4M3::from_f32(-1.0));
        let err = x.cast_into(&mut out, CastOptions::default()).unwrap_err();
        assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
        assert!(err.to_string().starts_with("1000 at flat index 2"), "{err}");
        assert_eq!(out.mapv(|v| v.to_f32()).to_vec(), [1.0, 2.0, -1.0, -1.0]);
    }

    #[test]
    fn sub_byte_integers_of_every_width() {
        let x = array![-5.0f32, 3.5, 1.0];
        // int3 saturates at -4..3; 3.5 rounds half to even (4), then saturates. Codes 100, 011, 001
        // as one bit stream from the low bits: 0b01_011_100, then the last bit of 001's zero top.
        let b = cast_to_bytes(&x, DType::Int3, CastOptions::default()).unwrap();
        assert_eq!(b, [0b0101_1100, 0]);
        assert_eq!(values_from_bytes(&b, DType::Int3, 3).unwrap(), [-4.0, 3.0, 1.0]);
        assert_eq!(
            values_from_bytes(&cast_to_bytes(&x, DType::Int1, CastOptions::default()).unwrap(), DType::Int1, 3)
                .unwrap(),
            [-1.0, 0.0, 0.0]
        );
        assert_eq!(
            values_from_bytes(&cast_to_bytes(&x, DType::UInt7, CastOptions::default()).unwrap(), DType::UInt7, 3)
                .unwrap(),
            [0.0, 4.0, 1.0]
        );
        assert_eq!(cast_to_bytes(&x, DType::UInt1, CastOptions::default()).unwrap(), [0b110]); // 0, 1 (saturated), 1
        let err = cast_to_bytes(&array![f32::NAN], DType::Int5, CastOptions::default()).unwrap_err();
        assert!(matches!(err, Error::NonFinite { index: 0, .. }), "{err}");
    }

    #[test]
    fn nearest_for_integers() {
        assert_eq!(DType::UInt8.nearest(-3.0).unwrap(), 0.0);
        assert_eq!(DType::Int2.nearest(0.5).unwrap(), 0.0);
        assert_eq!(DType::Int2.nearest(1.5).unwrap(), 1.0);
        assert!(DType::Int8.nearest(f64::NAN).is_err());
    }
}
