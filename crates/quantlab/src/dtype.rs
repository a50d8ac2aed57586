//! The data types quantlab knows: their names, widths and families.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A numeric data type, named as PyTorch names it.
///
/// Parses from the names people type: `"int8"`, `"bfloat16"`, `"bf16"`,
/// `"torch.float16"`, `"f32"`, `"fp8_e4m3"` and so on.
///
/// ```
/// use quantlab::DType;
/// let dt: DType = "torch.bfloat16".parse()?;
/// assert_eq!(dt, DType::BFloat16);
/// assert_eq!((dt.bits(), dt.to_string()), (16, "bfloat16".to_string()));
/// assert_eq!("int4".parse::<DType>()?.bits(), 4);
/// # Ok::<(), quantlab::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 8-bit unsigned integer.
    UInt8,
    /// 8-bit signed integer.
    Int8,
    /// 16-bit signed integer.
    Int16,
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 16-bit unsigned integer.
    UInt16,
    /// 32-bit unsigned integer.
    UInt32,
    /// 64-bit unsigned integer.
    UInt64,
    /// IEEE 754 double precision.
    Float64,
    /// IEEE 754 single precision.
    Float32,
    /// IEEE 754 half precision.
    Float16,
    /// Brain floating point: float32's range with 8 bits of precision.
    BFloat16,
    /// 8-bit float, 4 exponent and 3 mantissa bits, finite only (no infinities).
    Float8E4M3Fn,
    /// 8-bit float, 5 exponent and 2 mantissa bits, with infinities.
    Float8E5M2,
    /// 4-bit signed integer (packed two to a byte).
    Int4,
    /// 4-bit unsigned integer (packed two to a byte).
    UInt4,
    /// 2-bit signed integer (packed four to a byte).
    Int2,
    /// 2-bit unsigned integer (packed four to a byte).
    UInt2,
    /// 8-bit float e4m3, bias 8, no infinities, no negative zero, NaN = 0x80 (AMD MI300).
    Float8E4M3Fnuz,
    /// 8-bit float e5m2, bias 16, no infinities, no negative zero, NaN = 0x80 (AMD MI300).
    Float8E5M2Fnuz,
    /// 8-bit float e4m3 with IEEE infinities and NaNs (max 240).
    Float8E4M3,
    /// 8-bit float e3m4 with IEEE infinities and NaNs (max 15.5).
    Float8E3M4,
    /// 8-bit float e4m3, bias 11, no infinities, no negative zero, NaN = 0x80 (Graphcore).
    Float8E4M3B11Fnuz,
    /// 8-bit unsigned power of two 2^-127..2^127, NaN = 0xFF, no zero: the MX block scale.
    Float8E8M0Fnu,
    /// 6-bit float e2m3, finite only (max 7.5), no NaN: an MXFP6 element.
    Float6E2M3Fn,
    /// 6-bit float e3m2, finite only (max 28), no NaN: an MXFP6 element.
    Float6E3M2Fn,
    /// 4-bit float e2m1 (0, 0.5, 1, 1.5, 2, 3, 4, 6), no NaN: the MXFP4 and NVFP4 element.
    Float4E2M1Fn,
    /// 1-bit signed integer: -1 or 0 (ml_dtypes).
    Int1,
    /// 1-bit unsigned integer: 0 or 1 (ml_dtypes).
    UInt1,
    /// 3-bit signed integer (PyTorch shell dtype).
    Int3,
    /// 5-bit signed integer (PyTorch shell dtype).
    Int5,
    /// 6-bit signed integer (PyTorch shell dtype).
    Int6,
    /// 7-bit signed integer (PyTorch shell dtype).
    Int7,
    /// 3-bit unsigned integer (PyTorch shell dtype).
    UInt3,
    /// 5-bit unsigned integer (PyTorch shell dtype).
    UInt5,
    /// 6-bit unsigned integer (PyTorch shell dtype).
    UInt6,
    /// 7-bit unsigned integer (PyTorch shell dtype).
    UInt7,
}

/// Bit layout of a floating-point type: sign, exponent and mantissa widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloatLayout {
    /// Sign bits (1; 0 for the unsigned float8_e8m0fnu).
    pub sign: u32,
    /// Exponent bits.
    pub exponent: u32,
    /// Mantissa (fraction) bits, without the implicit leading 1.
    pub mantissa: u32,
}

impl FloatLayout {
    /// Total width in bits (sign + exponent + mantissa).
    pub const fn bits(self) -> u32 {
        self.sign + self.exponent + self.mantissa
    }
}

impl DType {
    /// Every data type, in the order of the lesson: integers, floats, sub-byte
    /// integers, then the narrow types added for MX/NVFP4 and AMD/Graphcore fp8.
    pub const ALL: [DType; 37] = [
        DType::UInt8,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float64,
        DType::Float32,
        DType::Float16,
        DType::BFloat16,
        DType::Float8E4M3Fn,
        DType::Float8E5M2,
        DType::Int4,
        DType::UInt4,
        DType::Int2,
        DType::UInt2,
        DType::Float8E4M3Fnuz,
        DType::Float8E5M2Fnuz,
        DType::Float8E4M3,
        DType::Float8E3M4,
        DType::Float8E4M3B11Fnuz,
        DType::Float8E8M0Fnu,
        DType::Float6E2M3Fn,
        DType::Float6E3M2Fn,
        DType::Float4E2M1Fn,
        DType::Int1,
        DType::UInt1,
        DType::Int3,
        DType::Int5,
        DType::Int6,
        DType::Int7,
        DType::UInt3,
        DType::UInt5,
        DType::UInt6,
        DType::UInt7,
    ];

    /// The integer types that linear quantization can target.
    pub const QUANTIZED: [DType; 6] = [DType::Int8, DType::UInt8, DType::Int4, DType::UInt4, DType::Int2, DType::UInt2];

    /// PyTorch's name for the type (what `Display` prints).
    pub const fn name(self) -> &'static str {
        match self {
            DType::UInt8 => "uint8",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float64 => "float64",
            DType::Float32 => "float32",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Float8E4M3Fn => "float8_e4m3fn",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Int4 => "int4",
            DType::UInt4 => "uint4",
            DType::Int2 => "int2",
            DType::UInt2 => "uint2",
            DType::Float8E4M3Fnuz => "float8_e4m3fnuz",
            DType::Float8E5M2Fnuz => "float8_e5m2fnuz",
            DType::Float8E4M3 => "float8_e4m3",
            DType::Float8E3M4 => "float8_e3m4",
            DType::Float8E4M3B11Fnuz => "float8_e4m3b11fnuz",
            DType::Float8E8M0Fnu => "float8_e8m0fnu",
            DType::Float6E2M3Fn => "float6_e2m3fn",
            DType::Float6E3M2Fn => "float6_e3m2fn",
            DType::Float4E2M1Fn => "float4_e2m1fn",
            DType::Int1 => "int1",
            DType::UInt1 => "uint1",
            DType::Int3 => "int3",
            DType::Int5 => "int5",
            DType::Int6 => "int6",
            DType::Int7 => "int7",
            DType::UInt3 => "uint3",
            DType::UInt5 => "uint5",
            DType::UInt6 => "uint6",
            DType::UInt7 => "uint7",
        }
    }

    /// Width of one value in bits.
    pub const fn bits(self) -> u32 {
        match self {
            DType::Int64 | DType::UInt64 | DType::Float64 => 64,
            DType::Int32 | DType::UInt32 | DType::Float32 => 32,
            DType::Int16 | DType::UInt16 | DType::Float16 | DType::BFloat16 => 16,
            DType::Int8
            | DType::UInt8
            | DType::Float8E4M3Fn
            | DType::Float8E5M2
            | DType::Float8E4M3Fnuz
            | DType::Float8E5M2Fnuz
            | DType::Float8E4M3
            | DType::Float8E3M4
            | DType::Float8E4M3B11Fnuz
            | DType::Float8E8M0Fnu => 8,
            DType::Int7 | DType::UInt7 => 7,
            DType::Int6 | DType::UInt6 | DType::Float6E2M3Fn | DType::Float6E3M2Fn => 6,
            DType::Int5 | DType::UInt5 => 5,
            DType::Int4 | DType::UInt4 | DType::Float4E2M1Fn => 4,
            DType::Int3 | DType::UInt3 => 3,
            DType::Int2 | DType::UInt2 => 2,
            DType::Int1 | DType::UInt1 => 1,
        }
    }

    /// Size of one value in bytes; fractional for the packed sub-byte types
    /// (0.5 for int4 and float4, 0.75 for float6, 0.25 for int2).
    pub fn byte_size(self) -> f64 {
        f64::from(self.bits()) / 8.0
    }

    /// Bytes needed to store `count` values, sub-byte types packed (a bit
    /// stream, first value in the low bits) and the last byte padded.
    pub fn storage_bytes(self, count: u64) -> u64 {
        (count * u64::from(self.bits())).div_ceil(8)
    }

    /// True for the floating-point types.
    pub const fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float64
                | DType::Float32
                | DType::Float16
                | DType::BFloat16
                | DType::Float8E4M3Fn
                | DType::Float8E5M2
                | DType::Float8E4M3Fnuz
                | DType::Float8E5M2Fnuz
                | DType::Float8E4M3
                | DType::Float8E3M4
                | DType::Float8E4M3B11Fnuz
                | DType::Float8E8M0Fnu
                | DType::Float6E2M3Fn
                | DType::Float6E3M2Fn
                | DType::Float4E2M1Fn
        )
    }

    /// True for types that hold negative values (the signed integers and all
    /// floats but float8_e8m0fnu).
    pub const fn is_signed(self) -> bool {
        !matches!(
            self,
            DType::UInt8
                | DType::UInt16
                | DType::UInt32
                | DType::UInt64
                | DType::UInt4
                | DType::UInt2
                | DType::UInt1
                | DType::UInt3
                | DType::UInt5
                | DType::UInt6
                | DType::UInt7
                | DType::Float8E8M0Fnu
        )
    }

    /// True for the types narrower than a byte, which are stored packed.
    pub const fn is_sub_byte(self) -> bool {
        self.bits() < 8
    }

    /// The signed integer type of the same width, if there is one.
    pub const fn signed_twin(self) -> Option<DType> {
        match self {
            DType::UInt8 | DType::Int8 => Some(DType::Int8),
            DType::UInt16 | DType::Int16 => Some(DType::Int16),
            DType::UInt32 | DType::Int32 => Some(DType::Int32),
            DType::UInt64 | DType::Int64 => Some(DType::Int64),
            DType::UInt4 | DType::Int4 => Some(DType::Int4),
            DType::UInt2 | DType::Int2 => Some(DType::Int2),
            DType::UInt1 | DType::Int1 => Some(DType::Int1),
            DType::UInt3 | DType::Int3 => Some(DType::Int3),
            DType::UInt5 | DType::Int5 => Some(DType::Int5),
            DType::UInt6 | DType::Int6 => Some(DType::Int6),
            DType::UInt7 | DType::Int7 => Some(DType::Int7),
            _ => None,
        }
    }

    /// Sign, exponent and mantissa widths of a floating-point type; `None` for integers.
    /// (For the bias and special values of the narrow ones, see [`DType::minifloat`].)
    ///
    /// ```
    /// use quantlab::{DType, FloatLayout};
    /// assert_eq!(DType::Float4E2M1Fn.float_layout(), Some(FloatLayout { sign: 1, exponent: 2, mantissa: 1 }));
    /// assert_eq!(DType::Float8E8M0Fnu.float_layout(), Some(FloatLayout { sign: 0, exponent: 8, mantissa: 0 }));
    /// ```
    pub const fn float_layout(self) -> Option<FloatLayout> {
        match self {
            DType::Float64 => Some(FloatLayout { sign: 1, exponent: 11, mantissa: 52 }),
            DType::Float32 => Some(FloatLayout { sign: 1, exponent: 8, mantissa: 23 }),
            _ => match self.minifloat() {
                Some(m) => Some(FloatLayout {
                    sign: m.is_signed() as u32,
                    exponent: m.exponent_bits,
                    mantissa: m.mantissa_bits,
                }),
                None => None,
            },
        }
    }

    /// The smallest and largest integer of an integer type, as `i128` so that
    /// every type fits; `None` for floats.
    pub const fn int_range(self) -> Option<(i128, i128)> {
        if self.is_float() {
            return None;
        }
        let bits = self.bits();
        Some(if self.is_signed() {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Other spellings people type, mapped to the canonical type.
const ALIASES: [(&str, DType); 28] = [
    ("u8", DType::UInt8),
    ("i8", DType::Int8),
    ("i16", DType::Int16),
    ("short", DType::Int16),
    ("i32", DType::Int32),
    ("int", DType::Int32),
    ("i64", DType::Int64),
    ("long", DType::Int64),
    ("u16", DType::UInt16),
    ("u32", DType::UInt32),
    ("u64", DType::UInt64),
    ("f64", DType::Float64),
    ("fp64", DType::Float64),
    ("double", DType::Float64),
    ("f32", DType::Float32),
    ("fp32", DType::Float32),
    ("float", DType::Float32),
    ("f16", DType::Float16),
    ("fp16", DType::Float16),
    ("half", DType::Float16),
    ("bf16", DType::BFloat16),
    ("e4m3", DType::Float8E4M3Fn),
    ("fp8_e4m3", DType::Float8E4M3Fn),
    ("e8m0", DType::Float8E8M0Fnu),
    ("fp4", DType::Float4E2M1Fn),
    ("float4_e2m1fn_x2", DType::Float4E2M1Fn),
    ("e5m2", DType::Float8E5M2),
    ("fp8_e5m2", DType::Float8E5M2),
];

impl FromStr for DType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase();
        let key = key
            .strip_prefix("torch.")
            .or_else(|| key.strip_prefix("np."))
            .or_else(|| key.strip_prefix("numpy."))
            .unwrap_or(&key);
        DType::ALL
            .iter()
            .copied()
            .find(|d| d.name() == key)
            .or_else(|| ALIASES.iter().find(|(alias, _)| *alias == key).map(|(_, d)| *d))
            .ok_or_else(|| Error::UnknownDType { name: s.to_string(), known: DType::ALL.map(DType::name).join(", ") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_names_people_type() {
        for (text, want) in [
            ("int8", DType::Int8),
            ("bfloat16", DType::BFloat16),
            ("bf16", DType::BFloat16),
            ("torch.float16", DType::Float16),
            ("f32", DType::Float32),
            ("Float8_E4M3FN", DType::Float8E4M3Fn),
            (" uint2 ", DType::UInt2),
            ("torch.float8_e4m3fnuz", DType::Float8E4M3Fnuz),
            ("float8_e5m2fnuz", DType::Float8E5M2Fnuz),
            ("float8_e4m3", DType::Float8E4M3),
            ("float8_e3m4", DType::Float8E3M4),
            ("float8_e4m3b11fnuz", DType::Float8E4M3B11Fnuz),
            ("torch.float8_e8m0fnu", DType::Float8E8M0Fnu),
            ("float6_e2m3fn", DType::Float6E2M3Fn),
            ("float6_e3m2fn", DType::Float6E3M2Fn),
            ("float4_e2m1fn", DType::Float4E2M1Fn),
            ("torch.float4_e2m1fn_x2", DType::Float4E2M1Fn),
            ("int1", DType::Int1),
            ("uint1", DType::UInt1),
            ("torch.int3", DType::Int3),
            ("int5", DType::Int5),
            ("int6", DType::Int6),
            ("int7", DType::Int7),
            ("torch.uint3", DType::UInt3),
            ("uint5", DType::UInt5),
            ("uint6", DType::UInt6),
            ("uint7", DType::UInt7),
        ] {
            assert_eq!(text.parse::<DType>().unwrap(), want, "{text}");
        }
        let err = "int9".parse::<DType>().unwrap_err();
        assert!(err.to_string().starts_with("unknown data type `int9`: use one of uint8, int8"), "{err}");
    }

    #[test]
    fn every_name_round_trips() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
        }
    }

    #[test]
    fn widths_sizes_and_ranges() {
        assert_eq!(DType::Float64.bits(), 64);
        assert_eq!(DType::BFloat16.byte_size(), 2.0);
        assert_eq!(DType::Int4.byte_size(), 0.5);
        assert_eq!(DType::Int2.storage_bytes(5), 2);
        assert_eq!(DType::Int4.storage_bytes(7), 4);
        assert_eq!(DType::UInt64.int_range(), Some((0, u64::MAX as i128)));
        assert_eq!(DType::Int2.int_range(), Some((-2, 1)));
        assert_eq!(DType::Float32.int_range(), None);
        assert_eq!(DType::BFloat16.float_layout(), Some(FloatLayout { sign: 1, exponent: 8, mantissa: 7 }));
        assert_eq!(DType::Float6E3M2Fn.byte_size(), 0.75);
        assert_eq!(DType::Float6E3M2Fn.storage_bytes(4), 3);
        assert_eq!(DType::Float4E2M1Fn.storage_bytes(3), 2);
        assert_eq!(DType::Int3.storage_bytes(3), 2);
        assert_eq!(DType::Int1.int_range(), Some((-1, 0)));
        assert_eq!(DType::UInt7.int_range(), Some((0, 127)));
        assert!(!DType::Float8E8M0Fnu.is_signed() && DType::Float8E8M0Fnu.is_float());
        for d in DType::ALL {
            // Every float's layout adds up to its width (the bit picture draws them).
            if let Some(l) = d.float_layout() {
                assert_eq!(l.bits(), d.bits(), "{d}");
            }
        }
    }
}
