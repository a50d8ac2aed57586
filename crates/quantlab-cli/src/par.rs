//! Large tensors split into pieces that the cores work on at once.
//!
//! Every piece is handed to the library's own functions (`quantize_with`,
//! `Quantized::dequantize`, `cast_to_bytes`, `pack`, `unpack`) with the
//! parameters that apply to it, so the result is bit for bit what one call on
//! the whole tensor gives; only the work is shared out.

use std::ops::Range;

use anyhow::Result;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use quantlab::{CastOptions, Codes, DType, Element, Granularity, QuantParams, QuantizeExt, Quantized, cast_to_bytes};
use rayon::prelude::*;

/// Elements per piece: large enough that splitting costs nothing, small
/// enough that two cores share a tensor of a few MB.
const PIECE: usize = 1 << 18;

/// A run of consecutive elements that forms a tensor of its own, with the
/// parameters its elements use.
struct Piece {
    range: Range<usize>,
    shape: Vec<usize>,
    params: QuantParams,
}

/// Splits a tensor of `shape` (already checked against `params`) into pieces.
fn pieces(shape: &[usize], params: &QuantParams) -> Vec<Piece> {
    let numel: usize = shape.iter().product();
    let (scale, zp) = (params.scale.as_slice().unwrap_or(&[]), params.zero_point.as_slice().unwrap_or(&[]));
    let mut out = Vec::new();
    match params.granularity {
        Granularity::PerTensor => {
            for start in (0..numel).step_by(PIECE) {
                let end = (start + PIECE).min(numel);
                out.push(Piece { range: start..end, shape: vec![end - start], params: params.clone() });
            }
        }
        Granularity::PerGroup { size } => {
            let groups = numel / size;
            let per = (PIECE / size).max(1);
            for g in (0..groups).step_by(per) {
                let h = (g + per).min(groups);
                out.push(Piece {
                    range: g * size..h * size,
                    shape: vec![(h - g) * size],
                    params: QuantParams::per_group(size, scale[g..h].to_vec(), zp[g..h].to_vec()),
                });
            }
        }
        Granularity::PerChannel { axis } => {
            // View the tensor as [outer, channels, inner].
            let outer: usize = shape[..axis].iter().product();
            let channels = shape[axis];
            let inner: usize = shape[axis + 1..].iter().product();
            if outer > 1 {
                // Whole [channels, inner] slabs keep every parameter.
                let slab = channels * inner;
                let per = (PIECE / slab.max(1)).max(1);
                for o in (0..outer).step_by(per) {
                    let p = (o + per).min(outer);
                    out.push(Piece {
                        range: o * slab..p * slab,
                        shape: vec![p - o, channels, inner],
                        params: QuantParams::per_channel(1, scale.to_vec(), zp.to_vec()),
                    });
                }
            } else {
                // Runs of channels, each with its own slice of the parameters.
                let per = (PIECE / inner.max(1)).max(1);
                for c in (0..channels).step_by(per) {
                    let d = (c + per).min(channels);
                    out.push(Piece {
                        range: c * inner..d * inner,
                        shape: vec![d - c, inner],
                        params: QuantParams::per_channel(0, scale[c..d].to_vec(), zp[c..d].to_vec()),
                    });
                }
            }
        }
    }
    out
}

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

/// The quantized codes of `x` (of `shape`, row-major) with checked `params`,
/// as stored: one byte per code, sub-byte codes packed.
pub fn quantize<T: Element>(x: &[T], shape: &[usize], dtype: DType, params: &QuantParams) -> Result<Vec<u8>> {
    let pieces = pieces(shape, params);
    let mut codes = vec![0u8; x.len()];
    let outs = split_mut(&mut codes, pieces.iter().map(|p| p.range.len()));
    pieces.into_par_iter().zip(outs).try_for_each(|(p, out)| -> Result<()> {
        let view = ArrayViewD::from_shape(IxDyn(&p.shape), &x[p.range])?;
        let q = view.quantize_with(dtype, &p.params)?;
        out.copy_from_slice(&q.codes.to_bytes());
        Ok(())
    })?;
    if !dtype.is_sub_byte() {
        return Ok(codes);
    }
    // Pieces of a multiple of 8 codes fill whole bytes, so packed pieces join up.
    let packed: Vec<Vec<u8>> = codes
        .par_chunks(PIECE)
        .map(|c| {
            let signed: Vec<i8> = c.iter().map(|&b| b as i8).collect();
            quantlab::pack::pack(&signed, dtype.bits())
        })
        .collect::<Result<_, _>>()?;
    Ok(packed.concat())
}

/// Float32 values from stored codes (`bytes`, packed for sub-byte types) of a
/// tensor of `shape`, with checked `params`, as little-endian bytes.
pub fn dequantize(bytes: &[u8], shape: &[usize], dtype: DType, params: &QuantParams) -> Result<Vec<u8>> {
    let numel: usize = shape.iter().product();
    let unpacked: Vec<u8>;
    let codes = if dtype.is_sub_byte() {
        let per_byte = (8 / dtype.bits()) as usize;
        let parts: Vec<Vec<i8>> = bytes
            .par_chunks(PIECE / per_byte)
            .enumerate()
            .map(|(i, c)| {
                let count = (numel - (i * PIECE).min(numel)).min(PIECE);
                quantlab::pack::unpack(c, dtype.bits(), dtype.is_signed(), count)
            })
            .collect::<Result<_, _>>()?;
        unpacked = parts.concat().into_iter().map(|v| v as u8).collect();
        &unpacked[..]
    } else {
        bytes
    };
    let pieces = pieces(shape, params);
    let mut out = vec![0u8; numel * 4];
    let outs = split_mut(&mut out, pieces.iter().map(|p| p.range.len() * 4));
    pieces.into_par_iter().zip(outs).try_for_each(|(p, out)| -> Result<()> {
        let c = &codes[p.range];
        let codes = if dtype.is_signed() {
            Codes::Signed(ArrayD::from_shape_vec(IxDyn(&p.shape), c.iter().map(|&b| b as i8).collect())?)
        } else {
            Codes::Unsigned(ArrayD::from_shape_vec(IxDyn(&p.shape), c.to_vec())?)
        };
        let x = Quantized { dtype, codes, params: p.params }.dequantize();
        for (o, v) in out.chunks_exact_mut(4).zip(x.iter()) {
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

/// Moves an error's flat index from a piece to the whole tensor.
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

    /// Pieces must give the same bytes as one library call on the whole tensor.
    #[test]
    fn pieces_match_one_call() {
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
            let got = quantize(&x, &shape, spec.dtype, &whole.params).unwrap();
            assert_eq!(got, whole.packed(), "{spec}");
            let back = dequantize(&got, &shape, spec.dtype, &whole.params).unwrap();
            let want: Vec<u8> = whole.dequantize().iter().flat_map(|v| v.to_le_bytes()).collect();
            assert!(back == want, "{spec}");
        }
    }
}
