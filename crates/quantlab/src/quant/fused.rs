//! Quantize and pack 4-bit codes in one step, with the `quantize_pack4`
//! kernels, so no byte-per-code buffer is written and read back.

use super::layout::{param_count, segments};
use std::mem::MaybeUninit;

use super::QuantParams;
use super::layout::Part;
use super::params::{self, asymmetric_checked, non_finite_error};
use super::spec::{Granularity, QuantSpec, Scheme, qrange};
use crate::arch::{self, Affine, MinMax};
use crate::buffer;
use crate::dtype::DType;
use crate::error::{Error, Result};

/// Elements per block of groups: 4 KiB of f32, so the second look at a block
/// (to quantize it) finds it in L1. Measured: 1024 beat 2048, 4096 and 16384.
const BLOCK: usize = 1024;

/// The packed bytes and parameters of `quantize(spec)` then `packed()`, or
/// `None` when there is no fused path (not 4 bits, or a segment that starts
/// in the middle of a byte); the caller then takes the plain path.
pub(super) fn quantize_packed(
    data: &[f32],
    shape: &[usize],
    spec: QuantSpec,
) -> Result<Option<(Vec<u8>, QuantParams)>> {
    spec.check()?;
    if spec.dtype.bits() != 4 {
        return Ok(None);
    }
    if data.is_empty() {
        return Err(Error::Empty { what: "quantization" });
    }
    let count = param_count(shape, spec.granularity)?;
    let k = arch::kernels();
    let (qmin, qmax) = qrange(spec.dtype);
    if let Granularity::PerGroup { size } = spec.granularity
        && size % 2 == 0
    {
        let limits = Affine { scale: 1.0, zero_point: 0, qmin, qmax };
        return match spec.scheme {
            Scheme::Symmetric => {
                // One kernel call: each group's range, scale and codes in
                // turn, the group read from L1 the second time.
                let mut scale = vec![0f32; count];
                let fill = |out: &mut [MaybeUninit<u8>]| {
                    let finite = (k.quantize_pack4_symmetric)(data, size, limits, &mut scale, out);
                    if finite { Ok(()) } else { Err(non_finite_error(data, "quantization")) }
                };
                // SAFETY: the groups tile `data` (`param_count` checked that
                // `size` divides it), so on success all `len / 2` bytes were written.
                let out = unsafe { buffer::try_filled(data.len() / 2, fill)? };
                Ok(Some((out, QuantParams::per_group(size, scale, vec![0; count]))))
            }
            Scheme::Asymmetric => asymmetric_groups(data, size, count, limits).map(Some),
        };
    }
    if !segments(shape, spec.granularity).all(|(_, r)| r.start % 2 == 0) {
        return Ok(None);
    }
    let params = params::choose(data, shape, spec)?;
    let mut out = buffer::zeroed::<u8>(data.len().div_ceil(2));
    for (p, r) in segments(shape, spec.granularity) {
        let a = Affine { scale: params.scale[p], zero_point: params.zero_point[p], qmin, qmax };
        (k.quantize_pack4)(&data[r.clone()], a, &mut out[r.start / 2..r.end.div_ceil(2)]);
    }
    Ok(Some((out, params)))
}

/// Asymmetric per-group 4-bit quantization in one pass over memory: blocks
/// of whole groups small enough to stay in cache get their ranges,
/// parameters and packed codes in turn, one kernel call per block rather
/// than per group.
fn asymmetric_groups(data: &[f32], size: usize, count: usize, limits: Affine) -> Result<(Vec<u8>, QuantParams)> {
    let k = arch::kernels();
    let per_block = (BLOCK / size).max(1);
    let mut ranges = vec![MinMax { min: 0.0, max: 0.0, finite: true }; per_block];
    let mut affines = Vec::with_capacity(per_block);
    let (mut scale, mut zero_point) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let fill = |out: &mut [MaybeUninit<u8>]| {
        for (xs, os) in data.chunks(per_block * size).zip(out.chunks_mut(per_block * size / 2)) {
            let groups = xs.len() / size;
            (k.min_max_groups)(xs, size, &mut ranges[..groups]);
            affines.clear();
            for r in &ranges[..groups] {
                if !r.finite {
                    return Err(non_finite_error(data, "quantization"));
                }
                // The checks `asymmetric_params` makes hold: the type passed
                // `spec.check()`, and a finite range has min <= max.
                let (s, z) = asymmetric_checked(r.min, r.max, limits.qmin, limits.qmax);
                affines.push(Affine { scale: s, zero_point: z, ..limits });
            }
            scale.extend(affines.iter().map(|a| a.scale));
            zero_point.extend(affines.iter().map(|a| a.zero_point));
            (k.quantize_pack4_groups)(xs, size, &affines, os);
        }
        Ok(())
    };
    // SAFETY: the groups tile `data` (`param_count` checked that `size`
    // divides it), so on success the kernel wrote all `len / 2` bytes.
    let out = unsafe { buffer::try_filled(data.len() / 2, fill)? };
    Ok((out, QuantParams::per_group(size, scale, zero_point)))
}

/// Elements per block of [`quantize_packed_with`] and [`dequantize_packed`]:
/// the scratch of the paths without a fused kernel stays this small.
const CHUNK: usize = 1 << 16;

/// The packed codes of `data` (a tensor of `shape`) quantized to `dtype` with
/// the caller's `params`, a part at a time (see [`QuantParams::parts`]).
pub(super) fn quantize_packed_with(
    data: &[f32],
    shape: &[usize],
    dtype: DType,
    params: &QuantParams,
) -> Result<Vec<u8>> {
    if data.is_empty() {
        return Err(Error::Empty { what: "quantization" });
    }
    params.check(dtype, shape)?;
    let bits = dtype.bits() as usize;
    let mut out = buffer::zeroed::<u8>(dtype.storage_bytes(data.len() as u64) as usize);
    for part in params.parts(shape, CHUNK)? {
        // Parts start at multiples of 8 elements: at whole bytes.
        let bytes = part.range.start * bits / 8..(part.range.end * bits).div_ceil(8);
        let finite = pack_part(&data[part.range.clone()], &part, dtype, &mut out[bytes])?;
        if !finite {
            return Err(non_finite_error(data, "quantization"));
        }
    }
    Ok(out)
}

/// Quantizes one part into its packed bytes `out`; false if it held a
/// non-finite value (the caller then names the first one).
fn pack_part(xs: &[f32], part: &Part, dtype: DType, out: &mut [u8]) -> Result<bool> {
    let k = arch::kernels();
    let (qmin, qmax) = qrange(dtype);
    let params = &part.params;
    let affine = |p: usize| Affine { scale: params.scale[p], zero_point: params.zero_point[p], qmin, qmax };
    if dtype.bits() == 4 {
        if let Granularity::PerGroup { size } = params.granularity
            && size % 2 == 0
        {
            let affines: Vec<Affine> = (0..params.scale.len()).map(affine).collect();
            // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the kernel
            // only stores initialised bytes, so `out` stays initialised.
            let uninit = unsafe { &mut *(std::ptr::from_mut::<[u8]>(out) as *mut [MaybeUninit<u8>]) };
            (k.quantize_pack4_groups)(xs, size, &affines, uninit);
            return Ok((k.min_max)(xs).finite);
        }
        // Segments that start at a whole byte and fill more than a couple of
        // bytes go straight through the packing kernel.
        if segments(&part.shape, params.granularity).all(|(_, r)| r.start % 2 == 0 && r.len() >= 16) {
            for (p, r) in segments(&part.shape, params.granularity) {
                (k.quantize_pack4)(&xs[r.clone()], affine(p), &mut out[r.start / 2..r.end.div_ceil(2)]);
            }
            return Ok((k.min_max)(xs).finite);
        }
    }
    // The rest (8-bit, 2-bit, short or odd 4-bit segments): one code per byte
    // for this part only, then packed into place.
    let (q, finite) = super::apply(xs, ndarray::IxDyn(&part.shape), dtype, params.clone());
    if !finite {
        return Ok(false);
    }
    let packed = q.packed();
    out.copy_from_slice(&packed);
    Ok(true)
}

/// Float32 values of a tensor of `shape` from its stored codes `bytes`
/// (packed for the sub-byte types, as [`crate::QuantizeExt::quantize_packed`]
/// writes them) and checked `params`, a block at a time.
///
/// ```
/// use quantlab::prelude::*;
/// let w = array![[0.5f32, -1.25, 2.0, 0.0], [3.0, 1.0, -0.5, 0.25]];
/// let (bytes, params) = w.quantize_packed(QuantSpec::new(DType::Int4).per_channel(0))?;
/// let back = quantlab::dequantize_packed(&bytes, &[2, 4], DType::Int4, &params)?;
/// let want = w.quantize(QuantSpec::new(DType::Int4).per_channel(0))?.dequantize()?;
/// assert_eq!(back, want.iter().copied().collect::<Vec<f32>>());
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn dequantize_packed(bytes: &[u8], shape: &[usize], dtype: DType, params: &QuantParams) -> Result<Vec<f32>> {
    params.check(dtype, shape)?;
    let numel: usize = shape.iter().product();
    let bits = dtype.bits();
    let needed = dtype.storage_bytes(numel as u64) as usize;
    if bytes.len() != needed {
        return Err(Error::BadQuantized {
            reason: format!("{} bytes of codes given, but {numel} {dtype} codes take {needed}", bytes.len()),
        });
    }
    let k = arch::kernels();
    let mut out = buffer::zeroed::<f32>(numel);
    for part in params.parts(shape, CHUNK)? {
        let stored = &bytes[part.range.start * bits as usize / 8..(part.range.end * bits as usize).div_ceil(8)];
        let codes = if dtype.is_sub_byte() {
            crate::pack::unpack(stored, bits, dtype.is_signed(), part.range.len())?
        } else {
            stored.iter().map(|&b| b as i8).collect()
        };
        let o = &mut out[part.range.clone()];
        let (scale, zp) = (&part.params.scale, &part.params.zero_point);
        for (p, r) in segments(&part.shape, part.params.granularity) {
            if dtype.is_signed() {
                (k.dequantize_i8)(&codes[r.clone()], scale[p], zp[p], arch::scalar::as_uninit(&mut o[r]));
            } else {
                (k.dequantize_u8)(
                    arch::i8_as_u8(&codes[r.clone()]),
                    scale[p],
                    zp[p],
                    arch::scalar::as_uninit(&mut o[r]),
                );
            }
        }
    }
    Ok(out)
}
