//! # quantlab
//!
//! Data types, casting and linear quantization on [`ndarray`] tensors: the
//! library behind the *Quantization* lesson and the `quantlab` command line.
//!
//! - [`DType`], [`iinfo`] and [`finfo`]: the types ARM, PyTorch and TensorFlow
//!   Lite use, with limits printed exactly as PyTorch prints them;
//! - [`CastExt::cast`]: f64, f32, f16, bf16, float8 and integers, rounding to
//!   nearest even;
//! - [`Minifloat`] and [`Overflow`]: one model of every float narrower than
//!   f32 (float8 e4m3fn … e8m0fnu, float6, float4), rounding once, with
//!   ml_dtypes' and PyTorch's overflow rules by name;
//! - [`QuantizeExt`]: int8 to int2, symmetric or asymmetric, per tensor,
//!   channel or group, bit-exact with PyTorch's float32 arithmetic;
//! - [`pack`], [`metrics`], [`footprint`]: sub-byte packing, error measures and
//!   memory;
//! - [`support_table`] and [`cpu_features`]: what platforms and this CPU support.
//!
//! Hot loops run SIMD kernels chosen once at run time (see [`kernel`]); they
//! give the same bits as the scalar reference.
//!
//! ```
//! use quantlab::prelude::*;
//! println!("{}", iinfo(DType::Int8)?); // iinfo(min=-128, max=127, dtype=int8)
//! let w = array![[0.5f32, -1.25], [2.0, 0.0]];
//! let q = w.quantize(QuantSpec::new(DType::Int8).symmetric())?;
//! assert!(q.error_stats(&w)?.max_abs <= f64::from(q.scale()[0]) / 2.0);
//! # Ok::<(), quantlab::Error>(())
//! ```
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod arch;
mod buffer;
mod cast;
mod cpu;
mod dtype;
mod element;
mod error;
mod info;
mod minifloat;
mod platform;
mod quant;
mod sealed;

pub mod footprint;
pub mod formats;
#[cfg(feature = "io")]
pub mod io;
pub mod linear;
pub mod metrics;
pub mod pack;
pub mod prelude;

#[doc(hidden)]
pub use arch::gemv::{GemvKernels, gemv_kernel, gemv_tables};
#[doc(hidden)]
pub use arch::gemv_a8::{A8Kernels, Q8Activations, a8_kernel, a8_tables};
pub use arch::kernel_detail;
#[doc(hidden)]
pub use arch::{Affine, Kernels, MinMax, kernel_tables};
pub use arch::{available_kernels, kernel};
pub use cast::{CastExt, CastOptions, cast_to_bytes, values_from_bytes};
pub use cpu::{CpuFeature, CpuFeatures, cpu_features};
pub use dtype::{DType, FloatLayout};
pub use element::Element;
#[doc(hidden)]
pub use element::Narrow;
pub use element::{
    Float4E2M1Fn, Float6E2M3Fn, Float6E3M2Fn, Float8E3M4, Float8E4M3, Float8E4M3B11Fnuz, Float8E4M3Fnuz,
    Float8E5M2Fnuz, Float8E8M0Fnu,
};
pub use error::{Error, Result};
pub use footprint::{Storage, human_bytes, model_footprint, params_bytes, tensor_bytes};
pub use info::{FInfo, IInfo, finfo, format_g, iinfo};
pub use metrics::{ErrorStats, error_stats};
pub use minifloat::{Minifloat, Overflow, Specials};
pub use platform::{PLATFORM_SUPPORT, PlatformSupport, Support, platform_support, support_table};
pub use quant::{
    Codes, Granularity, QuantParams, QuantSpec, QuantizeExt, Quantized, Scheme, asymmetric_params, symmetric_scale,
};
pub use quant::{Part, dequantize_packed};

/// The crates a program needs to call quantlab, re-exported so their versions
/// always match the library's.
pub use {float8, half, ndarray};
