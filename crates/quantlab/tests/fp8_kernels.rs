//! The float8_e4m3fn / float8_e5m2 kernels of every path against the scalar
//! model (`Minifloat`), bit for bit, under every overflow policy: every f32
//! within two ulps of every code and of every midpoint between neighbouring
//! codes (the ties), the subnormal boundaries, ±0, ±inf, NaNs with payloads,
//! f32 subnormals, at every length up to twice the block plus a few and at
//! unaligned offsets, plus random bit patterns; back: all 256 codes.
//!
//! The kernels convert the values that need no policy and stop at the
//! others; the loop here is the one `cast` runs (the stopped-at value goes
//! to the model), so the test checks the kernel's codes, that it never stops
//! at a value it could convert without a policy... (only at NaN, an
//! infinity, or a magnitude at least the type's largest finite value), and
//! the public `cast_with` against the model element by element.

use std::mem::MaybeUninit;

use proptest::prelude::*;
use quantlab::prelude::*;
use quantlab::{Kernels, kernel_tables};

/// The widest fp8 block (AVX-512 and NEON: 16 values).
const BLOCK: usize = 16;
const MAX_LEN: usize = 2 * BLOCK + 3;
const OFFSETS: usize = 4;
const POLICIES: [Overflow; 4] = [Overflow::Error, Overflow::Saturate, Overflow::Nan, Overflow::PyTorch];

type Encoder = fn(&[f32], &mut [MaybeUninit<u8>]) -> usize;
type Decoder = fn(&[u8], &mut [MaybeUninit<f32>]);

#[derive(Clone, Copy)]
struct Fp8 {
    dtype: DType,
    encode: fn(&Kernels) -> Encoder,
    decode: fn(&Kernels) -> Decoder,
}

const FORMATS: [Fp8; 2] = [
    Fp8 { dtype: DType::Float8E4M3Fn, encode: |k| k.f32_to_e4m3fn, decode: |k| k.e4m3fn_to_f32 },
    Fp8 { dtype: DType::Float8E5M2, encode: |k| k.f32_to_e5m2, decode: |k| k.e5m2_to_f32 },
];

fn model(f: Fp8) -> Minifloat {
    f.dtype.minifloat().expect("a float8 type")
}

/// The model's code for `x` under `policy`, or `None` for its error.
fn expected(f: Fp8, x: f32, policy: Overflow) -> Option<u8> {
    model(f).encode_f32(x, policy).ok().map(|c| c as u8)
}

/// The largest finite magnitude.
fn max_finite(f: Fp8) -> f32 {
    (0..=0x7Fu16).map(|c| model(f).decode_f32(c)).filter(|v| v.is_finite()).fold(0.0, f32::max)
}

/// What `cast` does: the kernel, and the model (with `policy`) where it
/// stops. Also checks that it stops only where a policy may be needed.
fn run(f: Fp8, k: &Kernels, x: &[f32], policy: Overflow) -> Vec<Option<u8>> {
    let kernel = (f.encode)(k);
    let mut out = vec![MaybeUninit::new(0xA5u8); x.len()];
    let mut got = vec![None; x.len()];
    let max = max_finite(f);
    let mut i = 0;
    while i < x.len() {
        let done = kernel(&x[i..], &mut out[i..]);
        assert!(i + done <= x.len(), "{} {:?} wrote past the end", k.name, f.dtype);
        for j in i..i + done {
            // SAFETY: the kernel wrote out[i..i + done].
            got[j] = Some(unsafe { out[j].assume_init() });
        }
        i += done;
        if i < x.len() {
            let v = x[i];
            assert!(
                !v.is_finite() || v.abs() >= max,
                "{} {:?} stopped at {v:e} ({:#010x}), which needs no policy",
                k.name,
                f.dtype,
                v.to_bits()
            );
            got[i] = expected(f, v, policy);
            i += 1;
        }
    }
    got
}

fn check(f: Fp8, k: &Kernels, x: &[f32], what: &str) {
    for policy in POLICIES {
        let got = run(f, k, x, policy);
        for (i, (&v, g)) in x.iter().zip(got).enumerate() {
            let want = expected(f, v, policy);
            assert_eq!(g, want, "{} {:?} {policy:?} {what}: x[{i}] = {v:e} ({:#010x})", k.name, f.dtype, v.to_bits());
        }
    }
}

/// The inputs: ±(every code, every midpoint between neighbouring codes and
/// the one past the largest), each with two f32 ulps either side, and the
/// f32 special values; shuffled so specials land in every lane.
fn inputs(f: Fp8) -> Vec<f32> {
    let m = model(f);
    let mut mags: Vec<f32> = (0..=0x7Fu16).map(|c| m.decode_f32(c)).filter(|v| v.is_finite()).collect();
    mags.sort_by(f32::total_cmp);
    let mut centres = mags.clone();
    for w in mags.windows(2) {
        centres.push((w[0] + w[1]) / 2.0); // exact: few significant bits
    }
    // Past the largest: the tie with the next code the format would have.
    let (a, b) = (mags[mags.len() - 2], mags[mags.len() - 1]);
    centres.push(b + (b - a) / 2.0);
    centres.push(b + (b - a));
    let mut bits: Vec<u32> = Vec::new();
    for c in centres {
        let c = c.to_bits();
        for d in -2i64..=2 {
            let b = (i64::from(c) + d).clamp(0, 0x7FFF_FFFF) as u32;
            bits.push(b);
            bits.push(b | 0x8000_0000);
        }
    }
    let specials = [
        0x0000_0001, // smallest f32 subnormal
        0x0040_0000,
        0x007F_FFFF, // largest f32 subnormal
        0x0080_0000, // smallest f32 normal
        0x7F7F_FFFF, // f32::MAX
        0x7F80_0000, // inf
        0x7F80_0001, // signalling NaN
        0x7FC0_0000, // quiet NaN
        0x7FD2_3456, // NaN with a payload
        0x7FFF_FFFF,
    ];
    for s in specials {
        bits.push(s);
        bits.push(s | 0x8000_0000);
    }
    let mut x: Vec<f32> = bits.into_iter().map(f32::from_bits).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..x.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        x.swap(i, (state % (i as u64 + 1)) as usize);
    }
    x
}

/// A run of ordinary values (no policy needed), so that the windows below
/// reach the SIMD blocks rather than stopping at once.
fn ordinary(f: Fp8, x: &[f32]) -> Vec<f32> {
    let max = max_finite(f);
    x.iter().copied().filter(|v| v.is_finite() && v.abs() < max).collect()
}

#[test]
fn every_code_tie_and_special_encodes_as_the_model() {
    for f in FORMATS {
        let x = inputs(f);
        assert!(x.len() > 2000, "{} inputs", x.len());
        for k in kernel_tables() {
            for offset in 0..OFFSETS {
                check(f, k, &x[offset..], &format!("offset {offset}"));
            }
        }
    }
}

#[test]
fn every_length_and_offset_encodes_as_the_model() {
    for f in FORMATS {
        let all = inputs(f);
        let calm = ordinary(f, &all);
        for k in kernel_tables() {
            for start in (0..all.len() - MAX_LEN - OFFSETS).step_by(211) {
                for offset in 0..OFFSETS {
                    for len in 0..=MAX_LEN {
                        let at = start + offset;
                        check(f, k, &all[at..at + len], &format!("mixed, start {at}, len {len}"));
                        check(f, k, &calm[at % (calm.len() - MAX_LEN)..][..len], &format!("ordinary, len {len}"));
                    }
                }
            }
        }
    }
}

#[test]
fn every_code_decodes_as_the_model() {
    for f in FORMATS {
        let codes: Vec<u8> = (0..=255).collect();
        let want: Vec<u32> = codes.iter().map(|&c| model(f).decode_f32(u16::from(c)).to_bits()).collect();
        for k in kernel_tables() {
            for offset in 0..OFFSETS {
                for len in (0..=MAX_LEN).chain([256 - offset]) {
                    let xs: Vec<u8> = codes.iter().cycle().skip(offset).take(len).copied().collect();
                    let mut out = vec![MaybeUninit::new(f32::from_bits(0xDEAD_BEEF)); len];
                    (f.decode)(k)(&xs, &mut out);
                    for (i, (o, &c)) in out.iter().zip(&xs).enumerate() {
                        // SAFETY: the kernel writes every element.
                        let got = unsafe { o.assume_init() }.to_bits();
                        assert_eq!(got, want[usize::from(c)], "{} {:?} code {c:#04x} at {i}", k.name, f.dtype);
                    }
                }
            }
        }
    }
}

/// The public casts (whichever path this process runs) against the model,
/// value by value, error included.
#[test]
fn cast_with_matches_the_model_element_by_element() {
    for f in FORMATS {
        let x = ndarray::Array1::from(inputs(f));
        for policy in POLICIES {
            let want: Option<Vec<u8>> = x.iter().map(|&v| expected(f, v, policy)).collect();
            let got: Option<Vec<u8>> = match f.dtype {
                DType::Float8E4M3Fn => {
                    x.cast_with::<F8E4M3>(policy.into()).ok().map(|a| a.iter().map(|v| v.to_bits()).collect())
                }
                _ => x.cast_with::<F8E5M2>(policy.into()).ok().map(|a| a.iter().map(|v| v.to_bits()).collect()),
            };
            assert_eq!(got, want, "{:?} {policy:?} via {}", f.dtype, quantlab::kernel());
            if let Some(codes) = want {
                let mut into = ndarray::Array1::from_elem(x.len(), F8E5M2::from_bits(0));
                let mut into4 = ndarray::Array1::from_elem(x.len(), F8E4M3::from_bits(0));
                let back: Vec<u32> = match f.dtype {
                    DType::Float8E4M3Fn => {
                        x.cast_into(&mut into4, policy.into()).unwrap();
                        assert!(into4.iter().map(|v| v.to_bits()).eq(codes.iter().copied()));
                        into4.cast::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
                    }
                    _ => {
                        x.cast_into(&mut into, policy.into()).unwrap();
                        assert!(into.iter().map(|v| v.to_bits()).eq(codes.iter().copied()));
                        into.cast::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
                    }
                };
                let want_back: Vec<u32> = codes.iter().map(|&c| model(f).decode_f32(u16::from(c)).to_bits()).collect();
                assert_eq!(back, want_back, "{:?} back", f.dtype);
            }
        }
    }
}

/// The error names the first value the default policy refuses, as the
/// scalar cast does.
#[test]
fn errors_name_the_first_refused_value() {
    let mut x = vec![1.0f32; 100];
    x[37] = 1000.0;
    x[60] = f32::NAN;
    let err = ndarray::Array1::from(x.clone()).cast::<F8E4M3>().unwrap_err().to_string();
    let scalar = (0..x.len())
        .find_map(|i| DType::Float8E4M3Fn.minifloat().unwrap().encode_f32(x[i], Overflow::Error).err().map(|_| i));
    assert_eq!(scalar, Some(37));
    assert!(err.contains("37"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bits_encode_as_the_model(raw in proptest::collection::vec(any::<u32>(), 0..100)) {
        let x: Vec<f32> = raw.into_iter().map(f32::from_bits).collect();
        for f in FORMATS {
            for k in kernel_tables() {
                check(f, k, &x, "random bits");
            }
        }
    }

    #[test]
    fn random_small_values_encode_as_the_model(raw in proptest::collection::vec(-70000.0f32..70000.0, 0..100), scale in -20i32..4) {
        let x: Vec<f32> = raw.into_iter().map(|v| v * 2f32.powi(scale)).collect();
        for f in FORMATS {
            for k in kernel_tables() {
                check(f, k, &x, "random values");
            }
        }
    }
}
