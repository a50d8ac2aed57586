//! Large tensors shared out between the cores.
//!
//! The library splits a tensor into parts that can be worked on alone
//! ([`quantlab::QuantParams::parts`]) and does the work of each
//! ([`quantlab::QuantizeExt::quantize_packed_with`],
//! [`quantlab::dequantize_packed`], [`quantlab::cast_to_bytes`]); here the
//! parts only go to rayon and their bytes into place, so the result is bit for
//! bit what one library call on the whole tensor gives.

use anyhow::Result;
use ndarray::{ArrayViewD, IxDyn};
use quantlab::{CastOptions, DType, Element, QuantParams, QuantizeExt, cast_to_bytes};
use rayon::prelude::*;

/// Elements per part: large enough that splitting costs nothing, small
/// enough that two cores share a tensor of a few MB.
const PIECE: usize = 1 << 18;

/// Splits `buf` into consecutive mutable parts of the given lengths.
fn split_mut<T>(mut buf: &mut [T], lens: impl Iterator<Item = usize>) -> Vec<&mut [T]> {
    let mut parts = Vec::new();
    for len in lens {
        let (head, tail) = std::mem::take(&mut buf).split_at_mut(len);
        parts.push(head);
        buf = tail;
    }
    parts
}

/// The bytes that hold codes `range` of `bits` each (parts start at whole bytes).
fn byte_len(range: &std::ops::Range<usize>, bits: u32) -> usize {
    (range.end * bits as usize).div_ceil(8) - range.start * bits as usize / 8
}

/// The quantized codes of `x` (of `shape`, row-major) with checked `params`,
/// as stored: one byte per 8-bit code, sub-byte codes packed, never more.
pub fn quantize<T: Element>(x: &[T], shape: &[usize], dtype: DType, params: &QuantParams) -> Result<Vec<u8>> {
    let parts = params.parts(shape, PIECE)?;
    let mut codes = vec![0u8; dtype.storage_bytes(x.len() as u64) as usize];
    let outs = split_mut(&mut codes, parts.iter().map(|p| byte_len(&p.range, dtype.bits())));
    parts.into_par_iter().zip(outs).try_for_each(|(p, out)| -> Result<()> {
        let view = ArrayViewD::from_shape(IxDyn(&p.shape), &x[p.range.clone()])?;
        let bytes = view.quantize_packed_with(dtype, &p.params).map_err(|e| shift_index(e, p.range.start))?;
        out.copy_from_slice(&bytes);
        Ok(())
    })?;
    Ok(codes)
}

/// Float32 values from stored codes (`bytes`, packed for sub-byte types) of a
/// tensor of `shape`, with checked `params`, as little-endian bytes.
pub fn dequantize(bytes: &[u8], shape: &[usize], dtype: DType, params: &QuantParams) -> Result<Vec<u8>> {
    let numel: usize = shape.iter().product();
    let parts = params.parts(shape, PIECE)?;
    let mut out = vec![0u8; numel * 4];
    let outs = split_mut(&mut out, parts.iter().map(|p| p.range.len() * 4));
    let mut inputs = Vec::with_capacity(parts.len());
    let mut rest = bytes;
    for p in &parts {
        let (head, tail) = rest.split_at_checked(byte_len(&p.range, dtype.bits())).unwrap_or((rest, &[]));
        inputs.push(head);
        rest = tail;
    }
    parts.into_par_iter().zip(inputs).zip(outs).try_for_each(|((p, codes), out)| -> Result<()> {
        let x = quantlab::dequantize_packed(codes, &p.shape, dtype, &p.params)?;
        for (o, v) in out.chunks_exact_mut(4).zip(x) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    })?;
    Ok(out)
}

/// `x` cast to the float type `dtype`, as little-endian bytes. An error's flat
/// index is the element's index in the whole tensor.
pub fn cast<T: Element>(x: &[T], dtype: DType, options: CastOptions) -> Result<Vec<u8>, quantlab::Error> {
    let parts: Vec<Vec<u8>> = x
        .par_chunks(PIECE)
        .enumerate()
        .map(|(i, c)| {
            cast_to_bytes(&ndarray::ArrayView1::from(c), dtype, options).map_err(|e| shift_index(e, i * PIECE))
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.concat())
}

/// Moves an error's flat index from a part to the whole tensor.
fn shift_index(e: quantlab::Error, offset: usize) -> quantlab::Error {
    match e {
        quantlab::Error::OutOfRange { value, index, dtype, max } => {
            quantlab::Error::OutOfRange { value, index: index + offset, dtype, max }
        }
        quantlab::Error::NonFinite { what, value, index } => {
            quantlab::Error::NonFinite { what, value, index: index + offset }
        }
        quantlab::Error::Unrepresentable { value, index, dtype, reason, hint } => {
            quantlab::Error::Unrepresentable { value, index: index + offset, dtype, reason, hint }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantlab::QuantSpec;

    /// Parts must give the same bytes as one library call on the whole tensor.
    #[test]
    fn parts_match_one_call() {
        let shape = [3usize, 5, 1 << 15];
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0).collect();
        let a = ArrayViewD::from_shape(IxDyn(&shape), &x).unwrap();
        for spec in [
            QuantSpec::new(DType::Int8),
            QuantSpec::new(DType::Int4).symmetric().per_group(96),
            QuantSpec::new(DType::UInt2).per_channel(1),
            QuantSpec::new(DType::Int8).per_channel(0),
            QuantSpec::new(DType::UInt4).per_channel(2),
        ] {
            let whole = a.quantize(spec).unwrap();
            let got = quantize(&x, &shape, spec.dtype, whole.params()).unwrap();
            assert_eq!(got, whole.packed(), "{spec}");
            let back = dequantize(&got, &shape, spec.dtype, whole.params()).unwrap();
            let want: Vec<u8> = whole.dequantize().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect();
            assert!(back == want, "{spec}");
        }
    }
}
