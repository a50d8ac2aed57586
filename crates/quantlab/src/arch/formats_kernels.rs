//! The block formats' SIMD kernels, chosen with the crate's kernel path
//! ([`super::kernel`]): a format kernel runs only when the path it belongs to
//! was detected (and not forced off with `QUANTLAB_KERNEL`). Every kernel is
//! bit-identical with the format's scalar reference (tests/formats_kernels.rs).

/// `quantize_q8_0(x, out)`: whole blocks of x into 34-byte blocks.
pub(crate) type QuantizeBlocks = fn(&[f32], &mut [u8]);

/// Every Q8_0 quantize path this CPU can run, by name, the scalar reference first.
pub(crate) fn q8_0_paths() -> Vec<(&'static str, QuantizeBlocks)> {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut paths: Vec<(&'static str, QuantizeBlocks)> = vec![("scalar", crate::formats::q8_0_scalar)];
    #[cfg(target_arch = "x86_64")]
    if super::available_kernels().contains(&"avx512") {
        // SAFETY: the avx512 path is available only where AVX-512F and BW were detected.
        paths.push(("avx512", |x, out| unsafe { super::x86_64::formats_avx512::quantize_q8_0_avx512(x, out) }));
    }
    paths
}

/// The Q8_0 quantize kernel of the chosen path.
pub(crate) fn q8_0() -> QuantizeBlocks {
    let chosen = super::kernel();
    q8_0_paths().into_iter().find(|(n, _)| *n == chosen).map_or(crate::formats::q8_0_scalar, |(_, f)| f)
}
