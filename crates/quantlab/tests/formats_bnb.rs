//! NF4 as bitsandbytes 0.50.2 stores it (`quantlab::io::bnb`), against files bitsandbytes wrote
//! (tests/fixtures/nf4_bnb_*.safetensors and their dequantized values, made by
//! tests/fixtures/nf4_quant_state.py from nf4_input.safetensors).

use std::path::PathBuf;

use quantlab::Error;
use quantlab::formats::{BlockFormat, DYNAMIC_CODE, Scales};
use quantlab::io::bnb::{Nf4Absmax, find_nf4, nf4_tensors};
use quantlab::io::{Dtype, Input, OutTensor};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn double_quant_codes_are_bitsandbytes_table_lookups() {
    let input = Input::open(&path("nf4_input.safetensors")).unwrap();
    let big = input.tensors().unwrap().into_iter().find(|t| t.name == "big.weight").unwrap();
    let x = f32s(&big.data);
    let q = BlockFormat::nf4(64, true).unwrap().quantize(&x, 512).unwrap();
    let Scales::DoubleQuant { codes, absmax2, offset } = &q.scales else { panic!("not double-quantized") };
    let bnb = Input::open(&path("nf4_bnb_b64_dq.safetensors")).unwrap();
    let tensors = bnb.tensors().unwrap();
    let get = |n: &str| tensors.iter().find(|t| t.name == n).unwrap().data.to_vec();
    assert_eq!(codes, &get("big.weight.absmax"), "the absmax codes bitsandbytes wrote");
    assert_eq!(f32s(&get("big.weight.nested_absmax")), *absmax2);
    assert_eq!(q.data, get("big.weight"));
    // The table is not the nearest code everywhere: this input has codes where the two differ.
    let weights = find_nf4(&tensors).unwrap();
    let Nf4Absmax::Nested { offset: file_offset, .. } = &weights[0].absmax else { panic!("not nested") };
    assert_eq!(file_offset, offset);
    let absmax: Vec<f32> = x.chunks(64).map(|b| b.iter().fold(0f32, |m, v| m.max(v.abs()))).collect();
    let nearest_differs = absmax.iter().zip(codes).enumerate().any(|(i, (a, &c))| {
        let v = (a - offset) * (1.0 / absmax2[i / 256]);
        let nearest = (0..256).min_by(|&p, &q| (v - DYNAMIC_CODE[p]).abs().total_cmp(&(v - DYNAMIC_CODE[q]).abs()));
        nearest != Some(usize::from(c))
    });
    assert!(nearest_differs, "the fixture no longer tells the table from the nearest code");
}

#[test]
fn reads_bitsandbytes_files_to_their_values() {
    let golden = Input::open(&path("nf4_bnb_dequant.safetensors")).unwrap();
    let golden = golden.tensors().unwrap();
    for config in ["b64", "b64_dq", "b128_dq"] {
        let file = Input::open(&path(&format!("nf4_bnb_{config}.safetensors"))).unwrap();
        let tensors = file.tensors().unwrap();
        let weights = find_nf4(&tensors).unwrap();
        let names: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["big.weight", "half.weight", "odd.weight"]);
        for w in &weights {
            assert_eq!(w.dtype, if w.name == "half.weight" { "bfloat16" } else { "float32" });
            assert_eq!(w.blocksize, if config == "b128_dq" { 128 } else { 64 });
            assert_eq!(matches!(w.absmax, Nf4Absmax::Nested { .. }), config.ends_with("_dq"));
            let packed = &tensors.iter().find(|t| t.name == w.name).unwrap().data;
            let got = w.dequantize(packed).unwrap();
            let want = f32s(&golden.iter().find(|t| t.name == format!("{config}/{}", w.name)).unwrap().data);
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()) && got.len() == want.len());
            // A weight whose parts do not fit is an error, not a panic.
            let mut broken = w.clone();
            broken.blocksize *= 2;
            assert!(matches!(broken.dequantize(packed), Err(Error::BadQuantState { .. })));
            assert!(matches!(w.dequantize(&packed[1..]), Err(Error::BadQuantState { .. })));
        }
        // Packed bytes stored in another type (`Params4bit(quant_storage=torch.bfloat16)`) are the same bytes.
        let mut as_bf16 = tensors.clone();
        let t = as_bf16.iter_mut().find(|t| t.name == "big.weight").unwrap();
        t.dtype = Dtype::BF16;
        t.shape = vec![t.data.len() / 2, 1];
        assert_eq!(find_nf4(&as_bf16).unwrap(), weights);
        // A part of the wrong type is an error that names it.
        let mut wrong = tensors.clone();
        wrong.iter_mut().find(|t| t.name == "odd.weight.quant_map").unwrap().dtype = Dtype::I32;
        let e = find_nf4(&wrong).unwrap_err().to_string();
        assert!(e.contains("odd.weight") && e.contains("quant_map") && e.contains("I32"), "{e}");
    }
}

#[test]
fn only_nf4_goes_into_bitsandbytes_layout() {
    let q = BlockFormat::parse("q8_0").unwrap().quantize(&[0.5; 32], 32).unwrap();
    let r: quantlab::Result<Vec<OutTensor<'static>>> = nf4_tensors("w", &[1, 32], "float32", &q);
    assert!(matches!(r, Err(Error::BadParams { .. })));
    let q = BlockFormat::nf4(64, false).unwrap().quantize(&[0.5; 64], 64).unwrap();
    let r: quantlab::Result<Vec<OutTensor<'static>>> = nf4_tensors("w", &[2, 64], "float32", &q);
    assert!(matches!(r, Err(Error::BadParams { .. })), "a shape that does not fit the values");
}
