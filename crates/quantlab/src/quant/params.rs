//! Scales and zero points: computed from data, or given by the caller.

use ndarray::Array1;

use super::layout::{param_count, segments};
use super::spec::{Granularity, QuantSpec, Scheme, check_target, qrange};
use crate::arch::{self, MinMax};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The scale and zero point of every group of elements that shares them.
///
/// For per-tensor parameters both arrays have one element; per-channel, one
/// per index along the axis; per-group, one per group.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantParams {
    /// Which elements share a pair.
    pub granularity: Granularity,
    /// The step between neighbouring codes, in the data's units.
    pub scale: Array1<f32>,
    /// The code that stands for 0.0.
    pub zero_point: Array1<i32>,
}

impl QuantParams {
    /// One scale and zero point for the whole tensor, e.g. the lesson's `s = 3.5, z = -70`.
    pub fn per_tensor(scale: f32, zero_point: i32) -> Self {
        QuantParams {
            granularity: Granularity::PerTensor,
            scale: Array1::from_elem(1, scale),
            zero_point: Array1::from_elem(1, zero_point),
        }
    }

    /// One pair per index along `axis`.
    pub fn per_channel(axis: usize, scale: Vec<f32>, zero_point: Vec<i32>) -> Self {
        QuantParams {
            granularity: Granularity::PerChannel { axis },
            scale: scale.into(),
            zero_point: zero_point.into(),
        }
    }

    /// One pair per `size` consecutive elements.
    pub fn per_group(size: usize, scale: Vec<f32>, zero_point: Vec<i32>) -> Self {
        QuantParams { granularity: Granularity::PerGroup { size }, scale: scale.into(), zero_point: zero_point.into() }
    }

    /// Checks that these parameters can quantize a tensor of `shape` to `dtype`.
    pub fn check(&self, dtype: DType, shape: &[usize]) -> Result<()> {
        check_target(dtype)?;
        let needed = param_count(shape, self.granularity)?;
        let bad = |reason: String| Err(Error::BadParams { reason });
        if self.scale.len() != needed || self.zero_point.len() != needed {
            return bad(format!(
                "{} scales and {} zero points given, but {} over shape {shape:?} needs {needed} of each",
                self.scale.len(),
                self.zero_point.len(),
                self.granularity
            ));
        }
        let (qmin, qmax) = qrange(dtype);
        if let Some((i, s)) = self.scale.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return bad(format!("scale {s} at index {i} must be finite and positive"));
        }
        if let Some((i, z)) = self.zero_point.iter().enumerate().find(|(_, z)| !(qmin..=qmax).contains(*z)) {
            return bad(format!("zero point {z} at index {i} is outside {dtype}'s range [{qmin}, {qmax}]"));
        }
        Ok(())
    }
}

/// Asymmetric parameters for the range `[rmin, rmax]`, widened to include 0:
/// `s = (rmax - rmin) / (qmax - qmin)`, `z = clamp(round(qmin - rmin / s), qmin, qmax)`,
/// in f32 arithmetic, with `s` never below `f32::EPSILON`.
///
/// ```
/// use quantlab::{asymmetric_params, DType};
/// let (s, z) = asymmetric_params(-184.0, 728.6, DType::Int8)?;
/// assert_eq!((format!("{s:.6}"), z), ("3.578823".to_string(), -77));
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn asymmetric_params(rmin: f32, rmax: f32, dtype: DType) -> Result<(f32, i32)> {
    check_target(dtype)?;
    check_range(rmin, rmax)?;
    let (qmin, qmax) = qrange(dtype);
    Ok(asymmetric_checked(rmin, rmax, qmin, qmax))
}

/// [`asymmetric_params`] once the type and the range have been checked.
#[inline]
pub(crate) fn asymmetric_checked(rmin: f32, rmax: f32, qmin: i32, qmax: i32) -> (f32, i32) {
    let (rmin, rmax) = (rmin.min(0.0), rmax.max(0.0));
    let scale = ((rmax - rmin) / (qmax - qmin) as f32).max(f32::EPSILON);
    let zero_point = (qmin as f32 - rmin / scale).round_ties_even().clamp(qmin as f32, qmax as f32) as i32;
    (scale, zero_point)
}

/// Symmetric scale for data whose largest magnitude is `max_abs`:
/// `s = max_abs / qmax` (never below `f32::EPSILON`), zero point 0.
///
/// ```
/// use quantlab::{symmetric_scale, DType};
/// assert_eq!(format!("{:.4}", symmetric_scale(728.6, DType::Int8)?), "5.7370");
/// assert!(symmetric_scale(1.0, DType::UInt8).is_err());
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn symmetric_scale(max_abs: f32, dtype: DType) -> Result<f32> {
    QuantSpec::new(dtype).symmetric().check()?;
    check_range(-max_abs, max_abs)?;
    Ok(arch::symmetric_scale(max_abs, qrange(dtype).1))
}

fn check_range(rmin: f32, rmax: f32) -> Result<()> {
    if !(rmin.is_finite() && rmax.is_finite()) || rmin > rmax {
        return Err(Error::BadParams { reason: format!("the range [{rmin}, {rmax}] must be finite with min <= max") });
    }
    Ok(())
}

/// Finds the first non-finite value to name it in the error (the cold path).
pub(crate) fn non_finite_error(data: &[f32], what: &'static str) -> Error {
    let index = data.iter().position(|v| !v.is_finite()).unwrap_or(0);
    Error::NonFinite { what, value: data.get(index).map(|v| v.to_string()).unwrap_or_default(), index }
}

/// Chooses parameters for `data` (row-major, of `shape`) as `spec` says.
pub(crate) fn choose(data: &[f32], shape: &[usize], spec: QuantSpec) -> Result<QuantParams> {
    spec.check()?;
    if data.is_empty() {
        return Err(Error::Empty { what: "quantization" });
    }
    let count = param_count(shape, spec.granularity)?;
    let k = arch::kernels();
    let mut ranges = vec![MinMax { min: f32::INFINITY, max: f32::NEG_INFINITY, finite: true }; count];
    for (p, range) in segments(shape, spec.granularity) {
        let m = (k.min_max)(&data[range]);
        let acc = &mut ranges[p];
        *acc = MinMax { min: acc.min.min(m.min), max: acc.max.max(m.max), finite: acc.finite && m.finite };
    }
    if ranges.iter().any(|r| !r.finite) {
        return Err(non_finite_error(data, "quantization"));
    }
    let pairs = ranges
        .iter()
        .map(|r| match spec.scheme {
            Scheme::Asymmetric => asymmetric_params(r.min, r.max, spec.dtype),
            Scheme::Symmetric => symmetric_scale(r.min.abs().max(r.max.abs()), spec.dtype).map(|s| (s, 0)),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QuantParams {
        granularity: spec.granularity,
        scale: pairs.iter().map(|p| p.0).collect(),
        zero_point: pairs.iter().map(|p| p.1).collect(),
    })
}
