//! The one place that decides which kernels run.
//!
//! Each instruction set has its own file of kernels over contiguous slices;
//! `scalar` is the reference that every other path must match bit for bit.
//! Detection runs once, on first use, and the chosen table is kept in a
//! `OnceLock`, so a call costs one load and an indirect call.
//!
//! Set `QUANTLAB_KERNEL=scalar` (or another path's name) to force a path,
//! e.g. to test every path on one machine; [`kernel`] says which one runs.

use std::any::TypeId;
use std::sync::OnceLock;

use half::{bf16, f16};

use crate::element::Element;

pub(crate) mod scalar;

/// The parameters of one affine quantization: `q = clamp(round(x / scale) + zero_point, qmin, qmax)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    pub scale: f32,
    pub zero_point: i32,
    pub qmin: i32,
    pub qmax: i32,
}

/// Smallest and largest value of a slice, and whether every value was finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MinMax {
    pub min: f32,
    pub max: f32,
    pub finite: bool,
}

/// A table of kernels for one instruction set. Every function is safe to
/// call: a table is only handed out after its CPU features were detected.
pub(crate) struct Kernels {
    pub name: &'static str,
    pub min_max: fn(&[f32]) -> MinMax,
    pub quantize_i8: fn(&[f32], Affine, &mut [i8]),
    pub quantize_u8: fn(&[f32], Affine, &mut [u8]),
    pub dequantize_i8: fn(&[i8], f32, i32, &mut [f32]),
    pub dequantize_u8: fn(&[u8], f32, i32, &mut [f32]),
    pub f32_to_bf16: fn(&[f32], &mut [bf16]),
    pub bf16_to_f32: fn(&[bf16], &mut [f32]),
    pub f32_to_f16: fn(&[f32], &mut [f16]),
    pub f16_to_f32: fn(&[f16], &mut [f32]),
}

/// Every path this build knows, best first, with whether this CPU can run it.
fn candidates() -> Vec<(&'static Kernels, bool)> {
    vec![(&scalar::KERNELS, true)]
}

fn select(forced: Option<&str>) -> &'static Kernels {
    let available: Vec<&'static Kernels> =
        candidates().into_iter().filter_map(|(k, ok)| ok.then_some(k)).collect();
    forced
        .and_then(|name| available.iter().copied().find(|k| k.name == name))
        .unwrap_or(available[0])
}

pub(crate) fn kernels() -> &'static Kernels {
    static CHOSEN: OnceLock<&'static Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| select(std::env::var("QUANTLAB_KERNEL").ok().as_deref()))
}

/// The name of the kernel path in use: `"scalar"`, `"avx2"`, `"avx512"` or `"neon"`.
///
/// Chosen once per process from the CPU's features, or forced with the
/// `QUANTLAB_KERNEL` environment variable (an unknown or unsupported name is ignored).
pub fn kernel() -> &'static str {
    kernels().name
}

/// The names of the kernel paths this CPU can run, best first.
pub fn available_kernels() -> Vec<&'static str> {
    candidates().into_iter().filter_map(|(k, ok)| ok.then_some(k.name)).collect()
}

/// The fast path for casting a contiguous slice from `A` to `T`, where one
/// exists: f32 to and from bf16 and f16. `None` sends the caller to the scalar path.
pub(crate) fn cast_fast<A: Element, T: Element>(src: &[A]) -> Option<Vec<T>> {
    let k = kernels();
    let is = |a: TypeId, t: TypeId| TypeId::of::<A>() == a && TypeId::of::<T>() == t;
    let (f32_, bf16_, f16_) = (TypeId::of::<f32>(), TypeId::of::<bf16>(), TypeId::of::<f16>());
    if is(f32_, bf16_) {
        Some(convert(same_type(src), k.f32_to_bf16, bf16::ZERO))
    } else if is(f32_, f16_) {
        Some(convert(same_type(src), k.f32_to_f16, f16::ZERO))
    } else if is(bf16_, f32_) {
        Some(convert(same_type(src), k.bf16_to_f32, 0f32))
    } else if is(f16_, f32_) {
        Some(convert(same_type(src), k.f16_to_f32, 0f32))
    } else {
        None
    }
}

fn convert<U: Copy + 'static, V: Copy + 'static, T: 'static>(src: &[U], f: fn(&[U], &mut [V]), zero: V) -> Vec<T> {
    let mut out = vec![zero; src.len()];
    f(src, &mut out);
    same_type_vec(out)
}

/// Views a `&[A]` as `&[U]` when the caller has checked that they are one type.
fn same_type<A: 'static, U: 'static>(s: &[A]) -> &[U] {
    assert_eq!(TypeId::of::<A>(), TypeId::of::<U>());
    // SAFETY: A and U are the same type (asserted above).
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<U>(), s.len()) }
}

/// Moves a `Vec<U>` into a `Vec<T>` when the caller has checked that they are one type.
fn same_type_vec<U: 'static, T: 'static>(v: Vec<U>) -> Vec<T> {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<U>());
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: T and U are the same type (asserted above), so the pointer,
    // length, capacity and allocation layout carry over unchanged.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}
