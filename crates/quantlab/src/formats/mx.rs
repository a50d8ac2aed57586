//! OCP Microscaling (MX v1.0): blocks of 32 values sharing one E8M0 scale.
//!
//! Matches torchao 0.18's `to_mx` / `to_dtype`
//! (`torchao/prototype/mx_formats/mx_tensor.py`) byte for byte for MXFP8
//! (e4m3, e5m2), MXFP6 (e2m3, e3m2) and MXFP4 (e2m1), under the four scale
//! rules torchao names: the biased exponent comes from the f32 bits of the
//! block's largest magnitude (FLOOR, the spec's rule; CEIL rounds it up when
//! the mantissa is not zero; EVEN rounds the mantissa to the element's width
//! first), or, for RCEIL, from `ceil(log2(amax / max))` as torch computes it.
//! Values are divided by the scale (at least 2^-126, as torchao clamps it),
//! clamped to the element's largest value and rounded to nearest even.
//!
//! The element rounding is written here (documented as matching torchao's
//! `_f32_to_floatx_unpacked` and torch's float8 casts) rather than taken from
//! the crate's narrow types, which another change is adding.
//!
//! MXINT8 (not in torchao 0.18): elements are two's-complement bytes with an
//! implicit 2^-6 (so the largest is 127/64), emax 0, the same scale rules,
//! `round(v / X * 64)` half to even clamped to ±127.
//!
//! Zeros and the spec's special values: an all-zero block gets the smallest
//! scale (E8M0 0 under FLOOR/EVEN/CEIL, torchao's 2^-126 divisor; RCEIL
//! likewise 0) and all-zero elements. NaN and infinities are refused before
//! quantizing (the spec's NaN scale 0xFF is never written); dequantizing a
//! 0xFF scale gives NaN, as `to_dtype` does.

/// An MX element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MxElement {
    /// float8_e4m3fn (max 448).
    E4m3,
    /// float8_e5m2 (max 57344).
    E5m2,
    /// float6_e2m3fn (max 7.5).
    E2m3,
    /// float6_e3m2fn (max 28).
    E3m2,
    /// float4_e2m1fn (max 6).
    E2m1,
    /// 8-bit integer with an implicit 2^-6 (max 127/64).
    Int8,
}

/// How an MX block's shared exponent is chosen from its largest magnitude (torchao's `ScaleCalculationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ScaleRule {
    /// The spec's rule: X = 2^(floor(log2(amax)) - emax).
    #[default]
    Floor,
    /// One more than FLOOR when amax is not a power of two (no element saturates).
    Ceil,
    /// FLOOR of amax rounded to the element's mantissa width first.
    Even,
    /// NVIDIA's: X = 2^ceil(log2(amax / max)).
    Rceil,
}

impl ScaleRule {
    /// The rule's name (`floor`, `ceil`, `even`, `rceil`).
    pub fn name(self) -> &'static str {
        match self {
            ScaleRule::Floor => "floor",
            ScaleRule::Ceil => "ceil",
            ScaleRule::Even => "even",
            ScaleRule::Rceil => "rceil",
        }
    }

    /// Parses a rule's name.
    pub fn parse(name: &str) -> Option<Self> {
        [ScaleRule::Floor, ScaleRule::Ceil, ScaleRule::Even, ScaleRule::Rceil].into_iter().find(|r| r.name() == name)
    }
}

/// The bit layout of a small float element: exponent and mantissa bits, and whether it is e4m3fn/e5m2 (8 bits).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Minifloat {
    pub ebits: u32,
    pub mbits: u32,
}

impl Minifloat {
    pub const E4M3: Minifloat = Minifloat { ebits: 4, mbits: 3 };
    pub const E5M2: Minifloat = Minifloat { ebits: 5, mbits: 2 };
    pub const E2M3: Minifloat = Minifloat { ebits: 2, mbits: 3 };
    pub const E3M2: Minifloat = Minifloat { ebits: 3, mbits: 2 };
    pub const E2M1: Minifloat = Minifloat { ebits: 2, mbits: 1 };

    fn bias(self) -> i32 {
        (1 << (self.ebits - 1)) - 1
    }

    /// The code of a finite `v` whose magnitude is at most the largest finite
    /// value (callers clamp first; fp6 and fp4 also saturate here, as torchao
    /// does), rounded to nearest even, the sign kept (also for zero).
    #[inline(always)]
    pub fn encode(self, v: f32) -> u8 {
        let sign = u8::from(v.is_sign_negative()) << (self.ebits + self.mbits);
        let a = v.abs();
        let bias = self.bias();
        let min_normal = f32::from_bits(((1 - bias + 127) as u32) << 23);
        let max_code = if self.ebits + self.mbits == 7 {
            // e4m3fn: 0x7E (448); e5m2: 0x7B (57344); values are clamped below these.
            if self.ebits == 4 { 0x7E } else { 0x7B }
        } else {
            (1u8 << (self.ebits + self.mbits)) - 1
        };
        let mag = if a >= decode_magnitude(self, max_code) {
            max_code
        } else if a < min_normal {
            // Subnormal steps of 2^(1 - bias - mbits): adding a power of two
            // whose last place is that step rounds half to even in the float
            // adder (torchao's `denorm_mask`); the code is what lands below it.
            let magic = f32::from_bits(((127 - bias + 23 - self.mbits as i32 + 1) as u32) << 23);
            ((a + magic).to_bits() - magic.to_bits()) as u8
        } else {
            // Re-bias the exponent and round the mantissa, carrying into the exponent.
            let shift = 23 - self.mbits;
            let bits = a.to_bits();
            let rebiased = bits - (((127 - bias) as u32) << 23);
            let half = 1u32 << (shift - 1);
            let odd = (rebiased >> shift) & 1;
            ((rebiased + half - 1 + odd) >> shift) as u8
        };
        sign | mag
    }

    /// The value of a code (NaN and infinity where e4m3fn and e5m2 have them).
    pub fn decode(self, code: u8) -> f32 {
        let sign_bit = 1u8 << (self.ebits + self.mbits);
        let mag = decode_magnitude(self, code & (sign_bit - 1));
        if code & sign_bit != 0 { -mag } else { mag }
    }
}

#[inline(always)]
fn decode_magnitude(f: Minifloat, code: u8) -> f32 {
    let e = i32::from(code >> f.mbits);
    let m = u32::from(code) & ((1 << f.mbits) - 1);
    if f.ebits == 4 && f.mbits == 3 && code == 0x7F {
        return f32::NAN;
    }
    if f.ebits == 5 && f.mbits == 2 && e == 31 {
        return if m == 0 { f32::INFINITY } else { f32::NAN };
    }
    let bias = f.bias();
    if e == 0 {
        // m * 2^(1 - bias - mbits), exact.
        m as f32 * f32::from_bits(((1 - bias - f.mbits as i32 + 127) as u32) << 23)
    } else {
        f32::from_bits((((e - bias + 127) as u32) << 23) | (m << (23 - f.mbits)))
    }
}

impl MxElement {
    /// The element's bits.
    pub fn bits(self) -> u32 {
        match self {
            MxElement::E4m3 | MxElement::E5m2 | MxElement::Int8 => 8,
            MxElement::E2m3 | MxElement::E3m2 => 6,
            MxElement::E2m1 => 4,
        }
    }

    /// The spec's emax_elem: the exponent of the element's largest power of two.
    pub fn emax(self) -> i32 {
        match self {
            MxElement::E4m3 => 8,
            MxElement::E5m2 => 15,
            MxElement::E2m3 | MxElement::E2m1 => 2,
            MxElement::E3m2 => 4,
            MxElement::Int8 => 0,
        }
    }

    /// The largest finite element value.
    pub fn max(self) -> f32 {
        match self {
            MxElement::E4m3 => 448.0,
            MxElement::E5m2 => 57344.0,
            MxElement::E2m3 => 7.5,
            MxElement::E3m2 => 28.0,
            MxElement::E2m1 => 6.0,
            MxElement::Int8 => 127.0 / 64.0,
        }
    }

    /// Mantissa bits (for EVEN's rounding of amax; MXINT8 counts its 6 fraction bits).
    fn mbits(self) -> u32 {
        match self {
            MxElement::E4m3 | MxElement::E2m3 => 3,
            MxElement::E5m2 | MxElement::E3m2 => 2,
            MxElement::E2m1 => 1,
            MxElement::Int8 => 6,
        }
    }

    fn minifloat(self) -> Option<Minifloat> {
        match self {
            MxElement::E4m3 => Some(Minifloat::E4M3),
            MxElement::E5m2 => Some(Minifloat::E5M2),
            MxElement::E2m3 => Some(Minifloat::E2M3),
            MxElement::E3m2 => Some(Minifloat::E3M2),
            MxElement::E2m1 => Some(Minifloat::E2M1),
            MxElement::Int8 => None,
        }
    }

    /// The element code of an already scaled value (torchao: clamp for fp8, the saturating cast for fp6/fp4).
    #[inline(always)]
    fn encode(self, v: f32) -> u8 {
        match self.minifloat() {
            Some(f) => f.encode(v.clamp(-self.max(), self.max())),
            None => ((v * 64.0).round_ties_even().clamp(-127.0, 127.0) as i8) as u8,
        }
    }

    /// The value of an element code.
    pub(crate) fn decode(self, code: u8) -> f32 {
        match self.minifloat() {
            Some(f) => f.decode(code),
            None => f32::from(code as i8) / 64.0,
        }
    }

    /// Bytes of packed element codes for `n` values (a multiple of 32).
    pub(crate) fn packed_len(self, n: usize) -> usize {
        n * self.bits() as usize / 8
    }
}

/// `ceil(torch.log2(x))` for finite x > 0, as torch 2.15 computes it in f32
/// on CPU: next to every power of two its ceil is that of the correctly
/// rounded log2, computed here through f64 (`formats_numerics` holds torch's
/// answer for the 4096 floats above every power of two).
pub(crate) fn ceil_log2_torch(x: f32) -> f32 {
    ((f64::from(x)).log2() as f32).ceil()
}

/// A block's biased E8M0 exponent and the f32 factor its values are multiplied by.
pub(crate) fn block_scale(amax: f32, element: MxElement, rule: ScaleRule) -> (u8, f32) {
    if rule == ScaleRule::Rceil {
        let descale = amax / element.max();
        let e = if descale == 0.0 { -127.0 } else { ceil_log2_torch(descale).clamp(-127.0, 127.0) };
        let biased = (e + 127.0) as u8;
        // torchao multiplies by exp2(127 - e), or by 1 where e is 0.
        let rcp = if biased == 0 { 1.0 } else { pow2(127 - i32::from(biased)) };
        return (biased, rcp);
    }
    let mut bits = amax.to_bits() as i32;
    if rule == ScaleRule::Even {
        bits = bits.wrapping_add(1 << (23 - element.mbits() - 1)) & (0xFF80_0000u32 as i32);
    }
    let mut pow2_of = ((bits >> 23) & 0xFF) - 127;
    if rule == ScaleRule::Ceil && bits & 0x7F_FFFF != 0 {
        pow2_of += 1;
    }
    let biased = ((pow2_of - element.emax()).clamp(-127, 128) + 127) as u8;
    // torchao divides by 2^(biased - 127), never below 2^-126; dividing by a
    // power of two and multiplying by its (exact) reciprocal round alike.
    let scale = f32::from_bits(u32::from(biased) << 23).max(f32::MIN_POSITIVE);
    (biased, 1.0 / scale)
}

/// 2^k as f32 for k in -149..=127.
fn pow2(k: i32) -> f32 {
    if k >= -126 { f32::from_bits(((k + 127) as u32) << 23) } else { f32::from_bits(1 << (k + 149)) }
}

/// The value an E8M0 byte stands for (torchao's `get_fp_scale`: 2^(e - 127), NaN for 0xFF).
pub(crate) fn e8m0_value(e: u8) -> f32 {
    if e == 0xFF { f32::NAN } else { pow2(i32::from(e) - 127) }
}

/// Quantizes `x` (rows of a multiple of 32 values) to MX: one E8M0 byte per
/// block into `scales`, element codes into `codes` (fp8 and int8 one byte a
/// value, fp6 four values in three bytes, little-endian bit order, fp4 two a
/// byte, the first in the low nibble). Matches torchao 0.18 `to_mx` (codes
/// compared after unpacking torchao's one-per-byte fp6).
pub(crate) fn quantize(x: &[f32], element: MxElement, rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    // One loop per element type, so the element's constants fold into it.
    match element {
        MxElement::E4m3 => quantize_as(x, MxElement::E4m3, rule, scales, codes),
        MxElement::E5m2 => quantize_as(x, MxElement::E5m2, rule, scales, codes),
        MxElement::E2m3 => quantize_as(x, MxElement::E2m3, rule, scales, codes),
        MxElement::E3m2 => quantize_as(x, MxElement::E3m2, rule, scales, codes),
        MxElement::E2m1 => quantize_as(x, MxElement::E2m1, rule, scales, codes),
        MxElement::Int8 => quantize_as(x, MxElement::Int8, rule, scales, codes),
    }
}

#[inline(always)]
fn quantize_as(x: &[f32], element: MxElement, rule: ScaleRule, scales: &mut [u8], codes: &mut [u8]) {
    let block_bytes = element.packed_len(32);
    for ((b, s), out) in x.chunks_exact(32).zip(scales.iter_mut()).zip(codes.chunks_exact_mut(block_bytes)) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (biased, factor) = block_scale(amax, element, rule);
        *s = biased;
        let mut c = [0u8; 32];
        for (c, &v) in c.iter_mut().zip(b) {
            *c = element.encode(v * factor);
        }
        pack(element, &c, out);
    }
}

/// One block's 32 codes into its packed bytes.
fn pack(element: MxElement, c: &[u8; 32], out: &mut [u8]) {
    match element.bits() {
        8 => out.copy_from_slice(c),
        4 => {
            for (o, p) in out.iter_mut().zip(c.chunks_exact(2)) {
                *o = (p[0] & 15) | p[1] << 4;
            }
        }
        _ => {
            for (o, q) in out.chunks_exact_mut(3).zip(c.chunks_exact(4)) {
                let w = u32::from(q[0] & 63)
                    | u32::from(q[1] & 63) << 6
                    | u32::from(q[2] & 63) << 12
                    | u32::from(q[3] & 63) << 18;
                o.copy_from_slice(&w.to_le_bytes()[..3]);
            }
        }
    }
}

/// One block's packed bytes back into its 32 codes.
pub(crate) fn unpack(element: MxElement, bytes: &[u8]) -> [u8; 32] {
    let mut c = [0u8; 32];
    match element.bits() {
        8 => c.copy_from_slice(bytes),
        4 => {
            for (p, &b) in c.chunks_exact_mut(2).zip(bytes) {
                p[0] = b & 15;
                p[1] = b >> 4;
            }
        }
        _ => {
            for (q, o) in c.chunks_exact_mut(4).zip(bytes.chunks_exact(3)) {
                let w = u32::from_le_bytes([o[0], o[1], o[2], 0]);
                for (k, q) in q.iter_mut().enumerate() {
                    *q = (w >> (6 * k) & 63) as u8;
                }
            }
        }
    }
    c
}

/// MX back to f32: element value times 2^(e - 127). Matches torchao 0.18 `to_dtype`.
pub(crate) fn dequantize(element: MxElement, scales: &[u8], codes: &[u8], out: &mut [f32]) {
    let block_bytes = element.packed_len(32);
    let values = element_values(element);
    for ((o, &s), b) in out.chunks_exact_mut(32).zip(scales).zip(codes.chunks_exact(block_bytes)) {
        dequantize_block(element, &values, s, b, o);
    }
}

/// Every code's element value (indexed by code; codes past the element's
/// width are never looked up).
pub(crate) fn element_values(element: MxElement) -> [f32; 256] {
    let mut values = [0f32; 256];
    for (c, v) in values.iter_mut().enumerate() {
        *v = element.decode(c as u8);
    }
    values
}

/// One block of 32: its scale byte `s` and packed codes `b`
/// (`element.packed_len(32)` bytes) into `out`, as [`dequantize`] does.
#[inline]
pub(crate) fn dequantize_block(element: MxElement, values: &[f32; 256], s: u8, b: &[u8], out: &mut [f32]) {
    let scale = e8m0_value(s);
    for (y, c) in out.iter_mut().zip(unpack(element, b)) {
        let v = values[usize::from(c)];
        // A NaN element (e4m3fn, e5m2) stays its own NaN, also under a NaN
        // scale, where x86's multiply keeps its first operand but the
        // compiler may swap a multiply's operands: the bits never depend on it.
        *y = if v.is_nan() { v } else { v * scale };
    }
}
