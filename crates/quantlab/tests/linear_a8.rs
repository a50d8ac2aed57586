//! int8 activations (W8A8): every int8-activation path (AVX-512 VNNI,
//! AVX-VNNI, AVX2, NEON with and without dotprod, whichever this CPU runs)
//! against the scalar reference bit for bit, on odd row counts, rows of 1 to
//! 50 blocks, extreme codes and scales; the scalar reference against the
//! contract written out here with i64 sums; the activation quantization and
//! the products against gguf-py's Q8_0 and a float64 numpy computation
//! (tests/fixtures/linear_a8.py); the layer's option and its errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ndarray::Array2;
use quantlab::formats::{BlockFormat, BlockQuantized, GgmlBlock, Scales};
use quantlab::linear::{Activations, Linear, Weight};
use quantlab::{A8Kernels, Error, Q8Activations, a8_kernel, a8_tables, gemv_kernel};
use safetensors::SafeTensors;

mod common;
use common::values;

fn scalar() -> &'static A8Kernels {
    a8_tables().into_iter().find(|k| k.name == "scalar").expect("scalar is always available")
}

fn simd() -> Vec<&'static A8Kernels> {
    a8_tables().into_iter().filter(|k| k.name != "scalar").collect()
}

/// int8 codes over the whole range, whole blocks of -128 and 127 in places.
fn codes(n: usize, seed: u64) -> Vec<i8> {
    let mut c: Vec<i8> = values(n, seed).iter().map(|v| (v * 64.0).clamp(-128.0, 127.0) as i8).collect();
    for (b, block) in c.chunks_mut(32).enumerate() {
        match (b + seed as usize) % 7 {
            0 => block.fill(-128),
            1 => block.fill(127),
            2 => block.fill(0),
            _ => {}
        }
    }
    c
}

/// Block scales with zeros, subnormals, huge and infinite values among them.
fn block_scales(nb: usize, seed: u64) -> Vec<f32> {
    let specials = [0.0f32, 6e-8, 1e-40, 65504.0, 3.0e38, 1.0, 0.5, 2.0e-3];
    values(nb, seed)
        .iter()
        .enumerate()
        .map(|(b, v)| if b % 3 == 1 { specials[(b + seed as usize) % specials.len()] } else { v.abs() * 0.01 })
        .collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// The documented combination, written out independently: block sums in
/// i64, one block to lane `b % 16`, `fma(scale_b, sum, acc)`, the lane tree.
fn contract(nb: usize, scale: impl Fn(usize) -> f32, isum: impl Fn(usize) -> i64) -> f32 {
    let mut acc = [0f32; 16];
    for b in 0..nb {
        let s = isum(b);
        assert!(s.abs() < 1 << 24, "a block sum is exact in f32");
        acc[b % 16] = scale(b).mul_add(s as f32, acc[b % 16]);
    }
    for width in [8, 4, 2, 1] {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

fn dot(w: &[i8], x: &[i8]) -> i64 {
    w.iter().zip(x).map(|(&a, &b)| i64::from(a) * i64::from(b)).sum()
}

const ROWS: [usize; 8] = [1, 2, 3, 4, 5, 7, 9, 17];
const BLOCKS: [usize; 12] = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 50];

#[test]
fn int8_weight_paths_match_scalar_and_the_contract() {
    eprintln!("int8-activation paths compared with scalar: {:?}", simd().iter().map(|k| k.name).collect::<Vec<_>>());
    for rows in ROWS {
        for nb in BLOCKS {
            let n = nb * 32;
            let seed = (rows * 100 + nb) as u64;
            let x = Q8Activations::from_parts(codes(n, seed), block_scales(nb, seed)).unwrap();
            let q = codes(rows * n, seed + 1);
            let s: Vec<f32> = (0..rows).map(|i| [0.01, 1e-30, 7.5, 1e30][i % 4] + i as f32 * 0.003).collect();
            let mut want = vec![f32::NAN; rows];
            (scalar().gemv_i8)(&q, &s, &x, &mut want);
            for (i, w) in want.iter().enumerate() {
                let row = &q[i * n..(i + 1) * n];
                let c =
                    contract(nb, |b| x.scales()[b], |b| dot(&row[b * 32..][..32], &x.codes()[b * 32..][..32])) * s[i];
                assert!(same_bits(&[*w], &[c]), "scalar vs contract, rows {rows} blocks {nb} row {i}: {w} vs {c}");
            }
            for k in simd() {
                let mut got = vec![f32::NAN; rows];
                (k.gemv_i8)(&q, &s, &x, &mut got);
                assert!(same_bits(&got, &want), "{} int8 rows {rows} blocks {nb}: {got:?} vs {want:?}", k.name);
            }
        }
    }
}

/// Q8_0 weight rows: quantized spread values, with raw blocks (any f16
/// scale: subnormal, infinite, NaN) and all-extreme codes mixed in.
fn q8_0_weight(rows: usize, nb: usize, seed: u64) -> Vec<u8> {
    let mut q = BlockFormat::Ggml(GgmlBlock::Q8_0).quantize(&values(rows * nb * 32, seed), nb * 32).unwrap().data;
    let c = codes(rows * nb * 32, seed + 2);
    let raw = values(rows * nb, seed + 3);
    for (b, blk) in q.chunks_exact_mut(34).enumerate() {
        if b % 4 == 3 {
            blk[..2].copy_from_slice(&((raw[b] * 1e4) as i32 as u16).to_le_bytes());
            blk[2..].iter_mut().zip(&c[b * 32..]).for_each(|(o, &v)| *o = v as u8);
        }
    }
    q
}

#[test]
fn q8_0_weight_paths_match_scalar_and_the_contract() {
    for rows in ROWS {
        for nb in BLOCKS {
            let n = nb * 32;
            let seed = (rows * 31 + nb) as u64;
            let x = Q8Activations::from_parts(codes(n, seed), block_scales(nb, seed)).unwrap();
            let w = q8_0_weight(rows, nb, seed);
            let mut want = vec![f32::NAN; rows];
            (scalar().gemv_q8_0)(&w, &x, &mut want);
            for (i, got) in want.iter().enumerate() {
                let blk = |b: usize| &w[(i * nb + b) * 34..][..34];
                let dw = |b: usize| half::f16::from_le_bytes([blk(b)[0], blk(b)[1]]).to_f32();
                let wq = |b: usize| blk(b)[2..].iter().map(|&c| c as i8).collect::<Vec<_>>();
                let c = contract(nb, |b| dw(b) * x.scales()[b], |b| dot(&wq(b), &x.codes()[b * 32..][..32]));
                assert!(same_bits(&[*got], &[c]), "scalar vs contract, rows {rows} blocks {nb} row {i}");
            }
            for k in simd() {
                let mut got = vec![f32::NAN; rows];
                (k.gemv_q8_0)(&w, &x, &mut got);
                assert!(same_bits(&got, &want), "{} Q8_0 rows {rows} blocks {nb}: {got:?} vs {want:?}", k.name);
            }
        }
    }
}

#[test]
fn paths_on_quantized_vectors_with_special_blocks_match_scalar() {
    // Through the quantizer: zero blocks, f16-subnormal and huge scales, one
    // block whose scale overflows f16 (infinite, as gguf-py gives).
    for nb in [1usize, 5, 16, 19, 40] {
        let n = nb * 32;
        let mut x = values(n, nb as u64);
        for (b, blk) in x.chunks_mut(32).enumerate() {
            match b % 5 {
                1 => blk.fill(0.0),
                2 => blk.iter_mut().for_each(|v| *v *= 1e-7),
                3 => blk.iter_mut().for_each(|v| *v *= 2e5),
                _ => {}
            }
        }
        if nb == 40 {
            x[39 * 32] = 1e7;
        }
        let xa = Q8Activations::quantize(&x).unwrap();
        let q = codes(5 * n, 9);
        let s = [0.01f32, 0.02, 0.5, 1.0, 3.0];
        let mut want = [0f32; 5];
        (scalar().gemv_i8)(&q, &s, &xa, &mut want);
        for k in simd() {
            let mut got = [f32::NAN; 5];
            (k.gemv_i8)(&q, &s, &xa, &mut got);
            assert!(same_bits(&got, &want), "{} blocks {nb}: {got:?} vs {want:?}", k.name);
        }
    }
}

#[test]
fn activations_need_whole_blocks_and_paths_stay_inside_short_slices() {
    assert!(Q8Activations::quantize(&[]).is_none());
    assert!(Q8Activations::quantize(&[1.0; 33]).is_none());
    assert!(Q8Activations::from_parts(vec![0; 64], vec![1.0]).is_none());
    let x = Q8Activations::quantize(&values(64, 1)).unwrap();
    for k in a8_tables() {
        // Fewer codes or scales than y asks for: only the whole rows are written.
        let mut y = [f32::NAN; 3];
        (k.gemv_i8)(&codes(2 * 64 + 5, 2), &[1.0; 3], &x, &mut y);
        assert!(!y[0].is_nan() && !y[1].is_nan() && y[2].is_nan(), "{}: {y:?}", k.name);
        let mut y = [f32::NAN; 3];
        (k.gemv_q8_0)(&[0u8; 2 * 68 + 30], &x, &mut y);
        assert!(!y[1].is_nan() && y[2].is_nan(), "{}: {y:?}", k.name);
    }
}

fn fixture() -> BTreeMap<String, (Vec<usize>, Vec<u8>)> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/linear_a8.safetensors");
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(k, v)| (k, (v.shape().to_vec(), v.data().to_vec()))).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn layers_match_gguf_py_activations_and_a_float64_reference() {
    let f = fixture();
    let (xs, x) = (&f["x"].0, f32s(&f["x"].1));
    let (v, n) = (xs[0], xs[1]);
    let codes: Vec<i8> = f["w.codes"].1.iter().map(|&b| b as i8).collect();
    let scales = f32s(&f["w.scales"].1);
    let r = scales.len();
    let int8 = Linear::from_parts(r, n, Weight::Int8 { codes, scales }, None)
        .unwrap()
        .with_activations(Activations::Q8_0)
        .unwrap();
    let wq = BlockQuantized {
        format: BlockFormat::Ggml(GgmlBlock::Q8_0),
        rows: r,
        cols: n,
        data: f["w.q8_0"].1.clone(),
        scales: Scales::InBlocks,
    };
    let q8 = Linear::from_parts(r, n, Weight::Block(wq), None).unwrap().with_activations(Activations::Q8_0).unwrap();
    let (want_int8, want_q8) = (f64s(&f["y.int8"].1), f64s(&f["y.q8_0"].1));
    let xq = &f["x.q8_0"].1;
    for i in 0..v {
        let xi = &x[i * n..(i + 1) * n];
        // quantlab's activations are gguf-py's bytes.
        let a = Q8Activations::quantize(xi).unwrap();
        for (b, blk) in xq[i * n / 32 * 34..(i + 1) * n / 32 * 34].chunks_exact(34).enumerate() {
            assert_eq!(a.scales()[b], half::f16::from_le_bytes([blk[0], blk[1]]).to_f32(), "vector {i} block {b}");
            assert!(blk[2..].iter().zip(&a.codes()[b * 32..]).all(|(&g, &q)| g as i8 == q), "vector {i} block {b}");
        }
        for (layer, want, what) in [(&int8, &want_int8, "int8"), (&q8, &want_q8, "Q8_0")] {
            let mut y = vec![0f32; r];
            layer.matvec_into(xi, &mut y).unwrap();
            let want = &want[i * r..(i + 1) * r];
            // The f32 combination of exact block sums: within a few ulps of the
            // magnitudes summed (bounded here by the largest |y| of the vector).
            let scale = want.iter().fold(0f64, |m, w| m.max(w.abs()));
            for (j, (&g, &w)) in y.iter().zip(want).enumerate() {
                assert!(
                    (f64::from(g) - w).abs() <= 1e-5 * scale + 1e-30,
                    "{what} vector {i} row {j}: {g} vs numpy {w}"
                );
            }
        }
    }
}

#[test]
fn the_layer_option_costs_about_the_activation_rounding() {
    let (r, n) = (64, 512);
    let w = Array2::from_shape_vec((r, n), values(r * n, 5)).unwrap();
    let x = values(n, 6);
    let f32_layer = Linear::int8_per_channel(w.view(), None).unwrap();
    let a8 = f32_layer.clone().with_activations(Activations::Q8_0).unwrap();
    assert_eq!(a8.activations(), Activations::Q8_0);
    let exact: Vec<f64> = (0..r).map(|i| (0..n).map(|j| f64::from(w[[i, j]]) * f64::from(x[j])).sum::<f64>()).collect();
    let err = |l: &Linear| {
        let y = l.forward_vec(ndarray::ArrayView1::from(&x)).unwrap();
        let num: f64 = y.iter().zip(&exact).map(|(a, b)| (f64::from(*a) - b).powi(2)).sum();
        (num / exact.iter().map(|b| b * b).sum::<f64>()).sqrt()
    };
    let (e8, e88) = (err(&f32_layer), err(&a8));
    eprintln!("relative error: int8 weights {e8:.2e}, int8 weights x int8 activations {e88:.2e}");
    assert!(e88 < 3.0 * e8 && e88 < 2e-2, "{e8} {e88}");
    // The batch path runs the same product row by row.
    let xb = Array2::from_shape_vec((2, n), [x.clone(), x.clone()].concat()).unwrap();
    let yb = a8.forward(xb.view()).unwrap();
    let y1 = a8.forward_vec(ndarray::ArrayView1::from(&x)).unwrap();
    assert!(same_bits(yb.row(1).as_slice().unwrap(), y1.as_slice().unwrap()));
}

#[test]
fn the_layer_refuses_what_int8_activations_cannot_do() {
    let w = Array2::from_shape_vec((4, 48), values(4 * 48, 1)).unwrap();
    let bad = |r: Result<Linear, Error>| matches!(r, Err(Error::BadLayer { .. }));
    // Rows of 48: not whole blocks.
    assert!(bad(Linear::int8_per_channel(w.view(), None).unwrap().with_activations(Activations::Q8_0)));
    let w = Array2::from_shape_vec((4, 64), values(4 * 64, 1)).unwrap();
    assert!(bad(Linear::new(w.clone(), None).unwrap().with_activations(Activations::Q8_0)));
    assert!(bad(Linear::int4_per_group(w.view(), 32, None).unwrap().with_activations(Activations::Q8_0)));
    let q4 = Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q4_0), None).unwrap();
    assert!(bad(q4.with_activations(Activations::Q8_0)));
    let layer = Linear::int8_per_channel(w.view(), None).unwrap().with_activations(Activations::Q8_0).unwrap();
    let mut y = [0f32; 4];
    let mut x = values(64, 2);
    assert!(matches!(layer.matvec_into(&x[..32], &mut y), Err(Error::ShapeMismatch { .. })));
    x[40] = f32::NAN;
    assert!(matches!(layer.matvec_into(&x, &mut y), Err(Error::NonFinite { index: 40, .. })));
    x[40] = f32::INFINITY;
    assert!(matches!(layer.matvec_into(&x, &mut y), Err(Error::NonFinite { index: 40, .. })));
    // Back to f32 activations.
    let back = layer.with_activations(Activations::F32).unwrap();
    x[40] = 1.0;
    back.matvec_into(&x, &mut y).unwrap();
}

#[test]
fn the_layer_runs_the_int8_activation_path_of_the_chosen_family() {
    fn family(name: &str) -> &str {
        match name {
            "avx512vnni" => "avx512",
            "avxvnni" | "avx2" => "avx2",
            "neon-dotprod" | "neon" => "neon",
            other => other,
        }
    }
    let chosen = gemv_kernel();
    let chosen = if chosen.starts_with("avx512") { "avx512" } else { chosen };
    eprintln!("gemv path {chosen}, int8-activation path {}", a8_kernel());
    let best = a8_tables().into_iter().find(|k| {
        let rank = |f: &str| ["avx512", "avx2", "neon", "scalar"].iter().position(|n| *n == f).unwrap_or(3);
        rank(family(k.name)) >= rank(chosen)
    });
    assert_eq!(a8_kernel(), best.unwrap().name);
}
