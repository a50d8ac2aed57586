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
    assert_eq!(q.codes.to_i32(), array![[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]]);
    let y = q.dequantize();
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
    assert_eq!(rows.codes.to_i32(), array![[33, -2, 127], [40, 127, -79], [0, 127, 46]]);
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
    for (row, codes) in x.rows().into_iter().zip(q.codes.to_i32().rows()) {
        let alone = row.quantize(spec.per_tensor()).unwrap();
        assert_eq!(alone.codes.to_i32(), codes);
    }
}

#[test]
fn all_zero_group_quantizes_to_its_zero_point() {
    let x = array![[0.0f32, 0.0], [1.0, -1.0]];
    let q = x.quantize(QuantSpec::new(DType::UInt8).per_channel(0)).unwrap();
    assert_eq!(q.scale()[0], f32::EPSILON);
    assert_eq!(q.codes.to_i32().row(0).to_vec(), vec![q.zero_point()[0]; 2]);
    assert_eq!(q.dequantize().row(0).to_vec(), vec![0.0, 0.0]);
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
            for (&v, &r) in x.iter().zip(q.dequantize().iter()) {
                if v >= lo && v <= hi {
                    // s/2 plus the f32 rounding of the division and the product.
                    let slack = s / 2.0 + 4.0 * f32::EPSILON * v.abs().max(s);
                    prop_assert!((v - r).abs() <= slack, "x={v} back={r} s={s} z={z}");
                }
            }
        }
    }
}
