//! How far a reconstruction is from the original: MSE, max abs error, SQNR.
//!
//! Sums are taken in f64 whatever the element types, so the metric itself
//! adds no error worth mentioning.

use std::fmt;

use ndarray::{ArrayBase, Data, Dimension, Zip};

use crate::element::Element;
use crate::error::{Error, Result};

/// The three error measures of one reconstruction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    /// Mean squared error.
    pub mse: f64,
    /// Largest absolute difference.
    pub max_abs: f64,
    /// Signal-to-quantization-noise ratio in dB: `10 log10(Σx² / Σ(x - y)²)`;
    /// `inf` for an exact reconstruction.
    pub sqnr_db: f64,
}

impl fmt::Display for ErrorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MSE {:.4}, max abs error {:.4}, SQNR {:.2} dB", self.mse, self.max_abs, self.sqnr_db)
    }
}

/// MSE, max abs error and SQNR between `original` and `reconstructed`.
///
/// ```
/// use quantlab::error_stats;
/// let x = ndarray::array![1.0, -2.0, 3.0];
/// let y = ndarray::array![1.0f32, -2.5, 3.0];
/// let e = error_stats(&x, &y)?;
/// assert_eq!((e.mse, e.max_abs), (0.25 / 3.0, 0.5));
/// assert!((e.sqnr_db - 10.0 * (14.0f64 / 0.25).log10()).abs() < 1e-12);
/// # Ok::<(), quantlab::Error>(())
/// ```
pub fn error_stats<A, B, S, T, D>(original: &ArrayBase<S, D>, reconstructed: &ArrayBase<T, D>) -> Result<ErrorStats>
where
    A: Element,
    B: Element,
    S: Data<Elem = A>,
    T: Data<Elem = B>,
    D: Dimension,
{
    if original.shape() != reconstructed.shape() {
        return Err(Error::ShapeMismatch {
            what: "an error metric",
            left: original.shape().to_vec(),
            right: reconstructed.shape().to_vec(),
        });
    }
    if original.is_empty() {
        return Err(Error::Empty { what: "an error metric" });
    }
    let (mut signal, mut noise, mut max_abs) = (0f64, 0f64, 0f64);
    Zip::from(original).and(reconstructed).for_each(|&x, &y| {
        let (x, y) = (x.to_f64(), y.to_f64());
        let d = x - y;
        signal += x * x;
        noise += d * d;
        max_abs = max_abs.max(d.abs());
    });
    Ok(ErrorStats { mse: noise / original.len() as f64, max_abs, sqnr_db: 10.0 * (signal / noise).log10() })
}

/// One measure of [`error_stats`] as a function of its own.
macro_rules! one_measure {
    ($(#[$doc:meta])* $name:ident => $field:ident) => {
        $(#[$doc])*
        pub fn $name<A, B, S, T, D>(original: &ArrayBase<S, D>, reconstructed: &ArrayBase<T, D>) -> Result<f64>
        where
            A: Element,
            B: Element,
            S: Data<Elem = A>,
            T: Data<Elem = B>,
            D: Dimension,
        {
            error_stats(original, reconstructed).map(|e| e.$field)
        }
    };
}

one_measure!(
    /// Mean squared error between two tensors of the same shape.
    mse => mse
);
one_measure!(
    /// Largest absolute difference between two tensors of the same shape.
    max_abs_error => max_abs
);
one_measure!(
    /// Signal-to-quantization-noise ratio in dB between two tensors of the same shape.
    sqnr_db => sqnr_db
);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn exact_reconstruction_has_infinite_sqnr() {
        let x = array![1.0f32, 2.0];
        let e = error_stats(&x, &x).unwrap();
        assert_eq!((e.mse, e.max_abs, e.sqnr_db), (0.0, 0.0, f64::INFINITY));
    }

    #[test]
    fn mismatched_and_empty_inputs_are_errors() {
        let err = mse(&array![1.0f32, 2.0], &array![1.0f32]).unwrap_err();
        assert_eq!(err.to_string(), "shape mismatch: an error metric needs equal shapes, got [2] and [1]");
        let empty = ndarray::Array1::<f32>::zeros(0);
        assert!(matches!(sqnr_db(&empty, &empty), Err(Error::Empty { .. })));
        assert_eq!(max_abs_error(&array![0.0, 4.0], &array![1.0, 1.0]).unwrap(), 3.0);
    }
}
