//! The one place that decides which kernels run.
//!
//! Each instruction set has its own file of kernels over contiguous slices;
//! `scalar` is the reference that every other path must match bit for bit.
//! Detection runs once, on first use, and the chosen table is kept in a
//! `OnceLock`, so a call costs one load and an indirect call.
//!
//! Set `QUANTLAB_KERNEL=scalar` (or another path's name) to force a path,
//! e.g. to test every path on one machine; [`kernel`] says which one runs.
//! Where a path has several ways of quantizing whose speed depends on the
//! microarchitecture (the AVX-512 ones: dividing is slow on Intel, fast on
//! AMD Zen 5), the fastest is timed once at start-up and [`kernel_detail`]
//! says which; `QUANTLAB_KERNEL=path:variant` forces one.
//!
//! Layout: `scalar.rs` (the reference, every CPU), `x86_64/avx2.rs`,
//! `x86_64/avx512.rs`, `x86_64/avx512bf16.rs` (adds the BF16 conversion
//! instruction), `x86_64/avx512fp16.rs` (adds FP16's) and `aarch64/neon.rs`.
//! The block formats' kernels follow the same paths from their own table
//! (`formats_kernels.rs`, with `x86_64/formats_avx512.rs`,
//! `x86_64/formats_avx2.rs` and `aarch64/formats_neon.rs`).
//! [`candidates`] is the only place that knows which paths exist and what
//! each needs from the CPU.

use std::any::TypeId;
use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};

use crate::buffer;
use crate::element::Element;

/// Declares one instruction set's kernel table, `KERNELS`, from the
/// `#[target_feature]` kernels of its file. Every table has the same entries, so
/// the safe entry points (one `unsafe` call each) are written here once.
///
/// Soundness of every generated call: [`candidates`] hands a table out only after
/// detecting the CPU features its file's kernels are compiled for.
macro_rules! simd_kernels {
    (
        name: $name:literal,
        min_max: $min_max:path,
        min_max_groups: $min_max_groups:path,
        quantize_pack4_symmetric: $quantize_pack4_symmetric:path,
        quantize_bytes: $quantize_bytes:path,
        quantize_pack4: $quantize_pack4:path,
        quantize_pack4_groups: $quantize_pack4_groups:path,
        dequantize: $dequantize:ident,
        f32_to_bf16: $f32_to_bf16:path,
        bf16_to_f32: $bf16_to_f32:path,
        f32_to_f16: $f32_to_f16:path,
        f16_to_f32: $f16_to_f32:path,
        f32_to_e4m3fn: $f32_to_e4m3fn:path,
        f32_to_e5m2: $f32_to_e5m2:path,
        e4m3fn_to_f32: $e4m3fn_to_f32:path,
        e5m2_to_f32: $e5m2_to_f32:path,
        quantize_variants: $quantize_variants:expr $(,)?
    ) => {
        // `unused_unsafe`: an ISA may use a safe function for an entry (NEON's f16 casts).
        #[allow(unused_unsafe)]
        pub(crate) static KERNELS: $crate::arch::Kernels = $crate::arch::Kernels {
            name: $name,
            // SAFETY: the table's features were detected (see the macro's documentation).
            min_max: |x| unsafe { $min_max(x) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            min_max_groups: |x, group, out| unsafe { $min_max_groups(x, group, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_pack4_symmetric: |x, group, a, scales, out| unsafe {
                $quantize_pack4_symmetric(x, group, a, scales, out)
            },
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_i8: |x, a, out| unsafe { $quantize_bytes(x, a, $crate::arch::uninit_i8_as_u8(out)) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_u8: |x, a, out| unsafe { $quantize_bytes(x, a, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_pack4: |x, a, out| unsafe { $quantize_pack4(x, a, $crate::arch::scalar::as_uninit(out)) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            quantize_pack4_groups: |x, group, a, out| unsafe { $quantize_pack4_groups(x, group, a, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            dequantize_i8: |q, s, z, out| unsafe { $dequantize::<true>($crate::arch::i8_as_u8(q), s, z, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            dequantize_u8: |q, s, z, out| unsafe { $dequantize::<false>(q, s, z, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            f32_to_bf16: |x, out| unsafe { $f32_to_bf16(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            bf16_to_f32: |x, out| unsafe { $bf16_to_f32(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            f32_to_f16: |x, out| unsafe { $f32_to_f16(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            f16_to_f32: |x, out| unsafe { $f16_to_f32(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            f32_to_e4m3fn: |x, out| unsafe { $f32_to_e4m3fn(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            f32_to_e5m2: |x, out| unsafe { $f32_to_e5m2(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            e4m3fn_to_f32: |x, out| unsafe { $e4m3fn_to_f32(x, out) },
            // SAFETY: the table's features were detected (see the macro's documentation).
            e5m2_to_f32: |x, out| unsafe { $e5m2_to_f32(x, out) },
            quantize_variants: $quantize_variants,
        };
    };
}

/// Signed codes as the unsigned bytes the byte kernels read (same layout).
pub(crate) fn i8_as_u8(q: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity.
    unsafe { std::slice::from_raw_parts(q.as_ptr().cast::<u8>(), q.len()) }
}

/// A signed-code output buffer as the unsigned bytes the byte kernels write.
pub(crate) fn uninit_i8_as_u8(out: &mut [MaybeUninit<i8>]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<i8> and MaybeUninit<u8> have the same layout; the
    // kernels write codes as two's-complement bytes, which is what i8 holds.
    unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<MaybeUninit<u8>>(), out.len()) }
}

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub(crate) mod formats_kernels;
pub(crate) mod fp8;
pub(crate) mod gemv;
pub(crate) mod gemv_a8;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// The parameters of one affine quantization: `q = clamp(round(x / scale) + zero_point, qmin, qmax)`.
///
/// Internal: public (and hidden) only so tests and benchmarks can drive each kernel table.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// The step between codes.
    pub scale: f32,
    /// The code of 0.0.
    pub zero_point: i32,
    /// The smallest code.
    pub qmin: i32,
    /// The largest code.
    pub qmax: i32,
}

/// Multiplying by `1 / scale` instead of dividing, without changing a code.
///
/// Quantizing in cache is bound by the vector divider on some CPUs (on
/// Intel's AVX-512 cores a 16-lane division issues once per ~10 cycles); a
/// multiply by the rounded reciprocal runs on the other units but is not
/// always the same number, so a SIMD path may use it only for vectors where
/// it provably gives the same codes, dividing the others as the scalar
/// reference does.
///
/// Why that is exact. With `r = fl(1/s)` normal, `qm = fl(x * r)` is within
/// `(2u + u²)|x/s|` of the true quotient and `fl(x / s)` within `u|x/s|`
/// (`u = 2^-24`), so they differ by less than `3.001u|x/s|`. While `|qm| <
/// FAR` that is under `1.84e-4`: if `qm` is more than `TIE_MARGIN` (2.44e-4)
/// from every half-integer, no half-integer lies between the two, so both
/// round to the same integer. When `|qm| >= FAR` (infinity included), both
/// quotients are at least `FAR - 0.01` with the same sign, so, with the zero
/// point within `FAR - 1` of both code limits, both codes clamp to the same
/// limit. NaN fails both tests, so it is divided.
///
/// The every-vector kernel tests a lane with one fused multiply-add, `e =
/// fl(qm * PROBE + d)`, where `d = qm - round(qm)` (exact): it accepts the
/// lane when `|e| < 1/2 - TIE_MARGIN`. An accepted lane has a finite `x`
/// (an infinite or NaN `qm` makes `e` infinite or NaN) and `|qm| < 2^30`
/// (else `|qm * PROBE| >= 1` and `|e| >= 1/2`), so converting `qm` to i32
/// is exact; below `FAR`, `|qm * PROBE| < 2^-20` and so `|d| < 1/2 -
/// TIE_MARGIN + 2^-19`, still more than 1.84e-4 from a tie; from `FAR` to
/// `2^30` the codes clamp as above.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the AVX-512 kernels use it so far
pub(crate) mod reciprocal {
    use super::Affine;

    /// Quotients at least this large clamp whichever way they round.
    pub(crate) const FAR: f32 = 1024.0;
    /// How far from a rounding tie (`k + 1/2`) a quotient must be to round
    /// the same way both ways: 1.3 times the largest difference below `FAR`
    /// (the old 2^-10 sent 3% of 16-lane vectors of normal data to the
    /// divider; this 0.8%).
    pub(crate) const TIE_MARGIN: f32 = 1.0 / 4096.0;
    /// `2^-30`: see the module documentation.
    pub(crate) const PROBE: f32 = 1.0 / (1u32 << 30) as f32;

    /// `1 / scale` when multiplying by it is safe for these parameters (see
    /// above), else `None`: the kernels then always divide.
    pub(crate) fn of(a: Affine) -> Option<f32> {
        let r = 1.0 / a.scale;
        let far = FAR as i64 - 1;
        let limits_near =
            i64::from(a.qmax) - i64::from(a.zero_point) < far && i64::from(a.zero_point) - i64::from(a.qmin) < far;
        (a.scale.is_normal() && r.is_normal() && limits_near).then_some(r)
    }
}

/// One way of quantizing (to 8 bits, and symmetric 4 bits per group), of a
/// path with several (see [`Kernels::quantize_variants`]).
#[doc(hidden)]
pub struct QuantizeVariant {
    /// What it does, e.g. `"reciprocal-every"`.
    pub name: &'static str,
    /// As [`Kernels::quantize_i8`].
    pub quantize_i8: fn(&[f32], Affine, &mut [MaybeUninit<i8>]) -> bool,
    /// As [`Kernels::quantize_u8`].
    pub quantize_u8: fn(&[f32], Affine, &mut [MaybeUninit<u8>]) -> bool,
    /// As [`Kernels::quantize_pack4_symmetric`].
    pub quantize_pack4_symmetric: QuantizeSymmetricGroups,
}

/// The index, into the chosen path's [`Kernels::quantize_variants`], of the
/// variant its `quantize_i8`/`quantize_u8` run: set once, by [`kernels`].
static QUANTIZE_VARIANT: AtomicUsize = AtomicUsize::new(0);

/// The quantize variant that paths with several should run now.
#[inline]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn quantize_variant() -> usize {
    QUANTIZE_VARIANT.load(Ordering::Relaxed)
}

/// Smallest and largest value of a slice, and whether every value was finite.
///
/// NaN is skipped by `min` and `max` (it only clears `finite`), and a zero
/// result is always `+0.0`: which of `-0.0` and `0.0` a reduction meets first
/// depends on its lane order, so every path reports zeros the same way.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMax {
    /// The smallest non-NaN value (`+inf` if there is none).
    pub min: f32,
    /// The largest non-NaN value (`-inf` if there is none).
    pub max: f32,
    /// Whether no value was NaN or infinite.
    pub finite: bool,
}

/// `quantize_pack4_groups(x, group, affines, out)`.
#[doc(hidden)]
pub type QuantizeGroups = fn(&[f32], usize, &[Affine], &mut [MaybeUninit<u8>]);

/// `quantize_pack4_symmetric(x, group, limits, scales, out) -> all finite`.
#[doc(hidden)]
pub type QuantizeSymmetricGroups = fn(&[f32], usize, Affine, &mut [f32], &mut [MaybeUninit<u8>]) -> bool;

/// The symmetric schemes' scale for finite data whose largest magnitude is
/// `max_abs`: `max_abs / qmax`, never below `f32::EPSILON`. The one
/// definition, for `quant::params` and for the kernels that choose scales.
#[inline]
pub(crate) fn symmetric_scale(max_abs: f32, qmax: i32) -> f32 {
    (max_abs.abs() / qmax as f32).max(f32::EPSILON)
}

/// Whether the codes of a group quantized by [`symmetric_groups`] (zero point
/// 0, scale from the group's own largest magnitude) can skip the clamp to
/// `limits`. The scale is s = max(fl(m / qmax), EPSILON) >= (m / qmax)(1 - 2^-24)
/// for the group's largest magnitude m, so every |v / s| is at most
/// qmax(1 + 2^-23) and rounds to a code in [-qmax, qmax] (while qmax < 2^20):
/// the clamp never acts where qmin <= -qmax, as in every signed type.
pub(crate) fn clamp_never_acts(limits: Affine) -> bool {
    limits.qmin <= -limits.qmax && limits.qmax < 1 << 20
}

/// The loop of every path's `quantize_pack4_symmetric`, around that path's
/// own `max_abs` and `pack` kernels (`pack(x, scale, out)`, with `limits`
/// and zero point 0): inlined into each path's function, so it runs with
/// that path's instruction set.
#[inline(always)]
pub(crate) fn symmetric_groups(
    x: &[f32],
    group: usize,
    limits: Affine,
    scales: &mut [f32],
    out: &mut [MaybeUninit<u8>],
    max_abs: impl Fn(&[f32]) -> f32,
    pack: impl Fn(&[f32], f32, &mut [MaybeUninit<u8>]),
) -> bool {
    // Ranges for a few groups, then their codes: the ranges do not wait on
    // each other, nor the codes (a range, its scale and its first codes in
    // a row would: measured 25% slower at G = 128). Offsets are multiplied
    // out rather than left to `chunks`, whose lengths cost an integer
    // division per block.
    const GROUPS: usize = 8;
    let group = group.max(2);
    let count = (x.len() / group).min(out.len() / (group / 2)).min(scales.len());
    let mut ranges = [0f32; GROUPS];
    for first in (0..count).step_by(GROUPS) {
        let n = GROUPS.min(count - first);
        for (i, m) in ranges[..n].iter_mut().enumerate() {
            let at = (first + i) * group;
            *m = max_abs(&x[at..at + group]);
        }
        for (i, &m) in ranges[..n].iter().enumerate() {
            if !m.is_finite() {
                return false;
            }
            scales[first + i] = symmetric_scale(m, limits.qmax);
        }
        // (Zipping `scales` in instead made this 20% slower at 2^24 values.)
        #[allow(clippy::needless_range_loop)]
        for i in first..first + n {
            let (at, half) = (i * group, i * group / 2);
            pack(&x[at..at + group], scales[i], &mut out[half..half + group / 2]);
        }
    }
    true
}

/// A table of kernels for one instruction set, over contiguous slices.
///
/// Every function is safe to call: a table is only handed out (by
/// [`kernels`] or [`kernel_tables`]) after its CPU features were detected.
/// Output slices have the input's length (`quantize_pack4`: half of it,
/// rounded up); only the shorter of input and output is processed.
#[doc(hidden)]
pub struct Kernels {
    /// `"scalar"`, `"avx2"`, `"avx512"` or `"neon"`.
    pub name: &'static str,
    /// Smallest and largest value, and whether all are finite.
    pub min_max: fn(&[f32]) -> MinMax,
    /// [`Kernels::min_max`] of each group of `group` values (`x.len() / group` of them).
    pub min_max_groups: fn(&[f32], usize, &mut [MinMax]),
    /// Symmetric 4-bit quantization per group, in one pass over memory: for
    /// each group of `group` values (an even number), its scale, from its
    /// largest magnitude (see `symmetric_scale`), into `scales`, then its
    /// codes, with zero point 0 and the limits of the given `Affine` (whose
    /// scale and zero point are ignored), packed as
    /// [`Kernels::quantize_pack4_groups`] packs them. Returns `false` as soon
    /// as a group holds NaN or an infinity; the outputs are then unspecified.
    pub quantize_pack4_symmetric: QuantizeSymmetricGroups,
    /// Quantizes to signed 8-bit codes, writing every output element, and
    /// says whether every input was finite (so a caller needs no separate
    /// pass to check). The output may start uninitialized: no zeroing pass.
    pub quantize_i8: fn(&[f32], Affine, &mut [MaybeUninit<i8>]) -> bool,
    /// Quantizes to unsigned 8-bit codes, as `quantize_i8` does.
    pub quantize_u8: fn(&[f32], Affine, &mut [MaybeUninit<u8>]) -> bool,
    /// Quantizes to 4-bit codes (signed or unsigned, as `Affine` says) and
    /// packs two to a byte, the first in the low nibble, as [`crate::pack::pack`] does.
    pub quantize_pack4: fn(&[f32], Affine, &mut [u8]),
    /// [`Kernels::quantize_pack4`] of each group of `group` values (an even
    /// number) with its own parameters, into `group / 2` bytes each: one call
    /// for a run of groups rather than one per group. Writes every byte of
    /// those groups (the output may start uninitialized).
    pub quantize_pack4_groups: QuantizeGroups,
    /// `scale * (q - zero_point)` for signed codes, into every output
    /// element (the output may start uninitialized).
    pub dequantize_i8: fn(&[i8], f32, i32, &mut [MaybeUninit<f32>]),
    /// `scale * (q - zero_point)` for unsigned codes.
    pub dequantize_u8: fn(&[u8], f32, i32, &mut [MaybeUninit<f32>]),
    /// f32 to bf16, round to nearest even, NaN kept (quieted) as `half` does.
    /// The casts write every output element: it may start uninitialized.
    pub f32_to_bf16: fn(&[f32], &mut [MaybeUninit<bf16>]),
    /// bf16 to f32 (exact; NaN quieted as `half` does).
    pub bf16_to_f32: fn(&[bf16], &mut [MaybeUninit<f32>]),
    /// f32 to f16, round to nearest even.
    pub f32_to_f16: fn(&[f32], &mut [MaybeUninit<f16>]),
    /// f16 to f32 (exact).
    pub f16_to_f32: fn(&[f16], &mut [MaybeUninit<f32>]),
    /// f32 to float8_e4m3fn codes, round to nearest even, for the leading
    /// values that need no overflow policy: stops at the first NaN,
    /// infinity or value beyond the largest code (or a little below it)
    /// and returns how many it wrote (see `arch::fp8`).
    pub f32_to_e4m3fn: fn(&[f32], &mut [MaybeUninit<u8>]) -> usize,
    /// f32 to float8_e5m2 codes, as `f32_to_e4m3fn`.
    pub f32_to_e5m2: fn(&[f32], &mut [MaybeUninit<u8>]) -> usize,
    /// float8_e4m3fn codes to f32 (exact; NaN as the scalar path gives it).
    pub e4m3fn_to_f32: fn(&[u8], &mut [MaybeUninit<f32>]),
    /// float8_e5m2 codes to f32 (exact).
    pub e5m2_to_f32: fn(&[u8], &mut [MaybeUninit<f32>]),
    /// The ways this path has of quantizing to 8 bits, when it has several
    /// (empty otherwise): which is fastest depends on the microarchitecture,
    /// so [`kernels`] times them once at start-up and `quantize_i8`,
    /// `quantize_u8` and `quantize_pack4_symmetric` run the winner. Tests and
    /// benchmarks call each.
    pub quantize_variants: &'static [QuantizeVariant],
}

/// Every path this build knows, best first, with whether this CPU can run it.
/// The run-time checks here are what makes handing out a table safe.
fn candidates() -> Vec<(&'static Kernels, bool)> {
    #[cfg(target_arch = "x86_64")]
    let mut paths = x86_paths(&|f| match f {
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
        "avx512fp16" => std::arch::is_x86_feature_detected!("avx512fp16"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        _ => false,
    });
    #[cfg(not(target_arch = "x86_64"))]
    let mut paths = Vec::new();
    #[cfg(target_arch = "aarch64")]
    {
        paths.push((&aarch64::neon::KERNELS, std::arch::is_aarch64_feature_detected!("neon")));
    }
    paths.push((&scalar::KERNELS, true));
    paths
}

/// The x86-64 paths, best first, each with whether a CPU that has the
/// features `has` says yes to can run it: apart from the detection, so a
/// test can show which path another CPU (an Intel Xeon with AVX512-FP16, say)
/// gets.
#[cfg(target_arch = "x86_64")]
fn x86_paths(has: &dyn Fn(&str) -> bool) -> Vec<(&'static Kernels, bool)> {
    let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "f16c"].into_iter().all(has);
    let bf16 = avx512 && has("avx512bf16");
    vec![
        (&x86_64::avx512fp16::KERNELS, bf16 && has("avx512fp16")),
        (&x86_64::avx512bf16::KERNELS, bf16),
        (&x86_64::avx512::KERNELS, avx512),
        (&x86_64::avx2::KERNELS, has("avx2") && has("f16c")),
    ]
}

#[cfg(all(test, target_arch = "x86_64"))]
mod path_choice {
    use super::x86_paths;

    /// The path a CPU with these `/proc/cpuinfo` flags gets (Rust's names for them).
    fn chosen(flags: &str) -> Vec<&'static str> {
        let flags: Vec<&str> = flags.split_whitespace().collect();
        x86_paths(&|f| flags.contains(&f)).into_iter().filter_map(|(k, ok)| ok.then_some(k.name)).collect()
    }

    #[test]
    fn each_cpu_of_the_fleet_gets_its_best_path() {
        // The Intel Xeon (family 6 model 207) of the speed issue: AVX512-FP16 and BF16.
        let xeon = "f16c avx2 avx512f avx512dq avx512bw avx512vl avx512bf16 avx512fp16";
        assert_eq!(chosen(xeon), ["avx512fp16", "avx512bf16", "avx512", "avx2"]);
        // AMD Zen 5 (and Zen 4): BF16, no FP16.
        let zen5 = "f16c avx2 avx512f avx512dq avx512bw avx512vl avx512bf16";
        assert_eq!(chosen(zen5), ["avx512bf16", "avx512", "avx2"]);
        // Skylake-X: AVX-512 without BF16; FP16 alone does not lift it past the BF16 path.
        assert_eq!(chosen("f16c avx2 avx512f avx512dq avx512bw avx512vl"), ["avx512", "avx2"]);
        assert_eq!(chosen("f16c avx2 avx512f avx512dq avx512bw avx512vl avx512fp16"), ["avx512", "avx2"]);
        // Knights Landing (AVX-512F without BW/DQ/VL) and Haswell: AVX2.
        assert_eq!(chosen("f16c avx2 avx512f"), ["avx2"]);
        assert_eq!(chosen("f16c avx2"), ["avx2"]);
        // AVX2 without F16C (never shipped, but the f16 kernels need it), and baseline x86-64.
        assert!(chosen("avx2").is_empty());
        assert!(chosen("sse2").is_empty());
    }
}

fn select(forced: Option<&str>) -> &'static Kernels {
    let available = kernel_tables();
    forced.and_then(|name| available.iter().copied().find(|k| k.name == name)).unwrap_or(available[0])
}

/// The chosen path and how it quantizes to 8 bits (see [`kernel_detail`]).
struct Choice {
    kernels: &'static Kernels,
    detail: String,
}

fn choice() -> &'static Choice {
    static CHOSEN: OnceLock<Choice> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        // `QUANTLAB_KERNEL=path` or `path:variant` (e.g. `avx512:reciprocal-quarter`).
        let forced = std::env::var("QUANTLAB_KERNEL").ok();
        let (path, variant) = match forced.as_deref().map(|f| f.split_once(':').unwrap_or((f, ""))) {
            Some((p, v)) => (Some(p), Some(v).filter(|v| !v.is_empty())),
            None => (None, None),
        };
        let kernels = select(path);
        let mut detail = choose_variant(kernels, variant);
        // A forced path this CPU cannot run is not taken: say so where the choice is reported.
        if let Some(p) = path.filter(|&p| p != kernels.name) {
            let known = candidates().iter().any(|(k, _)| k.name == p);
            let why = if known { "cannot be run on this CPU" } else { "is not a kernel path" };
            detail = format!("{detail} (QUANTLAB_KERNEL={p} {why}; available: {})", available_kernels().join(", "));
        }
        Choice { kernels, detail }
    })
}

/// Picks which of `k`'s quantize variants its `quantize_i8`/`quantize_u8`
/// run: the one named `forced` if it exists, else the fastest on this CPU,
/// timed on a small in-cache buffer (about 0.1 ms, once per process: the
/// dispatch already detects the instruction set once). Says what it chose.
fn choose_variant(k: &'static Kernels, forced: Option<&str>) -> String {
    let variants = k.quantize_variants;
    if variants.len() < 2 {
        return k.name.to_string();
    }
    if let Some(i) = forced.and_then(|f| variants.iter().position(|v| v.name == f)) {
        QUANTIZE_VARIANT.store(i, Ordering::Relaxed);
        return format!("{}, int8 quantize {} (forced)", k.name, variants[i].name);
    }
    // Near-normal data, as the benchmarks use, quantized to int8 over its range.
    const N: usize = 4096;
    let mut state = 0x2545_F491u32;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 8) as f32 / (1 << 23) as f32 - 1.0
    };
    let x: Vec<f32> = (0..N).map(|_| uniform() + uniform()).collect();
    let a = Affine { scale: 2.0 / 255.0, zero_point: 0, qmin: -128, qmax: 127 };
    let mut out = vec![MaybeUninit::new(0i8); N];
    let mut best = vec![f64::INFINITY; variants.len()];
    for _ in 0..8 {
        for (v, b) in variants.iter().zip(&mut best) {
            let t = Instant::now();
            std::hint::black_box((v.quantize_i8)(std::hint::black_box(&x), a, &mut out));
            *b = b.min(t.elapsed().as_secs_f64());
        }
    }
    let (i, _) = best.iter().enumerate().fold((0, f64::INFINITY), |m, (i, &t)| if t < m.1 { (i, t) } else { m });
    QUANTIZE_VARIANT.store(i, Ordering::Relaxed);
    let timings: Vec<String> =
        variants.iter().zip(&best).map(|(v, t)| format!("{} {:.1} G/s", v.name, N as f64 / t / 1e9)).collect();
    format!("{}, int8 quantize {} (timed at start-up: {})", k.name, variants[i].name, timings.join(", "))
}

pub(crate) fn kernels() -> &'static Kernels {
    choice().kernels
}

/// The name of the kernel path in use: `"scalar"`, `"avx2"`, `"avx512"`,
/// `"avx512bf16"`, `"avx512fp16"` or `"neon"`.
///
/// Chosen once per process from the CPU's features, or forced with the
/// `QUANTLAB_KERNEL` environment variable (an unknown or unsupported name is ignored).
pub fn kernel() -> &'static str {
    kernels().name
}

/// [`kernel`], and for paths with several ways of quantizing to 8 bits,
/// which one runs and why, e.g. `"avx512fp16, int8 quantize
/// reciprocal-every (timed at start-up: reciprocal-every 9.1 G/s,
/// reciprocal-quarter 4.6 G/s)"`. `QUANTLAB_KERNEL=path:variant` forces a variant.
pub fn kernel_detail() -> &'static str {
    &choice().detail
}

/// The names of the kernel paths this CPU can run, best first.
pub fn available_kernels() -> Vec<&'static str> {
    kernel_tables().into_iter().map(|k| k.name).collect()
}

/// The kernel tables this CPU can run, best first, whatever `QUANTLAB_KERNEL`
/// says: for tests that compare every path with the scalar one, and benchmarks.
#[doc(hidden)]
pub fn kernel_tables() -> Vec<&'static Kernels> {
    candidates().into_iter().filter_map(|(k, ok)| ok.then_some(k)).collect()
}

/// The fast path for casting a contiguous slice from `A` to `T`, where one
/// exists: f32 to and from bf16 and f16. `None` sends the caller to the scalar path.
pub(crate) fn cast_fast<A: Element, T: Element>(src: &[A]) -> Option<Vec<T>> {
    if !has_fast_path::<A, T>() {
        return None;
    }
    // Not zeroed first: in cache, zeroing a 128 KiB output took a third of
    // the cast's time. SAFETY: `cast_fast_uninit` writes every element of
    // the slice, as every kernel does (see `Kernels`).
    Some(unsafe { buffer::filled(src.len(), |out| _ = cast_fast_uninit(src, out)) })
}

/// Whether [`cast_fast`] has a kernel from `A` to `T`.
fn has_fast_path<A: Element, T: Element>() -> bool {
    let is = |a: TypeId, t: TypeId| TypeId::of::<A>() == a && TypeId::of::<T>() == t;
    let (f32_, bf16_, f16_) = (TypeId::of::<f32>(), TypeId::of::<bf16>(), TypeId::of::<f16>());
    is(f32_, bf16_) || is(f32_, f16_) || is(bf16_, f32_) || is(f16_, f32_)
}

/// [`cast_fast`] into `dst` (of `src`'s length): says whether there was a
/// fast path (and so whether `dst` was written).
pub(crate) fn cast_fast_into<A: Element, T: Element>(src: &[A], dst: &mut [T]) -> bool {
    // SAFETY: same layout; the kernels only write initialized values, so
    // `dst` stays initialized.
    let dst = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    cast_fast_uninit(src, dst)
}

/// [`cast_fast_into`] into a buffer that may be uninitialized: when it says
/// `true`, every element of `dst` (of `src`'s length) was written.
fn cast_fast_uninit<A: Element, T: Element>(src: &[A], dst: &mut [MaybeUninit<T>]) -> bool {
    let k = kernels();
    let is = |a: TypeId, t: TypeId| TypeId::of::<A>() == a && TypeId::of::<T>() == t;
    let (f32_, bf16_, f16_) = (TypeId::of::<f32>(), TypeId::of::<bf16>(), TypeId::of::<f16>());
    if is(f32_, bf16_) {
        (k.f32_to_bf16)(same_type(src), same_type_mut(dst));
    } else if is(f32_, f16_) {
        (k.f32_to_f16)(same_type(src), same_type_mut(dst));
    } else if is(bf16_, f32_) {
        (k.bf16_to_f32)(same_type(src), same_type_mut(dst));
    } else if is(f16_, f32_) {
        (k.f16_to_f32)(same_type(src), same_type_mut(dst));
    } else {
        return false;
    }
    true
}

/// Views a `&[A]` as `&[U]` when the caller has checked that they are one type.
fn same_type<A: 'static, U: 'static>(s: &[A]) -> &[U] {
    assert_eq!(TypeId::of::<A>(), TypeId::of::<U>());
    // SAFETY: A and U are the same type (asserted above).
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<U>(), s.len()) }
}

/// Views a `&mut [A]` as `&mut [U]` when the caller has checked that they are one type.
fn same_type_mut<A: 'static, U: 'static>(s: &mut [A]) -> &mut [U] {
    assert_eq!(TypeId::of::<A>(), TypeId::of::<U>());
    // SAFETY: A and U are the same type (asserted above).
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<U>(), s.len()) }
}

/// The fast path for casting a contiguous slice between f32 and
/// float8_e4m3fn or float8_e5m2, where `A` to `T` is one of those; `None`
/// sends the caller elsewhere. The kernels round every value that needs no
/// overflow policy and stop at the others, which `fix(index)` casts (the
/// scalar model with the caller's policy; its error ends the cast).
pub(crate) fn cast_fp8<A: Element, T: Element, E>(
    src: &[A],
    fix: impl FnMut(usize) -> Result<T, E>,
) -> Option<Result<Vec<T>, E>> {
    if !has_fp8_path::<A, T>() {
        return None;
    }
    // SAFETY: when `cast_fp8_uninit` returns `Some(Ok)`, it wrote every element.
    Some(unsafe { buffer::try_filled(src.len(), |out| cast_fp8_uninit(src, out, fix).expect("a pair with a kernel")) })
}

/// [`cast_fp8`] into `dst` (of `src`'s length); on error, `dst` holds the
/// values before the failing one.
pub(crate) fn cast_fp8_into<A: Element, T: Element, E>(
    src: &[A],
    dst: &mut [T],
    fix: impl FnMut(usize) -> Result<T, E>,
) -> Option<Result<(), E>> {
    // SAFETY: same layout; the kernels only write initialized values, so
    // `dst` stays initialized.
    let dst = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    cast_fp8_uninit(src, dst, fix)
}

/// Whether [`cast_fp8`] has a kernel from `A` to `T`.
fn has_fp8_path<A: Element, T: Element>() -> bool {
    let is = |a: TypeId, t: TypeId| TypeId::of::<A>() == a && TypeId::of::<T>() == t;
    let (f32_, e4, e5) = (TypeId::of::<f32>(), TypeId::of::<F8E4M3>(), TypeId::of::<F8E5M2>());
    is(f32_, e4) || is(f32_, e5) || is(e4, f32_) || is(e5, f32_)
}

/// [`cast_fp8_into`] into a buffer that may be uninitialized: `None` when
/// there is no kernel; `Some(Ok)` when every element of `dst` was written.
fn cast_fp8_uninit<A: Element, T: Element, E>(
    src: &[A],
    dst: &mut [MaybeUninit<T>],
    mut fix: impl FnMut(usize) -> Result<T, E>,
) -> Option<Result<(), E>> {
    let k = kernels();
    let is = |a: TypeId, t: TypeId| TypeId::of::<A>() == a && TypeId::of::<T>() == t;
    let (f32_, e4, e5) = (TypeId::of::<f32>(), TypeId::of::<F8E4M3>(), TypeId::of::<F8E5M2>());
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    if is(f32_, e4) {
        let fix = |i| fix(i).map(|t| same_type::<T, F8E4M3>(std::slice::from_ref(&t))[0].to_bits());
        Some(fp8::encode(k.f32_to_e4m3fn, same_type(src), fp8_codes_mut::<T, F8E4M3>(dst), fix))
    } else if is(f32_, e5) {
        let fix = |i| fix(i).map(|t| same_type::<T, F8E5M2>(std::slice::from_ref(&t))[0].to_bits());
        Some(fp8::encode(k.f32_to_e5m2, same_type(src), fp8_codes_mut::<T, F8E5M2>(dst), fix))
    } else if is(e4, f32_) {
        (k.e4m3fn_to_f32)(fp8_codes(same_type::<A, F8E4M3>(src)), same_type_mut(dst));
        Some(Ok(()))
    } else if is(e5, f32_) {
        (k.e5m2_to_f32)(fp8_codes(same_type::<A, F8E5M2>(src)), same_type_mut(dst));
        Some(Ok(()))
    } else {
        None
    }
}

/// A float8 type of the `float8` crate: a `u8` code in a
/// `#[repr(transparent)]` wrapper.
///
/// # Safety
/// Implement only for such types.
unsafe trait Fp8Code: 'static {}
// SAFETY: `float8::F8E4M3` is `#[repr(transparent)] struct F8E4M3(u8)`.
unsafe impl Fp8Code for F8E4M3 {}
// SAFETY: `float8::F8E5M2` is `#[repr(transparent)] struct F8E5M2(u8)`.
unsafe impl Fp8Code for F8E5M2 {}

/// Float8 values as their codes.
fn fp8_codes<F: Fp8Code>(s: &[F]) -> &[u8] {
    // SAFETY: `F` has `u8`'s layout (see `Fp8Code`), and every code is a valid `F`.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), s.len()) }
}

/// An output of `T`, which the caller has checked is `F`, as codes.
fn fp8_codes_mut<T: 'static, F: Fp8Code>(s: &mut [MaybeUninit<T>]) -> &mut [MaybeUninit<u8>] {
    let s: &mut [MaybeUninit<F>] = same_type_mut(s);
    // SAFETY: `F` has `u8`'s layout (see `Fp8Code`), and every code is a valid `F`.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<MaybeUninit<u8>>(), s.len()) }
}
