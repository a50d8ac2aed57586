//! AArch64 kernels: NEON, which every AArch64 CPU has.

pub(crate) mod formats_neon;
pub(crate) mod fp8_neon;
pub(crate) mod gemv_a8_neon;
pub(crate) mod gemv_neon;
pub(crate) mod neon;
