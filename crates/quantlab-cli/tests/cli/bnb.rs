//! NF4 in bitsandbytes' own safetensors layout (`Params4bit` + `QuantState.as_dict(packed=True)`, as
//! transformers saves a 4-bit `Linear4bit`): `quantize --format nf4` writes exactly the tensors bitsandbytes
//! 0.50.2 writes, and `dequantize` reads a bitsandbytes-written file back to bitsandbytes' values.
//! The references are tests/fixtures/nf4_bnb_*.safetensors, made by tests/fixtures/nf4_quant_state.py.

use std::collections::BTreeMap;

use safetensors::tensor::Dtype;
use serde_json::Value;

use crate::common::{Loaded, entries, f32s, fixture, ok, quantlab, write_safetensors};

/// (fixture config, quantize flags)
const CONFIGS: [(&str, &[&str]); 3] =
    [("b64", &[]), ("b64_dq", &["--double-quant"]), ("b128_dq", &["--double-quant", "--block-size", "128"])];

const STATE: &str = ".quant_state.bitsandbytes__nf4";

/// Every tensor of a file: name -> (dtype, shape, bytes).
fn tensors(l: &Loaded) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    l.st().tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect()
}

#[test]
fn nf4_safetensors_are_the_tensors_bitsandbytes_writes() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("nf4_input.safetensors");
    for (config, flags) in CONFIGS {
        let out = dir.path().join(format!("{config}.safetensors"));
        let mut args = vec!["quantize", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--format", "nf4"];
        args.extend(flags);
        ok(&args);
        let got_file = Loaded::open(&out);
        let want_file = Loaded::open(&fixture(&format!("nf4_bnb_{config}.safetensors")));
        let (got, want) = (tensors(&got_file), tensors(&want_file));
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{config}: tensor names");
        for (name, (dtype, shape, bytes)) in &want {
            let (g_dtype, g_shape, g_bytes) = &got[name];
            assert_eq!((g_dtype, g_shape), (dtype, shape), "{config}: {name}");
            if name.ends_with(STATE) {
                let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap();
                assert_eq!(parse(g_bytes), parse(bytes), "{config}: {name}");
            } else {
                assert!(g_bytes == bytes, "{config}: {name}: bytes differ from bitsandbytes'");
            }
        }
        // Double quantization stores the absmaxes as codes, with their own absmax (two blocks of 256 for b64).
        let nested = got.get("big.weight.nested_absmax").map(|t| t.1.clone());
        assert_eq!(nested, config.ends_with("_dq").then(|| vec![if config == "b64_dq" { 2 } else { 1 }]));
        // quantlab's own metadata still says what was quantized and how, and where each part is.
        let meta = got_file.metadata();
        let layout: Value = serde_json::from_str(&meta["quantlab_blocks"]).unwrap();
        assert_eq!(layout["big.weight"]["format"], "nf4");
        assert_eq!(layout["big.weight"]["shape"], serde_json::json!([33, 512]));
        assert_eq!(layout["odd.weight"]["parts"]["absmax"], "odd.weight.absmax");
        assert!(layout.get("big.bias").is_none());
        assert!(meta["quantlab.selection"].contains("big.bias"), "{meta:?}");
    }
}

#[test]
fn dequantize_reads_bitsandbytes_files_to_bitsandbytes_values() {
    let dir = tempfile::tempdir().unwrap();
    let golden = Loaded::open(&fixture("nf4_bnb_dequant.safetensors"));
    let input = Loaded::open(&fixture("nf4_input.safetensors"));
    for (config, flags) in CONFIGS {
        // bitsandbytes' own file, and the one quantlab writes: both back to bitsandbytes' dequantized values.
        let ours = dir.path().join(format!("ours_{config}.safetensors"));
        let mut args = vec!["quantize", "", "-o", ours.to_str().unwrap(), "--format", "nf4"];
        let input_path = fixture("nf4_input.safetensors");
        args[1] = input_path.to_str().unwrap();
        args.extend(flags);
        ok(&args);
        for file in [fixture(&format!("nf4_bnb_{config}.safetensors")), ours] {
            let back = dir.path().join("back.safetensors");
            ok(&["dequantize", file.to_str().unwrap(), "-o", back.to_str().unwrap()]);
            let got_file = Loaded::open(&back);
            let got = tensors(&got_file);
            let names = ["big.bias", "big.weight", "half.weight", "odd.weight"];
            assert_eq!(got.keys().collect::<Vec<_>>(), names, "{file:?}");
            for (name, shape) in
                [("big.weight", vec![33, 512]), ("odd.weight", vec![5, 27]), ("half.weight", vec![4, 128])]
            {
                let (dtype, g_shape, bytes) = &got[name];
                assert_eq!((*dtype, g_shape), (Dtype::F32, &shape), "{file:?}: {name}");
                let want = f32s(golden.st().tensor(&format!("{config}/{name}")).unwrap().data());
                let values = f32s(bytes);
                assert_eq!(values.len(), want.len());
                let same = values.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{file:?}: {name} differs from bitsandbytes' dequantize_4bit");
            }
            assert_eq!(got["big.bias"].2, input.st().tensor("big.bias").unwrap().data(), "the bias is copied");
        }
    }
}

/// One line on stderr, exit 2, nothing on stdout and nothing left in `dir` but `keep`.
fn fails_leaving_nothing(args: &[&str], dir: &std::path::Path, keep: &[&str]) -> String {
    let out = quantlab(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.starts_with("quantlab: ") && !stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(entries(dir), keep, "{args:?} left something behind");
    stderr
}

#[test]
fn broken_bitsandbytes_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = Loaded::open(&fixture("nf4_bnb_b64_dq.safetensors"));
    let base = tensors(&base);
    type Edit = fn(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>);
    let cases: [(&str, Edit, &str); 6] = [
        ("no_absmax", |t| drop(t.remove("big.weight.absmax")), "tensor `big.weight.absmax` is missing"),
        ("no_nested", |t| drop(t.remove("big.weight.nested_absmax")), "`big.weight.nested_absmax` is missing"),
        (
            "short_weight",
            |t| {
                let w = t.get_mut("odd.weight").unwrap();
                w.2.truncate(60);
                w.1 = vec![60, 1];
            },
            "`odd.weight` holds 60 bytes; a weight of shape [5, 27] packs into 68 bytes",
        ),
        (
            "bad_json",
            |t| {
                let s = t.get_mut("big.weight.quant_state.bitsandbytes__nf4").unwrap();
                s.2 = b"{\"quant_type\": \"nf4\", \"blocksize\": ".to_vec();
                s.1 = vec![s.2.len()];
            },
            "not a JSON object",
        ),
        (
            "zero_blocksize",
            |t| {
                let s = t.get_mut("odd.weight.quant_state.bitsandbytes__nf4").unwrap();
                let text = String::from_utf8(s.2.clone()).unwrap().replace("\"blocksize\": 64", "\"blocksize\": 0");
                s.2 = text.into_bytes();
                s.1 = vec![s.2.len()];
            },
            "`blocksize` in the quant state is 0",
        ),
        (
            "fp4",
            |t| {
                let s = t.remove("odd.weight.quant_state.bitsandbytes__nf4").unwrap();
                t.insert("odd.weight.quant_state.bitsandbytes__fp4".into(), s);
            },
            "bitsandbytes' fp4",
        ),
    ];
    for (name, edit, says) in cases {
        let mut t = base.clone();
        edit(&mut t);
        let input = dir.path().join(format!("{name}.safetensors"));
        let list: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> =
            t.iter().map(|(n, (d, s, b))| (n.as_str(), *d, s.clone(), b.clone())).collect();
        write_safetensors(&input, &list);
        let out = dir.path().join("out.safetensors");
        let mut keep = entries(dir.path());
        keep.retain(|e| e != "out.safetensors");
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        let line = fails_leaving_nothing(
            &["dequantize", input.to_str().unwrap(), "-o", out.to_str().unwrap()],
            dir.path(),
            &keep,
        );
        assert!(line.contains(says), "{name}: {line}");
        assert!(line.contains(&format!("{name}.safetensors")), "{name}: the file is named: {line}");
    }
}
