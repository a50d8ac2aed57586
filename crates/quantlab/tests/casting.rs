//! Casting against PyTorch's own conversions and `half`'s scalar conversions.

use quantlab::prelude::*;
use quantlab::{Minifloat, Overflow};

/// `(f32 bits, bf16 bits, f16 bits, float8_e4m3fn bits, float8_e5m2 bits)` as PyTorch 2.15
/// converts them (`torch.tensor([v], dtype=torch.float32).to(dtype).view(int)`).
/// e4m3fn is `None` beyond its range: PyTorch 2.15 saturates there (448), quantlab errs by default
/// (`Overflow::PyTorch` gives 448: see narrow_golden.rs).
/// Regenerate with `/opt/pyref/bin/python tests/fixtures/torch_casts.py` (prints this table).
const TORCH_CASTS: &[(u32, u16, u16, Option<u8>, u8)] = &[
    (0x00000000, 0x0000, 0x0000, Some(0x00), 0x00),
    (0x80000000, 0x8000, 0x8000, Some(0x80), 0x80),
    (0x3eaaaaab, 0x3eab, 0x3555, Some(0x2b), 0x35),
    (0x3dcccccd, 0x3dcd, 0x2e66, Some(0x1d), 0x2e),
    (0xbdcccccd, 0xbdcd, 0xae66, Some(0x9d), 0xae),
    (0x3f800000, 0x3f80, 0x3c00, Some(0x38), 0x3c),
    (0x3fc00000, 0x3fc0, 0x3e00, Some(0x3c), 0x3e),
    (0x40000000, 0x4000, 0x4000, Some(0x40), 0x40),
    (0x40490fd0, 0x4049, 0x4248, Some(0x45), 0x42),
    (0x42c80000, 0x42c8, 0x5640, Some(0x6c), 0x56),
    (0x437f8000, 0x4380, 0x5bfc, Some(0x78), 0x5c),
    (0x43df8000, 0x43e0, 0x5efc, Some(0x7e), 0x5f),
    (0x43e00000, 0x43e0, 0x5f00, Some(0x7e), 0x5f),
    (0x43e08000, 0x43e0, 0x5f04, Some(0x7e), 0x5f),
    (0x43e7f333, 0x43e8, 0x5f40, Some(0x7e), 0x5f),
    (0x43e80000, 0x43e8, 0x5f40, Some(0x7e), 0x5f),
    (0x3a83126f, 0x3a83, 0x1419, Some(0x01), 0x14),
    (0x3727c5ac, 0x3728, 0x00a8, Some(0x00), 0x01),
    (0x3b000000, 0x3b00, 0x1800, Some(0x01), 0x18),
    (0x3a800000, 0x3a80, 0x1400, Some(0x00), 0x14),
    (0x3b400000, 0x3b40, 0x1a00, Some(0x02), 0x1a),
    (0x37800000, 0x3780, 0x0100, Some(0x00), 0x01),
    (0x37000000, 0x3700, 0x0080, Some(0x00), 0x00),
    (0x3380d959, 0x3381, 0x0001, Some(0x00), 0x00),
    (0x47600000, 0x4760, 0x7b00, None, 0x7b),
    (0x476a6000, 0x476a, 0x7b53, None, 0x7b),
    (0x476fff00, 0x4770, 0x7b80, None, 0x7b),
    (0x477fe000, 0x4780, 0x7bff, None, 0x7c),
    (0x477fef00, 0x4780, 0x7bff, None, 0x7c),
    (0x477ff000, 0x4780, 0x7c00, None, 0x7c),
    (0x47c35000, 0x47c3, 0x7c00, None, 0x7c),
    (0x7f61b1e6, 0x7f62, 0x7c00, None, 0x7c),
    (0xc0200000, 0xc020, 0xc100, Some(0xc2), 0xc1),
    (0xc47a0000, 0xc47a, 0xe3d0, None, 0xe4),
    (0x3c000000, 0x3c00, 0x2000, Some(0x04), 0x20),
    (0x3f808000, 0x3f80, 0x3c04, Some(0x38), 0x3c),
    (0x3f818000, 0x3f82, 0x3c0c, Some(0x38), 0x3c),
    (0x3f802000, 0x3f80, 0x3c01, Some(0x38), 0x3c),
    (0x3f801000, 0x3f80, 0x3c00, Some(0x38), 0x3c),
];

#[test]
fn casts_match_pytorch_bit_for_bit() {
    for &(x, bf, hf, e4, e5) in TORCH_CASTS {
        let v = array![f32::from_bits(x)];
        let got_bf: Array1<bf16> = v.cast().unwrap();
        assert_eq!(got_bf[0].to_bits(), bf, "bf16 of {}", v[0]);
        let got_hf: Array1<f16> = v.cast().unwrap();
        assert_eq!(got_hf[0].to_bits(), hf, "f16 of {}", v[0]);
        let got_e5: Array1<F8E5M2> = v.cast().unwrap();
        assert_eq!(got_e5[0].to_bits(), e5, "e5m2 of {}", v[0]);
        match e4 {
            Some(bits) => assert_eq!(v.cast::<F8E4M3>().unwrap()[0].to_bits(), bits, "e4m3fn of {}", v[0]),
            None => assert!(matches!(v.cast::<F8E4M3>(), Err(quantlab::Error::OutOfRange { .. }))),
        }
        // The same values from f64 round once, to the same bits.
        let wide = v.mapv(f64::from);
        assert_eq!(wide.cast::<bf16>().unwrap()[0].to_bits(), bf);
        assert_eq!(wide.cast::<f16>().unwrap()[0].to_bits(), hf);
    }
}

#[test]
fn nan_stays_nan_and_infinities_follow_the_type() {
    let v = array![f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    let b: Array1<bf16> = v.cast().unwrap();
    assert!(b[0].is_nan() && b[1] == bf16::INFINITY && b[2] == bf16::NEG_INFINITY);
    let e5: Array1<F8E5M2> = v.cast().unwrap();
    assert!(e5[0].to_f64().is_nan());
    assert_eq!((e5[1].to_f64(), e5[2].to_f64()), (f64::INFINITY, f64::NEG_INFINITY));
    let e4: Array1<F8E4M3> = v.slice(s![..1]).cast().unwrap();
    assert!(e4[0].to_f64().is_nan());
    let sat: Array1<F8E4M3> = v.slice(s![1..]).cast_with(CastOptions::saturating()).unwrap();
    assert_eq!((sat[0].to_f64(), sat[1].to_f64()), (448.0, -448.0));
}

#[test]
fn narrow_types_widen_back_exactly() {
    let v = array![0.1f32, -3.75, 1e-6, 65504.0];
    let h: Array1<f16> = v.cast().unwrap();
    let back: Array1<f64> = h.cast().unwrap();
    assert_eq!(back, h.mapv(|x| x.to_f64()));
    let ints: Array1<i64> = h.cast().unwrap();
    assert_eq!(ints, array![0i64, -4, 0, 65504]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any f32 bit pattern casts as `half` converts it one value at a time.
        #[test]
        fn casts_match_half_scalar_conversions(bits in prop::collection::vec(any::<u32>(), 0..64)) {
            let v = Array1::from_iter(bits.iter().map(|&b| f32::from_bits(b)));
            let b: Array1<bf16> = v.cast().unwrap();
            let h: Array1<f16> = v.cast().unwrap();
            for (i, &x) in v.iter().enumerate() {
                let (want_b, want_h) = (bf16::from_f32(x), f16::from_f32(x));
                prop_assert!(b[i].to_bits() == want_b.to_bits() || (b[i].is_nan() && want_b.is_nan()), "bf16 of {x:e}");
                prop_assert!(h[i].to_bits() == want_h.to_bits() || (h[i].is_nan() && want_h.is_nan()), "f16 of {x:e}");
            }
            let back: Array1<f32> = b.cast().unwrap();
            for (i, &y) in back.iter().enumerate() {
                prop_assert!(y.to_bits() == b[i].to_f32().to_bits() || y.is_nan());
            }
        }

        /// From f64, one rounding: the code is the nearest (ties to even) of
        /// its neighbours, checked for every narrow type, f16 and bf16 included.
        /// (`half`'s `from_f64` is not the reference here: it rounds twice.)
        #[test]
        fn f64_casts_round_once(
            which in 0usize..13,
            mantissa in 1.0f64..2.0,
            exp in -40i32..20,
            negative in any::<bool>(),
            nudge in -3i64..=3,
            tie_of in proptest::option::of(any::<u16>()),
        ) {
            let floats: Vec<Minifloat> = DType::ALL.into_iter().filter_map(DType::minifloat).collect();
            let m = floats[which];
            // A random value, or the tie between a random code and the next; then a few f64 ulps off it.
            let scale = (m.max().log2().floor() as i32).min(exp.max(-(m.bias + m.mantissa_bits as i32 + 2)));
            let mut base = mantissa * 2f64.powi(scale) * if negative && m.is_signed() { -1.0 } else { 1.0 };
            if let Some(c) = tie_of {
                let c = c & ((1u32 << m.bits()) - 1) as u16;
                let (lo, hi) = (m.decode(c), m.decode(c.wrapping_add(1)));
                prop_assume!(lo.is_finite() && hi.is_finite() && (hi - lo).abs() <= lo.abs().max(hi.abs()));
                base = (lo + hi) / 2.0;
            }
            let x = f64::from_bits((base.to_bits() as i64 + nudge) as u64);
            prop_assume!(x.abs() <= m.max());
            let code = m.encode(x, Overflow::Error).unwrap();
            prop_assert_nearest(m, x, code)?;
            if m.dtype == DType::Float16 {
                let h: Array1<f16> = array![x].cast().unwrap();
                prop_assert_eq!(h[0].to_bits(), code);
            }
            if m.dtype == DType::BFloat16 {
                let b: Array1<bf16> = array![x].cast().unwrap();
                prop_assert_eq!(b[0].to_bits(), code);
            }
        }
    }

    fn policy() -> impl Strategy<Value = Overflow> {
        prop_oneof![Just(Overflow::Error), Just(Overflow::Saturate), Just(Overflow::Nan), Just(Overflow::PyTorch)]
    }

    /// Each element type's tensor cast (from f32 and from f64, contiguous or
    /// strided) gives the scalar model's code for every bit pattern and policy,
    /// and fails exactly where the model does.
    fn tensor_equals_model<T: Element>(
        bits: &[u32],
        policy: Overflow,
        code: impl Fn(&T) -> u16,
    ) -> Result<(), TestCaseError> {
        let m = T::DTYPE.minifloat().unwrap();
        let x = Array1::from_iter(bits.iter().map(|&b| f32::from_bits(b)));
        let want: Result<Vec<u16>, _> = x.iter().map(|&v| m.encode_f32(v, policy)).collect();
        for got in [x.cast_with::<T>(policy.into()), x.slice(s![..;1]).mapv(f64::from).cast_with::<T>(policy.into())] {
            match (&got, &want) {
                (Ok(g), Ok(w)) => {
                    let g: Vec<u16> = g.iter().map(&code).collect();
                    for (gi, wi) in g.iter().zip(w) {
                        // f32 -> f16/bf16 runs the SIMD kernels, which keep NaN payloads.
                        prop_assert!(
                            gi == wi || (m.is_nan_code(*gi) && m.is_nan_code(*wi)),
                            "{}: {gi:#x} vs {wi:#x}",
                            m.dtype
                        );
                    }
                }
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{}: {:?} vs {:?}", m.dtype, got.as_ref().err(), want.as_ref().err()),
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn every_element_type_casts_as_the_model(bits in prop::collection::vec(any::<u32>(), 0..40), p in policy()) {
            tensor_equals_model::<f16>(&bits, p, |v| v.to_bits())?;
            tensor_equals_model::<bf16>(&bits, p, |v| v.to_bits())?;
            tensor_equals_model::<F8E4M3>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<F8E5M2>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E4M3Fnuz>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E5M2Fnuz>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E4M3>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E3M4>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E4M3B11Fnuz>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float8E8M0Fnu>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float6E2M3Fn>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float6E3M2Fn>(&bits, p, |v| u16::from(v.to_bits()))?;
            tensor_equals_model::<Float4E2M1Fn>(&bits, p, |v| u16::from(v.to_bits()))?;
        }

        /// Packed bytes decode back to the values the cast gave, for every
        /// narrow float and sub-byte integer type.
        #[test]
        fn bytes_round_trip(values in prop::collection::vec(-300.0f32..300.0, 0..40), which in 0usize..37) {
            let d = DType::ALL[which];
            // float8_e8m0fnu holds positive values only (negatives are an error, tested elsewhere).
            let x = Array1::from(values).mapv(|v| if d == DType::Float8E8M0Fnu { v.abs().max(1e-3) } else { v });
            let bytes = quantlab::cast_to_bytes(&x, d, CastOptions::saturating())?;
            prop_assert_eq!(bytes.len() as u64, d.storage_bytes(x.len() as u64));
            let back = quantlab::values_from_bytes(&bytes, d, x.len())?;
            for (&v, &b) in x.iter().zip(&back) {
                let want = d.nearest_with(f64::from(v), Overflow::Saturate)?;
                prop_assert!(b == want || (b.is_nan() && want.is_nan()), "{d}: {v} -> {b}, want {want}");
            }
        }
    }

    /// `code` is a nearest code to `x` among all finite codes of `m` (checked
    /// against the neighbours in value), and on a tie the even one (for
    /// float8_e8m0fnu, which has no mantissa, the larger one).
    fn prop_assert_nearest(m: Minifloat, x: f64, code: u16) -> Result<(), TestCaseError> {
        let v = m.decode(code);
        let finite: Vec<(u16, f64)> = m.codes().map(|c| (c, m.decode(c))).filter(|(_, v)| v.is_finite()).collect();
        let best = finite.iter().map(|&(_, w)| (x - w).abs()).fold(f64::INFINITY, f64::min);
        prop_assert_eq!((x - v).abs(), best, "{} {:e}: {:#x} = {} is not nearest", m.dtype, x, code, v);
        let ties: Vec<u16> =
            finite.iter().filter(|&&(_, w)| (x - w).abs() == best && w != v).map(|&(c, _)| c).collect();
        if let Some(&other) = ties.first() {
            if m.dtype == DType::Float8E8M0Fnu {
                prop_assert!(v > m.decode(other), "e8m0 ties go up");
            } else if v != 0.0 {
                prop_assert_eq!(code & 1, 0, "{} {:e}: tie not to even", m.dtype, x);
            }
        }
        Ok(())
    }
}

/// Issue 12, bug 1: `saturate` was ignored for f16, bf16 and f32, on the SIMD
/// path (contiguous f32) and on the scalar one (strided views, f64 sources).
#[test]
fn saturate_clamps_f16_bf16_and_f32_on_every_path() {
    let x = Array1::from_iter((0..67).map(|i| if i % 5 == 0 { 70000.0f32 } else { -(i as f32) * 1000.0 }));
    let sat = CastOptions::saturating();
    let want_h = |v: f32| if v.abs() > 65520.0 { 65504f32.copysign(v) } else { f16::from_f32(v).to_f32() };
    let contiguous: Array1<f16> = x.cast_with(sat).unwrap();
    let strided: Array1<f16> = x.slice(s![..;2]).cast_with(sat).unwrap();
    let wide: Array1<f16> = x.mapv(f64::from).cast_with(sat).unwrap();
    let mut into = Array1::from_elem(67, f16::ZERO);
    x.cast_into(&mut into, sat).unwrap();
    assert_eq!(contiguous[0].to_f32(), 65504.0);
    assert_eq!(contiguous[66].to_f32(), -65504.0);
    for (i, &v) in x.iter().enumerate() {
        assert_eq!(contiguous[i].to_f32(), want_h(v), "{v}");
        assert_eq!(wide[i].to_f32(), want_h(v), "{v}");
        assert_eq!(into[i].to_f32(), want_h(v), "{v}");
    }
    assert_eq!(strided.mapv(|h| h.to_bits()), contiguous.slice(s![..;2]).mapv(|h| h.to_bits()));
    let big = array![3.4e38f32, -3.4e38, f32::INFINITY, 1.0];
    for b in
        [big.cast_with::<bf16>(sat).unwrap(), big.slice(s![..;1]).to_owned().mapv(f64::from).cast_with(sat).unwrap()]
    {
        assert_eq!(b.mapv(|v| v.to_f32()).to_vec(), [3.3895314e38, -3.3895314e38, f32::INFINITY, 1.0]);
    }
    let f: Array1<f32> = array![1e39f64, -1e300, f64::NEG_INFINITY].cast_with(sat).unwrap();
    assert_eq!(f.to_vec(), [f32::MAX, f32::MIN, f32::NEG_INFINITY]);
    // Without saturate, overflow still goes to infinity.
    assert!(x.cast::<f16>().unwrap()[0].is_infinite());
}

/// Issue 12, bug 2: an f64 just beside a bf16/f16 tie rounded as if it were
/// the tie (`half`'s `from_f64` keeps 32 bits before rounding).
#[test]
fn f64_sources_round_once() {
    let b: Array1<bf16> = array![954.0000000000001f64, 953.9999999999999, 954.0].cast().unwrap();
    assert_eq!(b.mapv(|v| v.to_f32()).to_vec(), [956.0, 952.0, 952.0]);
    // f16: 1 + 2^-11 is the tie between 1 and 1 + 2^-10; a hair above rounds up.
    let above = 1.0 + 2f64.powi(-11) + 2f64.powi(-40);
    let h: Array1<f16> = array![above, 1.0 + 2f64.powi(-11), -above].cast().unwrap();
    assert_eq!(h.mapv(|v| v.to_bits()).to_vec(), [0x3C01, 0x3C00, 0xBC01]);
    assert_eq!(DType::BFloat16.nearest(954.0000000000001).unwrap(), 956.0);
}
