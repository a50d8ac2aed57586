//! Golden values from the lesson (PyTorch computing the same formula in float32).

use ndarray::{Array2, array};

use super::*;
use crate::metrics::error_stats;

fn lesson_tensor() -> Array2<f32> {
    array![[191.6, -13.5, 728.6], [92.14, 295.5, -184.0], [0.0, 684.6, 245.5]]
}

fn close(got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "got {got}, want {want} ± {tol}");
}

#[test]
fn explicit_scale_and_zero_point() {
    let x = lesson_tensor();
    let q = x.quantize_with(DType::Int8, &QuantParams::per_tensor(3.5, -70)).unwrap();
    assert_eq!(q.codes().to_i32(), array![[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]]);
    let y = q.dequantize().unwrap();
    assert_eq!(y, array![[192.5f32, -14.0, 689.5], [91.0, 294.0, -185.5], [0.0, 686.0, 245.0]]);
    close(error_stats(&x, &y).unwrap().mse, 170.8753, 5e-5);
}

#[test]
fn computed_asymmetric_parameters() {
    let x = lesson_tensor();
    let q = x.quantize(QuantSpec::new(DType::Int8)).unwrap();
    close(f64::from(q.scale()[0]), 3.578823, 1e-6);
    assert_eq!(q.zero_point()[0], -77);
    close(q.error_stats(&x).unwrap().mse, 1.57, 0.01);
}

#[test]
fn symmetric_per_tensor_and_per_channel() {
    let x = lesson_tensor();
    let per_tensor = x.quantize(QuantSpec::new(DType::Int8).symmetric()).unwrap();
    close(per_tensor.error_stats(&x).unwrap().mse, 2.5092, 5e-5);

    let rows = x.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(0)).unwrap();
    let scales: Vec<String> = rows.scale().iter().map(|s| format!("{s:.4}")).collect();
    assert_eq!(scales, ["5.7370", "2.3268", "5.3906"]);
    assert_eq!(rows.codes().to_i32(), array![[33, -2, 127], [40, 127, -79], [0, 127, 46]]);
    close(rows.error_stats(&x).unwrap().mse, 1.8084, 5e-5);

    let cols = x.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(1)).unwrap();
    close(cols.error_stats(&x).unwrap().mse, 1.0781, 5e-5);
}

#[test]
fn per_group_matches_quantizing_each_group_alone() {
    let x = Array2::from_shape_fn((4, 8), |(i, j)| ((i * 8 + j) as f32 * 0.37).sin() * (1 + i) as f32);
    let spec = QuantSpec::new(DType::Int4).symmetric().per_group(8);
    let q = x.quantize(spec).unwrap();
    assert_eq!(q.scale().len(), 4);
    for (row, codes) in x.rows().into_iter().zip(q.codes().to_i32().rows()) {
        let alone = row.quantize(spec.per_tensor()).unwrap();
        assert_eq!(alone.codes().to_i32(), codes);
    }
}

#[test]
fn all_zero_group_quantizes_to_its_zero_point() {
    let x = array![[0.0f32, 0.0], [1.0, -1.0]];
    let q = x.quantize(QuantSpec::new(DType::UInt8).per_channel(0)).unwrap();
    assert_eq!(q.scale()[0], f32::EPSILON);
    assert_eq!(q.codes().to_i32().row(0).to_vec(), vec![q.zero_point()[0]; 2]);
    assert_eq!(q.dequantize().unwrap().row(0).to_vec(), vec![0.0, 0.0]);
}

#[test]
fn strided_views_quantize_like_their_copies() {
    let x = Array2::from_shape_fn((6, 5), |(i, j)| (i as f32 - 2.5) * (j as f32 + 0.3));
    let view = x.t();
    let spec = QuantSpec::new(DType::UInt4).per_channel(1);
    assert_eq!(view.quantize(spec).unwrap(), view.to_owned().quantize(spec).unwrap());
}

#[test]
fn bad_input_is_a_typed_error() {
    let x = lesson_tensor();
    let nan = array![1.0f32, f32::NAN];
    assert_eq!(
        nan.quantize(QuantSpec::new(DType::Int8)).unwrap_err().to_string(),
        "the tensor holds NaN at flat index 1: quantization needs finite values; replace or mask non-finite values first"
    );
    assert!(matches!(
        array![f64::INFINITY].quantize_with(DType::Int8, &QuantParams::per_tensor(1.0, 0)),
        Err(Error::NonFinite { index: 0, .. })
    ));
    let empty = ndarray::Array1::<f32>::zeros(0);
    assert!(matches!(empty.quantize(QuantSpec::new(DType::Int8)), Err(Error::Empty { .. })));
    assert!(matches!(x.quantize(QuantSpec::new(DType::Int8).per_channel(2)), Err(Error::BadAxis { axis: 2, ndim: 2 })));
    assert!(matches!(x.quantize(QuantSpec::new(DType::Int8).per_group(4)), Err(Error::BadGroupSize { .. })));
    assert_eq!(
        x.quantize(QuantSpec::new(DType::UInt4).symmetric()).unwrap_err().to_string(),
        "symmetric quantization needs a signed type, but uint4 is unsigned: use int4 or the asymmetric scheme"
    );
    assert!(matches!(x.quantize(QuantSpec::new(DType::Float16)), Err(Error::WrongDType { .. })));
    let bad = [
        QuantParams::per_tensor(0.0, 0),
        QuantParams::per_tensor(f32::NAN, 0),
        QuantParams::per_tensor(1.0, 300),
        QuantParams::per_channel(0, vec![1.0, 1.0], vec![0, 0]),
    ];
    for p in bad {
        assert!(matches!(x.quantize_with(DType::Int8, &p), Err(Error::BadParams { .. })), "{p:?}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every value inside the representable range comes back within half a step.
        #[test]
        fn round_trip_within_half_a_step(
            values in prop::collection::vec(-1e4f32..1e4, 1..200),
            dtype in prop::sample::select(DType::QUANTIZED.to_vec()),
            symmetric in any::<bool>(),
        ) {
            let spec = if symmetric && dtype.is_signed() {
                QuantSpec::new(dtype).symmetric()
            } else {
                QuantSpec::new(dtype)
            };
            let x = ndarray::Array1::from(values);
            let q = x.quantize(spec)?;
            let (s, z) = (q.scale()[0], q.zero_point()[0]);
            let (qmin, qmax) = spec::qrange(dtype);
            let lo = s * (qmin - z) as f32;
            let hi = s * (qmax - z) as f32;
            for (&v, &r) in x.iter().zip(q.dequantize().unwrap().iter()) {
                if v >= lo && v <= hi {
                    // s/2 plus the f32 rounding of the division and the product.
                    let slack = s / 2.0 + 4.0 * f32::EPSILON * v.abs().max(s);
                    prop_assert!((v - r).abs() <= slack, "x={v} back={r} s={s} z={z}");
                }
            }
        }
    }
}

#[test]
fn an_inconsistent_quantized_tensor_is_an_error() {
    let codes = Codes::Signed(array![[1i8, 2, 3], [4, 5, 6]]);
    let ok =
        Quantized::new(DType::Int8, codes.clone(), QuantParams::per_channel(0, vec![0.5, 2.0], vec![0, 1])).unwrap();
    assert_eq!(ok.dequantize().unwrap(), array![[0.5f32, 1.0, 1.5], [6.0, 8.0, 10.0]]);
    // A short scale: one per channel along axis 1 needs three.
    let short = Quantized::new(DType::Int8, codes.clone(), QuantParams::per_channel(1, vec![1.0, 1.0], vec![0, 0]));
    assert_eq!(
        short.unwrap_err().to_string(),
        "invalid quantization parameters: 2 scales and 2 zero points given, but per-channel (axis 1) over shape [2, 3] needs 3 of each"
    );
    // An axis the codes do not have.
    let axis = Quantized::new(DType::Int8, codes.clone(), QuantParams::per_channel(2, vec![1.0], vec![0]));
    assert_eq!(axis.unwrap_err(), Error::BadAxis { axis: 2, ndim: 2 });
    // Codes of the wrong signedness, and codes outside the type's range.
    let unsigned = Quantized::new(DType::Int8, Codes::Unsigned(array![1u8, 2]), QuantParams::per_tensor(1.0, 0));
    assert!(matches!(unsigned, Err(Error::BadQuantized { .. })), "{unsigned:?}");
    let wide = Quantized::new(DType::Int4, Codes::Signed(array![1i8, 8]), QuantParams::per_tensor(1.0, 0));
    assert_eq!(
        wide.unwrap_err().to_string(),
        "inconsistent quantized tensor: code 8 at flat index 1 is outside int4's range [-8, 7]"
    );
    let float = Quantized::new(DType::Float16, codes, QuantParams::per_tensor(1.0, 0));
    assert!(float.is_err());
}

/// Data with every kind of value the paths treat differently: spread,
/// clipped by the given parameters, and exact ties.
fn spread(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919) % 1013) as f32 / 37.0 - 13.0 + if i % 11 == 0 { 0.5 } else { 0.0 }).collect()
}

#[test]
fn packing_with_given_params_matches_quantize_then_pack() {
    // Shapes whose segments start mid-byte (odd inner sizes, odd groups), and
    // one large enough for several parts.
    let shapes: [&[usize]; 4] = [&[3, 5, 7], &[6, 10], &[4, 33], &[2, 36_000]];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let x = ndarray::ArrayD::from_shape_vec(shape.to_vec(), spread(n)).unwrap();
        for dtype in DType::QUANTIZED {
            let signed = dtype.is_signed();
            let mut specs = vec![QuantSpec::new(dtype), QuantSpec::new(dtype).per_channel(0)];
            specs.push(QuantSpec::new(dtype).per_channel(shape.len() - 1));
            for g in [1usize, 2, 3, 32] {
                if n.is_multiple_of(g) {
                    specs.push(QuantSpec::new(dtype).per_group(g));
                }
            }
            if signed {
                specs.extend(specs.clone().into_iter().map(QuantSpec::symmetric));
            }
            for spec in specs {
                let q = x.quantize(spec).unwrap();
                // Scales a quarter of the chosen ones clip most values.
                let mut clipping = q.params().clone();
                clipping.scale.mapv_inplace(|s| s / 4.0);
                for params in [q.params().clone(), clipping] {
                    let want = x.quantize_with(dtype, &params).unwrap();
                    let got = x.quantize_packed_with(dtype, &params).unwrap();
                    assert!(got == want.packed(), "{spec} {shape:?}");
                    let back = crate::dequantize_packed(&got, shape, dtype, &params).unwrap();
                    let expect: Vec<f32> = want.dequantize().unwrap().iter().copied().collect();
                    assert!(back == expect, "{spec} {shape:?}");
                }
            }
        }
    }
}

#[test]
fn packing_with_given_params_reports_bad_input() {
    let params = QuantParams::per_group(2, vec![1.0; 2], vec![0; 2]);
    let x = array![1.0f32, f32::NAN, 2.0, 3.0];
    let e = x.quantize_packed_with(DType::Int4, &params).unwrap_err();
    assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{e}");
    let e = array![1.0f32, 2.0].quantize_packed_with(DType::Int4, &params).unwrap_err();
    assert!(e.to_string().contains("needs 1 of each"), "{e}");
    let e = crate::dequantize_packed(&[0u8; 3], &[4], DType::Int4, &params).unwrap_err();
    assert_eq!(e.to_string(), "inconsistent quantized tensor: 3 bytes of codes given, but 4 int4 codes take 2");
}
