//! The seal of the extension traits ([`crate::CastExt`], [`crate::QuantizeExt`]):
//! they are implemented for ndarray arrays only, so methods can be added to
//! them without breaking anyone.

use ndarray::{ArrayBase, Dimension, RawData};

/// Implemented only inside quantlab.
pub trait Sealed {}

impl<S: RawData, D: Dimension> Sealed for ArrayBase<S, D> {}
