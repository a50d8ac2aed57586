//! AVX-512 kernels of the block formats: Q8_0 quantize, bit-identical with
//! the scalar reference `formats::ggml::quantize_q8_0` (gguf-py 0.19's
//! arithmetic): the same f32 `amax / 127` and `1 / d` per block, the same
//! products, round half away from zero as `trunc(v) ± (|v - trunc(v)| >= 0.5)`
//! (exact: `v - trunc(v)` is), and `vcvttps2dq` + `vpmovdb`, which give the
//! scalar path's `i32::MIN`-then-low-byte for NaN and infinities.

use std::arch::x86_64::*;

use half::f16;

/// Q8_0 of whole 32-value blocks of `x` into `out` (34 bytes a block).
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512BW (checked by the caller's dispatch).
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) unsafe fn quantize_q8_0_avx512(x: &[f32], out: &mut [u8]) {
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let half = _mm512_set1_ps(0.5);
    let one = _mm512_set1_ps(1.0);
    let sign_mask = _mm512_set1_epi32(i32::MIN);
    for (b, o) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
        // SAFETY: `b` holds 32 f32 (two unaligned 16-lane loads).
        let (lo, hi) = unsafe { (_mm512_loadu_ps(b.as_ptr()), _mm512_loadu_ps(b.as_ptr().add(16))) };
        let abs = |v: __m512| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs_mask));
        // The inputs are finite (checked before quantizing), so any order of max gives the scalar amax.
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(abs(lo), abs(hi))).max(0.0);
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        o[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        let idv = _mm512_set1_ps(id);
        let code = |v: __m512| {
            let v = _mm512_mul_ps(v, idv);
            let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
            let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(abs(_mm512_sub_ps(v, t)), half);
            let step = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(_mm512_castps_si512(v), sign_mask),
                _mm512_castps_si512(one),
            ));
            let r = _mm512_mask_add_ps(t, away, t, step);
            _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(r))
        };
        let (ql, qh) = (code(lo), code(hi));
        // SAFETY: `o` has 34 bytes: 2 for d, then 32 for the codes.
        unsafe {
            _mm_storeu_si128(o.as_mut_ptr().add(2).cast(), ql);
            _mm_storeu_si128(o.as_mut_ptr().add(18).cast(), qh);
        }
    }
}
