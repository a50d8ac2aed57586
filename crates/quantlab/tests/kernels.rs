//! Every SIMD kernel path against the scalar reference, bit for bit: at every
//! length up to twice the widest block plus a few, at unaligned offsets, with
//! the special values (±0, ±inf, NaN with payloads, subnormals, exact ties,
//! values just outside the code range, huge values) and random bit patterns.
//! A few golden values from PyTorch pin the reference itself.

use std::mem::MaybeUninit;

use proptest::prelude::*;
use quantlab::prelude::*;
use quantlab::{Affine, Kernels, kernel_tables};

/// The widest block any path processes at once (AVX2 quantize: 4 × 8 lanes).
const BLOCK: usize = 32;
/// Lengths 0..=MAX_LEN are tried at each offset.
const MAX_LEN: usize = 2 * BLOCK + 3;
const OFFSETS: usize = 4;

fn scalar() -> &'static Kernels {
    kernel_tables().into_iter().find(|k| k.name == "scalar").expect("scalar is always available")
}

/// The SIMD paths this machine can run (empty on a CPU without any), and
/// for the first with several ways of quantizing to 8 bits, one more table
/// per way (named `path/variant`): their `quantize_i8`, `quantize_u8` and
/// `quantize_pack4_symmetric` are that variant's, so every test below checks
/// every variant too.
fn simd() -> Vec<&'static Kernels> {
    static ALL: std::sync::OnceLock<Vec<&'static Kernels>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<&'static Kernels> = kernel_tables().into_iter().filter(|k| k.name != "scalar").collect();
        if let Some(k) = all.iter().copied().find(|k| !k.quantize_variants.is_empty()) {
            for v in k.quantize_variants {
                let name: &'static str = Box::leak(format!("{}/{}", k.name, v.name).into_boxed_str());
                all.push(Box::leak(Box::new(Kernels {
                    name,
                    quantize_i8: v.quantize_i8,
                    quantize_u8: v.quantize_u8,
                    quantize_pack4_symmetric: v.quantize_pack4_symmetric,
                    ..*k
                })));
            }
        }
        all
    })
    .clone()
}

/// An initialized output viewed as one that may start uninitialized, as the
/// kernels take it (they only ever write initialized values into it).
fn un<T>(v: &mut [T]) -> &mut [std::mem::MaybeUninit<T>] {
    // SAFETY: same layout; the kernels write only initialized values, so
    // `v` stays initialized.
    unsafe { &mut *(v as *mut [T] as *mut [std::mem::MaybeUninit<T>]) }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn specials() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001), // signalling NaN, low payload
        f32::from_bits(0xFFBF_FFFF), // signalling NaN, high payload, negative
        f32::from_bits(0x7FC1_2345), // quiet NaN with payload
        f32::from_bits(0x7F80_8000), // NaN whose payload sits on bf16's rounding bit
        f32::from_bits(1),           // smallest subnormal
        f32::from_bits(0x8000_0001),
        f32::from_bits(0x007F_FFFF), // largest subnormal
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::from_bits(0x7F7F_8000), // rounds to bf16 inf
        f32::from_bits(0x3F80_8000), // bf16 tie, round down to even
        f32::from_bits(0x3F81_8000), // bf16 tie, round up to even
        f32::from_bits(0x3F80_8001), // just above a bf16 tie
        65504.0,
        65520.0, // f16 tie to inf
        65519.99,
        2.0f32.powi(-24), // f16 smallest subnormal
        2.0f32.powi(-25), // f16 tie to zero
        1e30,
        -1e30,
        3e9, // beyond i32 once divided by a small scale
        -3e9,
    ];
    // Exact ties and near-ties in units of the scales the tests use.
    for s in [0.5f32, 0.1, 0.25, 1.0 / 3.0, 3.5] {
        for k in [-300i32, -130, -129, -128, -9, -8, -3, -2, -1, 0, 1, 2, 3, 7, 8, 15, 16, 127, 128, 255, 256, 300] {
            let t = (k as f32 + 0.5) * s;
            v.extend([t, f32::from_bits(t.to_bits() + 1), f32::from_bits(t.to_bits().wrapping_sub(1)), k as f32 * s]);
        }
    }
    v
}

/// `len + OFFSETS` values: specials spread through random values, so that
/// specials land in every lane of the SIMD blocks as well as in the tails.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let sp = specials();
    let mut rng = Rng(seed | 1);
    (0..len + OFFSETS)
        .map(|i| match rng.next() % 4 {
            0 => sp[(rng.next() % sp.len() as u64) as usize],
            1 => f32::from_bits(rng.next() as u32),
            2 => (rng.next() % 2000) as f32 / 7.0 - 140.0,
            _ => sp[i % sp.len()],
        })
        .collect()
}

/// The quantization targets: int8, uint8, int4, uint4, int2 with awkward scales.
fn affines() -> Vec<Affine> {
    let a = |scale: f32, zero_point: i32, qmin: i32, qmax: i32| Affine { scale, zero_point, qmin, qmax };
    vec![
        a(0.5, 3, -128, 127),
        a(1.0 / 3.0, -70, -128, 127),
        a(0.1, 128, 0, 255),
        a(3.5, 0, 0, 255),
        a(0.25, -2, -8, 7),
        a(0.1, 8, 0, 15),
        a(0.5, 0, -2, 1),
        a(f32::from_bits(1), 0, -128, 127), // subnormal scale: x / s overflows
        a(1e30, 5, 0, 255),
    ]
}

/// `quantize_i8` into a poisoned buffer: the codes and the all-finite flag.
fn q_i8(k: &Kernels, x: &[f32], a: Affine, poison: i8) -> (Vec<i8>, bool) {
    let mut out = vec![MaybeUninit::new(poison); x.len()];
    let finite = (k.quantize_i8)(x, a, &mut out);
    // SAFETY: every element was initialized (with the poison value) above.
    (out.into_iter().map(|v| unsafe { v.assume_init() }).collect(), finite)
}

/// `quantize_u8` into a poisoned buffer: the codes and the all-finite flag.
fn q_u8(k: &Kernels, x: &[f32], a: Affine, poison: u8) -> (Vec<u8>, bool) {
    let mut out = vec![MaybeUninit::new(poison); x.len()];
    let finite = (k.quantize_u8)(x, a, &mut out);
    // SAFETY: every element was initialized (with the poison value) above.
    (out.into_iter().map(|v| unsafe { v.assume_init() }).collect(), finite)
}

/// `quantize_pack4_groups` into a poisoned buffer.
fn pack4_groups(k: &Kernels, x: &[f32], group: usize, a: &[Affine], poison: u8) -> Vec<u8> {
    let mut out = vec![MaybeUninit::new(poison); x.len() / 2];
    (k.quantize_pack4_groups)(x, group, a, &mut out);
    // SAFETY: every element was initialized (with the poison value) above.
    out.into_iter().map(|v| unsafe { v.assume_init() }).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Runs `check(simd, scalar, input)` for every SIMD path, length and offset.
fn for_all(check: impl Fn(&Kernels, &Kernels, &[f32])) {
    for k in simd() {
        for len in 0..=MAX_LEN {
            let x = data(len, 0x9E37_79B9 ^ len as u64);
            for off in 0..OFFSETS {
                check(k, scalar(), &x[off..off + len]);
            }
        }
    }
}

#[test]
fn min_max_matches_scalar() {
    for_all(|k, s, x| {
        let (a, b) = ((k.min_max)(x), (s.min_max)(x));
        assert_eq!(
            (a.min.to_bits(), a.max.to_bits(), a.finite),
            (b.min.to_bits(), b.max.to_bits(), b.finite),
            "{} on {x:?}",
            k.name
        );
        // Finite data: the same with the non-finite values dropped.
        let f: Vec<f32> = x.iter().copied().filter(|v| v.is_finite()).collect();
        let (a, b) = ((k.min_max)(&f), (s.min_max)(&f));
        assert_eq!(
            (a.min.to_bits(), a.max.to_bits(), a.finite),
            (b.min.to_bits(), b.max.to_bits(), b.finite),
            "{} on {f:?}",
            k.name
        );
    });
}

#[test]
fn min_max_reference_values() {
    let m = (scalar().min_max)(&[-0.0, 3.0, f32::NAN, -2.5, 0.0]);
    assert_eq!((m.min, m.max, m.finite), (-2.5, 3.0, false));
    // A zero extreme is always +0.0, whichever sign came first.
    for x in [[-0.0f32, 0.0], [0.0, -0.0]] {
        for k in kernel_tables() {
            let m = (k.min_max)(&x);
            assert_eq!((m.min.to_bits(), m.max.to_bits(), m.finite), (0, 0, true), "{}", k.name);
        }
    }
    let m = (scalar().min_max)(&[]);
    assert_eq!((m.min, m.max, m.finite), (f32::INFINITY, f32::NEG_INFINITY, true));
}

#[test]
fn quantize_matches_scalar() {
    for_all(|k, s, x| {
        for a in affines() {
            // Poisoned outputs: the kernel must write every element it owns.
            let want_finite = x.iter().all(|v| v.is_finite());
            let (p, q) = (q_i8(k, x, a, 0x5A), q_i8(s, x, a, -0x5B));
            assert_eq!(p, q, "{} quantize_i8 {a:?} on {x:?}", k.name);
            assert_eq!(q.1, want_finite);
            let (p, q) = (q_u8(k, x, a, 0xA5), q_u8(s, x, a, 0x5A));
            assert_eq!(p, q, "{} quantize_u8 {a:?} on {x:?}", k.name);
            assert_eq!(q.1, want_finite);
            let (mut p, mut q) = (vec![0xAAu8; x.len().div_ceil(2)], vec![0x55u8; x.len().div_ceil(2)]);
            (k.quantize_pack4)(x, a, &mut p);
            (s.quantize_pack4)(x, a, &mut q);
            assert_eq!(p, q, "{} quantize_pack4 {a:?} on {x:?}", k.name);
        }
    });
}

/// Values on and beside rounding ties, where multiplying by `1 / s` can round
/// to another code than dividing by `s`: a SIMD path that multiplies must
/// notice and divide (see `arch::reciprocal`). Every value passes through
/// every lane of a 64-value block (the data is shifted 16 at a time).
#[test]
fn near_ties_match_scalar_where_a_reciprocal_would_not() {
    let mut rng = Rng(7);
    let mut scales = vec![0.1f32, 1.0 / 3.0, 0.7, 6.0 / 255.0, 3.0e-5, 1.5e7];
    scales.extend((0..40).map(|_| f32::from_bits(0x3000_0000 + (rng.next() % 0x1800_0000) as u32)));
    let mut differ = 0;
    for &s in &scales {
        let mut x = vec![];
        for k in -140i32..140 {
            let tie = (k as f32 + 0.5) * s;
            for d in -3i32..=3 {
                x.push(f32::from_bits(tie.to_bits().wrapping_add_signed(d)));
            }
            x.push(k as f32 * s);
        }
        x.extend([f32::NAN, f32::INFINITY, -f32::INFINITY, 2000.0 * s, -2000.0 * s, 1023.9 * s]);
        x.resize(x.len().next_multiple_of(64) + 48, 0.0);
        let r = 1.0 / s;
        differ += x.iter().filter(|&&v| (v * r).round_ties_even() != (v / s).round_ties_even()).count();
        for zero_point in [0, 3, -100] {
            let a = Affine { scale: s, zero_point, qmin: -128, qmax: 127 };
            let u = Affine { zero_point: zero_point.clamp(0, 255), qmin: 0, qmax: 255, ..a };
            let w = Affine { zero_point: zero_point.clamp(-8, 7), qmin: -8, qmax: 7, ..a };
            for shift in (0..64).step_by(16) {
                let x = &x[shift..x.len() - 48 + shift];
                for k in simd() {
                    assert_eq!(q_i8(k, x, a, 1), q_i8(scalar(), x, a, 2), "{} s={s} z={zero_point}", k.name);
                    assert_eq!(q_u8(k, x, u, 1), q_u8(scalar(), x, u, 2), "{} s={s} z={zero_point}", k.name);
                    // Other limits take the general path.
                    assert_eq!(q_i8(k, x, w, 1), q_i8(scalar(), x, w, 2), "{} s={s} z={zero_point}", k.name);
                }
            }
        }
    }
    assert!(differ > 100, "only {differ} values round differently by the reciprocal: the test lost its teeth");
}

/// The same for symmetric int4 per group, whose codes may go by the
/// reciprocal too: groups whose scale is known (one value at 7 s... the
/// group's largest magnitude, so s = max / 7) filled with values on and
/// beside the ties (k + 1/2) s.
#[test]
fn symmetric_near_ties_match_scalar() {
    const G: usize = 128;
    let mut rng = Rng(11);
    let mut x = vec![];
    let mut differ = 0;
    for _ in 0..60 {
        let m = f32::from_bits(0x3800_0000 + (rng.next() % 0x0C00_0000) as u32);
        let s = (m / 7.0).max(f32::EPSILON);
        let r = 1.0 / s;
        let mut group = vec![m];
        while group.len() < G {
            let k = (rng.next() % 14) as i32 - 7;
            let tie = (k as f32 + 0.5) * s;
            let v = f32::from_bits(tie.to_bits().wrapping_add_signed((rng.next() % 7) as i32 - 3));
            if v.abs() <= m {
                differ += usize::from((v * r).round_ties_even() != (v / s).round_ties_even());
                group.push(v);
            }
        }
        x.extend(group);
    }
    let groups = x.len() / G;
    for k in simd() {
        assert!(symmetric_groups_match_scalar(k, &x, G, groups), "{}", k.name);
    }
    assert!(differ > 50, "only {differ} values round differently by the reciprocal: the test lost its teeth");
}

/// `groups` groups of `group` values for symmetric 4 bits, each group of
/// its own kind (chosen by `rng`): near-normal values of a random magnitude;
/// values on and beside the rounding ties of its scale (its largest
/// magnitude `m` set, so the scale is `m / 7` for int4 and `m` for the
/// (-2, 1) limits the tests also use); magnitudes near f32::MAX (whose
/// reciprocal of `m / 1` is subnormal); subnormals and zeros only (scale
/// EPSILON); and all zeros.
fn symmetric_test_groups(rng: &mut Rng, group: usize, groups: usize) -> Vec<f32> {
    let mut x = Vec::with_capacity(group * groups);
    let unit = |rng: &mut Rng| (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
    for _ in 0..groups {
        let m = f32::from_bits(0x3000_0000 + (rng.next() % 0x1800_0000) as u32);
        let start = x.len();
        match rng.next() % 6 {
            0 | 1 => x.extend((0..group).map(|_| m * (unit(rng) + unit(rng) + unit(rng)) / 3.0)),
            2 | 3 => {
                // At least 2^-15, so that the scale is m / qmax, not EPSILON
                // (whose ties would lie beyond m).
                let m = m.max(f32::from_bits(0x3800_0000));
                let qmax = if rng.next().is_multiple_of(2) { 7.0 } else { 1.0 };
                let s = m / qmax;
                x.push(if rng.next().is_multiple_of(2) { m } else { -m });
                while x.len() < start + group {
                    let k = (rng.next() % (2 * qmax as u64)) as f32 - qmax;
                    let tie = (k + 0.5) * s;
                    let v = f32::from_bits(tie.to_bits().wrapping_add_signed((rng.next() % 7) as i32 - 3));
                    if v.abs() <= m {
                        x.push(v);
                    }
                }
            }
            4 => x.extend((0..group).map(|_| f32::MAX * unit(rng))),
            _ => x.extend((0..group).map(|i| match rng.next() % 3 {
                0 => f32::from_bits((rng.next() as u32) & 0x807F_FFFF),
                1 if i % 2 == 0 => -0.0,
                _ => 0.0,
            })),
        }
        // Not always at the front: the group's largest magnitude anywhere.
        let at = start + (rng.next() % group as u64) as usize;
        x.swap(start, at);
    }
    x
}

/// Symmetric int4 on many groups of multiples of 128 values (the AVX-512
/// VBMI kernel's blocks of up to 16 groups, partial blocks, one-group blocks
/// of 2048), with ties, huge and tiny groups, then with one NaN or infinity
/// in a later group.
#[test]
fn symmetric_blocks_of_groups_match_scalar() {
    let mut rng = Rng(23);
    for group in [128, 256, 384, 2048] {
        for groups in [1, 2, 15, 16, 17, 40] {
            let mut x = symmetric_test_groups(&mut rng, group, groups);
            for k in simd() {
                assert!(symmetric_groups_match_scalar(k, &x, group, groups), "{} G={group} groups={groups}", k.name);
            }
            let g = (rng.next() % groups as u64) as usize;
            x[g * group + (rng.next() % group as u64) as usize] = [f32::NAN, f32::INFINITY, -f32::INFINITY][g % 3];
            for k in simd() {
                assert!(!symmetric_groups_match_scalar(k, &x, group, groups), "{} G={group} groups={groups}", k.name);
            }
        }
    }
}

/// The same past 4 Mi values, where the AVX-512 kernel for groups of 128
/// takes each group in one pass, prefetching.
#[test]
fn large_symmetric_groups_match_scalar() {
    let (group, groups) = (128, (4 << 20) / 128 + 3);
    let mut x = symmetric_test_groups(&mut Rng(29), group, groups);
    for k in simd() {
        assert!(symmetric_groups_match_scalar(k, &x, group, groups), "{}", k.name);
    }
    x[(groups - 2) * group + 5] = f32::NAN;
    for k in simd() {
        assert!(!symmetric_groups_match_scalar(k, &x, group, groups), "{}", k.name);
    }
}

#[test]
fn large_outputs_match_scalar() {
    // Past 4 Mi elements the AVX-512 quantize streams its output past the
    // cache, after a few unaligned values; the output here starts one byte in.
    let n = (4 << 20) + 37;
    let x: Vec<f32> = data(4096, 5).into_iter().cycle().take(n).collect();
    let a = Affine { scale: 0.5, zero_point: 3, qmin: -128, qmax: 127 };
    for k in simd() {
        let mut p = vec![MaybeUninit::new(0x11i8); n + 1];
        let mut q = vec![MaybeUninit::new(0x22i8); n + 1];
        assert_eq!((k.quantize_i8)(&x, a, &mut p[1..]), (scalar().quantize_i8)(&x, a, &mut q[1..]));
        // SAFETY: initialized when created.
        let (p, q): (Vec<i8>, Vec<i8>) =
            unsafe { (p.iter().map(|v| v.assume_init()).collect(), q.iter().map(|v| v.assume_init()).collect()) };
        assert_eq!(p[0], 0x11, "the byte before the output is untouched");
        assert!(
            p[1..] == q[1..],
            "{} quantize_i8 at {:?}",
            k.name,
            p[1..].iter().zip(&q[1..]).position(|(a, b)| a != b)
        );
        // Dequantize streams a large output too, after a few unaligned values.
        let codes: Vec<i8> = p[1..].to_vec();
        let (mut d, mut e) = (vec![f32::NAN; n + 1], vec![0f32; n + 1]);
        (k.dequantize_i8)(&codes, 0.1, 3, un(&mut d[1..]));
        (scalar().dequantize_i8)(&codes, 0.1, 3, un(&mut e[1..]));
        assert!(d[0].is_nan(), "the value before the output is untouched");
        assert!(bits(&d[1..]) == bits(&e[1..]), "{} dequantize_i8", k.name);
    }
}

#[test]
fn grouped_kernels_match_scalar() {
    for k in simd() {
        for group in [2, 4, 6, 16, 18, 32, 34, 128] {
            for groups in 0..=5 {
                let x = data(group * groups, group as u64 * 31 + groups as u64);
                for off in 0..OFFSETS {
                    let x = &x[off..off + group * groups];
                    let (mut p, mut q) = (vec![(k.min_max)(&[]); groups], vec![(k.min_max)(&[]); groups]);
                    (k.min_max_groups)(x, group, &mut p);
                    (scalar().min_max_groups)(x, group, &mut q);
                    let key = |m: &quantlab::MinMax| (m.min.to_bits(), m.max.to_bits(), m.finite);
                    assert_eq!(
                        p.iter().map(key).collect::<Vec<_>>(),
                        q.iter().map(key).collect::<Vec<_>>(),
                        "{} G={group}",
                        k.name
                    );
                    symmetric_groups_match_scalar(k, x, group, groups);
                    // Most groups above hold a NaN or an infinity: the same data made finite.
                    let finite: Vec<f32> = x.iter().map(|&v| if v.is_finite() { v } else { -0.0 }).collect();
                    assert!(symmetric_groups_match_scalar(k, &finite, group, groups));
                    let affines: Vec<Affine> = (0..groups)
                        .map(|g| affines()[g % 7])
                        .map(|a| Affine { qmin: -8, qmax: 7, zero_point: a.zero_point.clamp(-8, 7), ..a })
                        .collect();
                    let q = pack4_groups(scalar(), x, group, &affines, 0x55);
                    assert_eq!(pack4_groups(k, x, group, &affines, 0xAA), q, "{} G={group}", k.name);
                    // The same as one call per group.
                    for (g, a) in affines.iter().enumerate() {
                        let mut one = vec![0u8; group / 2];
                        (scalar().quantize_pack4)(&x[g * group..(g + 1) * group], *a, &mut one);
                        assert_eq!(&q[g * group / 2..(g + 1) * group / 2], &one[..]);
                    }
                }
            }
        }
    }
}

/// `quantize_pack4_symmetric` on `groups` groups of `x`: the same scales,
/// bytes and verdict as the scalar path, for int4 and uint2-like limits; and
/// the scalar path's scales are `max(|min|, |max|) / qmax` group by group,
/// its verdict `false` exactly when a group is not all finite.
/// Says whether the data was all finite.
fn symmetric_groups_match_scalar(k: &Kernels, x: &[f32], group: usize, groups: usize) -> bool {
    let mut all_finite = true;
    for (qmin, qmax) in [(-8, 7), (-2, 1)] {
        let limits = Affine { scale: 123.0, zero_point: 5, qmin, qmax };
        let run = |k: &Kernels, poison: u8| {
            let mut scales = vec![f32::NAN; groups];
            let mut out = vec![MaybeUninit::new(poison); x.len() / 2];
            let finite = (k.quantize_pack4_symmetric)(x, group, limits, &mut scales, &mut out);
            // SAFETY: every element was initialized (with the poison value) above.
            (finite, bits(&scales), out.into_iter().map(|v| unsafe { v.assume_init() }).collect::<Vec<u8>>())
        };
        let (finite, scales, bytes) = run(scalar(), 0x55);
        let (f, s, b) = run(k, 0xAA);
        assert_eq!(f, finite, "{} G={group} verdict", k.name);
        // A failing call leaves the outputs unspecified (callers drop them).
        let done = if finite { groups } else { 0 };
        assert_eq!(s[..done], scales[..done], "{} G={group} scales", k.name);
        assert_eq!(b[..done * group / 2], bytes[..done * group / 2], "{} G={group} codes", k.name);
        let mut mm = vec![(k.min_max)(&[]); groups];
        (scalar().min_max_groups)(x, group, &mut mm);
        assert_eq!(finite, mm.iter().all(|r| r.finite));
        for (g, r) in mm[..done].iter().enumerate() {
            let want = (r.min.abs().max(r.max.abs()) / qmax as f32).max(f32::EPSILON);
            assert_eq!(scales[g], want.to_bits(), "G={group} group {g}");
            let a = Affine { scale: want, zero_point: 0, qmin, qmax };
            let mut one = vec![0u8; group / 2];
            (scalar().quantize_pack4)(&x[g * group..(g + 1) * group], a, &mut one);
            assert_eq!(bytes[g * group / 2..(g + 1) * group / 2], one[..], "G={group} group {g}");
        }
        all_finite &= finite;
    }
    all_finite
}

#[test]
fn quantize_reference_values() {
    // torch.clamp(torch.round(x / 0.5) + 3, -128, 127) on float32 (and
    // torch.quantize_per_tensor(x, 0.5, 3, torch.qint8) agrees).
    let x = [0.25f32, 0.75, -0.25, -0.75, 62.25, 62.75, 63.75, 1e30, -1e30, 1.4e-45, -65.75, -65.25];
    let want = [3i8, 5, 3, 1, 127, 127, 127, 127, -128, 3, -128, -127];
    let a = Affine { scale: 0.5, zero_point: 3, qmin: -128, qmax: 127 };
    for k in kernel_tables() {
        assert_eq!(q_i8(k, &x, a, 0), (want.to_vec(), true), "{}", k.name);
        let mut p = [0u8; 6];
        (k.quantize_pack4)(&x, Affine { qmin: -8, qmax: 7, ..a }, &mut p);
        // int4 codes [3, 5, 3, 1, 7, 7, 7, 7, -8, 3, -8, -8], two to a byte, low nibble first.
        assert_eq!(p, [0x53, 0x13, 0x77, 0x77, 0x38, 0x88], "{}", k.name);
        // NaN has no code; the reference (Rust's `NaN as i32`) gives 0.
        assert_eq!(q_i8(k, &[f32::NAN], a, 1), (vec![0], false), "{}", k.name);
    }
}

#[test]
fn dequantize_matches_scalar() {
    for k in simd() {
        for len in 0..=MAX_LEN {
            let mut rng = Rng(len as u64 + 7);
            let codes: Vec<u8> = (0..len + OFFSETS).map(|_| rng.next() as u8).collect();
            for off in 0..OFFSETS {
                let q = &codes[off..off + len];
                let signed: Vec<i8> = q.iter().map(|&b| b as i8).collect();
                for (scale, zp) in [(0.1f32, 5), (3.5, -70), (1.0 / 3.0, 128), (f32::from_bits(1), 0), (f32::MAX, -128)]
                {
                    let (mut p, mut r) = (vec![f32::NAN; len], vec![0f32; len]);
                    (k.dequantize_i8)(&signed, scale, zp, un(&mut p));
                    (scalar().dequantize_i8)(&signed, scale, zp, un(&mut r));
                    assert_eq!(bits(&p), bits(&r), "{} dequantize_i8 s={scale} z={zp}", k.name);
                    (k.dequantize_u8)(q, scale, zp, un(&mut p));
                    (scalar().dequantize_u8)(q, scale, zp, un(&mut r));
                    assert_eq!(bits(&p), bits(&r), "{} dequantize_u8 s={scale} z={zp}", k.name);
                }
            }
        }
    }
}

#[test]
fn dequantize_reference_values() {
    // torch: torch.tensor(0.1) * (q.to(torch.int32) - 5).to(torch.float32), as f32 bits.
    let q = [-128i8, -1, 0, 1, 127];
    for k in kernel_tables() {
        let mut out = [0f32; 5];
        (k.dequantize_i8)(&q, 0.1, 5, un(&mut out));
        assert_eq!(bits(&out), [3243560141, 3206125978, 3204448256, 3201092813, 1094923059], "{}", k.name);
    }
}

#[test]
fn casts_match_scalar() {
    for_all(|k, s, x| {
        let (mut p, mut q) = (vec![bf16::ZERO; x.len()], vec![bf16::ZERO; x.len()]);
        (k.f32_to_bf16)(x, un(&mut p));
        (s.f32_to_bf16)(x, un(&mut q));
        let (pb, qb): (Vec<u16>, Vec<u16>) =
            (p.iter().map(|v| v.to_bits()).collect(), q.iter().map(|v| v.to_bits()).collect());
        assert_eq!(pb, qb, "{} f32_to_bf16 on {x:?}", k.name);
        let (mut p, mut q) = (vec![f16::ZERO; x.len()], vec![f16::ZERO; x.len()]);
        (k.f32_to_f16)(x, un(&mut p));
        (s.f32_to_f16)(x, un(&mut q));
        let (pb, qb): (Vec<u16>, Vec<u16>) =
            (p.iter().map(|v| v.to_bits()).collect(), q.iter().map(|v| v.to_bits()).collect());
        assert_eq!(pb, qb, "{} f32_to_f16 on {x:?}", k.name);
        // Back from every 16-bit pattern the f32 bits make (NaNs included).
        let halves: Vec<u16> = x.iter().flat_map(|v| [v.to_bits() as u16, (v.to_bits() >> 16) as u16]).collect();
        let b: Vec<bf16> = halves.iter().map(|&h| bf16::from_bits(h)).collect();
        let (mut p, mut q) = (vec![0f32; b.len()], vec![0f32; b.len()]);
        (k.bf16_to_f32)(&b, un(&mut p));
        (s.bf16_to_f32)(&b, un(&mut q));
        assert_eq!(bits(&p), bits(&q), "{} bf16_to_f32 on {halves:?}", k.name);
        let h: Vec<f16> = halves.iter().map(|&h| f16::from_bits(h)).collect();
        (k.f16_to_f32)(&h, un(&mut p));
        (s.f16_to_f32)(&h, un(&mut q));
        assert_eq!(bits(&p), bits(&q), "{} f16_to_f32 on {halves:?}", k.name);
    });
}

#[test]
fn every_16_bit_pattern_widens_alike() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let b: Vec<bf16> = all.iter().map(|&h| bf16::from_bits(h)).collect();
    let h: Vec<f16> = all.iter().map(|&h| f16::from_bits(h)).collect();
    let (mut want_b, mut want_h) = (vec![0f32; all.len()], vec![0f32; all.len()]);
    (scalar().bf16_to_f32)(&b, un(&mut want_b));
    (scalar().f16_to_f32)(&h, un(&mut want_h));
    for k in simd() {
        let mut got = vec![0f32; all.len()];
        (k.bf16_to_f32)(&b, un(&mut got));
        assert_eq!(bits(&got), bits(&want_b), "{} bf16_to_f32", k.name);
        (k.f16_to_f32)(&h, un(&mut got));
        assert_eq!(bits(&got), bits(&want_h), "{} f16_to_f32", k.name);
    }
}

#[test]
fn cast_reference_values() {
    // torch.tensor(x, dtype=torch.float32).to(torch.bfloat16 / torch.float16) bits.
    let x = [
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        1e-40,
        -1e-40,
        f32::MAX,
        -0.0,
        65519.99,
        65520.0,
        6.1e-5,
        2f32.powi(-25),
        1.5 * 2f32.powi(-24),
    ];
    let want_bf16 = [0x3f80u16, 0x3f82, 0x0001, 0x8001, 0x7f80, 0x8000, 0x4780, 0x4780, 0x3880, 0x3300, 0x33c0];
    let want_f16 = [0x3c04u16, 0x3c0c, 0x0000, 0x8000, 0x7c00, 0x8000, 0x7bff, 0x7c00, 0x03ff, 0x0000, 0x0002];
    for k in kernel_tables() {
        let mut b = [bf16::ZERO; 11];
        (k.f32_to_bf16)(&x, un(&mut b));
        assert_eq!(b.map(|v| v.to_bits()), want_bf16, "{}", k.name);
        let mut h = [f16::ZERO; 11];
        (k.f32_to_f16)(&x, un(&mut h));
        assert_eq!(h.map(|v| v.to_bits()), want_f16, "{}", k.name);
        // NaN stays NaN with its payload's top bits and the quiet bit, as `half` keeps it.
        let mut b = [bf16::ZERO; 2];
        (k.f32_to_bf16)(&[f32::from_bits(0x7F80_0001 | 0x0012_0000), f32::from_bits(0xFF80_8000)], un(&mut b));
        assert_eq!(b.map(|v| v.to_bits()), [0x7FD2, 0xFFC0], "{}", k.name);
    }
}

#[test]
fn fused_int4_matches_quantize_then_pack() {
    let mut rng = Rng(42);
    let w: Array2<f32> = Array2::from_shape_fn((6, 4096), |_| (rng.next() % 20001) as f32 / 1000.0 - 10.0);
    for spec in [
        QuantSpec::new(DType::Int4).symmetric().per_group(128),
        QuantSpec::new(DType::Int4).per_group(32),
        QuantSpec::new(DType::UInt4).per_group(512), // several blocks of groups
        QuantSpec::new(DType::Int4).symmetric().per_group(2048),
        QuantSpec::new(DType::UInt4).per_group(2),
        QuantSpec::new(DType::Int4).per_group(3), // odd groups: the plain path
        QuantSpec::new(DType::Int4).symmetric(),
        QuantSpec::new(DType::UInt4).per_channel(0),
        QuantSpec::new(DType::Int4).per_channel(1),
        QuantSpec::new(DType::Int8).per_group(64),
        QuantSpec::new(DType::Int2).symmetric().per_group(128),
    ] {
        let q = w.quantize(spec).unwrap();
        assert_eq!(w.quantize_packed(spec).unwrap(), (q.packed(), q.params().clone()), "{spec}");
    }
    // Golden: per-group(2) symmetric int4 of [0.5, -1.25 | 2, 0 | 3, 1 | -0.5, 0.25]
    // with PyTorch's float32 arithmetic: scales 1.25/7, 2/7, 3/7, 0.5/7.
    let x = array![0.5f32, -1.25, 2.0, 0.0, 3.0, 1.0, -0.5, 0.25];
    let (bytes, params) = x.quantize_packed(QuantSpec::new(DType::Int4).symmetric().per_group(2)).unwrap();
    // codes [3, -7, 7, 0, 7, 2, -7, 3] (0.25 / (0.5/7) is just under 3.5), low nibble first.
    assert_eq!(bytes, [0x93, 0x07, 0x27, 0x39]);
    assert_eq!(params.scale.to_vec(), [1.25f32 / 7.0, 2.0 / 7.0, 3.0 / 7.0, 0.5 / 7.0]);
    // Errors are the plain path's.
    let bad = array![1.0f32, f32::NAN];
    assert_eq!(
        bad.quantize_packed(QuantSpec::new(DType::Int4).per_group(2)).unwrap_err().to_string(),
        bad.quantize(QuantSpec::new(DType::Int4).per_group(2)).unwrap_err().to_string()
    );
    let spec = QuantSpec::new(DType::Int4).symmetric().per_group(2);
    let bad = array![1.0f32, 2.0, 3.0, f32::INFINITY];
    let err = bad.quantize_packed(spec).unwrap_err().to_string();
    assert_eq!(err, bad.quantize(spec).unwrap_err().to_string());
    assert!(err.contains("inf") && err.contains('3'), "{err}");
}

/// Prints the path this process uses, for `scripts/test-aarch64.sh`, and
/// (when spawned by `env_var_forces_the_path`) for the parent to check.
#[test]
fn report_kernel_path() {
    println!("kernel path: {} (available: {})", quantlab::kernel(), quantlab::available_kernels().join(", "));
    println!("kernel detail: {}", quantlab::kernel_detail());
    assert!(quantlab::available_kernels().contains(&quantlab::kernel()));
    assert_eq!(quantlab::available_kernels().last(), Some(&"scalar"));
    assert!(quantlab::kernel_detail().starts_with(quantlab::kernel()));
}

#[test]
fn env_var_forces_the_path() {
    // The test binary runs itself with only `report_kernel_path`, once per
    // available path (and once with a name that does not exist here), and
    // once per quantize variant of each path that has several.
    let exe = std::env::current_exe().unwrap();
    let best = quantlab::available_kernels()[0];
    let mut cases: Vec<(String, &str, Option<String>)> =
        quantlab::available_kernels().iter().map(|&k| (k.to_string(), k, None)).collect();
    // A path that is not taken is said to be so where the choice is reported.
    let refused = |p: &str, why: &str| Some(format!("(QUANTLAB_KERNEL={p} {why}; available: "));
    cases.push(("no-such-path".to_string(), best, refused("no-such-path", "is not a kernel path")));
    #[cfg(target_arch = "x86_64")]
    for p in ["avx512fp16", "avx512bf16", "avx512", "avx2"] {
        if !quantlab::available_kernels().contains(&p) {
            cases.push((p.to_string(), best, refused(p, "cannot be run on this CPU")));
        }
    }
    for k in kernel_tables() {
        for v in k.quantize_variants {
            let detail = Some(format!("kernel detail: {}, int8 quantize {} (forced)", k.name, v.name));
            cases.push((format!("{}:{}", k.name, v.name), k.name, detail));
        }
    }
    // Under an emulator (scripts/test-aarch64.sh) the binary cannot run by
    // itself: QUANTLAB_TEST_RUNNER holds the emulator's command line.
    let runner = std::env::var("QUANTLAB_TEST_RUNNER").unwrap_or_default();
    let mut argv: Vec<String> = runner.split_whitespace().map(String::from).collect();
    argv.push(exe.to_string_lossy().into_owned());
    for (forced, want, detail) in cases {
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .args(["--exact", "report_kernel_path", "--nocapture", "--test-threads=1"])
            .env("QUANTLAB_KERNEL", &forced)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains(&format!("kernel path: {want} ")), "QUANTLAB_KERNEL={forced}: {stdout}");
        if let Some(detail) = detail {
            assert!(stdout.contains(&detail), "QUANTLAB_KERNEL={forced}: {stdout}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bits_match_scalar(raw in proptest::collection::vec(any::<u32>(), 0..200), scale_bits in 0x0080_0000u32..0x7F00_0000, zp in -8i32..8) {
        let x: Vec<f32> = raw.iter().map(|&b| f32::from_bits(b)).collect();
        let scale = f32::from_bits(scale_bits);
        let s = scalar();
        for k in simd() {
            let (a, b) = ((k.min_max)(&x), (s.min_max)(&x));
            prop_assert_eq!((a.min.to_bits(), a.max.to_bits(), a.finite), (b.min.to_bits(), b.max.to_bits(), b.finite));
            for (qmin, qmax) in [(-128, 127), (0, 255), (-8, 7)] {
                let a = Affine { scale, zero_point: zp.clamp(qmin, qmax), qmin, qmax };
                prop_assert_eq!(q_i8(k, &x, a, 0x11), q_i8(s, &x, a, 0x22));
                prop_assert_eq!(q_u8(k, &x, a, 0x11), q_u8(s, &x, a, 0x22));
                let (mut p, mut q) = (vec![0u8; x.len().div_ceil(2)], vec![0u8; x.len().div_ceil(2)]);
                (k.quantize_pack4)(&x, a, &mut p);
                (s.quantize_pack4)(&x, a, &mut q);
                prop_assert_eq!(p, q);
            }
            let (mut p, mut q) = (vec![bf16::ZERO; x.len()], vec![bf16::ZERO; x.len()]);
            (k.f32_to_bf16)(&x, un(&mut p));
            (s.f32_to_bf16)(&x, un(&mut q));
            prop_assert_eq!(p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), q.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            let (mut p, mut q) = (vec![f16::ZERO; x.len()], vec![f16::ZERO; x.len()]);
            (k.f32_to_f16)(&x, un(&mut p));
            (s.f32_to_f16)(&x, un(&mut q));
            prop_assert_eq!(p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), q.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    /// Symmetric per-group int4 on finite groups of any magnitude (the SIMD
    /// paths skip the clamp there: this is what shows it never acts).
    #[test]
    fn symmetric_groups_match_scalar_on_finite_data(
        raw in proptest::collection::vec(any::<u32>(), 0..300),
        exponent in 0u32..255,
        group in prop_oneof![Just(2usize), Just(16), Just(32), Just(128)],
    ) {
        // Random mantissas and signs at one exponent, plus random finite values.
        let x: Vec<f32> = raw
            .iter()
            .map(|&b| if b % 3 == 0 { f32::from_bits(b & 0x807F_FFFF | exponent.min(254) << 23) } else { f32::from_bits(b) })
            .map(|v| if v.is_finite() { v } else { 1.0 })
            .collect();
        let groups = x.len() / group;
        let x = &x[..groups * group];
        for k in simd() {
            prop_assert!(symmetric_groups_match_scalar(k, x, group, groups));
        }
    }
}
