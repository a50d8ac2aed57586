//! Quantize and pack 4-bit codes in one step, with the `quantize_pack4`
//! kernels, so no byte-per-code buffer is written and read back.

use super::layout::{param_count, segments};
use std::mem::MaybeUninit;

use super::QuantParams;
use super::params::{self, asymmetric_checked, non_finite_error};
use super::spec::{Granularity, QuantSpec, Scheme, qrange};
use crate::arch::{self, Affine, MinMax};
use crate::buffer;
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
