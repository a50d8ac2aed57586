//! The element types a tensor can hold, and their exact conversions.
//!
//! [`Element`] is sealed: it is implemented for Rust's numeric primitives,
//! `half`'s [`f16`] and [`bf16`], `float8`'s [`F8E4M3`] (float8_e4m3fn)
//! and [`F8E5M2`], and quantlab's own narrow floats ([`Float8E4M3Fnuz`] …
//! [`Float4E2M1Fn`], one code a byte). All of them widen to `f64` without loss
//! except `i64`/`u64` beyond 2^53, so narrowing goes through `f64` with a single
//! rounding (by [`crate::Minifloat`] for every float narrower than `f32`).

use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};
use ndarray::{ArrayView, CowArray, Dimension};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::info::format_g;
use crate::minifloat::{Minifloat, Overflow};

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
    /// Zero or a negative value for float8_e8m0fnu, which holds only positive powers of two.
    NotPositive,
}

/// A scalar type that quantlab tensors can hold.
///
/// Sealed: implemented for `f64`, `f32`, [`struct@f16`], [`bf16`], [`F8E4M3`], [`F8E5M2`],
/// the narrow floats of this module ([`Float8E4M3Fnuz`] … [`Float4E2M1Fn`]),
/// `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`.
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The data type this Rust type stores.
    const DTYPE: DType;

    /// The value as `f64` (exact for every type but 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;

    /// The nearest value of this type: floats round to nearest, ties to even;
    /// integers round half to even and saturate at their bounds.
    /// `overflow` decides what happens to values the type cannot hold.
    #[doc(hidden)]
    fn narrow(x: f64, overflow: Overflow) -> Result<Self, Narrow>;

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
            fn narrow(x: f64, _overflow: Overflow) -> Result<Self, Narrow> {
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
    fn narrow(x: f64, _overflow: Overflow) -> Result<Self, Narrow> {
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
    fn narrow(x: f64, overflow: Overflow) -> Result<Self, Narrow> {
        let y = x as f32; // IEEE round to nearest even, once; overflow gives ±inf
        Ok(if overflow == Overflow::Saturate && y.is_infinite() && x.is_finite() { f32::MAX.copysign(y) } else { y })
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

/// The narrow-float model of a type that has one.
const fn model(dtype: DType) -> Minifloat {
    match dtype.minifloat() {
        Some(m) => m,
        None => panic!("only called with narrow float types"), // const-evaluated: never at run time
    }
}

macro_rules! half_element {
    ($($t:ty => $dtype:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 { <$t>::to_f64(self) }
            fn narrow(x: f64, overflow: Overflow) -> Result<Self, Narrow> {
                // Not `half`'s `from_f64`: it drops the low 32 bits of an f64
                // before rounding, which rounds twice. The model rounds once.
                const M: Minifloat = model(DType::$dtype);
                M.encode_raw(x, overflow).map(<$t>::from_bits)
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
#[allow(dead_code)] // documentation of the codes; the model derives them
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
}

macro_rules! float8_crate_element {
    ($($t:ty => $dtype:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                model(DType::$dtype).decode(u16::from(self.to_bits()))
            }
            fn narrow(x: f64, overflow: Overflow) -> Result<Self, Narrow> {
                // The model, not `float8`'s converter (which always saturates).
                const M: Minifloat = model(DType::$dtype);
                M.encode_raw(x, overflow).map(|c| <$t>::from_bits(c as u8))
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.push(self.to_bits())
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_bits(bytes[0])
            }
        }
    )*};
}

float8_crate_element!(F8E4M3 => Float8E4M3Fn, F8E5M2 => Float8E5M2);

macro_rules! narrow_float {
    ($($(#[$doc:meta])* $t:ident => $dtype:ident),* $(,)?) => {$(
        $(#[$doc])*
        ///
        /// One code per value, in the low bits of a byte, as ml_dtypes stores
        /// it; [`crate::cast_to_bytes`] packs the sub-byte ones.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        pub struct $t(u8);

        impl $t {
            /// The value with this code (bits above the type's width are dropped).
            pub const fn from_bits(code: u8) -> Self {
                const MASK: u8 = (((1u16) << DType::$dtype.bits()) - 1) as u8;
                $t(code & MASK)
            }
            /// The code.
            pub const fn to_bits(self) -> u8 {
                self.0
            }
            /// The exact value.
            pub fn to_f64(self) -> f64 {
                model(DType::$dtype).decode(u16::from(self.0))
            }
            /// The exact value as `f32`.
            pub fn to_f32(self) -> f32 {
                model(DType::$dtype).decode_f32(u16::from(self.0))
            }
            /// The nearest value to `x`, rounded once, with `overflow` deciding
            /// what happens to values the type cannot hold.
            pub fn from_f64(x: f64, overflow: Overflow) -> Result<Self> {
                model(DType::$dtype).encode(x, overflow).map(|c| $t(c as u8))
            }
            /// [`Self::from_f64`] for an `f32`.
            pub fn from_f32(x: f32, overflow: Overflow) -> Result<Self> {
                Self::from_f64(f64::from(x), overflow)
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.to_f32(), f)
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.to_f32(), f)
            }
        }

        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = DType::$dtype;
            fn to_f64(self) -> f64 {
                $t::to_f64(self)
            }
            fn narrow(x: f64, overflow: Overflow) -> Result<Self, Narrow> {
                const M: Minifloat = model(DType::$dtype);
                M.encode_raw(x, overflow).map(|c| $t(c as u8))
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.push(self.0)
            }
            fn read_le(bytes: &[u8]) -> Self {
                $t::from_bits(bytes[0])
            }
        }
    )*};
}

narrow_float!(
    /// float8_e4m3fnuz (AMD MI300): bias 8, max 240, NaN = 0x80, no infinities or -0.
    Float8E4M3Fnuz => Float8E4M3Fnuz,
    /// float8_e5m2fnuz (AMD MI300): bias 16, max 57344, NaN = 0x80, no infinities or -0.
    Float8E5M2Fnuz => Float8E5M2Fnuz,
    /// float8_e4m3 (IEEE-style, ml_dtypes): max 240, with infinities and NaNs.
    /// Not to be confused with float8_e4m3fn (`float8::F8E4M3`, max 448).
    Float8E4M3 => Float8E4M3,
    /// float8_e3m4 (IEEE-style, ml_dtypes): max 15.5, with infinities and NaNs.
    Float8E3M4 => Float8E3M4,
    /// float8_e4m3b11fnuz (Graphcore): bias 11, max 30, NaN = 0x80.
    Float8E4M3B11Fnuz => Float8E4M3B11Fnuz,
    /// float8_e8m0fnu: the MX block scale, 2^(code - 127), NaN = 0xFF, no zero, no sign.
    Float8E8M0Fnu => Float8E8M0Fnu,
    /// float6_e2m3fn (MXFP6): max 7.5, finite only, no NaN.
    Float6E2M3Fn => Float6E2M3Fn,
    /// float6_e3m2fn (MXFP6): max 28, finite only, no NaN.
    Float6E3M2Fn => Float6E3M2Fn,
    /// float4_e2m1fn (MXFP4, NVFP4): 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
    Float4E2M1Fn => Float4E2M1Fn,
);

/// Turns a failed narrowing into the library's error, naming the value and where it was.
pub(crate) fn narrow_error(why: Narrow, value: f64, index: usize, dtype: DType) -> Error {
    match why {
        Narrow::NaN if dtype.is_float() => Error::Unrepresentable {
            value: format_g(value),
            index,
            dtype,
            reason: "it has no NaN",
            hint: "replace or mask NaN first, or ask for ml_dtypes' rule (NaN becomes -0)",
        },
        Narrow::NotPositive => Error::Unrepresentable {
            value: format_g(value),
            index,
            dtype,
            reason: "it holds only positive powers of two",
            hint: "pass the magnitude of a positive scale (ml_dtypes' rule gives NaN)",
        },
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
                assert_eq!(<F8E4M3 as Element>::narrow(v.to_f64(), Overflow::Error).unwrap().to_bits(), bits);
            }
            let v = F8E5M2::from_bits(bits);
            if !v.to_f64().is_nan() {
                assert_eq!(<F8E5M2 as Element>::narrow(v.to_f64(), Overflow::Error).unwrap().to_bits(), bits);
            }
        }
    }

    #[test]
    fn fp8_overflow_rules() {
        let e4 = |x, sat: bool| {
            <F8E4M3 as Element>::narrow(x, if sat { Overflow::Saturate } else { Overflow::Error }).map(|v| v.to_f64())
        };
        assert_eq!(e4(464.0, false), Ok(448.0)); // the tie goes to the even code
        assert_eq!(e4(464.5, false), Err(Narrow::Overflow));
        assert_eq!(e4(-1e9, true), Ok(-448.0));
        assert_eq!(e4(f64::INFINITY, true), Ok(448.0));
        assert!(e4(f64::NAN, false).unwrap().is_nan());
        let e5 = |x, sat: bool| {
            <F8E5M2 as Element>::narrow(x, if sat { Overflow::Saturate } else { Overflow::Error }).unwrap().to_f64()
        };
        assert_eq!(e5(61439.0, false), 57344.0);
        assert_eq!(e5(61440.0, false), f64::INFINITY);
        assert_eq!(e5(-1e9, false), f64::NEG_INFINITY);
        assert_eq!(e5(-1e9, true), -57344.0);
        assert_eq!(e5(f64::NEG_INFINITY, true), f64::NEG_INFINITY);
    }

    #[test]
    fn integers_round_half_to_even_and_saturate() {
        let i8n = |x| <i8 as Element>::narrow(x, Overflow::Error);
        assert_eq!(i8n(2.5), Ok(2));
        assert_eq!(i8n(-2.5), Ok(-2));
        assert_eq!(i8n(3.5), Ok(4));
        assert_eq!(i8n(1e9), Ok(127));
        assert_eq!(i8n(f64::NEG_INFINITY), Ok(-128));
        assert_eq!(i8n(f64::NAN), Err(Narrow::NaN));
        assert_eq!(<u64 as Element>::narrow(1e30, Overflow::Error), Ok(u64::MAX));
        assert_eq!(<i64 as Element>::narrow(-1e30, Overflow::Error), Ok(i64::MIN));
    }
}
