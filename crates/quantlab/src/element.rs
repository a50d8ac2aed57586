//! The element types a tensor can hold, and their exact conversions.
//!
//! [`Element`] is sealed: it is implemented for Rust's numeric primitives,
//! `half`'s [`f16`] and [`bf16`], and `float8`'s [`F8E4M3`] (float8_e4m3fn)
//! and [`F8E5M2`]. All of them widen to `f64` without loss except `i64`/`u64`
//! beyond 2^53, so narrowing goes through `f64` with a single rounding.

use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};
use ndarray::{ArrayView, CowArray, Dimension};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::info::format_g;

mod sealed {
    pub trait Sealed {}
}

/// Why one value could not be narrowed to a type.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrow {
    /// The value was NaN and the target is an integer.
    NaN,
    /// The value is beyond the target's finite range and the target has no infinity.
    Overflow,
}

/// A scalar type that quantlab tensors can hold.
///
/// Sealed: implemented for `f64`, `f32`, [`struct@f16`], [`bf16`], [`F8E4M3`], [`F8E5M2`],
/// `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`.
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The data type this Rust type stores.
    const DTYPE: DType;

    /// The value as `f64` (exact for every type but 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;

    /// The nearest value of this type: floats round to nearest, ties to even;
    /// integers round half to even and saturate at their bounds.
    /// `saturate` decides what happens to values beyond a type without infinities.
    #[doc(hidden)]
    fn narrow(x: f64, saturate: bool) -> Result<Self, Narrow>;

    /// Little-endian bytes of one value, appended to `out`.
    fn write_le(self, out: &mut Vec<u8>);

    /// One value from its little-endian bytes (`bytes.len()` must be the type's size).
    fn read_le(bytes: &[u8]) -> Self;

    /// A view as `f32`: borrowed when it already is `f32`, converted otherwise.
    #[doc(hidden)]
    fn view_as_f32<'a, D: Dimension>(view: ArrayView<'a, Self, D>) -> CowArray<'a, f32, D> {
        view.mapv(|v| v.to_f64() as f32).into()
    }
}

/// Float-to-integer: round half to even, saturate at the bounds; NaN has no integer.
fn narrow_int(x: f64, min: f64, max: f64) -> Result<f64, Narrow> {
    if x.is_nan() {
        return Err(Narrow::NaN);
    }
    Ok(x.round_ties_even().clamp(min, max))
}

macro_rules! int_element {
    ($($t:ty => $dtype:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 { self as f64 }
            fn narrow(x: f64, _saturate: bool) -> Result<Self, Narrow> {
                // `as` from f64 saturates, and the clamp keeps 2^63-style
                // bounds (not exactly representable) on the right side.
                narrow_int(x, <$t>::MIN as f64, <$t>::MAX as f64).map(|v| v as $t)
            }
            fn write_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_le_bytes()) }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("caller passes the type's size"))
            }
        }
    )*};
}

int_element!(i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
             u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64);

impl sealed::Sealed for f64 {}
impl Element for f64 {
    const DTYPE: DType = DType::Float64;
    fn to_f64(self) -> f64 {
        self
    }
    fn narrow(x: f64, _saturate: bool) -> Result<Self, Narrow> {
        Ok(x)
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
    fn read_le(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes.try_into().expect("caller passes the type's size"))
    }
}

impl sealed::Sealed for f32 {}
impl Element for f32 {
    const DTYPE: DType = DType::Float32;
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn narrow(x: f64, _saturate: bool) -> Result<Self, Narrow> {
        Ok(x as f32) // IEEE round to nearest even; overflow gives ±inf
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
    fn read_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes.try_into().expect("caller passes the type's size"))
    }
    fn view_as_f32<'a, D: Dimension>(view: ArrayView<'a, Self, D>) -> CowArray<'a, f32, D> {
        view.into()
    }
}

macro_rules! half_element {
    ($($t:ty => $dtype:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 { <$t>::to_f64(self) }
            fn narrow(x: f64, _saturate: bool) -> Result<Self, Narrow> {
                Ok(<$t>::from_f64(x)) // half rounds to nearest even; overflow gives ±inf
            }
            fn write_le(self, out: &mut Vec<u8>) { out.extend_from_slice(&self.to_bits().to_le_bytes()) }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_bits(u16::from_le_bytes(bytes.try_into().expect("caller passes the type's size")))
            }
        }
    )*};
}

half_element!(f16 => Float16, bf16 => BFloat16);

/// Bit patterns of the 8-bit floats, from the OCP FP8 specification.
/// (`float8`'s own `MAX`/`INFINITY` constants are off by one code, so we name ours.)
pub(crate) mod fp8_bits {
    /// float8_e4m3fn: 0_1111_110 = 448.
    pub const E4M3_MAX: u8 = 0x7E;
    /// float8_e4m3fn: 0_1111_111, the only NaN (no infinities).
    pub const E4M3_NAN: u8 = 0x7F;
    /// float8_e5m2: 0_11110_11 = 57344.
    pub const E5M2_MAX: u8 = 0x7B;
    /// float8_e5m2: 0_11111_00.
    pub const E5M2_INF: u8 = 0x7C;
    /// float8_e5m2: a quiet NaN.
    pub const E5M2_NAN: u8 = 0x7E;
    /// Magnitudes above this round beyond 448 (464 itself ties down to 448).
    pub const E4M3_OVERFLOW: f64 = 464.0;
    /// Magnitudes at or above this round to infinity (61440 ties up to inf).
    pub const E5M2_OVERFLOW: f64 = 61440.0;
    /// The sign bit.
    pub const SIGN: u8 = 0x80;
}

fn signed_bits(x: f64, magnitude: u8) -> u8 {
    if x.is_sign_negative() { magnitude | fp8_bits::SIGN } else { magnitude }
}

impl sealed::Sealed for F8E4M3 {}
impl Element for F8E4M3 {
    const DTYPE: DType = DType::Float8E4M3Fn;
    fn to_f64(self) -> f64 {
        F8E4M3::to_f64(&self)
    }
    fn narrow(x: f64, saturate: bool) -> Result<Self, Narrow> {
        if x.is_nan() {
            return Ok(F8E4M3::from_bits(fp8_bits::E4M3_NAN));
        }
        if x.abs() > fp8_bits::E4M3_OVERFLOW {
            // No infinity to go to: clamp only when the caller said so.
            return if saturate {
                Ok(F8E4M3::from_bits(signed_bits(x, fp8_bits::E4M3_MAX)))
            } else {
                Err(Narrow::Overflow)
            };
        }
        Ok(F8E4M3::from_f64(x))
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self.to_bits())
    }
    fn read_le(bytes: &[u8]) -> Self {
        F8E4M3::from_bits(bytes[0])
    }
}

impl sealed::Sealed for F8E5M2 {}
impl Element for F8E5M2 {
    const DTYPE: DType = DType::Float8E5M2;
    fn to_f64(self) -> f64 {
        F8E5M2::to_f64(&self)
    }
    fn narrow(x: f64, saturate: bool) -> Result<Self, Narrow> {
        if x.is_nan() {
            return Ok(F8E5M2::from_bits(fp8_bits::E5M2_NAN));
        }
        if x.abs() >= fp8_bits::E5M2_OVERFLOW {
            // float8's converter always saturates; e5m2 has infinities, so
            // overflow goes to ±inf like f16 and bf16, unless asked to saturate.
            let magnitude = if saturate && x.is_finite() { fp8_bits::E5M2_MAX } else { fp8_bits::E5M2_INF };
            return Ok(F8E5M2::from_bits(signed_bits(x, magnitude)));
        }
        Ok(F8E5M2::from_f64(x))
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self.to_bits())
    }
    fn read_le(bytes: &[u8]) -> Self {
        F8E5M2::from_bits(bytes[0])
    }
}

/// Turns a failed narrowing into the library's error, naming the value and where it was.
pub(crate) fn narrow_error(why: Narrow, value: f64, index: usize, dtype: DType) -> Error {
    match why {
        Narrow::NaN => Error::NonFinite { what: "casting to an integer type", value: format_g(value), index },
        Narrow::Overflow => Error::OutOfRange {
            value: format_g(value),
            index,
            dtype,
            max: crate::info::finfo(dtype).map(|i| format_g(i.max)).unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes an 8-bit float from its fields, independently of `float8`.
    fn decode_fp8(bits: u8, exp_bits: u32, man_bits: u32, fnuz_top: bool) -> f64 {
        let sign = if bits & 0x80 != 0 { -1.0 } else { 1.0 };
        let exp = u32::from(bits & 0x7F) >> man_bits;
        let man = u32::from(bits) & ((1 << man_bits) - 1);
        let bias = (1i32 << (exp_bits - 1)) - 1;
        let all_ones = (1 << exp_bits) - 1;
        if exp == all_ones && !fnuz_top {
            return if man == 0 { sign * f64::INFINITY } else { f64::NAN };
        }
        if exp == all_ones && man == (1 << man_bits) - 1 {
            return f64::NAN; // e4m3fn: only S.1111.111 is NaN
        }
        let frac = f64::from(man) / f64::from(1u32 << man_bits);
        if exp == 0 { sign * frac * 2f64.powi(1 - bias) } else { sign * (1.0 + frac) * 2f64.powi(exp as i32 - bias) }
    }

    #[test]
    fn every_fp8_code_decodes_as_the_spec_says() {
        for bits in 0..=255u8 {
            let e4 = decode_fp8(bits, 4, 3, true);
            let got = F8E4M3::from_bits(bits).to_f64();
            assert!(got == e4 || (got.is_nan() && e4.is_nan()), "e4m3 {bits:#x}: {got} vs {e4}");
            let e5 = decode_fp8(bits, 5, 2, false);
            let got = F8E5M2::from_bits(bits).to_f64();
            assert!(got == e5 || (got.is_nan() && e5.is_nan()), "e5m2 {bits:#x}: {got} vs {e5}");
        }
    }

    #[test]
    fn every_fp8_value_narrows_back_to_itself() {
        for bits in 0..=255u8 {
            let v = F8E4M3::from_bits(bits);
            if !v.to_f64().is_nan() {
                assert_eq!(<F8E4M3 as Element>::narrow(v.to_f64(), false).unwrap().to_bits(), bits);
            }
            let v = F8E5M2::from_bits(bits);
            if !v.to_f64().is_nan() {
                assert_eq!(<F8E5M2 as Element>::narrow(v.to_f64(), false).unwrap().to_bits(), bits);
            }
        }
    }

    #[test]
    fn fp8_overflow_rules() {
        let e4 = |x, sat| <F8E4M3 as Element>::narrow(x, sat).map(|v| v.to_f64());
        assert_eq!(e4(464.0, false), Ok(448.0)); // the tie goes to the even code
        assert_eq!(e4(464.5, false), Err(Narrow::Overflow));
        assert_eq!(e4(-1e9, true), Ok(-448.0));
        assert_eq!(e4(f64::INFINITY, true), Ok(448.0));
        assert!(e4(f64::NAN, false).unwrap().is_nan());
        let e5 = |x, sat| <F8E5M2 as Element>::narrow(x, sat).unwrap().to_f64();
        assert_eq!(e5(61439.0, false), 57344.0);
        assert_eq!(e5(61440.0, false), f64::INFINITY);
        assert_eq!(e5(-1e9, false), f64::NEG_INFINITY);
        assert_eq!(e5(-1e9, true), -57344.0);
        assert_eq!(e5(f64::NEG_INFINITY, true), f64::NEG_INFINITY);
    }

    #[test]
    fn integers_round_half_to_even_and_saturate() {
        let i8n = |x| <i8 as Element>::narrow(x, false);
        assert_eq!(i8n(2.5), Ok(2));
        assert_eq!(i8n(-2.5), Ok(-2));
        assert_eq!(i8n(3.5), Ok(4));
        assert_eq!(i8n(1e9), Ok(127));
        assert_eq!(i8n(f64::NEG_INFINITY), Ok(-128));
        assert_eq!(i8n(f64::NAN), Err(Narrow::NaN));
        assert_eq!(<u64 as Element>::narrow(1e30, false), Ok(u64::MAX));
        assert_eq!(<i64 as Element>::narrow(-1e30, false), Ok(i64::MIN));
    }
}
