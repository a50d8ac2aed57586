//! x86-64 kernels: AVX2 (with F16C) on most machines since 2013, AVX-512
//! where present, and the AVX-512 tables that add the BF16 and FP16
//! conversion instructions of newer CPUs.

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod avx512bf16;
pub(crate) mod avx512fp16;
pub(crate) mod formats_avx2;
pub(crate) mod formats_avx512;
pub(crate) mod fp8_avx2;
pub(crate) mod fp8_avx512;
pub(crate) mod gemv_a8_avx2;
pub(crate) mod gemv_a8_avx512;
pub(crate) mod gemv_avx2;
pub(crate) mod gemv_avx512;
