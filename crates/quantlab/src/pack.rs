//! Packing sub-byte integer codes into bytes.
//!
//! Values go into a byte from the lowest bits up: with 2 bits, `[1, 0, 3, 2]`
//! is `0b10_11_00_01` = 177. The last byte is padded with zeros. This is the
//! layout of PyTorch's `torch.uint4x2`-style packing and of the `quantlab`
//! command line's safetensors output.

use crate::error::{Error, Result};

fn check_bits(bits: u32) -> Result<()> {
    if matches!(bits, 1 | 2 | 4 | 8) {
        Ok(())
    } else {
        Err(Error::BadParams { reason: format!("cannot pack {bits}-bit values: use 1, 2, 4 or 8 bits") })
    }
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
    check_bits(bits)?;
    let per_byte = (8 / bits) as usize;
    let mask = ((1u16 << bits) - 1) as u8;
    Ok(codes
        .chunks(per_byte)
        .map(|chunk| {
            chunk.iter().enumerate().fold(0u8, |byte, (i, &c)| byte | (((c as u8) & mask) << (i as u32 * bits)))
        })
        .collect())
}

/// Unpacks `count` codes of `bits` bits from `bytes`; `signed` sign-extends
/// them (int4, int2), otherwise they are read as unsigned (uint4, uint2).
///
/// ```
/// use quantlab::pack::{pack, unpack};
/// let codes = [-8i8, 7, 0, -1, 3];
/// assert_eq!(unpack(&pack(&codes, 4)?, 4, true, codes.len())?, codes);
/// assert_eq!(unpack(&[177], 2, false, 4)?, [1, 0, 3, 2]);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn unpack(bytes: &[u8], bits: u32, signed: bool, count: usize) -> Result<Vec<i8>> {
    check_bits(bits)?;
    let per_byte = (8 / bits) as usize;
    let needed = count.div_ceil(per_byte);
    if bytes.len() < needed {
        return Err(Error::ShortBuffer { got: bytes.len(), count, bits, needed });
    }
    let mask = ((1u16 << bits) - 1) as u8;
    let shift_back = 8 - bits; // moves a field's top bit to the sign bit and back
    Ok((0..count)
        .map(|i| {
            let field = (bytes[i / per_byte] >> ((i % per_byte) as u32 * bits)) & mask;
            if signed { ((field << shift_back) as i8) >> shift_back } else { field as i8 }
        })
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
        assert!(pack(&[1], 3).unwrap_err().to_string().contains("use 1, 2, 4 or 8 bits"));
        assert_eq!(
            unpack(&[0], 4, true, 3).unwrap_err().to_string(),
            "packed buffer of 1 bytes is too short for 3 values of 4 bits (needs 2 bytes)"
        );
    }

    fn codes(bits: u32, signed: bool) -> impl Strategy<Value = Vec<i8>> {
        let (lo, hi) = if signed { (-(1i16 << (bits - 1)), (1i16 << (bits - 1)) - 1) } else { (0, (1i16 << bits) - 1) };
        prop::collection::vec((lo..=hi).prop_map(|v| v as i8), 0..300)
    }

    proptest! {
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
