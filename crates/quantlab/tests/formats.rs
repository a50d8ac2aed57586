//! Block formats against the golden bytes of their reference implementations
//! (tests/fixtures/formats_golden.py: gguf-py 0.19, ggml-python 0.0.45,
//! bitsandbytes 0.50, torchao 0.18). Every comparison is exact: bytes equal,
//! dequantized values equal bit for bit.

use std::collections::BTreeMap;
use std::path::PathBuf;

use quantlab::Error;
use quantlab::formats::{BlockFormat, BlockQuantized, FORMAT_NAMES, MxElement, ScaleRule, Scales, numerics};
use safetensors::{Dtype, SafeTensors};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fixture's tensors as (dtype, shape, bytes).
fn tensors(bytes: &[u8]) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensors().into_iter().map(|(k, v)| (k, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

struct Golden {
    input: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
    golden: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl Golden {
    fn load() -> Self {
        Golden {
            input: tensors(&fixture("formats_input.safetensors")),
            golden: tensors(&fixture("formats_golden.safetensors")),
        }
    }
    fn matrix(&self, m: &str) -> (Vec<f32>, usize) {
        let (dt, shape, b) = &self.input[m];
        assert_eq!(*dt, Dtype::F32);
        (f32s(b), *shape.last().unwrap())
    }
    fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.golden.get(key).map(|(_, _, b)| b.as_slice())
    }
    fn floats(&self, key: &str) -> Option<Vec<f32>> {
        self.golden.get(key).map(|(dt, _, b)| {
            assert_eq!(*dt, Dtype::F32, "{key}");
            f32s(b)
        })
    }
}

const MATRICES: [&str; 5] = ["heavy", "special", "small", "extreme", "odd"];

/// Bit-for-bit equality of f32 slices, reporting the first difference.
fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{what}[{i}]: got {g:e}, want {w:e}");
    }
}

fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!("{what}: first difference at byte {i}: got {:#04x}, want {:#04x}", got[i], want[i]);
    }
}

/// Quantizes every matrix the fixture has for `key`, comparing bytes, and
/// compares our dequantization of the reference's bytes with the reference's.
fn check_ggml(g: &Golden, name: &str, key: &str) -> usize {
    let format = BlockFormat::parse(name).unwrap();
    let mut checked = 0;
    for m in MATRICES {
        let Some(want) = g.bytes(&format!("{key}/{m}")) else { continue };
        let (x, cols) = g.matrix(m);
        let q = format.quantize(&x, cols).unwrap();
        assert_bytes(&format!("{name}/{m}"), &q.data, want);
        if let Some(deq) = g.floats(&format!("{key}/{m}.dequant")) {
            let ours = BlockQuantized { data: want.to_vec(), ..q.clone() }.dequantize().unwrap();
            assert_bits(&format!("{name}/{m} dequantized"), &ours, &deq);
        }
        checked += 1;
    }
    checked
}

#[test]
fn gguf_blocks_match_gguf_py_byte_for_byte() {
    let g = Golden::load();
    for (name, key) in [
        ("q8_0", "q8_0"),
        ("q4_0", "q4_0"),
        ("q4_1", "q4_1"),
        ("q5_0", "q5_0"),
        ("q5_1", "q5_1"),
        ("gguf_mxfp4", "mxfp4"),
    ] {
        assert_eq!(check_ggml(&g, name, key), 4, "{name}: matrices checked");
    }
}

#[test]
fn k_quants_match_ggml_reference_quantizers() {
    let g = Golden::load();
    for name in ["q4_k", "q6_k"] {
        assert_eq!(check_ggml(&g, name, name), 3, "{name}: matrices checked");
    }
}

#[test]
fn nf4_matches_bitsandbytes() {
    let g = Golden::load();
    let mut checked = 0;
    for (block, dq) in [(64, false), (64, true), (32, false), (128, true), (4096, false), (256, true)] {
        let key = format!("nf4_b{block}{}", if dq { "_dq" } else { "" });
        let format = BlockFormat::nf4(block, dq).unwrap();
        for m in ["heavy", "special", "odd", "small"] {
            let (x, cols) = g.matrix(m);
            let what = format!("{key}/{m}");
            let q = format.quantize(&x, cols).unwrap();
            assert_bytes(&format!("{what} packed"), &q.data, g.bytes(&format!("{what}.packed")).unwrap());
            match &q.scales {
                Scales::Absmax(a) => {
                    assert_bits(&format!("{what} absmax"), a, &g.floats(&format!("{what}.absmax")).unwrap())
                }
                Scales::DoubleQuant { codes, absmax2, offset } => {
                    assert_bits(&format!("{what} offset"), &[*offset], &g.floats(&format!("{what}.offset")).unwrap());
                    assert_bytes(&format!("{what} absmax codes"), codes, g.bytes(&format!("{what}.absmax_q")).unwrap());
                    assert_bits(&format!("{what} absmax2"), absmax2, &g.floats(&format!("{what}.absmax2")).unwrap());
                    assert_bits(
                        &format!("{what} code2"),
                        &quantlab::formats::DYNAMIC_CODE,
                        &g.floats(&format!("{what}.code2")).unwrap(),
                    );
                }
                other => panic!("{what}: scales {other:?}"),
            }
            if let Some(deq) = g.floats(&format!("{what}.dequant")) {
                assert_bits(&format!("{what} dequantized"), &q.dequantize().unwrap(), &deq);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 24);
    assert_bits("nf4 code", &quantlab::formats::NF4_CODE, &g.floats("nf4/code").unwrap());
}

fn mx_format(element: MxElement, rule: ScaleRule) -> BlockFormat {
    BlockFormat::Mx { element, rule }
}

#[test]
fn mx_matches_torchao_to_mx_for_every_element_and_scale_rule() {
    let g = Golden::load();
    let elements = [
        ("mxfp8_e4m3", MxElement::E4m3),
        ("mxfp8_e5m2", MxElement::E5m2),
        ("mxfp6_e2m3", MxElement::E2m3),
        ("mxfp6_e3m2", MxElement::E3m2),
        ("mxfp4", MxElement::E2m1),
    ];
    let rules = [ScaleRule::Floor, ScaleRule::Ceil, ScaleRule::Even, ScaleRule::Rceil];
    let mut checked = 0;
    for (en, element) in elements {
        for rule in rules {
            for m in ["heavy", "special", "small", "extreme"] {
                let what = format!("{en}_{}/{m}", rule.name());
                let (x, cols) = g.matrix(m);
                let q = mx_format(element, rule).quantize(&x, cols).unwrap();
                let Scales::E8m0(scales) = &q.scales else { panic!("{what}: scales") };
                assert_bytes(&format!("{what} scales"), scales, g.bytes(&format!("{what}.scales")).unwrap());
                let want = g.bytes(&format!("{what}.codes")).unwrap();
                if element.bits() == 6 {
                    assert_bytes(&format!("{what} codes"), &q.element_codes().unwrap(), want);
                } else {
                    assert_bytes(&format!("{what} codes"), &q.data, want);
                }
                if let Some(deq) = g.floats(&format!("{what}.dequant")) {
                    assert_bits(&format!("{what} dequantized"), &q.dequantize().unwrap(), &deq);
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 80);
}

#[test]
fn mxint8_matches_the_spec_rule_evaluated_by_numpy() {
    let g = Golden::load();
    for m in ["heavy", "special", "small", "extreme"] {
        let what = format!("mxint8_floor/{m}");
        let (x, cols) = g.matrix(m);
        let q = BlockFormat::parse("mxint8").unwrap().quantize(&x, cols).unwrap();
        let Scales::E8m0(scales) = &q.scales else { panic!() };
        assert_bytes(&format!("{what} scales"), scales, g.bytes(&format!("{what}.scales")).unwrap());
        assert_bytes(&format!("{what} codes"), &q.data, g.bytes(&format!("{what}.codes")).unwrap());
        if let Some(deq) = g.floats(&format!("{what}.dequant")) {
            assert_bits(&format!("{what} dequantized"), &q.dequantize().unwrap(), &deq);
        }
    }
}

#[test]
fn nvfp4_matches_torchao_with_and_without_a_tensor_scale() {
    let g = Golden::load();
    for (key, tensor_scale) in [("nvfp4", false), ("nvfp4_pts", true)] {
        for m in ["heavy", "special", "small", "extreme"] {
            let what = format!("{key}/{m}");
            let (x, cols) = g.matrix(m);
            let q = BlockFormat::Nvfp4 { tensor_scale }.quantize(&x, cols).unwrap();
            let Scales::E4m3 { blocks, tensor } = &q.scales else { panic!() };
            assert_bytes(&format!("{what} scales"), blocks, g.bytes(&format!("{what}.scales")).unwrap());
            assert_bytes(&format!("{what} codes"), &q.data, g.bytes(&format!("{what}.codes")).unwrap());
            if tensor_scale {
                assert_bits(
                    &format!("{what} tensor scale"),
                    &[tensor.unwrap()],
                    &g.floats(&format!("{what}.tensor_scale")).unwrap(),
                );
            } else {
                assert!(tensor.is_none());
            }
            assert_bits(
                &format!("{what} dequantized"),
                &q.dequantize().unwrap(),
                &g.floats(&format!("{what}.dequant")).unwrap(),
            );
        }
    }
}

/// The LCG of formats_golden.py's `lcg_vector`.
fn lcg_vector(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            ((f64::from(s >> 8) * 2f64.powi(-24)) * 3.0) as f32
        })
        .collect()
}

#[test]
fn torch_sum_and_log2_roundings_are_reproduced() {
    let n = tensors(&fixture("formats_numerics.safetensors"));
    let lengths: Vec<i64> =
        n["torch_sum/lengths"].2.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    let sums = f32s(&n["torch_sum/sums"].2);
    let means = f32s(&n["torch_sum/means"].2);
    for ((&len, &sum), &mean) in lengths.iter().zip(&sums).zip(&means) {
        let v = lcg_vector(len as usize, len as u32);
        let ours = numerics::torch_sum(&v);
        assert_eq!(ours.to_bits(), sum.to_bits(), "torch.sum of {len} values: got {ours}, want {sum}");
        assert_eq!((ours / len as f32).to_bits(), mean.to_bits(), "torch.mean of {len} values");
    }
    let k: Vec<i32> = n["log2/k"].2.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
    let below: Vec<i32> = n["log2/numpy_floor_rounds_up_below"]
        .2
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let above: Vec<i32> = n["log2/torch_ceil_rounds_down_above"]
        .2
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    for ((&k, &b), &a) in k.iter().zip(&below).zip(&above) {
        let p = 2f32.powi(k).to_bits();
        for j in 1..=4096u32 {
            let x = f32::from_bits(p - j);
            let want = if (j as i32) <= b { k as f32 } else { (k - 1) as f32 };
            assert_eq!(numerics::floor_log2_numpy(x), want, "floor(np.log2({x:e})), 2^{k} - {j} ulps");
            let x = f32::from_bits(p + j);
            let want = if (j as i32) <= a { k as f32 } else { (k + 1) as f32 };
            assert_eq!(numerics::ceil_log2_torch(x), want, "ceil(torch.log2({x:e})), 2^{k} + {j} ulps");
        }
    }
}

#[test]
fn bits_per_weight_count_the_scales() {
    let bpw = |name: &str| BlockFormat::parse(name).unwrap().bits_per_weight();
    assert_eq!(bpw("mxfp4"), 4.25);
    assert_eq!(bpw("mxfp6_e2m3"), 6.25);
    assert_eq!(bpw("mxfp8_e4m3"), 8.25);
    assert_eq!(bpw("nvfp4"), 4.5);
    assert_eq!(BlockFormat::parse("nvfp4").unwrap().bits_per_tensor(), 32);
    assert_eq!(bpw("nf4"), 4.5);
    assert!((BlockFormat::nf4(64, true).unwrap().bits_per_weight() - 4.127).abs() < 1e-3);
    assert_eq!(bpw("q4_k"), 4.5);
    assert_eq!(bpw("q6_k"), 6.5625);
    assert_eq!(bpw("q8_0"), 8.5);
    // A quantized tensor's bytes agree with its bits per weight.
    let x: Vec<f32> = (0..512).map(|i| (i as f32 * 0.37).sin()).collect();
    for name in quantlab::formats::FORMAT_NAMES {
        let f = BlockFormat::parse(name).unwrap();
        let q = f.quantize(&x, 256).unwrap();
        let bits = (q.nbytes() * 8) as f64 - f.bits_per_tensor() as f64;
        assert_eq!(bits / 512.0, f.bits_per_weight(), "{name}");
        assert_eq!(f.name(), name);
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let f = BlockFormat::parse("q4_k").unwrap();
    assert!(matches!(BlockFormat::parse("q3_xs"), Err(Error::UnknownFormat { .. })));
    let msg = BlockFormat::parse("fp5").unwrap_err().to_string();
    assert!(msg.contains("fp5") && msg.contains("mxfp4") && msg.contains("q6_k"), "{msg}");
    assert!(matches!(f.quantize(&[0.5; 384], 384), Err(Error::BlockMismatch { block: 256, len: 384, .. })));
    let mut x = vec![0.5f32; 256];
    x[77] = f32::NAN;
    assert!(matches!(f.quantize(&x, 256), Err(Error::NonFinite { index: 77, .. })));
    x[77] = f32::INFINITY;
    assert!(matches!(BlockFormat::parse("nf4").unwrap().quantize(&x, 256), Err(Error::NonFinite { index: 77, .. })));
    assert!(matches!(f.quantize(&[], 256), Err(Error::Empty { .. })));
    // Every format finds the first non-finite value, wherever it is: the
    // independent-block formats check a step of 8192 values at a time, in
    // vectors of 16 and a scalar tail.
    for at in [0, 15, 16, 8191, 8192, 20000, 24575] {
        let mut x = vec![0.5f32; 24576];
        x[at] = if at % 2 == 0 { f32::NEG_INFINITY } else { f32::NAN };
        x[24575] = f32::INFINITY;
        for name in FORMAT_NAMES {
            let got = BlockFormat::parse(name).unwrap().quantize(&x, 256);
            assert!(matches!(got, Err(Error::NonFinite { index, .. }) if index == at), "{name} at {at}: {got:?}");
        }
    }
    assert!(matches!(BlockFormat::nf4(48, false), Err(Error::BadParams { .. })));
    assert!(matches!(BlockFormat::nf4(8192, false), Err(Error::BadParams { .. })));
    // Wrong byte lengths are refused before dequantizing.
    let mut q = f.quantize(&[0.25; 512], 256).unwrap();
    q.data.pop();
    assert!(matches!(q.dequantize(), Err(Error::WrongByteLength { expected: 288, got: 287, .. })));
    let mut q = BlockFormat::parse("mxfp4").unwrap().quantize(&[0.25; 64], 64).unwrap();
    q.scales = Scales::E8m0(vec![127]);
    assert!(matches!(q.dequantize(), Err(Error::WrongByteLength { expected: 2, got: 1, .. })));
    q.scales = Scales::Absmax(vec![1.0]);
    assert!(matches!(q.dequantize(), Err(Error::BadParams { .. })));
    assert!(matches!(BlockFormat::Nvfp4 { tensor_scale: true }.quantize(&[0.0; 32], 32), Err(Error::BadParams { .. })));
}
