//! The 4-bit block formats (MXFP4, NVFP4, NF4) as the linear layer's kernels
//! read them: a table of the 16 code values and each block's scale as f32,
//! such that a weight is `table[code] * scale`, the product the format's
//! dequantization rounds (MX: `value * 2^(e - 127)`, NVFP4: `e2m1 * (t * s)`,
//! NF4: `code * absmax`, double-quantized absmaxes decoded first).

use super::mx::{Minifloat, e8m0_value};
use super::nf4::{DoubleQuant, NF4_CODE, double_dequantize};
use super::{BlockFormat, BlockQuantized, MxElement, Scales};

/// A 4-bit weight as a value table and f32 block scales.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lut4 {
    /// The value of each code.
    pub table: [f32; 16],
    /// One per block of `block` values of the flat tensor.
    pub scales: Vec<f32>,
    /// Values per scale.
    pub block: usize,
    /// Whether a byte's first value is in its high nibble (NF4) rather than its low one.
    pub high_first: bool,
}

/// `q` as a [`Lut4`], for MXFP4, NVFP4 and NF4 (else `None`).
pub(crate) fn lut4(q: &BlockQuantized) -> Option<Lut4> {
    let e2m1: [f32; 16] = std::array::from_fn(|c| Minifloat::E2M1.decode(c as u8));
    match (&q.format, &q.scales) {
        (BlockFormat::Mx { element: MxElement::E2m1, .. }, Scales::E8m0(s)) => Some(Lut4 {
            table: std::array::from_fn(|c| MxElement::E2m1.decode(c as u8)),
            scales: s.iter().map(|&e| e8m0_value(e)).collect(),
            block: 32,
            high_first: false,
        }),
        (BlockFormat::Nvfp4 { .. }, Scales::E4m3 { blocks, tensor }) => {
            let e4m3 = Minifloat::E4M3;
            let scales = blocks
                .iter()
                .map(|&s| match tensor {
                    None => e4m3.decode(s),
                    Some(t) => t * e4m3.decode(s),
                })
                .collect();
            Some(Lut4 { table: e2m1, scales, block: super::nvfp4::BLOCK, high_first: false })
        }
        (BlockFormat::Nf4 { block, .. }, Scales::Absmax(a)) => {
            Some(Lut4 { table: NF4_CODE, scales: a.clone(), block: *block, high_first: true })
        }
        (BlockFormat::Nf4 { block, .. }, Scales::DoubleQuant { codes, absmax2, offset }) => {
            let dq = DoubleQuant { codes: codes.clone(), absmax2: absmax2.clone(), offset: *offset };
            Some(Lut4 { table: NF4_CODE, scales: double_dequantize(&dq), block: *block, high_first: true })
        }
        _ => None,
    }
}
