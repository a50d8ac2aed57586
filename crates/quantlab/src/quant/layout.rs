//! Which parameter pair each element uses, as runs of contiguous elements.
//!
//! Data is always walked in row-major order over a standard-layout buffer, so
//! every granularity becomes a sequence of `(parameter index, element range)`
//! segments: one for per-tensor, one per group, and one per (outer index,
//! channel) block for per-channel.

use std::ops::Range;

use super::params::QuantParams;
use super::spec::Granularity;
use crate::error::{Error, Result};

/// Parts start at a multiple of this many elements, so that the packed codes
/// of consecutive parts join up at whole bytes for every code width.
const PART_ALIGN: usize = 8;

/// A run of consecutive elements of a tensor (row-major) that is a tensor of
/// its own, with the parameters its elements use: quantizing each part with
/// its parameters and joining the packed codes gives the codes of the whole
/// tensor, bit for bit. See [`QuantParams::parts`].
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The part's elements, as flat indices into the whole tensor. Starts at a
    /// multiple of 8, so its packed codes start at a whole byte.
    pub range: Range<usize>,
    /// The part's shape as a tensor of its own.
    pub shape: Vec<usize>,
    /// The parameters of its elements, for a tensor of that shape.
    pub params: QuantParams,
}

impl QuantParams {
    /// Splits a tensor of `shape` into [`Part`]s of about `max_len` elements
    /// (more when one channel slab or group is larger) that can be quantized
    /// or dequantized independently, e.g. on several cores.
    ///
    /// ```
    /// use quantlab::{QuantParams, Part};
    /// let params = QuantParams::per_group(4, vec![1.0; 8], vec![0; 8]);
    /// let parts = params.parts(&[2, 16], 16)?;
    /// assert_eq!(parts.iter().map(|p| p.range.clone()).collect::<Vec<_>>(), [0..32]); // 8 groups at least
    /// let params = QuantParams::per_tensor(1.0, 0);
    /// let parts: Vec<Part> = params.parts(&[100], 24)?;
    /// assert_eq!(parts.iter().map(|p| p.range.clone()).collect::<Vec<_>>(), [0..24, 24..48, 48..72, 72..96, 96..100]);
    /// # Ok::<(), quantlab::Error>(())
    /// ```
    pub fn parts(&self, shape: &[usize], max_len: usize) -> Result<Vec<Part>> {
        let needed = param_count(shape, self.granularity)?;
        if self.scale.len() != needed || self.zero_point.len() != needed {
            return Err(Error::BadParams {
                reason: format!(
                    "{} scales and {} zero points given, but {} over shape {shape:?} needs {needed} of each",
                    self.scale.len(),
                    self.zero_point.len(),
                    self.granularity
                ),
            });
        }
        let numel: usize = shape.iter().product();
        let scale = self.scale.to_vec();
        let zp = self.zero_point.to_vec();
        // How many units (elements, groups, slabs, channels) of `unit_len`
        // elements go in one part: a multiple of 8, so every part starts at a
        // multiple of 8 elements.
        let per = |unit_len: usize| (max_len / unit_len.max(1)).max(1).next_multiple_of(PART_ALIGN);
        let mut out = Vec::new();
        match self.granularity {
            Granularity::PerTensor => {
                for start in (0..numel).step_by(per(1)) {
                    let end = (start + per(1)).min(numel);
                    out.push(Part { range: start..end, shape: vec![end - start], params: self.clone() });
                }
            }
            Granularity::PerGroup { size } => {
                let groups = numel / size;
                let per = per(size);
                for g in (0..groups).step_by(per) {
                    let h = (g + per).min(groups);
                    out.push(Part {
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
                    let per = per(slab);
                    for o in (0..outer).step_by(per) {
                        let p = (o + per).min(outer);
                        out.push(Part {
                            range: o * slab..p * slab,
                            shape: vec![p - o, channels, inner],
                            params: QuantParams::per_channel(1, scale.clone(), zp.clone()),
                        });
                    }
                } else {
                    // Runs of channels, each with its own slice of the parameters.
                    let per = per(inner);
                    for c in (0..channels).step_by(per) {
                        let d = (c + per).min(channels);
                        out.push(Part {
                            range: c * inner..d * inner,
                            shape: vec![d - c, inner],
                            params: QuantParams::per_channel(0, scale[c..d].to_vec(), zp[c..d].to_vec()),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Number of parameter pairs `granularity` needs for a tensor of `shape`,
/// or the error that explains why it does not fit.
pub(crate) fn param_count(shape: &[usize], granularity: Granularity) -> Result<usize> {
    let numel: usize = shape.iter().product();
    match granularity {
        Granularity::PerTensor => Ok(1),
        Granularity::PerChannel { axis } => shape.get(axis).copied().ok_or(Error::BadAxis { axis, ndim: shape.len() }),
        Granularity::PerGroup { size } => {
            if size == 0 || !numel.is_multiple_of(size) {
                let suggestion =
                    (1..=size.clamp(1, numel.max(1))).rev().find(|&d| numel.is_multiple_of(d)).unwrap_or(1);
                Err(Error::BadGroupSize { group_size: size, numel, suggestion })
            } else {
                Ok(numel / size)
            }
        }
    }
}

/// The segments of a standard-layout tensor of `shape` (checked by [`param_count`]).
pub(crate) fn segments(shape: &[usize], granularity: Granularity) -> impl Iterator<Item = (usize, Range<usize>)> {
    let numel: usize = shape.iter().product();
    // (block length, how many parameters cycle) covers all three cases:
    // per-tensor is one block of everything, per-group blocks of G with a new
    // parameter each, per-channel blocks of `inner` cycling over the channels.
    let (block, cycle) = match granularity {
        Granularity::PerTensor => (numel.max(1), 1),
        Granularity::PerGroup { size } => (size.max(1), usize::MAX),
        Granularity::PerChannel { axis } => (shape[axis + 1..].iter().product::<usize>().max(1), shape[axis].max(1)),
    };
    (0..numel.div_ceil(block)).map(move |b| {
        let start = b * block;
        (b % cycle, start..(start + block).min(numel))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_tile_the_tensor_at_multiples_of_eight() {
        for (shape, params) in [
            (vec![3usize, 5, 7], QuantParams::per_channel(1, vec![1.0; 5], vec![0; 5])),
            (vec![5, 7], QuantParams::per_channel(0, vec![1.0; 5], vec![0; 5])),
            (vec![105], QuantParams::per_group(3, vec![1.0; 35], vec![0; 35])),
            (vec![1001], QuantParams::per_tensor(1.0, 0)),
        ] {
            let parts = params.parts(&shape, 10).unwrap();
            let mut next = 0;
            for p in &parts {
                assert_eq!(p.range.start, next, "{shape:?}");
                assert_eq!(p.range.start % 8, 0, "{shape:?}");
                assert_eq!(p.shape.iter().product::<usize>(), p.range.len());
                p.params.check(crate::DType::Int8, &p.shape).unwrap();
                next = p.range.end;
            }
            assert_eq!(next, shape.iter().product::<usize>());
        }
        let short = QuantParams::per_group(3, vec![1.0; 2], vec![0; 2]);
        assert!(short.parts(&[9], 8).unwrap_err().to_string().contains("needs 3 of each"));
    }

    #[test]
    fn per_channel_blocks_cycle_over_channels() {
        let segs: Vec<_> = segments(&[2, 3, 2], Granularity::PerChannel { axis: 1 }).collect();
        assert_eq!(segs, vec![(0, 0..2), (1, 2..4), (2, 4..6), (0, 6..8), (1, 8..10), (2, 10..12)]);
        let segs: Vec<_> = segments(&[2, 3], Granularity::PerChannel { axis: 0 }).collect();
        assert_eq!(segs, vec![(0, 0..3), (1, 3..6)]);
        let segs: Vec<_> = segments(&[2, 3], Granularity::PerChannel { axis: 1 }).collect();
        assert_eq!(segs.len(), 6);
        assert_eq!(segs[4], (1, 4..5));
    }

    #[test]
    fn groups_and_errors() {
        let segs: Vec<_> = segments(&[2, 4], Granularity::PerGroup { size: 4 }).collect();
        assert_eq!(segs, vec![(0, 0..4), (1, 4..8)]);
        assert_eq!(param_count(&[3, 4], Granularity::PerGroup { size: 6 }).unwrap(), 2);
        assert_eq!(
            param_count(&[3, 4], Granularity::PerGroup { size: 5 }).unwrap_err().to_string(),
            "group size 5 does not divide the 12 elements of the tensor: choose a divisor of 12 (e.g. 4)"
        );
        assert!(param_count(&[3, 4], Granularity::PerGroup { size: 0 }).is_err());
        assert_eq!(
            param_count(&[3, 4], Granularity::PerChannel { axis: 2 }).unwrap_err().to_string(),
            "axis 2 is out of range for a tensor with 2 dimension(s): use an axis from 0 to 1"
        );
    }
}
