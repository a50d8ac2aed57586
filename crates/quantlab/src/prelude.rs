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

pub use crate::{
    Float4E2M1Fn, Float6E2M3Fn, Float6E3M2Fn, Float8E3M4, Float8E4M3, Float8E4M3B11Fnuz, Float8E4M3Fnuz,
    Float8E5M2Fnuz, Float8E8M0Fnu, Minifloat, Overflow,
};
pub use float8::{F8E4M3, F8E5M2};
pub use half::{bf16, f16};
pub use ndarray::{Array, Array1, Array2, ArrayD, ArrayView, Axis, array, s};
