//! `iinfo` and `finfo`: the limits of integer and floating-point types,
//! printed exactly as PyTorch prints them.

use std::fmt;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// Limits of an integer type, like `torch.iinfo`.
///
/// `Debug` prints the same line as `Display`, as PyTorch's `repr` does, so a
/// notebook cell ending in `iinfo(DType::Int8)?` shows
/// `iinfo(min=-128, max=127, dtype=int8)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IInfo {
    /// Width in bits.
    pub bits: u32,
    /// Smallest value.
    pub min: i128,
    /// Largest value.
    pub max: i128,
    /// The type described.
    pub dtype: DType,
}

/// Limits of a floating-point type, like `torch.finfo` and `ml_dtypes.finfo`.
///
/// `Debug` prints the same line as `Display`, like PyTorch's `repr`.
#[derive(Clone, Copy, PartialEq)]
pub struct FInfo {
    /// Width in bits.
    pub bits: u32,
    /// Distance from 1.0 to the next larger representable value.
    pub eps: f64,
    /// Largest finite value.
    pub max: f64,
    /// Most negative finite value (`-max`).
    pub min: f64,
    /// Alias of `smallest_normal`, as PyTorch keeps it.
    pub tiny: f64,
    /// Smallest positive normal value.
    pub smallest_normal: f64,
    /// Smallest positive subnormal value.
    pub smallest_subnormal: f64,
    /// Approximate decimal resolution: `10^-floor(mantissa_bits * log10(2))`.
    pub resolution: f64,
    /// The type described.
    pub dtype: DType,
}

/// Limits of an integer type.
///
/// PyTorch refuses `iinfo` for its sub-byte types (int1…int7, uint1…uint7):
/// their lines here are quantlab's own, in PyTorch's format
/// (`iinfo(min=-1, max=0, dtype=int1)`).
///
/// Asking it of a floating-point type is an [`Error::WrongDType`], not a panic.
///
/// ```
/// use quantlab::{iinfo, DType};
/// assert_eq!(iinfo(DType::Int8)?.to_string(), "iinfo(min=-128, max=127, dtype=int8)");
/// assert_eq!(iinfo(DType::UInt4)?.max, 15);
/// assert!(iinfo(DType::Float32).is_err());
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn iinfo(dtype: DType) -> Result<IInfo> {
    let (min, max) = dtype.int_range().ok_or(Error::WrongDType {
        what: "iinfo",
        dtype,
        hint: "use finfo for floating-point types",
    })?;
    Ok(IInfo { bits: dtype.bits(), min, max, dtype })
}

/// Limits of a floating-point type, derived from its bit layout.
///
/// For the types PyTorch 2.15 has a `finfo` for, the line is PyTorch's, digit
/// for digit; for the others (float8_e4m3, e3m4, e4m3b11fnuz, float6, float4,
/// which PyTorch refuses) it is the same format with ml_dtypes' values.
///
/// Asking it of an integer type is an [`Error::WrongDType`], not a panic.
///
/// ```
/// use quantlab::{finfo, DType};
/// let bf16 = finfo(DType::BFloat16)?;
/// assert_eq!(bf16.eps, 0.0078125);
/// assert_eq!(
///     bf16.to_string(),
///     "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, \
///      smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)"
/// );
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn finfo(dtype: DType) -> Result<FInfo> {
    let layout =
        dtype.float_layout().ok_or(Error::WrongDType { what: "finfo", dtype, hint: "use iinfo for integer types" })?;
    let m = layout.mantissa as i32;
    // PyTorch's definition (ml_dtypes prints a different `resolution` for the
    // narrow types: 0.1 rounded into the type, e.g. 0.101562 for e4m3fn).
    let digits = (f64::from(layout.mantissa) * std::f64::consts::LOG10_2).floor() as i32;
    let (max, min, smallest_normal, smallest_subnormal) = match dtype.minifloat() {
        Some(mf) => {
            // float8_e8m0fnu has no sign: its `min` is its smallest value, as in PyTorch and ml_dtypes.
            let min = if mf.is_signed() { -mf.max() } else { mf.smallest_normal() };
            (mf.max(), min, mf.smallest_normal(), mf.smallest_subnormal())
        }
        None => {
            let bias = (1i32 << (layout.exponent - 1)) - 1;
            let max = (2.0 - 2f64.powi(-m)) * 2f64.powi(bias);
            (max, -max, 2f64.powi(1 - bias), 2f64.powi(1 - bias - m))
        }
    };
    Ok(FInfo {
        bits: dtype.bits(),
        eps: 2f64.powi(-m),
        max,
        min,
        tiny: smallest_normal,
        smallest_normal,
        smallest_subnormal,
        resolution: 10f64.powi(-digits),
        dtype,
    })
}

impl fmt::Display for IInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // PyTorch formats the bounds as doubles with C's `%g`, hence `-2.14748e+09`.
        write!(f, "iinfo(min={}, max={}, dtype={})", format_g(self.min as f64), format_g(self.max as f64), self.dtype)
    }
}

impl fmt::Display for FInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "finfo(resolution={}, min={}, max={}, eps={}, smallest_normal={}, tiny={}, dtype={})",
            format_g(self.resolution),
            format_g(self.min),
            format_g(self.max),
            format_g(self.eps),
            format_g(self.smallest_normal),
            format_g(self.tiny),
            self.dtype
        )
    }
}

/// Formats like C's `printf("%g")`: six significant digits, trailing zeros
/// dropped, scientific notation when the exponent is below -4 or above 5.
///
/// ```
/// assert_eq!(quantlab::format_g(-2147483648.0), "-2.14748e+09");
/// assert_eq!(quantlab::format_g(0.0009765625), "0.000976562");
/// assert_eq!(quantlab::format_g(-65504.0), "-65504");
/// ```
pub fn format_g(x: f64) -> String {
    const PRECISION: i32 = 6;
    if x == 0.0 || !x.is_finite() {
        return match x {
            v if v.is_nan() => "nan".into(),
            v if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
            v if v.is_sign_negative() => "-0".into(),
            _ => "0".into(),
        };
    }
    // The exponent is the one of the value *after* rounding to 6 digits, as in C.
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, x);
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes a decimal exponent");
    if !(-4..PRECISION).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_zeros(mantissa), exp.abs())
    } else {
        strip_zeros(&format!("{:.*}", (PRECISION - 1 - exp) as usize, x)).to_string()
    }
}

impl fmt::Debug for IInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for FInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch 2.x's own output, quoted in the quantlab issue.
    const TORCH_IINFO: [(DType, &str); 8] = [
        (DType::UInt8, "iinfo(min=0, max=255, dtype=uint8)"),
        (DType::Int8, "iinfo(min=-128, max=127, dtype=int8)"),
        (DType::Int16, "iinfo(min=-32768, max=32767, dtype=int16)"),
        (DType::Int32, "iinfo(min=-2.14748e+09, max=2.14748e+09, dtype=int32)"),
        (DType::Int64, "iinfo(min=-9.22337e+18, max=9.22337e+18, dtype=int64)"),
        (DType::UInt16, "iinfo(min=0, max=65535, dtype=uint16)"),
        (DType::UInt32, "iinfo(min=0, max=4.29497e+09, dtype=uint32)"),
        (DType::UInt64, "iinfo(min=0, max=1.84467e+19, dtype=uint64)"),
    ];

    const TORCH_FINFO: [(DType, &str); 6] = [
        (
            DType::Float64,
            "finfo(resolution=1e-15, min=-1.79769e+308, max=1.79769e+308, eps=2.22045e-16, smallest_normal=2.22507e-308, tiny=2.22507e-308, dtype=float64)",
        ),
        (
            DType::Float32,
            "finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)",
        ),
        (
            DType::Float16,
            "finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)",
        ),
        (
            DType::BFloat16,
            "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)",
        ),
        (
            DType::Float8E4M3Fn,
            "finfo(resolution=1, min=-448, max=448, eps=0.125, smallest_normal=0.015625, tiny=0.015625, dtype=float8_e4m3fn)",
        ),
        (
            DType::Float8E5M2,
            "finfo(resolution=1, min=-57344, max=57344, eps=0.25, smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float8_e5m2)",
        ),
    ];

    /// PyTorch 2.15's lines for the types added by issue 12 (quoted in the issue).
    const TORCH_FINFO_NARROW: [(DType, &str); 3] = [
        (
            DType::Float8E4M3Fnuz,
            "finfo(resolution=1, min=-240, max=240, eps=0.125, smallest_normal=0.0078125, tiny=0.0078125, dtype=float8_e4m3fnuz)",
        ),
        (
            DType::Float8E5M2Fnuz,
            "finfo(resolution=1, min=-57344, max=57344, eps=0.25, smallest_normal=3.05176e-05, tiny=3.05176e-05, dtype=float8_e5m2fnuz)",
        ),
        (
            DType::Float8E8M0Fnu,
            "finfo(resolution=1, min=5.87747e-39, max=1.70141e+38, eps=1, smallest_normal=5.87747e-39, tiny=5.87747e-39, dtype=float8_e8m0fnu)",
        ),
    ];

    #[test]
    fn narrow_finfo_prints_what_pytorch_prints() {
        for (dtype, want) in TORCH_FINFO_NARROW {
            assert_eq!(finfo(dtype).unwrap().to_string(), want);
        }
        // Where PyTorch has no finfo: the issue's ml_dtypes values.
        let f4 = finfo(DType::Float4E2M1Fn).unwrap();
        assert_eq!((f4.max, f4.eps, f4.tiny, f4.smallest_subnormal), (6.0, 0.5, 1.0, 0.5));
        let f6 = finfo(DType::Float6E2M3Fn).unwrap();
        assert_eq!((f6.max, f6.eps), (7.5, 0.125));
        assert_eq!(finfo(DType::Float8E4M3).unwrap().max, 240.0);
        assert_eq!(finfo(DType::Float8E3M4).unwrap().max, 15.5);
        assert_eq!(finfo(DType::Float8E4M3B11Fnuz).unwrap().max, 30.0);
    }

    #[test]
    fn sub_byte_iinfo() {
        for (dtype, want) in [
            (DType::Int1, "iinfo(min=-1, max=0, dtype=int1)"),
            (DType::UInt1, "iinfo(min=0, max=1, dtype=uint1)"),
            (DType::Int3, "iinfo(min=-4, max=3, dtype=int3)"),
            (DType::UInt7, "iinfo(min=0, max=127, dtype=uint7)"),
        ] {
            assert_eq!(iinfo(dtype).unwrap().to_string(), want);
        }
    }

    #[test]
    fn every_type_has_its_info() {
        for d in DType::ALL {
            assert_eq!(d.is_float(), finfo(d).is_ok(), "{d}");
            assert_eq!(!d.is_float(), iinfo(d).is_ok(), "{d}");
        }
    }

    #[test]
    fn iinfo_prints_what_pytorch_prints() {
        for (dtype, want) in TORCH_IINFO {
            assert_eq!(iinfo(dtype).unwrap().to_string(), want);
        }
        for (dtype, want) in [
            (DType::Int4, "iinfo(min=-8, max=7, dtype=int4)"),
            (DType::UInt4, "iinfo(min=0, max=15, dtype=uint4)"),
            (DType::Int2, "iinfo(min=-2, max=1, dtype=int2)"),
            (DType::UInt2, "iinfo(min=0, max=3, dtype=uint2)"),
        ] {
            assert_eq!(iinfo(dtype).unwrap().to_string(), want);
        }
    }

    #[test]
    fn finfo_prints_what_pytorch_prints() {
        for (dtype, want) in TORCH_FINFO {
            assert_eq!(finfo(dtype).unwrap().to_string(), want);
        }
    }

    #[test]
    fn finfo_matches_rust_and_half_constants() {
        let f32i = finfo(DType::Float32).unwrap();
        assert_eq!(f32i.max, f64::from(f32::MAX));
        assert_eq!(f32i.eps, f64::from(f32::EPSILON));
        assert_eq!(f32i.smallest_subnormal, f64::from(f32::from_bits(1)));
        let f16i = finfo(DType::Float16).unwrap();
        assert_eq!(f16i.max, half::f16::MAX.to_f64());
        assert_eq!(f16i.smallest_subnormal, half::f16::from_bits(1).to_f64());
        let bf = finfo(DType::BFloat16).unwrap();
        assert_eq!(bf.max, half::bf16::MAX.to_f64());
        assert_eq!(finfo(DType::Float8E4M3Fn).unwrap().smallest_subnormal, 2f64.powi(-9));
        assert_eq!(finfo(DType::Float8E5M2).unwrap().smallest_subnormal, 2f64.powi(-16));
        assert_eq!(finfo(DType::Float64).unwrap().max, f64::MAX);
    }

    #[test]
    fn debug_is_the_torch_repr() {
        assert_eq!(format!("{:?}", iinfo(DType::Int8).unwrap()), "iinfo(min=-128, max=127, dtype=int8)");
        assert!(format!("{:?}", finfo(DType::Float16).unwrap()).starts_with("finfo(resolution=0.001, "));
    }

    #[test]
    fn wrong_family_is_an_error() {
        let err = iinfo(DType::Float16).unwrap_err();
        assert_eq!(err.to_string(), "iinfo is not defined for float16: use finfo for floating-point types");
        assert!(finfo(DType::Int4).is_err());
    }

    #[test]
    fn format_g_follows_c() {
        for (x, want) in [
            (1.0, "1"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (999999.5, "1e+06"),
            (1.5e-300, "1.5e-300"),
            (-0.0, "-0"),
        ] {
            assert_eq!(format_g(x), want, "{x}");
        }
    }
}
