//! Outputs compared bit for bit with what PyTorch computes (tests/fixtures).

use serde_json::Value;

use crate::common::{Loaded, fixture, ok, quantlab};

/// The cases of `expected.safetensors`: name, input, command, arguments.
fn cases() -> Vec<(String, String, String, Vec<String>)> {
    let expected = Loaded::open(&fixture("expected.safetensors"));
    let cases: Value = serde_json::from_str(&expected.metadata()["cases"]).unwrap();
    let mut out: Vec<_> = cases
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, c)| {
            let args = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            (name.clone(), c["input"].as_str().unwrap().to_string(), c["command"].as_str().unwrap().to_string(), args)
        })
        .collect();
    out.sort();
    out
}

/// Every expected tensor `CASE/NAME` (except `.dequantized`) equals the output's
/// `NAME` in type, shape and bytes.
fn assert_matches(case: &str, expected: &Loaded, output: &Loaded, suffix_filter: impl Fn(&str) -> bool) -> usize {
    let (exp, out) = (expected.st(), output.st());
    let mut checked = 0;
    for (key, want) in exp.iter() {
        let Some(name) = key.strip_prefix(&format!("{case}/")) else { continue };
        if !suffix_filter(name) {
            continue;
        }
        let name = name.strip_suffix(".dequantized").unwrap_or(name);
        let got = out.tensor(name).unwrap_or_else(|e| panic!("{case}: {name}: {e}"));
        assert_eq!(got.dtype(), want.dtype(), "{case}: {name}: dtype");
        assert_eq!(got.shape(), want.shape(), "{case}: {name}: shape");
        assert!(
            got.data() == want.data(),
            "{case}: {name}: bytes differ\n got {:?}\nwant {:?}",
            got.data(),
            want.data()
        );
        checked += 1;
    }
    checked
}

#[test]
fn quantize_and_cast_match_pytorch_bit_for_bit() {
    let expected = Loaded::open(&fixture("expected.safetensors"));
    let dir = tempfile::tempdir().unwrap();
    let mut total = 0;
    for (case, input, command, args) in cases() {
        let out = dir.path().join(format!("{case}.safetensors"));
        let mut argv =
            vec![command.clone(), fixture(&input).display().to_string(), "-o".into(), out.display().to_string()];
        argv.extend(args);
        // PyTorch quantized every float tensor, 1-D ones (vector.npy) included.
        argv.push("--all".into());
        ok(&argv);
        let output = Loaded::open(&out);
        let n = assert_matches(&case, &expected, &output, |n| !n.ends_with(".dequantized"));
        assert!(n > 0, "{case}: no expected tensors");
        total += n;
        if input == "model.safetensors" {
            // The I64 tensor is copied through unchanged.
            let src = Loaded::open(&fixture(&input));
            assert!(output.st().tensor("ids").unwrap().data() == src.st().tensor("ids").unwrap().data());
        }
        if command == "quantize" {
            let back = dir.path().join(format!("{case}.f32.safetensors"));
            ok(&["dequantize".to_string(), out.display().to_string(), "-o".into(), back.display().to_string()]);
            let restored = Loaded::open(&back);
            total += assert_matches(&case, &expected, &restored, |n| n.ends_with(".dequantized"));
            // Only the restored tensors (and copied ones) remain.
            assert!(restored.st().names().iter().all(|n| !n.ends_with(".scale") && !n.ends_with(".zero_point")));
            assert!(!restored.metadata().contains_key("quantlab"));
        }
    }
    assert!(total >= 100, "only {total} tensors compared");
}

#[test]
fn quantize_writes_the_layout_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.safetensors");
    let input = fixture("model.safetensors");
    ok(&[
        "quantize".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--dtype".as_ref(),
        "int4".as_ref(),
        "--symmetric".as_ref(),
        "--group-size".as_ref(),
        "8".as_ref(),
    ]);
    let q = Loaded::open(&out);
    let meta = q.metadata();
    assert_eq!(meta["format"], "pt", "the input's metadata is kept");
    let layout: Value = serde_json::from_str(&meta["quantlab"]).unwrap();
    assert_eq!(
        layout["w_bf16"],
        serde_json::json!({"dtype": "int4", "shape": [2, 4, 4], "symmetric": true, "axis": null, "group_size": 8})
    );
    assert_eq!(layout.as_object().unwrap().len(), 4, "four float tensors, ids is not quantized");
    let st = q.st();
    assert_eq!(st.tensor("w_bf16").unwrap().shape(), [16], "32 int4 codes pack into 16 bytes");
    assert_eq!(st.tensor("w_bf16.scale").unwrap().shape(), [4]);
    assert_eq!(st.tensor("w_bf16.zero_point").unwrap().data(), [0u8; 16]);
}

#[test]
fn footprint_json_matches_pytorch() {
    let expected = Loaded::open(&fixture("expected.safetensors"));
    let want: Value = serde_json::from_str(&expected.metadata()["footprint"]).unwrap();
    let got: Value =
        serde_json::from_str(&ok(&["footprint".as_ref(), fixture("model.safetensors").as_os_str(), "--json".as_ref()]))
            .unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-30);
    let mut checked = 0;
    for t in got["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if !t["floating"].as_bool().unwrap() {
            assert_eq!(name, "ids");
            continue;
        }
        for cell in t["storages"].as_array().unwrap() {
            let w = &want[name][cell["storage"].as_str().unwrap()];
            assert_eq!(cell["bytes"], w["bytes"], "{name} {}", cell["storage"]);
            for key in ["mse", "max_abs"] {
                assert!(close(cell[key].as_f64().unwrap(), w[key].as_f64().unwrap()), "{name} {cell} {w}");
            }
            match w["sqnr_db"].as_f64() {
                Some(db) => assert!(close(cell["sqnr_db"].as_f64().unwrap(), db), "{name} {cell} {w}"),
                None => assert!(cell["sqnr_db"].is_null()),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 5);
    // The whole file: ids (40 bytes) in every storage, plus 88 float elements.
    let total = &got["total"];
    assert_eq!(total[0]["storage"], "float32");
    assert_eq!(total[0]["bytes"], 88 * 4 + 40);
    assert_eq!(total[3]["bytes"], 88 + 4 * 8 + 40);
    assert_eq!(total[4]["bytes"], 24 / 2 + 24 / 2 + 32 / 2 + 8 / 2 + 4 * 8 + 40);
}

#[test]
fn footprint_table_names_every_tensor() {
    let text =
        ok(&["footprint".as_ref(), fixture("model.safetensors").as_os_str(), "--dtype".as_ref(), "bf16,int8".as_ref()]);
    assert!(text.contains("5 tensors (4 floating point), 93 elements"), "{text}");
    for name in [
        "(whole file)",
        "w_f32 [4, 6] F32",
        "w_bf16 [2, 4, 4] BF16",
        "ids [5] I64: not floating point, kept as is (40 B)",
        "bfloat16",
        "int8",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let out = quantlab(&[
        "footprint".as_ref(),
        fixture("model.safetensors").as_os_str(),
        "--group-size".as_ref(),
        "5".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
