//! One model of every narrow floating-point format: float16 and bfloat16 down
//! to float4, described by their exponent and mantissa widths, their bias and
//! which codes they spend on infinities, NaN and negative zero.
//!
//! A [`Minifloat`] decodes a code to its exact value and rounds any `f64` to a
//! code **once**, from the exact value, to nearest with ties to even (the
//! scale type float8_e8m0fnu, which has no mantissa, rounds ties up, as PyTorch
//! and ml_dtypes do). What happens to values it cannot hold is the caller's
//! choice of [`Overflow`] policy.
//!
//! The conventions, as LLVM/MLIR, PyTorch and ml_dtypes name them:
//!
//! | suffix | infinities | NaN | negative zero | types |
//! |---|---|---|---|---|
//! | (none, IEEE) | yes | exponent all ones, mantissa not 0 | yes | float16, bfloat16, float8_e5m2, float8_e4m3, float8_e3m4 |
//! | `fn` | no | only S.1111.111 | yes | float8_e4m3fn |
//! | `fnuz` | no | only 0x80 (the "negative zero" code) | no | float8_e4m3fnuz, float8_e5m2fnuz, float8_e4m3b11fnuz |
//! | `fn`, no NaN | no | none | yes | float6_e2m3fn, float6_e3m2fn, float4_e2m1fn |
//! | `fnu` | no | 0xFF | no zero at all | float8_e8m0fnu (unsigned powers of two) |
//!
//! ```
//! use quantlab::{DType, Overflow};
//! let e2m1 = DType::Float4E2M1Fn.minifloat().unwrap();
//! assert_eq!(e2m1.encode(2.6, Overflow::Error)?, 0b0101); // 3.0, the nearest of 2, 3
//! assert_eq!(e2m1.decode(0b1111), -6.0);
//! assert!(e2m1.encode(7.0, Overflow::Error).is_err()); // above 6 with no infinity
//! assert_eq!(e2m1.encode(7.0, Overflow::Saturate)?, 0b0111);
//! let e8m0 = DType::Float8E8M0Fnu.minifloat().unwrap();
//! assert_eq!(e8m0.encode(0.3, Overflow::Error)?, 125); // 2^-2 = 0.25
//! # Ok::<(), quantlab::Error>(())
//! ```

use crate::dtype::DType;
use crate::element::{Narrow, narrow_error};
use crate::error::Result;

/// Which codes a format spends on special values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Specials {
    /// IEEE 754: the all-ones exponent holds ±infinity (mantissa 0) and NaNs.
    Ieee,
    /// "Finite, NaN": no infinities; only the all-ones code (each sign) is NaN.
    Fn,
    /// "Finite, NaN, unsigned zero": no infinities, no negative zero; the
    /// sign-bit-only code (0x80) is the one NaN.
    Fnuz,
    /// Finite only: every code is a number (the float6 and float4 types).
    FiniteOnly,
    /// Unsigned, no mantissa, no zero: powers of two, the all-ones code is NaN
    /// (float8_e8m0fnu, the MX block scale).
    E8M0,
}

/// What a cast does with values the target type cannot hold: beyond its
/// largest finite value, an infinity in a type without one, NaN in a type
/// without NaN, or zero and negative values for float8_e8m0fnu.
///
/// In every policy, a type **with** infinities (float16, bfloat16,
/// float8_e5m2, float8_e4m3, float8_e3m4) takes infinities to infinities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// quantlab's default: finite overflow goes to ±inf in a type that has
    /// infinities and is an error in one that has not; NaN into a type without
    /// NaN, and zero or a negative value into float8_e8m0fnu, are errors.
    #[default]
    Error,
    /// Clamp to ±max (infinities too, where the type has no infinity; zero to
    /// the smallest float8_e8m0fnu). NaN and negative e8m0 values stay errors.
    Saturate,
    /// ml_dtypes' rule: overflow gives ±inf if the type has it, else NaN if
    /// the type has NaN, else ±max (float6, float4); NaN into float6/float4
    /// gives a zero of the opposite sign (-0 for the usual +NaN); zero and
    /// negatives into float8_e8m0fnu give NaN.
    Nan,
    /// PyTorch 2.15's rule for the types it casts to: float8_e4m3fn saturates
    /// (infinities included), the fnuz types give NaN, IEEE types ±inf, and
    /// float8_e8m0fnu takes |x| with 0 going to 2^-127. Types PyTorch cannot
    /// cast to (float6, float4, e4m3, e3m4, e4m3b11fnuz) behave as [`Overflow::Error`].
    PyTorch,
}

impl Overflow {
    /// Every policy, in the order of the docs.
    pub const ALL: [Overflow; 4] = [Overflow::Error, Overflow::Saturate, Overflow::Nan, Overflow::PyTorch];

    /// The policy's name: `error`, `saturate`, `nan` or `pytorch`.
    pub const fn name(self) -> &'static str {
        match self {
            Overflow::Error => "error",
            Overflow::Saturate => "saturate",
            Overflow::Nan => "nan",
            Overflow::PyTorch => "pytorch",
        }
    }

    /// The policy named `name` (also `ml_dtypes` for [`Overflow::Nan`] and
    /// `torch` for [`Overflow::PyTorch`]), case-insensitive.
    ///
    /// ```
    /// use quantlab::Overflow;
    /// assert_eq!(Overflow::from_name("ml_dtypes"), Some(Overflow::Nan));
    /// assert_eq!(Overflow::from_name("PyTorch"), Some(Overflow::PyTorch));
    /// assert_eq!(Overflow::from_name("wrap"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Overflow> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ml_dtypes" => Some(Overflow::Nan),
            "torch" => Some(Overflow::PyTorch),
            n => Overflow::ALL.into_iter().find(|o| o.name() == n),
        }
    }
}

/// A narrow floating-point format: widths, bias and special-value convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Minifloat {
    /// The data type this format is.
    pub dtype: DType,
    /// Exponent bits.
    pub exponent_bits: u32,
    /// Mantissa bits, without the implicit leading 1.
    pub mantissa_bits: u32,
    /// The exponent bias: a normal code with exponent field `E` is `1.m * 2^(E - bias)`.
    pub bias: i32,
    /// Which codes are infinities and NaN.
    pub specials: Specials,
}

impl Minifloat {
    pub(crate) const fn new(
        dtype: DType,
        exponent_bits: u32,
        mantissa_bits: u32,
        bias: i32,
        specials: Specials,
    ) -> Self {
        Minifloat { dtype, exponent_bits, mantissa_bits, bias, specials }
    }

    /// True when the format has a sign bit (all but float8_e8m0fnu).
    pub const fn is_signed(self) -> bool {
        !matches!(self.specials, Specials::E8M0)
    }

    /// Width of a code in bits.
    pub const fn bits(self) -> u32 {
        self.exponent_bits + self.mantissa_bits + self.is_signed() as u32
    }

    /// True when the format has ±infinity.
    pub const fn has_inf(self) -> bool {
        matches!(self.specials, Specials::Ieee)
    }

    /// True when the format has a NaN code.
    pub const fn has_nan(self) -> bool {
        !matches!(self.specials, Specials::FiniteOnly)
    }

    /// True when the format has a negative zero.
    pub const fn has_negative_zero(self) -> bool {
        matches!(self.specials, Specials::Ieee | Specials::Fn | Specials::FiniteOnly)
    }

    const fn sign_bit(self) -> u16 {
        if self.is_signed() { 1 << (self.exponent_bits + self.mantissa_bits) } else { 0 }
    }

    const fn magnitude_mask(self) -> u16 {
        ((1u32 << (self.exponent_bits + self.mantissa_bits)) - 1) as u16
    }

    /// The code of the largest finite value (positive).
    pub const fn max_code(self) -> u16 {
        let all = self.magnitude_mask();
        match self.specials {
            // Exponent all ones is special: one exponent below, mantissa all ones.
            Specials::Ieee => all - (1 << self.mantissa_bits),
            // All ones is NaN, the code below it is the top.
            Specials::Fn | Specials::E8M0 => all - 1,
            Specials::Fnuz | Specials::FiniteOnly => all,
        }
    }

    /// The code of positive infinity, if the format has one.
    pub const fn inf_code(self) -> Option<u16> {
        if self.has_inf() { Some(self.max_code() + 1) } else { None }
    }

    /// The (positive) NaN code casts produce, as ml_dtypes and PyTorch produce
    /// it: the quiet NaN (top mantissa bit) for IEEE types, the one NaN otherwise.
    pub const fn nan_code(self) -> Option<u16> {
        match self.specials {
            Specials::Ieee => Some(self.max_code() + 1 + (1 << (self.mantissa_bits - 1))),
            Specials::Fn | Specials::E8M0 => Some(self.magnitude_mask()),
            Specials::Fnuz => Some(self.sign_bit()),
            Specials::FiniteOnly => None,
        }
    }

    /// Largest finite value.
    pub fn max(self) -> f64 {
        self.decode(self.max_code())
    }

    /// Smallest positive normal value (for e8m0, its smallest value 2^-127).
    pub fn smallest_normal(self) -> f64 {
        match self.specials {
            Specials::E8M0 => self.decode(0),
            _ => self.decode(1 << self.mantissa_bits),
        }
    }

    /// Smallest positive value (a subnormal, except for e8m0).
    pub fn smallest_subnormal(self) -> f64 {
        self.decode(if matches!(self.specials, Specials::E8M0) { 0 } else { 1 })
    }

    /// True when `code` is a NaN of this format.
    pub fn is_nan_code(self, code: u16) -> bool {
        let code = code & (self.sign_bit() | self.magnitude_mask());
        let mag = code & self.magnitude_mask();
        match self.specials {
            Specials::Ieee => mag > self.max_code() + 1,
            Specials::Fn | Specials::E8M0 => mag == self.magnitude_mask(),
            Specials::Fnuz => code == self.sign_bit(),
            Specials::FiniteOnly => false,
        }
    }

    /// The exact value of `code` (bits above the format's width are ignored).
    pub fn decode(self, code: u16) -> f64 {
        let code = code & (self.sign_bit() | self.magnitude_mask());
        let negative = code & self.sign_bit() != 0;
        let mag = code & self.magnitude_mask();
        let sign = if negative { -1.0 } else { 1.0 };
        if self.is_nan_code(code) {
            // fnuz's NaN is the sign-bit code, so it decodes negative (as in ml_dtypes).
            return if negative { -f64::NAN } else { f64::NAN };
        }
        if Some(mag) == self.inf_code() {
            return sign * f64::INFINITY;
        }
        let m = self.mantissa_bits;
        let exp = i32::from(mag >> m);
        let man = f64::from(mag & ((1 << m) - 1));
        let emin = 1 - self.bias;
        if matches!(self.specials, Specials::E8M0) {
            return pow2(exp - self.bias);
        }
        if exp == 0 {
            sign * man * pow2(emin - m as i32)
        } else {
            sign * (f64::from(1u32 << m) + man) * pow2(exp - self.bias - m as i32)
        }
    }

    /// The value of `code` as `f32` (exact: every narrow value is an `f32`).
    /// NaN codes give `f32`'s quiet NaN with the code's sign.
    pub fn decode_f32(self, code: u16) -> f32 {
        let v = self.decode(code);
        if v.is_nan() {
            // Spelled out: `as` does not promise which NaN it gives.
            return f32::from_bits(if v.is_sign_negative() { 0xFFC0_0000 } else { 0x7FC0_0000 });
        }
        v as f32
    }

    /// Rounds `x` to the nearest code once, from its exact value, ties to even,
    /// and applies `overflow` to what the format cannot hold. Errors say what
    /// was wrong and what to do (index 0; casts of tensors name the index).
    pub fn encode(self, x: f64, overflow: Overflow) -> Result<u16> {
        self.encode_raw(x, overflow).map_err(|why| narrow_error(why, x, 0, self.dtype))
    }

    /// [`Minifloat::encode`] for an `f32` (exact widening, then one rounding).
    pub fn encode_f32(self, x: f32, overflow: Overflow) -> Result<u16> {
        self.encode(f64::from(x), overflow)
    }

    /// The rounding itself, with the reason a value has no code.
    pub(crate) fn encode_raw(self, x: f64, overflow: Overflow) -> Result<u16, Narrow> {
        let overflow = self.resolve(overflow);
        if let Specials::E8M0 = self.specials {
            return self.encode_e8m0(x, overflow);
        }
        let sign = if x.is_sign_negative() { self.sign_bit() } else { 0 };
        if x.is_nan() {
            return match self.nan_code() {
                // ml_dtypes and PyTorch keep NaN's sign where the type has signed NaNs.
                Some(nan) if self.has_negative_zero() => Ok(self.pytorch_nan(nan, overflow) | sign),
                Some(nan) => Ok(nan),
                // ml_dtypes: a zero of the opposite sign (-0 for the usual +NaN).
                None if overflow == Overflow::Nan => Ok(if x.is_sign_negative() { 0 } else { self.sign_bit() }),
                None => Err(Narrow::NaN),
            };
        }
        let a = x.abs();
        let Some(mag) = self.round_magnitude(a) else {
            return self.overflowed(x, sign, overflow);
        };
        if mag == 0 && !self.has_negative_zero() {
            return Ok(0); // fnuz: -0 and tiny negatives are +0
        }
        Ok(mag | sign)
    }

    /// PyTorch writes float8_e5m2's NaN as 0x7F (mantissa all ones), ml_dtypes as 0x7E.
    fn pytorch_nan(self, nan: u16, overflow: Overflow) -> u16 {
        if overflow == Overflow::PyTorch && self.dtype == DType::Float8E5M2 { self.magnitude_mask() } else { nan }
    }

    /// The policy that applies to this format (PyTorch's depends on the type).
    fn resolve(self, overflow: Overflow) -> Overflow {
        match (overflow, self.specials) {
            (Overflow::PyTorch, Specials::Fn) if self.dtype == DType::Float8E4M3Fn => Overflow::Saturate,
            (Overflow::PyTorch, Specials::Fnuz) if self.dtype != DType::Float8E4M3B11Fnuz => Overflow::Nan,
            (Overflow::PyTorch, Specials::E8M0) => Overflow::PyTorch,
            // IEEE types: kept as PyTorch so that float8_e5m2's NaN code can follow it.
            (Overflow::PyTorch, Specials::Ieee) => Overflow::PyTorch,
            (Overflow::PyTorch, _) => Overflow::Error,
            (o, _) => o,
        }
    }

    /// The magnitude code nearest to `a` (finite or infinite, non-negative),
    /// or `None` when it is beyond the largest finite value.
    fn round_magnitude(self, a: f64) -> Option<u16> {
        if a.is_infinite() {
            return None;
        }
        let m = self.mantissa_bits as i32;
        let emin = 1 - self.bias;
        let emax = (i32::from(self.max_code() >> m)) - self.bias;
        if a == 0.0 {
            return Some(0);
        }
        let e = exponent_of(a);
        if e > emax + 1 {
            return None;
        }
        // `a` is sig * 2^p exactly; one unit in the target's last place is
        // 2^quantum, so n = sig * 2^(p - quantum) rounded to nearest even, in
        // integers (exact, and no `roundeven` call on x86-64 without SSE4.1).
        let (sig, p) = significand(a);
        let quantum = e.max(emin) - m;
        let n = round_shift(sig, quantum - p) as i64;
        let mag = if e < emin { n } else { (i64::from(e - emin + 1) << m) + n - (1i64 << m) };
        (mag <= i64::from(self.max_code())).then_some(mag as u16)
    }

    fn overflowed(self, x: f64, sign: u16, overflow: Overflow) -> Result<u16, Narrow> {
        if let Some(inf) = self.inf_code() {
            // Types with infinities: saturate clamps finite values only.
            return Ok(if overflow == Overflow::Saturate && x.is_finite() { self.max_code() } else { inf } | sign);
        }
        match overflow {
            Overflow::Saturate => Ok(self.max_code() | sign),
            Overflow::Nan => Ok(match self.nan_code() {
                Some(nan) if self.has_negative_zero() => nan | sign,
                Some(nan) => nan,
                None => self.max_code() | sign,
            }),
            _ => Err(Narrow::Overflow),
        }
    }

    /// float8_e8m0fnu: the power of two nearest to `x`, ties up (with no
    /// mantissa there is no even neighbour; PyTorch and ml_dtypes round up).
    fn encode_e8m0(self, x: f64, overflow: Overflow) -> Result<u16, Narrow> {
        let nan = self.magnitude_mask();
        if x.is_nan() {
            return Ok(nan);
        }
        let a = match overflow {
            Overflow::PyTorch => x.abs(), // PyTorch ignores the sign
            _ if x > 0.0 => x,
            Overflow::Nan => return Ok(nan),
            Overflow::Saturate if x == 0.0 => return Ok(0),
            _ => return Err(Narrow::NotPositive),
        };
        if a.is_infinite() {
            return match overflow {
                Overflow::Saturate => Ok(self.max_code()),
                Overflow::Error => Err(Narrow::Overflow),
                _ => Ok(nan),
            };
        }
        let e = exponent_of(a);
        if a == 0.0 || e < -(self.bias + 2) {
            return Ok(0); // nothing below 2^-127: the smallest code is nearest
        }
        // Ties up: the first fraction bit (the "half") decides. (`a` is normal here.)
        let e = if a.to_bits() >> 51 & 1 == 1 { e + 1 } else { e };
        let code = (e + self.bias).max(0);
        if code > i32::from(self.max_code()) {
            return match overflow {
                Overflow::Saturate => Ok(self.max_code()),
                Overflow::Error => Err(Narrow::Overflow),
                _ => Ok(nan),
            };
        }
        Ok(code as u16)
    }

    /// Every code of the format, `0..2^bits`.
    pub fn codes(self) -> impl Iterator<Item = u16> {
        (0..1u32 << self.bits()).map(|c| c as u16)
    }
}

/// 2^k as f64 for the exponents these formats need (|k| < 1022).
fn pow2(k: i32) -> f64 {
    f64::from_bits(((1023 + i64::from(k)) as u64) << 52)
}

/// A positive finite `a` as `sig * 2^p` with an integer `sig < 2^53`.
fn significand(a: f64) -> (u64, i32) {
    let bits = a.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1 << 52) - 1);
    if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) }
}

/// `sig / 2^shift` rounded to nearest, ties to even (`shift` >= 0 here: every
/// format has fewer mantissa bits than f64).
fn round_shift(sig: u64, shift: i32) -> u64 {
    if shift <= 0 {
        return sig << (-shift).min(63); // not reached for these formats; exact anyway
    }
    if shift > 54 {
        return 0; // below half a unit: sig < 2^53 <= 2^(shift - 2)
    }
    let kept = sig >> shift;
    let rest = sig & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    kept + u64::from(rest > half || (rest == half && kept & 1 == 1))
}

/// floor(log2(a)) for a positive finite `a` (f64 subnormals included).
fn exponent_of(a: f64) -> i32 {
    let bits = a.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    if biased == 0 {
        // Subnormal: far below every narrow type, but exact all the same.
        -1074 + 63 - bits.leading_zeros() as i32
    } else {
        biased - 1023
    }
}

impl DType {
    /// The narrow-float model of this type: every float but float32 and
    /// float64 (those are Rust's own `f32`/`f64`); `None` for integers.
    pub const fn minifloat(self) -> Option<Minifloat> {
        use Specials::*;
        let (e, m, bias, s) = match self {
            DType::Float16 => (5, 10, 15, Ieee),
            DType::BFloat16 => (8, 7, 127, Ieee),
            DType::Float8E4M3Fn => (4, 3, 7, Fn),
            DType::Float8E5M2 => (5, 2, 15, Ieee),
            DType::Float8E4M3Fnuz => (4, 3, 8, Fnuz),
            DType::Float8E5M2Fnuz => (5, 2, 16, Fnuz),
            DType::Float8E4M3 => (4, 3, 7, Ieee),
            DType::Float8E3M4 => (3, 4, 3, Ieee),
            DType::Float8E4M3B11Fnuz => (4, 3, 11, Fnuz),
            DType::Float8E8M0Fnu => (8, 0, 127, E8M0),
            DType::Float6E2M3Fn => (2, 3, 1, FiniteOnly),
            DType::Float6E3M2Fn => (3, 2, 3, FiniteOnly),
            DType::Float4E2M1Fn => (2, 1, 1, FiniteOnly),
            _ => return None,
        };
        Some(Minifloat::new(self, e, m, bias, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mf(d: DType) -> Minifloat {
        d.minifloat().unwrap()
    }

    #[test]
    fn the_model_decodes_what_half_decodes() {
        for code in 0..=u16::MAX {
            let (h, b) = (half::f16::from_bits(code).to_f64(), half::bf16::from_bits(code).to_f64());
            let (mh, mb) = (mf(DType::Float16).decode(code), mf(DType::BFloat16).decode(code));
            assert!(mh == h || (mh.is_nan() && h.is_nan()), "f16 {code:#x}");
            assert!(mb == b || (mb.is_nan() && b.is_nan()), "bf16 {code:#x}");
        }
    }

    #[test]
    fn limits_from_the_issue() {
        for (d, max) in [
            (DType::Float8E4M3Fn, 448.0),
            (DType::Float8E5M2, 57344.0),
            (DType::Float8E4M3Fnuz, 240.0),
            (DType::Float8E5M2Fnuz, 57344.0),
            (DType::Float8E4M3, 240.0),
            (DType::Float8E3M4, 15.5),
            (DType::Float8E4M3B11Fnuz, 30.0),
            (DType::Float8E8M0Fnu, 2f64.powi(127)),
            (DType::Float6E2M3Fn, 7.5),
            (DType::Float6E3M2Fn, 28.0),
            (DType::Float4E2M1Fn, 6.0),
            (DType::Float16, 65504.0),
        ] {
            assert_eq!(mf(d).max(), max, "{d}");
        }
        let e2m1: Vec<f64> = (0..8).map(|c| mf(DType::Float4E2M1Fn).decode(c)).collect();
        assert_eq!(e2m1, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]);
        assert!(mf(DType::Float8E4M3Fnuz).decode(0x80).is_nan());
        assert_eq!(mf(DType::Float8E8M0Fnu).decode(0), 2f64.powi(-127));
        assert!(mf(DType::Float8E8M0Fnu).decode(0xFF).is_nan());
    }

    #[test]
    fn every_value_encodes_back_to_its_code() {
        for d in DType::ALL.into_iter().filter_map(DType::minifloat) {
            for code in d.codes() {
                let v = d.decode(code);
                if v.is_nan() {
                    continue;
                }
                assert_eq!(d.encode(v, Overflow::Error).unwrap(), code, "{} {code:#x} = {v}", d.dtype);
            }
        }
    }

    #[test]
    fn policies() {
        let e4 = mf(DType::Float8E4M3Fn);
        assert_eq!(e4.encode(464.0, Overflow::Error).unwrap(), 0x7E); // the tie goes to even 448
        assert!(e4.encode(464.5, Overflow::Error).is_err());
        assert_eq!(e4.encode(1000.0, Overflow::Saturate).unwrap(), 0x7E);
        assert_eq!(e4.encode(1000.0, Overflow::Nan).unwrap(), 0x7F);
        assert_eq!(e4.encode(f64::NEG_INFINITY, Overflow::PyTorch).unwrap(), 0xFE);
        let fnuz = mf(DType::Float8E4M3Fnuz);
        assert_eq!(fnuz.encode(-0.0, Overflow::Error).unwrap(), 0);
        assert_eq!(fnuz.encode(f64::NAN, Overflow::Error).unwrap(), 0x80);
        assert_eq!(fnuz.encode(1000.0, Overflow::PyTorch).unwrap(), 0x80);
        let f4 = mf(DType::Float4E2M1Fn);
        assert!(f4.encode(f64::NAN, Overflow::Saturate).is_err());
        assert_eq!(f4.encode(f64::NAN, Overflow::Nan).unwrap(), 0x8);
        assert_eq!(f4.encode(f64::INFINITY, Overflow::Nan).unwrap(), 0x7);
        let h = mf(DType::Float16);
        assert_eq!(h.encode(70000.0, Overflow::Error).unwrap(), 0x7C00);
        assert_eq!(h.encode(70000.0, Overflow::Saturate).unwrap(), 0x7BFF);
        assert_eq!(h.encode(f64::INFINITY, Overflow::Saturate).unwrap(), 0x7C00);
        let e8 = mf(DType::Float8E8M0Fnu);
        assert_eq!(e8.encode(1.5, Overflow::Error).unwrap(), 128); // ties up to 2
        assert_eq!(e8.encode(1.49, Overflow::Error).unwrap(), 127);
        assert_eq!(e8.encode(1e-45, Overflow::Error).unwrap(), 0); // nothing below 2^-127
        assert!(e8.encode(0.0, Overflow::Error).is_err());
        assert!(e8.encode(-1.0, Overflow::Saturate).is_err());
        assert_eq!(e8.encode(0.0, Overflow::Saturate).unwrap(), 0);
        assert_eq!(e8.encode(-1.0, Overflow::Nan).unwrap(), 0xFF);
        assert_eq!(e8.encode(-1.0, Overflow::PyTorch).unwrap(), 127);
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = mf(DType::Float4E2M1Fn).encode(f64::NAN, Overflow::Error).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nan at flat index 0 cannot be stored in float4_e2m1fn: it has no NaN; replace or mask NaN first, or ask for ml_dtypes' rule (NaN becomes -0)"
        );
        let e = mf(DType::Float8E8M0Fnu).encode(-2.0, Overflow::Error).unwrap_err();
        assert_eq!(
            e.to_string(),
            "-2 at flat index 0 cannot be stored in float8_e8m0fnu: it holds only positive powers of two; pass the magnitude of a positive scale (ml_dtypes' rule gives NaN)"
        );
    }
}
