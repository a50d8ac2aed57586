//! Everything a notebook or a program needs, in one import:
//! `use quantlab::prelude::*;`

pub use crate::{
    CastExt, CastOptions, Codes, DType, Element, ErrorStats, Granularity, QuantParams, QuantSpec, QuantizeExt,
    Quantized, Scheme, Storage,
};
pub use crate::{
    asymmetric_params, cpu_features, error_stats, finfo, human_bytes, iinfo, model_footprint, params_bytes,
    support_table, symmetric_scale, tensor_bytes,
};

pub use float8::{F8E4M3, F8E5M2};
pub use half::{bf16, f16};
pub use ndarray::{Array, Array1, Array2, ArrayD, ArrayView, Axis, array, s};
