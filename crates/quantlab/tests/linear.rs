//! The quantized linear layer: every SIMD path against the scalar reference,
//! bit for bit, on odd shapes, unaligned slices and special values; the
//! reference against its documented summation order; the layer against the
//! library's own quantize + dequantize.

use ndarray::{Array1, Array2, array};
use quantlab::linear::{Linear, Weight};
use quantlab::{DType, Error, GemvKernels, QuantSpec, QuantizeExt, gemv_tables};

fn scalar() -> &'static GemvKernels {
    gemv_tables().into_iter().find(|k| k.name == "scalar").expect("scalar is always available")
}

fn simd() -> Vec<&'static GemvKernels> {
    gemv_tables().into_iter().filter(|k| k.name != "scalar").collect()
}

/// A deterministic spread of values (a small LCG; no randomness crate needed).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect()
}

fn codes_i8(n: usize, seed: u64) -> Vec<i8> {
    values(n, seed).iter().map(|v| (v * 64.0) as i8).chain([-128i8, 127, 0]).take(n).collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// The documented order, written out independently of the library.
fn contract(x: &[f32], w: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    for (j, &xj) in x.iter().enumerate() {
        acc[j % 16] = xj.mul_add(w(j), acc[j % 16]);
    }
    for width in [8, 4, 2, 1] {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

#[test]
fn int8_paths_match_scalar_on_every_length_and_offset() {
    eprintln!("paths compared with scalar: {:?}", simd().iter().map(|k| k.name).collect::<Vec<_>>());
    let specials = [0.0f32, -0.0, f32::MIN_POSITIVE / 4.0, -1e-40, 1e30, -1e30, 0.5, -2.5];
    for rows in [1usize, 2, 3, 4, 5, 7, 9] {
        for n in 0..=(2 * 16 + 9) {
            for offset in 0..3 {
                let xs = values(n + offset, (rows * 100 + n) as u64);
                let mut x = xs[offset..].to_vec();
                if n > 0 {
                    x[n / 2] = specials[(rows + n) % specials.len()];
                }
                let q_all = codes_i8(rows * n + offset, n as u64);
                let q = &q_all[offset..];
                let s: Vec<f32> = (0..rows).map(|i| 0.01 + i as f32 * 0.003).collect();
                let mut want = vec![0f32; rows];
                (scalar().gemv_i8)(q, &s, &x, &mut want);
                for (i, w) in want.iter().enumerate() {
                    let c = contract(&x, |j| f32::from(q[i * n + j]) * s[i]);
                    assert_eq!(w.to_bits(), c.to_bits(), "scalar vs contract, rows {rows} n {n} row {i}");
                }
                for k in simd() {
                    let mut got = vec![f32::NAN; rows];
                    (k.gemv_i8)(q, &s, &x, &mut got);
                    assert!(
                        same_bits(&got, &want),
                        "{} int8 rows {rows} n {n} offset {offset}: {got:?} vs {want:?}",
                        k.name
                    );
                }
            }
        }
    }
}

#[test]
fn int8_paths_carry_infinities_and_nan_as_scalar_does() {
    let n = 37;
    for special in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        for at in [0usize, 15, 16, 36] {
            let mut x = values(n, 3);
            x[at] = special;
            let mut q = codes_i8(3 * n, 4);
            q[at] = 0; // inf * 0 = NaN in row 0
            let s = [0.5f32, 0.25, 2.0];
            let mut want = [0f32; 3];
            (scalar().gemv_i8)(&q, &s, &x, &mut want);
            assert!(want[0].is_nan(), "inf times a zero code is NaN");
            for k in simd() {
                let mut got = [0f32; 3];
                (k.gemv_i8)(&q, &s, &x, &mut got);
                assert!(same_bits(&got, &want), "{} {special} at {at}: {got:?} vs {want:?}", k.name);
            }
        }
    }
}

#[test]
fn int4_paths_match_scalar_on_odd_shapes() {
    for rows in [1usize, 2, 3, 4, 5, 7, 9] {
        for (n, group) in [(16, 16), (32, 16), (48, 16), (48, 48), (64, 32), (96, 32), (160, 32), (256, 128), (384, 32)]
        {
            for offset in 0..3 {
                let xs = values(n + offset, (rows * 7 + n) as u64);
                let mut x = xs[offset..].to_vec();
                x[n - 1] = -0.0;
                x[1] = 1e-42;
                let bytes: Vec<u8> = values(rows * n / 2 + offset, 9).iter().map(|v| (v * 1e4) as i32 as u8).collect();
                let packed = &bytes[offset..];
                let s: Vec<f32> = (0..rows * n / group).map(|g| 0.02 + (g % 5) as f32 * 0.01).collect();
                let mut want = vec![0f32; rows];
                (scalar().gemv_i4)(packed, &s, group, &x, &mut want);
                for (i, w) in want.iter().enumerate() {
                    let code = |j: usize| {
                        let b = packed[(i * n + j) / 2];
                        let nib = if j.is_multiple_of(2) { b & 15 } else { b >> 4 };
                        if nib >= 8 { nib as i32 - 16 } else { nib as i32 }
                    };
                    let c = contract(&x, |j| code(j) as f32 * s[(i * n + j) / group]);
                    assert_eq!(w.to_bits(), c.to_bits(), "scalar vs contract, rows {rows} n {n} row {i}");
                }
                for k in simd() {
                    let mut got = vec![f32::NAN; rows];
                    (k.gemv_i4)(packed, &s, group, &x, &mut got);
                    assert!(same_bits(&got, &want), "{} int4 rows {rows} n {n} G {group}: {got:?} vs {want:?}", k.name);
                }
            }
        }
    }
}

fn weight(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), values(rows * cols, 11)).unwrap()
}

#[test]
fn int8_layer_multiplies_by_the_librarys_dequantized_weight() {
    let w = weight(7, 37);
    let bias = Array1::from(values(7, 5));
    let layer = Linear::int8_per_channel(w.view(), Some(bias.clone())).unwrap();
    let dq = w.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(0)).unwrap().dequantize().unwrap();
    assert_eq!(layer.dequantized_weight(), dq);
    let x = Array2::from_shape_vec((3, 37), values(3 * 37, 2)).unwrap();
    let y = layer.forward(x.view()).unwrap();
    for (r, xr) in x.rows().into_iter().enumerate() {
        for i in 0..7 {
            let exact: f64 =
                xr.iter().zip(dq.row(i)).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() + f64::from(bias[i]);
            assert!((f64::from(y[[r, i]]) - exact).abs() < 1e-4, "row {r} out {i}: {} vs {exact}", y[[r, i]]);
        }
        assert_eq!(y.row(r), layer.forward_vec(xr).unwrap());
    }
    assert_eq!(layer.weight_bytes(), 7 * 37 + 7 * 4);
}

#[test]
fn int4_layer_holds_the_librarys_packed_codes() {
    let w = weight(5, 64);
    let layer = Linear::int4_per_group(w.view(), 32, None).unwrap();
    let q = w.quantize(QuantSpec::new(DType::Int4).symmetric().per_group(32)).unwrap();
    match layer.weight() {
        Weight::Int4 { packed, scales, group } => {
            assert_eq!(packed, &q.packed());
            assert_eq!(scales.as_slice(), q.scale().as_slice().unwrap());
            assert_eq!(*group, 32);
        }
        other => panic!("expected int4, got {other:?}"),
    }
    assert_eq!(layer.dequantized_weight(), q.dequantize().unwrap());
    let x = Array1::from(values(64, 8));
    let y = layer.forward_vec(x.view()).unwrap();
    let f = Linear::new(q.dequantize().unwrap(), None).unwrap().forward_vec(x.view()).unwrap();
    for (a, b) in y.iter().zip(&f) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    assert_eq!(layer.weight_bytes(), 5 * 64 / 2 + 5 * 2 * 4);
}

#[test]
fn bad_shapes_are_errors_that_say_what_to_do() {
    let w = weight(4, 40);
    let e = Linear::int4_per_group(w.view(), 32, None).unwrap_err();
    assert!(matches!(e, Error::BadLayer { .. }), "{e}");
    assert!(e.to_string().contains("multiple of 16 that divides 40"), "{e}");
    assert!(matches!(Linear::int4_per_group(w.view(), 20, None), Err(Error::BadLayer { .. })));
    let e = Linear::new(w.clone(), Some(array![1.0, 2.0])).unwrap_err();
    assert!(e.to_string().contains("bias of 2 values for 4 outputs"), "{e}");
    let layer = Linear::int8_per_channel(w.view(), None).unwrap();
    assert!(matches!(layer.forward_vec(array![1.0f32, 2.0].view()), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(Linear::new(Array2::zeros((0, 3)), None), Err(Error::Empty { .. })));
    let parts = Weight::Int8 { codes: vec![0; 5], scales: vec![1.0; 2] };
    assert!(matches!(Linear::from_parts(2, 3, parts, None), Err(Error::BadLayer { .. })));
}
