//! Packing sub-byte codes (integers and narrow floats) into bytes.
//!
//! Codes form one little-endian bit stream: value `i` takes bits
//! `i*bits .. (i+1)*bits`, so values go into a byte from the lowest bits up:
//! with 2 bits, `[1, 0, 3, 2]` is `0b10_11_00_01` = 177. The last byte is padded
//! with zeros. For 1, 2 and 4 bits this is the layout of PyTorch's
//! `torch.uint4x2`-style packing and of `float4_e2m1fn_x2` (low nibble first);
//! 3-, 5-, 6- and 7-bit codes cross byte boundaries (float6: four codes in three
//! bytes, as safetensors' `F6_E2M3`/`F6_E3M2` count them). The `quantlab`
//! command line's safetensors output uses it.

use crate::error::{Error, Result};

fn check_bits(bits: u32) -> Result<()> {
    if (1..=8).contains(&bits) {
        Ok(())
    } else {
        Err(Error::BadParams { reason: format!("cannot pack {bits}-bit values: use 1 to 8 bits") })
    }
}

/// Packs codes of `bits` bits each (the low `bits` of each byte) into a bit
/// stream, first value in the lowest bits.
///
/// ```
/// // float4_e2m1fn codes of 1.0, -2.0, 3.0: two a byte, low nibble first.
/// assert_eq!(quantlab::pack::pack_codes(&[0x2, 0xc, 0x5], 4)?, [0xc2, 0x05]);
/// // 6-bit codes: four in three bytes.
/// assert_eq!(quantlab::pack::pack_codes(&[0x3f, 0, 0x3f, 0], 6)?, [0x3f, 0xf0, 0x03]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn pack_codes(codes: &[u8], bits: u32) -> Result<Vec<u8>> {
    check_bits(bits)?;
    let mask = ((1u16 << bits) - 1) as u8;
    let mut out = vec![0u8; (codes.len() * bits as usize).div_ceil(8)];
    for (i, &c) in codes.iter().enumerate() {
        let at = i * bits as usize;
        // A code spans at most two bytes: put it in a u16 window at its byte.
        let window = u16::from(c & mask) << (at % 8);
        out[at / 8] |= window as u8;
        if let Some(next) = out.get_mut(at / 8 + 1) {
            *next |= (window >> 8) as u8;
        }
    }
    Ok(out)
}

/// Unpacks `count` codes of `bits` bits from a bit stream [`pack_codes`] wrote.
///
/// ```
/// use quantlab::pack::{pack_codes, unpack_codes};
/// let codes = [5u8, 0, 7, 3, 1];
/// assert_eq!(unpack_codes(&pack_codes(&codes, 3)?, 3, codes.len())?, codes);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn unpack_codes(bytes: &[u8], bits: u32, count: usize) -> Result<Vec<u8>> {
    check_bits(bits)?;
    let needed = (count * bits as usize).div_ceil(8);
    if bytes.len() < needed {
        return Err(Error::ShortBuffer { got: bytes.len(), count, bits, needed });
    }
    let mask = ((1u16 << bits) - 1) as u8;
    Ok((0..count)
        .map(|i| {
            let at = i * bits as usize;
            let lo = u16::from(bytes[at / 8]);
            let hi = u16::from(bytes.get(at / 8 + 1).copied().unwrap_or(0));
            (((hi << 8 | lo) >> (at % 8)) as u8) & mask
        })
        .collect())
}

/// Packs integer codes of `bits` bits each (two's complement for negative
/// codes) into bytes, first value in the lowest bits.
///
/// Codes are masked to `bits`; callers pass codes already in range.
///
/// ```
/// assert_eq!(quantlab::pack::pack(&[1, 0, 3, 2], 2)?, [177]);
/// assert_eq!(quantlab::pack::pack(&[1, 0, 3, 2, 3, 3, 3, 3], 2)?, [177, 255]);
/// assert_eq!(quantlab::pack::pack(&[-1, 7, 5], 4)?, [0x7f, 0x05]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn pack(codes: &[i8], bits: u32) -> Result<Vec<u8>> {
    let codes: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
    pack_codes(&codes, bits)
}

/// Unpacks `count` codes of `bits` bits from `bytes`; `signed` sign-extends
/// them (int4, int2, int3…), otherwise they are read as unsigned.
///
/// ```
/// use quantlab::pack::{pack, unpack};
/// let codes = [-8i8, 7, 0, -1, 3];
/// assert_eq!(unpack(&pack(&codes, 4)?, 4, true, codes.len())?, codes);
/// assert_eq!(unpack(&[177], 2, false, 4)?, [1, 0, 3, 2]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn unpack(bytes: &[u8], bits: u32, signed: bool, count: usize) -> Result<Vec<i8>> {
    let shift_back = 8 - bits.clamp(1, 8); // moves a field's top bit to the sign bit and back
    Ok(unpack_codes(bytes, bits, count)?
        .into_iter()
        .map(|field| if signed { ((field << shift_back) as i8) >> shift_back } else { field as i8 })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_layouts() {
        assert_eq!(pack(&[1, 0, 3, 2], 2).unwrap(), [177]);
        assert_eq!(pack(&[1, 0, 3, 2, 3, 3, 3, 3], 2).unwrap(), [177, 255]);
        assert_eq!(pack(&[1, 2, 3], 2).unwrap(), [0b00_11_10_01]);
        assert_eq!(pack(&[0x5, 0xA], 4).unwrap(), [0xA5]);
        assert_eq!(pack(&[], 4).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn errors() {
        assert!(pack(&[1], 9).unwrap_err().to_string().contains("use 1 to 8 bits"));
        assert!(pack(&[1], 0).is_err());
        assert_eq!(
            unpack(&[0], 4, true, 3).unwrap_err().to_string(),
            "packed buffer of 1 bytes is too short for 3 values of 4 bits (needs 2 bytes)"
        );
    }

    fn codes(bits: u32, signed: bool) -> impl Strategy<Value = Vec<i8>> {
        let (lo, hi) = if signed { (-(1i16 << (bits - 1)), (1i16 << (bits - 1)) - 1) } else { (0, (1i16 << bits) - 1) };
        prop::collection::vec((lo..=hi).prop_map(|v| v as i8), 0..300)
    }

    /// The bit stream, bit by bit: the definition the packers must meet.
    fn bit_stream(codes: &[u8], bits: u32) -> Vec<u8> {
        let mut out = vec![0u8; (codes.len() * bits as usize).div_ceil(8)];
        for (i, &c) in codes.iter().enumerate() {
            for b in 0..bits as usize {
                if c >> b & 1 == 1 {
                    let at = i * bits as usize + b;
                    out[at / 8] |= 1 << (at % 8);
                }
            }
        }
        out
    }

    #[test]
    fn odd_widths_cross_bytes() {
        // 3 bits: 1, 2, 3 -> 001 010 011 -> bits 0-8: 0b1101_0001, 0b0000_0000 then 1
        assert_eq!(pack_codes(&[1, 2, 3], 3).unwrap(), [0b1101_0001, 0b0000_0000]);
        assert_eq!(pack_codes(&[0x7f, 0x7f], 7).unwrap(), [0xff, 0x3f]);
        assert_eq!(unpack(&pack(&[-4, 3, -1], 3).unwrap(), 3, true, 3).unwrap(), [-4, 3, -1]);
        assert_eq!(unpack(&pack(&[-32, 31, -1, 5, 0], 6).unwrap(), 6, true, 5).unwrap(), [-32, 31, -1, 5, 0]);
        assert_eq!(unpack(&[1], 1, true, 2).unwrap(), [-1, 0]);
    }

    proptest! {
        #[test]
        fn every_width_is_the_bit_stream(bits in 1u32..=8, raw in prop::collection::vec(any::<u8>(), 0..200)) {
            let codes: Vec<u8> = raw.iter().map(|&c| c & ((1u16 << bits) - 1) as u8).collect();
            let packed = pack_codes(&codes, bits)?;
            prop_assert_eq!(&packed, &bit_stream(&codes, bits));
            prop_assert_eq!(unpack_codes(&packed, bits, codes.len())?, codes);
        }
        #[test]
        fn pack_unpack_is_identity_int4(c in codes(4, true)) {
            prop_assert_eq!(unpack(&pack(&c, 4)?, 4, true, c.len())?, c);
        }
        #[test]
        fn pack_unpack_is_identity_uint4(c in codes(4, false)) {
            prop_assert_eq!(unpack(&pack(&c, 4)?, 4, false, c.len())?, c);
        }
        #[test]
        fn pack_unpack_is_identity_int2(c in codes(2, true)) {
            prop_assert_eq!(unpack(&pack(&c, 2)?, 2, true, c.len())?, c);
        }
        #[test]
        fn pack_unpack_is_identity_uint2(c in codes(2, false)) {
            let packed = pack(&c, 2)?;
            prop_assert_eq!(packed.len(), c.len().div_ceil(4));
            prop_assert_eq!(unpack(&packed, 2, false, c.len())?, c);
        }
    }
}
