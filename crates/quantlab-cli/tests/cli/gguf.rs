//! `quantlab info FILE.gguf` and `quantlab footprint FILE.gguf` on a GGUF file gguf-py's GGUFWriter wrote
//! (tests/fixtures/gguf_reference.gguf, F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K/MXFP4, made by
//! tests/fixtures/formats_golden.py); what they print is checked against gguf-py's own record of the file
//! (gguf_reference_expected.safetensors: raw bytes, shapes, types and dequantized values).

use std::path::Path;

use safetensors::tensor::Dtype;
use serde_json::Value;

use crate::common::{Loaded, entries, fixture, ok, quantlab, write_safetensors};

/// gguf-py 0.19's `GGMLQuantizationType` names of the ids the fixture uses.
fn gguf_py_type_name(id: i64) -> &'static str {
    match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        8 => "Q8_0",
        12 => "Q4_K",
        14 => "Q6_K",
        30 => "BF16",
        39 => "MXFP4",
        other => panic!("the fixture has a type {other} this test does not name"),
    }
}

struct Expected {
    name: String,
    shape: Vec<usize>,
    type_id: i64,
    nbytes: usize,
    dequant: Vec<u8>,
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn expected() -> (Vec<Expected>, serde_json::Map<String, Value>) {
    let e = Loaded::open(&fixture("gguf_reference_expected.safetensors"));
    let meta = e.metadata();
    let order: Vec<String> = serde_json::from_str(&meta["order"]).unwrap();
    let kv: serde_json::Map<String, Value> = serde_json::from_str(&meta["kv"]).unwrap();
    let st = e.st();
    let list = order
        .into_iter()
        .map(|name| Expected {
            shape: i64s(st.tensor(&format!("{name}.shape")).unwrap().data()).iter().map(|&d| d as usize).collect(),
            type_id: i64s(st.tensor(&format!("{name}.type")).unwrap().data())[0],
            nbytes: st.tensor(&name).unwrap().data().len(),
            dequant: st.tensor(&format!("{name}.dequant")).unwrap().data().to_vec(),
            name,
        })
        .collect();
    (list, kv)
}

#[test]
fn info_describes_a_gguf_file_as_gguf_py_wrote_it() {
    let file = fixture("gguf_reference.gguf");
    let text = ok(&["info", file.to_str().unwrap()]);
    let (tensors, kv) = expected();
    // gguf-py leaves out general.alignment when it is the default 32 (the kv record notes it for readers).
    let written = kv.len() - usize::from(kv["general.alignment"] == 32);
    let head = text.lines().next().unwrap();
    assert!(head.contains(&format!("GGUF v3, {written} metadata keys, {} tensors", tensors.len())), "{head}");
    assert!(text.contains("general.architecture = \"llama\""), "{text}");
    assert!(text.contains(&format!("general.name = {}", kv["general.name"])), "{text}");
    assert!(text.contains(&format!("test.u64 = {}", kv["test.u64"])), "{text}");
    for t in &tensors {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(t.name.as_str())).unwrap();
        let numel: usize = t.shape.iter().product();
        let want = [
            format!("{:?}", t.shape),
            gguf_py_type_name(t.type_id).to_string(),
            t.nbytes.to_string(),
            format!("{:.4}", t.nbytes as f64 * 8.0 / numel as f64),
        ];
        for w in want {
            assert!(line.contains(&w), "{line}: expected {w}");
        }
    }
    let bytes: usize = tensors.iter().map(|t| t.nbytes).sum();
    let numel: usize = tensors.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    let total = text.lines().find(|l| l.starts_with("total:")).unwrap();
    assert!(total.contains(&format!("{numel} values, {bytes} bytes")), "{total}");
    assert!(total.contains(&format!("{:.4} bits per weight", bytes as f64 * 8.0 / numel as f64)), "{total}");
}

/// A GGUF tensor is counted as stored and measured from its dequantized values: every storage's bytes and
/// errors equal those of a safetensors file holding gguf-py's dequantized values.
#[test]
fn footprint_of_a_gguf_file_counts_its_storage_and_measures_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let (tensors, _) = expected();
    let as_f32 = dir.path().join("dequant.safetensors");
    let list: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|t| (t.name.as_str(), Dtype::F32, t.shape.clone(), t.dequant.clone())).collect();
    write_safetensors(&as_f32, &list);
    let dtypes = "float16,int8,q8_0,nf4";
    let gguf = fixture("gguf_reference.gguf");
    let report = |p: &Path| -> Value {
        serde_json::from_str(&ok(&["footprint", p.to_str().unwrap(), "--dtype", dtypes, "--json"])).unwrap()
    };
    let (g, f) = (report(&gguf), report(&as_f32));
    let bytes: usize = tensors.iter().map(|t| t.nbytes).sum();
    assert_eq!(g["stored_bytes"], bytes);
    let find = |r: &Value, name: &str| r["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).cloned();
    for (i, t) in tensors.iter().enumerate() {
        let (gt, ft) = (&g["tensors"][i], &find(&f, &t.name).unwrap());
        assert_eq!(gt["name"], t.name.as_str(), "in file order");
        assert_eq!(gt["dtype"], gguf_py_type_name(t.type_id), "{}", t.name);
        assert_eq!(gt["stored_bytes"], t.nbytes, "{}", t.name);
        let numel: usize = t.shape.iter().product();
        assert_eq!(gt["stored_bits_per_weight"], t.nbytes as f64 * 8.0 / numel as f64, "{}", t.name);
        assert_eq!(gt["kept"], ft["kept"], "{}", t.name);
        if gt["kept"].is_null() {
            assert_eq!(gt["storages"], ft["storages"], "{}: measured from the dequantized values", t.name);
        }
    }
    // The whole file: the same sums (in another order: the safetensors file sorts its tensors).
    for (gc, fc) in g["total"].as_array().unwrap().iter().zip(f["total"].as_array().unwrap()) {
        assert_eq!(gc["bytes"], fc["bytes"], "{gc} {fc}");
        let (a, b) = (gc["mse"].as_f64().unwrap(), fc["mse"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-12 * a.abs().max(b.abs()), "{gc} {fc}");
    }
    let text = ok(&["footprint", gguf.to_str().unwrap(), "--dtype", "int8"]);
    assert!(text.contains("blk.0.q4_k [2, 256] Q4_K: stored 288 B (4.50 bits per weight)"), "{text}");
}

/// One line on stderr, exit 2, nothing on stdout.
fn fails(args: &[&str]) -> String {
    let out = quantlab(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.starts_with("quantlab: ") && !stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed something");
    stderr
}

#[test]
fn truncated_or_lying_gguf_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("gguf_reference.gguf")).unwrap();
    // Cut in the header, in the tensor infos, and inside the last tensor's data (34 bytes, then 30 of padding).
    let mut cases: Vec<(String, Vec<u8>)> = [0, 3, 10, 23, 100, 700, good.len() - 40]
        .into_iter()
        .map(|n| (format!("cut_{n}.gguf"), good[..n].to_vec()))
        .collect();
    // The tensor count (bytes 8..16) says more tensors than the file can hold.
    let mut lying = good.clone();
    lying[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    cases.push(("lying_count.gguf".into(), lying));
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    cases.push(("bad_magic.gguf".into(), bad_magic));
    for (name, bytes) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for cmd in ["info", "footprint"] {
            let line = fails(&[cmd, path.to_str().unwrap()]);
            assert!(line.contains(name.as_str()) && line.contains("GGUF"), "{cmd} {name}: {line}");
        }
    }
    let line = fails(&["info", "model.safetensors"]);
    assert!(line.contains("use `quantlab footprint model.safetensors`"), "{line}");
    let missing = dir.path().join("missing.gguf");
    let line = fails(&["info", missing.to_str().unwrap()]);
    assert!(line.contains("cannot open"), "{line}");
    // Nothing was written beside the inputs.
    assert_eq!(entries(dir.path()).len(), cases.len());
}

/// A type quantlab cannot dequantize (IQ2_XXS here) is described by `info` and counted as stored by
/// `footprint`, with a note; the tensors it can read are measured as usual.
#[test]
fn types_quantlab_cannot_dequantize_are_counted_as_stored() {
    use quantlab::io::gguf::{GgmlType, GgufOutTensor, write_gguf};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iq.gguf");
    let (iq, f32) = (vec![7u8; 66], vec![0u8; 4 * 2 * 32]);
    let tensors = vec![
        GgufOutTensor {
            name: "iq".into(),
            shape: vec![1, 256],
            ggml_type: GgmlType(16),
            bytes: Box::new(|| Ok(std::borrow::Cow::Borrowed(&iq[..]))),
        },
        GgufOutTensor {
            name: "w".into(),
            shape: vec![2, 32],
            ggml_type: GgmlType::F32,
            bytes: Box::new(|| Ok(std::borrow::Cow::Borrowed(&f32[..]))),
        },
    ];
    write_gguf(&path, &[], tensors).unwrap();
    let text = ok(&["info", path.to_str().unwrap()]);
    let line = text.lines().find(|l| l.starts_with("iq ")).unwrap();
    assert!(line.contains("IQ2_XXS") && line.contains(" 66 ") && line.contains("2.0625"), "{line}");
    let out = quantlab(&["footprint", path.to_str().unwrap(), "--dtype", "int8", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("iq: IQ2_XXS is a GGUF type quantlab cannot dequantize; counted as stored"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &report["tensors"][0];
    assert_eq!((t["dtype"].as_str(), t["floating"].as_bool()), (Some("IQ2_XXS"), Some(false)));
    assert_eq!(t["storages"][0]["bytes"], 66);
    assert_eq!(report["tensors"][1]["storages"][0]["bytes"], 64 + 8, "w in int8: codes plus scale and zero point");
}
