//! x86-64 kernels: AVX2 (with F16C) on most machines since 2013, AVX-512 where present.

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod gemv_avx2;
pub(crate) mod gemv_avx512;
