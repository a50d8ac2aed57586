//! The quantized linear layer: every SIMD path against the scalar reference,
//! bit for bit, on odd shapes, unaligned slices and special values; the
//! reference against its documented summation order; the layer against the
//! library's own quantize + dequantize; the Q8_0 and Q4_0 block kernels
//! against the formats' own dequantization (gguf-py's numbers); the generic
//! decoded-block path (Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, GGUF MXFP4, the MX
//! types but MXFP4) likewise, every path against the scalar reference.

use ndarray::{Array1, Array2, array};
use quantlab::formats::{BlockFormat, GgmlBlock};
use quantlab::linear::{Linear, Weight};
use quantlab::{DType, Error, GemvKernels, QuantSpec, QuantizeExt, gemv_kernel, gemv_tables};

mod common;
use common::values;

fn scalar() -> &'static GemvKernels {
    gemv_tables().into_iter().find(|k| k.name == "scalar").expect("scalar is always available")
}

fn simd() -> Vec<&'static GemvKernels> {
    gemv_tables().into_iter().filter(|k| k.name != "scalar").collect()
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

/// A block-format product on weight `q` (`rows` rows of `x.len()` values,
/// `dq` its dequantization): the scalar path gives the contract's sum of
/// the dequantized weights, and every SIMD path the scalar path's bits.
fn check_block_paths(
    kernel: impl Fn(&GemvKernels) -> fn(&[u8], &[f32], &mut [f32]),
    q: &[u8],
    x: &[f32],
    dq: &[f32],
    rows: usize,
    at: &str,
) {
    let n = x.len();
    let mut want = vec![f32::NAN; rows];
    (kernel(scalar()))(q, x, &mut want);
    for (i, w) in want.iter().enumerate() {
        let c = contract(x, |j| dq[i * n + j]);
        assert!(same_bits(&[*w], &[c]), "{at}: scalar vs contract, row {i}");
    }
    for k in simd() {
        let mut got = vec![f32::NAN; rows];
        (kernel(k))(q, x, &mut got);
        assert!(same_bits(&got, &want), "{} {at}: {got:?} vs {want:?}", k.name);
    }
}

/// Q8_0 and Q4_0 weights of `rows` rows of `n` values: the library's
/// quantization of spread values, then (from `raw_from` on) raw bytes,
/// whose f16 scales can be subnormal, infinite or NaN.
fn blocks(format: GgmlBlock, rows: usize, n: usize, seed: u64, raw_from: usize) -> Vec<u8> {
    let w = values(rows * n, seed);
    let mut q = BlockFormat::Ggml(format).quantize(&w, n).unwrap().data;
    let raw: Vec<u8> = values(q.len(), seed + 1).iter().map(|v| (v * 1e4) as i32 as u8).collect();
    q[raw_from.min(raw.len())..].copy_from_slice(&raw[raw_from.min(raw.len())..]);
    q
}

#[test]
fn block_paths_match_scalar_and_the_reference_dequantization() {
    for format in [GgmlBlock::Q8_0, GgmlBlock::Q4_0] {
        let kernel = |k: &GemvKernels| if format == GgmlBlock::Q8_0 { k.gemv_q8_0 } else { k.gemv_q4_0 };
        for rows in [1usize, 2, 3, 4, 5, 7, 9] {
            for n in [32usize, 64, 96, 160, 288] {
                for offset in 0..3 {
                    let row_bytes = n / 32 * format.type_size();
                    // Rows 0..rows-1 hold quantized values, the last one raw bytes.
                    let all = blocks(format, rows + 1, n, (rows * 31 + n) as u64, (rows - 1).max(1) * row_bytes);
                    let q = &all[offset..offset + rows * row_bytes];
                    let xs = values(n + offset, (rows + n) as u64);
                    let mut x = xs[offset..].to_vec();
                    x[n - 1] = -0.0;
                    x[n / 2] = 1e-42;
                    let dq = format.dequantize(q, rows * n).unwrap();
                    let at = format!("{format:?} rows {rows} n {n} offset {offset}");
                    check_block_paths(kernel, q, &x, &dq, rows, &at);
                }
            }
        }
    }
}

#[test]
fn block_layers_multiply_by_the_formats_dequantized_weight() {
    for (format, bytes_per_block) in [(GgmlBlock::Q8_0, 34), (GgmlBlock::Q4_0, 18)] {
        let w = weight(7, 96);
        let bias = Array1::from(values(7, 6));
        let layer = Linear::block(w.view(), BlockFormat::Ggml(format), Some(bias.clone())).unwrap();
        let q = BlockFormat::Ggml(format).quantize(w.as_slice().unwrap(), 96).unwrap();
        let dq = Array2::from_shape_vec((7, 96), q.dequantize().unwrap()).unwrap();
        assert_eq!(layer.dequantized_weight(), dq);
        assert_eq!(layer.weight(), &Weight::Block(q));
        let x = Array2::from_shape_vec((3, 96), values(3 * 96, 2)).unwrap();
        let y = layer.forward(x.view()).unwrap();
        let f32_layer = Linear::new(dq.clone(), Some(bias.clone())).unwrap();
        let yf = f32_layer.forward(x.view()).unwrap();
        let mut worst_vs_original = 0f64;
        for (r, xr) in x.rows().into_iter().enumerate() {
            for i in 0..7 {
                let exact: f64 = xr.iter().zip(dq.row(i)).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>()
                    + f64::from(bias[i]);
                assert!((f64::from(y[[r, i]]) - exact).abs() < 1e-4, "{format:?} row {r} out {i}");
                assert!((y[[r, i]] - yf[[r, i]]).abs() < 1e-4, "{format:?} vs dequantize-then-f32");
                let original: f64 = xr.iter().zip(w.row(i)).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>()
                    + f64::from(bias[i]);
                worst_vs_original = worst_vs_original.max((f64::from(y[[r, i]]) - original).abs());
            }
            assert_eq!(y.row(r), layer.forward_vec(xr).unwrap());
        }
        // Quantization error, not garbage (outputs are sums of 96 products of
        // values up to 2): measured 0.11 for Q8_0 (steps of amax / 127) and
        // 3.2 for Q4_0 (steps of amax / 8, sixteen times coarser).
        let bound = if format == GgmlBlock::Q8_0 { 0.3 } else { 5.0 };
        assert!(worst_vs_original < bound && worst_vs_original > 0.0, "{format:?}: {worst_vs_original}");
        assert_eq!(layer.weight_bytes(), 7 * 3 * bytes_per_block);
    }
}

#[test]
fn block_layers_refuse_what_they_cannot_compute() {
    let w = weight(4, 64);
    // Rows that are not whole blocks (256-value super-blocks for the K-quants).
    for (name, block) in [("q4_k", 256), ("q6_k", 256)] {
        let e = Linear::block(w.view(), BlockFormat::parse(name).unwrap(), None).unwrap_err();
        assert!(matches!(e, Error::BlockMismatch { block: b, len: 64, .. } if b == block), "{name}: {e}");
    }
    for name in GENERIC {
        let e = Linear::block(weight(3, 48).view(), BlockFormat::parse(name).unwrap(), None).unwrap_err();
        let block = BlockFormat::parse(name).unwrap().block_size();
        assert!(matches!(e, Error::BlockMismatch { block: b, len: 48, .. } if b == block), "{name}: {e}");
        assert!(e.to_string().contains(name), "{name}: {e}");
    }
    let e = Linear::block(weight(4, 40).view(), BlockFormat::Ggml(GgmlBlock::Q8_0), None).unwrap_err();
    assert!(matches!(e, Error::BlockMismatch { block: 32, len: 40, .. }), "{e}");
    let mut bad = weight(2, 32);
    bad[[1, 3]] = f32::NAN;
    assert!(matches!(
        Linear::block(bad.view(), BlockFormat::Ggml(GgmlBlock::Q4_0), None),
        Err(Error::NonFinite { .. })
    ));
    let q = BlockFormat::Ggml(GgmlBlock::Q4_0).quantize(w.as_slice().unwrap(), 64).unwrap();
    let e = Linear::from_parts(2, 128, Weight::Block(q.clone()), None).unwrap_err();
    assert!(e.to_string().contains("q4_0 blocks of [4, 64] for a layer of [2, 128]"), "{e}");
    let mut short = q.clone();
    short.data.pop();
    assert!(matches!(Linear::from_parts(4, 64, Weight::Block(short), None), Err(Error::WrongByteLength { .. })));
    let layer = Linear::from_parts(4, 64, Weight::Block(q), None).unwrap();
    assert!(matches!(layer.forward_vec(Array1::zeros(63).view()), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn the_layer_runs_the_gemv_path_of_the_chosen_kernel() {
    // The AVX-512 tables with BF16 or FP16 conversions run AVX-512's matrix-vector kernels.
    let chosen = quantlab::kernel();
    let family = if chosen.starts_with("avx512") { "avx512" } else { chosen };
    eprintln!("kernel {chosen}, gemv {}", gemv_kernel());
    if gemv_tables().iter().any(|k| k.name == family) {
        assert_eq!(gemv_kernel(), family, "kernel {chosen}");
    } else {
        // AVX-512 without VBMI: the best table below it.
        assert_ne!(gemv_kernel(), "scalar", "kernel {chosen}");
    }
}

#[test]
fn table_paths_match_scalar_on_odd_shapes_and_special_scales() {
    let specials = [0.0f32, -0.0, f32::INFINITY, f32::NAN, 1e-40, -3.5, 448.0];
    for rows in [1usize, 2, 3, 4, 5, 7, 9] {
        for (n, block) in [(16, 16), (32, 16), (48, 16), (32, 32), (96, 32), (48, 64), (96, 64), (160, 128), (64, 4096)]
        {
            for high_first in [false, true] {
                for offset in 0..3 {
                    let xs = values(n + offset, (rows * 13 + n) as u64);
                    let mut x = xs[offset..].to_vec();
                    x[n - 1] = -0.0;
                    let bytes: Vec<u8> =
                        values(rows * n / 2 + offset, 21).iter().map(|v| (v * 1e4) as i32 as u8).collect();
                    let packed = &bytes[offset..];
                    let blocks = (rows * n).div_ceil(block);
                    let mut scales: Vec<f32> = values(blocks, 5).iter().map(|v| v.abs() + 0.01).collect();
                    if blocks > 2 {
                        scales[blocks / 2] = specials[(rows + n) % specials.len()];
                    }
                    let table: [f32; 16] = std::array::from_fn(|c| (c as f32 - 7.5) * 0.37);
                    let mut want = vec![f32::NAN; rows];
                    (scalar().gemv_lut4)(packed, &scales, block, &table, high_first, &x, &mut want);
                    for (i, w) in want.iter().enumerate() {
                        let c = contract(&x, |j| {
                            let k = i * n + j;
                            let b = packed[k / 2];
                            let code = if (k % 2 == 0) != high_first { b & 15 } else { b >> 4 };
                            table[code as usize] * scales[k / block]
                        });
                        assert!(same_bits(&[*w], &[c]), "scalar vs contract, rows {rows} n {n} block {block}");
                    }
                    for k in simd() {
                        let mut got = vec![f32::NAN; rows];
                        (k.gemv_lut4)(packed, &scales, block, &table, high_first, &x, &mut got);
                        assert!(
                            same_bits(&got, &want),
                            "{} table rows {rows} n {n} block {block} high_first {high_first} offset {offset}: {got:?} vs {want:?}",
                            k.name
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_block_layer_gives_the_contract_sum_of_the_formats_dequantized_weight() {
    let formats = [
        BlockFormat::parse("q8_0").unwrap(),
        BlockFormat::parse("q4_0").unwrap(),
        BlockFormat::parse("mxfp4").unwrap(),
        BlockFormat::parse("mxfp4").unwrap().with_scale_rule(quantlab::formats::ScaleRule::Even),
        BlockFormat::parse("nvfp4").unwrap(),
        BlockFormat::Nvfp4 { tensor_scale: false },
        BlockFormat::parse("nf4").unwrap(),
        BlockFormat::nf4(64, true).unwrap(),
        BlockFormat::nf4(32, false).unwrap(),
    ];
    for format in formats {
        // 96 values a row: NF4's blocks of 64 straddle rows.
        let (rows, n) = (5, 96);
        let w = weight(rows, n);
        let layer = Linear::block(w.view(), format, None).unwrap();
        let q = format.quantize(w.as_slice().unwrap(), n).unwrap();
        let dq = q.dequantize().unwrap();
        assert_eq!(layer.weight(), &Weight::Block(q.clone()));
        assert_eq!(layer.weight_bytes(), q.nbytes() as u64, "{format}");
        let x = Array1::from(values(n, 17));
        let y = layer.forward_vec(x.view()).unwrap();
        for i in 0..rows {
            let c = contract(x.as_slice().unwrap(), |j| dq[i * n + j]);
            assert_eq!(y[i].to_bits(), c.to_bits(), "{format} row {i}: {} vs {c}", y[i]);
            let original: f32 = x.iter().zip(w.row(i)).map(|(a, b)| a * b).sum();
            assert!((y[i] - original).abs() < 4.0, "{format} row {i}: {} vs f32 {original}", y[i]);
        }
    }
    let e = Linear::block(weight(2, 40).view(), BlockFormat::parse("nf4").unwrap(), None).unwrap_err();
    assert!(e.to_string().contains("NF4 rows of 40 values: the layer needs a multiple of 16"), "{e}");
}

/// The formats the layer computes on through the generic decoded-block path.
const GENERIC: [&str; 11] = [
    "q4_1",
    "q5_0",
    "q5_1",
    "q4_k",
    "q6_k",
    "gguf_mxfp4",
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxfp6_e2m3",
    "mxfp6_e3m2",
    "mxint8",
];

/// Rows of `n` values for `format`: several blocks a row (several
/// 256-value super-blocks for the K-quants).
fn generic_widths(format: &BlockFormat) -> Vec<usize> {
    if format.block_size() == 256 { vec![256, 512, 768] } else { vec![32, 64, 96, 160, 288, 512] }
}

#[test]
fn every_format_is_computed_on_its_blocks() {
    for name in quantlab::formats::FORMAT_NAMES {
        assert!(Linear::computes_on(&BlockFormat::parse(name).unwrap()), "{name}");
    }
}

#[test]
fn decoded_block_paths_match_scalar_and_the_reference_dequantization() {
    eprintln!("paths compared with scalar: {:?}", simd().iter().map(|k| k.name).collect::<Vec<_>>());
    for name in GENERIC {
        let format = BlockFormat::parse(name).unwrap();
        let block = format.block_size();
        for rows in [1usize, 2, 3, 4, 5, 7, 9] {
            for n in generic_widths(&format) {
                let w = values(rows * n, (rows * 7 + n) as u64);
                let q = format.quantize(&w, n).unwrap();
                let dq = q.dequantize().unwrap();
                // Decoded from the reference's values: the paths' order alone.
                let from_dq = |b: usize, out: &mut [f32]| out.copy_from_slice(&dq[b * block..(b + 1) * block]);
                // ggml blocks decoded from their bytes, as the layer does, the
                // last row raw bytes (f16 scales subnormal, infinite or NaN).
                let raw = if let BlockFormat::Ggml(g) = format {
                    let mut bytes = q.data.clone();
                    let from = (rows - 1) * n / block * g.type_size();
                    let noise: Vec<u8> = values(bytes.len(), 3).iter().map(|v| (v * 1e4) as i32 as u8).collect();
                    bytes[from..].copy_from_slice(&noise[from..]);
                    Some((g, bytes))
                } else {
                    None
                };
                let raw_dq = raw.as_ref().map(|(g, bytes)| g.dequantize(bytes, rows * n).unwrap());
                for offset in 0..3 {
                    let xs = values(n + offset, (rows + n) as u64);
                    let mut x = xs[offset..].to_vec();
                    x[n - 1] = -0.0;
                    x[n / 2] = 1e-42;
                    let mut want = vec![f32::NAN; rows];
                    (scalar().gemv_decoded)(&from_dq, block, &x, &mut want);
                    for (i, w) in want.iter().enumerate() {
                        let c = contract(&x, |j| dq[i * n + j]);
                        assert!(same_bits(&[*w], &[c]), "{name} scalar vs contract, rows {rows} n {n} row {i}");
                    }
                    for k in simd() {
                        let mut got = vec![f32::NAN; rows];
                        (k.gemv_decoded)(&from_dq, block, &x, &mut got);
                        assert!(
                            same_bits(&got, &want),
                            "{} {name} rows {rows} n {n} offset {offset}: {got:?} vs {want:?}",
                            k.name
                        );
                    }
                    if let (Some((g, bytes)), Some(raw_dq)) = (&raw, &raw_dq) {
                        let size = g.type_size();
                        let from_bytes = |b: usize, out: &mut [f32]| {
                            out.copy_from_slice(&g.dequantize(&bytes[b * size..(b + 1) * size], block).unwrap())
                        };
                        let mut want = vec![f32::NAN; rows];
                        (scalar().gemv_decoded)(&from_bytes, block, &x, &mut want);
                        for (i, w) in want.iter().enumerate() {
                            let c = contract(&x, |j| raw_dq[i * n + j]);
                            assert!(same_bits(&[*w], &[c]), "{name} raw scalar vs contract, rows {rows} n {n} row {i}");
                        }
                        for k in simd() {
                            let mut got = vec![f32::NAN; rows];
                            (k.gemv_decoded)(&from_bytes, block, &x, &mut got);
                            assert!(
                                same_bits(&got, &want),
                                "{} {name} raw rows {rows} n {n} offset {offset}: {got:?} vs {want:?}",
                                k.name
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn decoded_block_paths_do_nothing_on_blocks_that_do_not_fit() {
    let zero = |_: usize, out: &mut [f32]| out.fill(0.0);
    for k in gemv_tables() {
        for (block, n) in [(32usize, 48usize), (0, 32), (24, 48), (512, 512), (256, 384)] {
            let mut y = vec![7.0f32; 3];
            (k.gemv_decoded)(&zero, block, &values(n, 1), &mut y);
            assert_eq!(y, [7.0; 3], "{} block {block} n {n}", k.name);
        }
    }
}

#[test]
fn generic_block_layers_give_the_contract_sum_of_the_formats_dequantized_weight() {
    let mut formats: Vec<BlockFormat> = GENERIC.iter().map(|n| BlockFormat::parse(n).unwrap()).collect();
    formats.push(BlockFormat::parse("mxfp8_e4m3").unwrap().with_scale_rule(quantlab::formats::ScaleRule::Even));
    for format in formats {
        for n in generic_widths(&format) {
            // 7 rows: one whole block of 4 rows in the SIMD paths, then 3 alone.
            let rows = 7;
            let w = weight(rows, n);
            let bias = Array1::from(values(rows, 6));
            let layer = Linear::block(w.view(), format, Some(bias.clone())).unwrap();
            let q = format.quantize(w.as_slice().unwrap(), n).unwrap();
            let dq = q.dequantize().unwrap();
            assert_eq!(layer.weight(), &Weight::Block(q.clone()));
            assert_eq!(layer.weight_bytes(), q.nbytes() as u64, "{format}");
            assert_eq!(layer.dequantized_weight().as_slice().unwrap(), &dq[..], "{format}");
            let x = Array2::from_shape_vec((2, n), values(2 * n, 17)).unwrap();
            let y = layer.forward(x.view()).unwrap();
            let mut worst = 0f32;
            for (r, xr) in x.rows().into_iter().enumerate() {
                let xs = xr.as_slice().unwrap();
                for i in 0..rows {
                    let c = contract(xs, |j| dq[i * n + j]) + bias[i];
                    assert_eq!(y[[r, i]].to_bits(), c.to_bits(), "{format} n {n} x {r} row {i}: {} vs {c}", y[[r, i]]);
                    let original: f32 = xr.iter().zip(w.row(i)).map(|(a, b)| a * b).sum::<f32>() + bias[i];
                    worst = worst.max((y[[r, i]] - original).abs());
                }
                assert_eq!(y.row(r), layer.forward_vec(xr).unwrap());
            }
            // Quantization error, not garbage: measured up to 3.2 (Q4_1, Q4_K)
            // and 10.6 (GGUF MXFP4, 288 values) on sums of up to 768 products
            // of values up to 2.
            assert!(worst > 0.0 && worst < 4.0 + 0.04 * n as f32, "{format} n {n}: {worst}");
        }
    }
}

/// f16 scales at the edges: zeros of both signs, the smallest and largest
/// subnormals, the largest finite, infinities, a quiet and a signalling NaN,
/// and ordinary ones.
const F16_SPECIALS: [u16; 12] =
    [0x0000, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00, 0xB400];

/// Super-block `t` of a crafted K-quant weight: codes from `noise`, and
/// scales that run through every code as `t` goes up (Q4_K: sub-block `j`'s
/// 6-bit scale `(8t + j) % 64` and min `(8t + j + 29) % 64`, so 8 blocks
/// hold all 64 of each; Q6_K: scale `i` the byte `16t + i`, so 16 blocks
/// hold all 256 i8 values), `d` and `dmin` from [`F16_SPECIALS`].
fn crafted_kquant(format: GgmlBlock, t: usize, noise: &[u8]) -> Vec<u8> {
    let special = |k: usize| F16_SPECIALS[k % F16_SPECIALS.len()].to_le_bytes();
    let mut b = noise[..format.type_size()].to_vec();
    if format == GgmlBlock::Q4K {
        let s = |j: usize| ((8 * t + j) % 64) as u8;
        let m = |j: usize| ((8 * t + j + 29) % 64) as u8;
        b[..2].copy_from_slice(&special(t));
        b[2..4].copy_from_slice(&special(5 * t + 3));
        // The packing `get_scale_min_k4` reads (ggml's quantize_row_q4_K).
        for j in 0..4 {
            b[4 + j] = s(j) | ((s(j + 4) >> 4) << 6);
            b[8 + j] = m(j) | ((m(j + 4) >> 4) << 6);
            b[12 + j] = (s(j + 4) & 0xF) | ((m(j + 4) & 0xF) << 4);
        }
        let parts = quantlab::formats::q4_k_parts(&b).unwrap();
        assert_eq!(parts.scales, std::array::from_fn(s), "block {t}");
        assert_eq!(parts.mins, std::array::from_fn(m), "block {t}");
    } else {
        for i in 0..16 {
            b[192 + i] = (16 * t + i) as u8;
        }
        b[208..210].copy_from_slice(&special(t));
    }
    b
}

/// `rows` rows of `n` values of a K-quant weight: super-block `t` (over the
/// flat tensor) is the library's quantization of spread values when `t % 3
/// == 0`, raw bytes when `t % 3 == 1`, [`crafted_kquant`] otherwise; or all
/// crafted.
fn kquant_blocks(format: GgmlBlock, rows: usize, n: usize, seed: u64, all_crafted: bool) -> Vec<u8> {
    let size = format.type_size();
    let w = values(rows * n, seed);
    let mut q = BlockFormat::Ggml(format).quantize(&w, n).unwrap().data;
    let noise: Vec<u8> = values(q.len(), seed + 1).iter().map(|v| (v * 1e4) as i32 as u8).collect();
    for (t, block) in q.chunks_exact_mut(size).enumerate() {
        let raw = &noise[t * size..(t + 1) * size];
        match (all_crafted, t % 3) {
            (false, 0) => {}
            (false, 1) => block.copy_from_slice(raw),
            _ => block.copy_from_slice(&crafted_kquant(format, t, raw)),
        }
    }
    q
}

#[test]
fn kquant_paths_match_scalar_and_the_reference_dequantization() {
    eprintln!("paths compared with scalar: {:?}", simd().iter().map(|k| k.name).collect::<Vec<_>>());
    for format in [GgmlBlock::Q4K, GgmlBlock::Q6K] {
        let kernel = |k: &GemvKernels| if format == GgmlBlock::Q4K { k.gemv_q4_k } else { k.gemv_q6_k };
        let mut shapes: Vec<(usize, usize, bool)> = Vec::new();
        for rows in [1usize, 2, 3, 4, 5, 7, 9] {
            for n in [256usize, 512, 768] {
                shapes.push((rows, n, false));
            }
        }
        // 32 crafted super-blocks (every scale and min code, every special d).
        shapes.extend([(16, 512, true), (5, 1024, true), (32, 256, true)]);
        for (rows, n, all_crafted) in shapes {
            let row_bytes = n / 256 * format.type_size();
            let all = kquant_blocks(format, rows + 1, n, (rows * 31 + n) as u64, all_crafted);
            let dq_all = format.dequantize(&all, (rows + 1) * n).unwrap();
            for offset in 0..3 {
                // Unaligned slices: the weight starts `offset` bytes in.
                let mut bytes = vec![0u8; offset];
                bytes.extend_from_slice(&all[..rows * row_bytes]);
                let q = &bytes[offset..];
                let dq = &dq_all[..rows * n];
                let xs = values(n + offset, (rows + n) as u64);
                let mut x = xs[offset..].to_vec();
                x[n - 1] = -0.0;
                x[n / 2] = 1e-42;
                let at = format!("{format:?} rows {rows} n {n} offset {offset} crafted {all_crafted}");
                check_block_paths(kernel, q, &x, dq, rows, &at);
            }
        }
    }
}

/// Rows of a finite f32 `x` times crafted weights whose every value is
/// finite: the exact bits must agree lane by lane, not only in NaN-ness
/// (a NaN anywhere in a row would hide a wrong weight behind it).
#[test]
fn kquant_paths_match_scalar_on_finite_crafted_weights() {
    for format in [GgmlBlock::Q4K, GgmlBlock::Q6K] {
        let kernel = |k: &GemvKernels| if format == GgmlBlock::Q4K { k.gemv_q4_k } else { k.gemv_q6_k };
        let (rows, n) = (32usize, 256usize);
        let size = format.type_size();
        let mut q = kquant_blocks(format, rows, n, 11, true);
        // d and dmin finite (the specials but infinities and NaNs).
        for (t, block) in q.chunks_exact_mut(size).enumerate() {
            let finite: Vec<u16> = F16_SPECIALS.iter().copied().filter(|h| h & 0x7C00 != 0x7C00).collect();
            let d = finite[t % finite.len()].to_le_bytes();
            let dmin = finite[(5 * t + 3) % finite.len()].to_le_bytes();
            if format == GgmlBlock::Q4K {
                block[..2].copy_from_slice(&d);
                block[2..4].copy_from_slice(&dmin);
            } else {
                block[208..210].copy_from_slice(&d);
            }
        }
        let dq = format.dequantize(&q, rows * n).unwrap();
        assert!(dq.iter().all(|v| v.is_finite()));
        // x small enough that no row overflows.
        let x: Vec<f32> = values(n, 5).iter().map(|v| v * 1e-36).collect();
        let mut want = vec![f32::NAN; rows];
        (kernel(scalar()))(&q, &x, &mut want);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(w.to_bits(), contract(&x, |j| dq[i * n + j]).to_bits(), "{format:?} row {i}");
        }
        for k in simd() {
            let mut got = vec![f32::NAN; rows];
            (kernel(k))(&q, &x, &mut got);
            let a: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = want.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b, "{} {format:?}", k.name);
        }
    }
}

#[test]
fn kquant_paths_do_nothing_on_rows_that_are_not_whole_super_blocks() {
    for k in gemv_tables() {
        for (kernel, size) in [(k.gemv_q4_k, 144usize), (k.gemv_q6_k, 210)] {
            for n in [0usize, 32, 128, 384] {
                let mut y = vec![7.0f32; 3];
                kernel(&vec![0u8; 3 * size * 2], &values(n, 1), &mut y);
                let expect = if n == 0 { [0.0; 3] } else { [7.0; 3] };
                assert_eq!(y, expect, "{} n {n}", k.name);
            }
            // Too few bytes for all rows: only the whole rows are written.
            let mut y = vec![7.0f32; 3];
            kernel(&vec![0u8; size + 5], &values(256, 1), &mut y);
            assert_eq!(y, [0.0, 7.0, 7.0], "{} short", k.name);
        }
    }
}
