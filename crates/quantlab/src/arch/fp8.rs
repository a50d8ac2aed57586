//! float8_e4m3fn and float8_e5m2 to and from f32: the formats' constants,
//! the scalar form of the kernels, and the loop that hands the values
//! needing an overflow policy to the scalar model.
//!
//! Why the kernels know no policy: every value that rounds inside the
//! format's range (zero, subnormals, normals up to the largest finite code)
//! has one code under every [`crate::Overflow`] policy; only NaN, the
//! infinities and values rounding past the largest finite code depend on
//! it. The kernels round the former (to nearest, ties to even, from the
//! f32 bits) and stop at the first of the latter, which [`encode`] gives to
//! the scalar model (`Minifloat`), so the policy logic lives in one place.
//!
//! The rounding, per lane, with `a` the magnitude's bits (`M` mantissa
//! bits, bias `B`):
//! - below the smallest normal `2^(1-B)`: add the magic `2^(B' )` whose unit
//!   in the last place is the format's subnormal step (`2^(1-B-M)`), so the
//!   FPU's own round-to-nearest-even picks the code, which is then the
//!   difference of the bit patterns;
//! - otherwise: rebias the exponent and add half a unit minus one plus the
//!   kept mantissa's lowest bit (ties to even), then shift: a carry out of
//!   the mantissa correctly bumps the exponent.
//!
//! Decoding puts the code's magnitude bits where an f32's go and multiplies
//! by `2^(127-B)` (exact, for subnormal codes too, which are f32 subnormals
//! until then), with NaN and infinity codes blended in.

use std::mem::MaybeUninit;

/// One of the two formats: its constants, as f32 bit patterns.
#[derive(Clone, Copy)]
pub(crate) struct Format {
    /// Mantissa bits.
    pub shift: u32,
    /// Magnitudes (f32 bits without the sign) from here up, NaN and
    /// infinity included, need a policy: the first value that does not
    /// round to a finite code, or a little below it.
    pub special: u32,
    /// The smallest normal value's bits.
    pub min_normal: u32,
    /// The subnormal magic's bits (see the module documentation).
    pub magic: u32,
    /// Added to a normal magnitude's bits before the shift (wrapping):
    /// the rebias and half a unit minus one.
    pub offset: u32,
    /// `2^(127 - B)`'s bits: the decode's scale.
    pub scale: u32,
    /// Magnitude codes from here up are NaN when decoded (e4m3fn: 0x7F;
    /// e5m2: 0x7D, its infinity 0x7C is `inf`).
    pub nan: u32,
    /// The infinity's magnitude code (e5m2: 0x7C), or one above the
    /// largest code when there is none.
    pub inf: u32,
}

const fn format(mantissa: u32, bias: u32, special: f32, nan: u32, inf: u32) -> Format {
    let shift = 23 - mantissa;
    Format {
        shift,
        special: special.to_bits(),
        min_normal: (128 - bias) << 23,
        magic: ((127 - bias) + shift + 1) << 23,
        offset: ((bias.wrapping_sub(127)) << 23).wrapping_add((1 << (shift - 1)) - 1),
        scale: (254 - bias) << 23,
        nan,
        inf,
    }
}

/// float8_e4m3fn: max 448 = 0x7E; 464 (the tie to 480, which would be NaN)
/// rounds to 448, but is sent to the model anyway, as is everything above.
pub(crate) const E4M3FN: Format = format(3, 7, 464.0, 0x7F, 0x80);
/// float8_e5m2: max 57344 = 0x7B; 61440, the tie with infinity, rounds to
/// infinity (even), so it and everything above need the policy.
pub(crate) const E5M2: Format = format(2, 15, 61440.0, 0x7D, 0x7C);

/// The f32 bits of a NaN decoded by the scalar path (`Minifloat::decode`
/// to f64, then to f32: the default quiet NaN with the code's sign).
pub(crate) const QUIET_NAN: u32 = 0x7FC0_0000;
/// f32 infinity's bits.
pub(crate) const INFINITY: u32 = 0x7F80_0000;

/// The code of an ordinary f32 (`bits & 0x7FFF_FFFF < f.special`).
#[inline(always)]
pub(crate) fn encode_lane(f: Format, bits: u32) -> u8 {
    let a = bits & 0x7FFF_FFFF;
    let sign = (bits >> 24) & 0x80;
    let code = if a < f.min_normal {
        (f32::from_bits(a) + f32::from_bits(f.magic)).to_bits() - f.magic
    } else {
        a.wrapping_add(f.offset).wrapping_add((a >> f.shift) & 1) >> f.shift
    };
    (code | sign) as u8
}

/// The f32 bits of a code.
#[inline(always)]
pub(crate) fn decode_lane(f: Format, code: u8) -> u32 {
    let mag = u32::from(code & 0x7F);
    let sign = u32::from(code & 0x80) << 24;
    let v = if mag >= f.nan {
        QUIET_NAN
    } else if mag == f.inf {
        INFINITY
    } else {
        (f32::from_bits(mag << f.shift) * f32::from_bits(f.scale)).to_bits()
    };
    v | sign
}

/// Converts the leading ordinary values of `x` into `out`, stopping at the
/// first that needs a policy: returns how many were converted (all of the
/// shorter slice when none needs one).
pub(crate) fn encode_scalar(f: Format, x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    let n = x.len().min(out.len());
    for (i, (&v, o)) in x[..n].iter().zip(&mut out[..n]).enumerate() {
        let bits = v.to_bits();
        if bits & 0x7FFF_FFFF >= f.special {
            return i;
        }
        o.write(encode_lane(f, bits));
    }
    n
}

/// Decodes every code (of the shorter slice).
pub(crate) fn decode_scalar(f: Format, x: &[u8], out: &mut [MaybeUninit<f32>]) {
    for (&c, o) in x.iter().zip(out.iter_mut()) {
        o.write(f32::from_bits(decode_lane(f, c)));
    }
}

/// `encode_scalar` for e4m3fn, the scalar table's entry.
pub(crate) fn f32_to_e4m3fn(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    encode_scalar(E4M3FN, x, out)
}

/// `encode_scalar` for e5m2.
pub(crate) fn f32_to_e5m2(x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    encode_scalar(E5M2, x, out)
}

/// `decode_scalar` for e4m3fn.
pub(crate) fn e4m3fn_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    decode_scalar(E4M3FN, x, out)
}

/// `decode_scalar` for e5m2.
pub(crate) fn e5m2_to_f32(x: &[u8], out: &mut [MaybeUninit<f32>]) {
    decode_scalar(E5M2, x, out)
}

/// A SIMD block encoder's handling of a block holding a special value:
/// the scalar form over just that block, so that `out` is written up to
/// the special value, whose index in the block it returns.
#[inline]
pub(crate) fn special_block(f: Format, x: &[f32], out: &mut [MaybeUninit<u8>]) -> usize {
    encode_scalar(f, x, out)
}

/// Runs `kernel` over `x`, giving each value it stops at to `fix` (the
/// scalar model with the caller's policy) and resuming after it. When it
/// returns `Ok`, every element of `out` (of `x`'s length) was written.
pub(crate) fn encode<E>(
    kernel: fn(&[f32], &mut [MaybeUninit<u8>]) -> usize,
    x: &[f32],
    out: &mut [MaybeUninit<u8>],
    mut fix: impl FnMut(usize) -> Result<u8, E>,
) -> Result<(), E> {
    let n = x.len().min(out.len());
    let mut i = 0;
    while i < n {
        i += kernel(&x[i..n], &mut out[i..n]);
        if i < n {
            out[i].write(fix(i)?);
            i += 1;
        }
    }
    Ok(())
}
