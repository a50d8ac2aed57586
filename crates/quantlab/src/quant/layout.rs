//! Which parameter pair each element uses, as runs of contiguous elements.
//!
//! Data is always walked in row-major order over a standard-layout buffer, so
//! every granularity becomes a sequence of `(parameter index, element range)`
//! segments: one for per-tensor, one per group, and one per (outer index,
//! channel) block for per-channel.

use std::ops::Range;

use super::spec::Granularity;
use crate::error::{Error, Result};

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
