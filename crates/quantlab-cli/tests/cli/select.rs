//! Which tensors `quantize`, `cast` and `footprint` convert: 2-D and up by
//! default, 1-D ones (norms, biases) kept; `--include`, `--exclude`, `--all`.

use std::path::Path;

use safetensors::tensor::Dtype;
use serde_json::Value;

use crate::common::{Loaded, f32_bytes, ok, write_safetensors};

/// A BERT-like checkpoint in miniature: weights, biases, a LayerNorm, an
/// embedding table, integer ids and an empty tensor.
fn model(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("mini.safetensors");
    let values = |n: usize, seed: usize| -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 997) as f32 / 97.0 - 5.0).collect()
    };
    write_safetensors(
        &path,
        &[
            ("embeddings.word_embeddings.weight", Dtype::F32, vec![16, 8], f32_bytes(&values(128, 1))),
            ("encoder.layer.0.attention.query.weight", Dtype::F32, vec![8, 8], f32_bytes(&values(64, 2))),
            ("encoder.layer.0.attention.query.bias", Dtype::F32, vec![8], f32_bytes(&values(8, 3))),
            ("encoder.layer.0.output.LayerNorm.weight", Dtype::F32, vec![8], f32_bytes(&values(8, 4))),
            ("position_ids", Dtype::I64, vec![1, 4], (0..4i64).flat_map(|v| v.to_le_bytes()).collect()),
            ("pooler.dense.weight", Dtype::F32, vec![0, 8], vec![]),
        ],
    );
    path
}

const EMB: &str = "embeddings.word_embeddings.weight";
const QUERY: &str = "encoder.layer.0.attention.query.weight";
const BIAS: &str = "encoder.layer.0.attention.query.bias";
const NORM: &str = "encoder.layer.0.output.LayerNorm.weight";

/// Runs `quantize` on the miniature model with `extra` flags; returns the
/// output, stdout, and the names the layout says were quantized.
fn quantize(dir: &Path, name: &str, extra: &[&str]) -> (Loaded, String, Vec<String>) {
    let input = model(dir);
    let out = dir.join(name);
    let mut args = vec!["quantize", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--dtype", "int4"];
    args.extend(["--symmetric", "--group-size", "8"]);
    args.extend(extra);
    let stdout = ok(&args);
    let loaded = Loaded::open(&out);
    let layout: Value = serde_json::from_str(&loaded.metadata()["quantlab"]).unwrap();
    let names = layout.as_object().unwrap().keys().cloned().collect();
    (loaded, stdout, names)
}

#[test]
fn by_default_one_dimensional_tensors_are_kept_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, quantized) = quantize(dir.path(), "q.safetensors", &[]);
    assert_eq!(quantized, [EMB, QUERY]);
    let src = Loaded::open(&dir.path().join("mini.safetensors"));
    for kept in [BIAS, NORM, "position_ids", "pooler.dense.weight"] {
        let (a, b) = (out.st().tensor(kept).unwrap(), src.st().tensor(kept).unwrap());
        assert_eq!((a.dtype(), a.shape(), a.data()), (b.dtype(), b.shape(), b.data()), "{kept}");
        assert!(out.st().tensor(&format!("{kept}.scale")).is_err(), "{kept} has a scale");
    }
    // The quantized codes are the ones `--all` (checked against PyTorch elsewhere) gives.
    let (all, _, all_names) = quantize(dir.path(), "all.safetensors", &["--all"]);
    assert_eq!(all_names, [EMB, BIAS, QUERY, NORM]); // sorted by name
    for name in [EMB, QUERY] {
        assert!(out.st().tensor(name).unwrap().data() == all.st().tensor(name).unwrap().data(), "{name}");
    }
    assert_eq!(all.st().tensor(BIAS).unwrap().dtype(), Dtype::U8);
    // What was kept and why, printed and recorded.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("quantized to int4 symmetric"), "{stdout}");
    assert!(lines[0].ends_with("2 tensor(s); kept 4 as they are"), "{stdout}");
    assert!(stdout.contains("kept 1 (not floating point): position_ids"), "{stdout}");
    assert!(stdout.contains("kept 1 (empty): pooler.dense.weight"), "{stdout}");
    assert!(
        stdout.contains(&format!("kept 2 (fewer than 2 dimensions; --all converts them): {BIAS}, {NORM}")),
        "{stdout}"
    );
    let record: Value = serde_json::from_str(&out.metadata()["quantlab.selection"]).unwrap();
    assert_eq!(record["converted"], serde_json::json!([EMB, QUERY]));
    assert_eq!(record["kept"]["one_dim"], serde_json::json!([BIAS, NORM]));
    assert_eq!(record["kept"]["empty"], serde_json::json!(["pooler.dense.weight"]));
    assert_eq!(record["all"], false);
}

#[test]
fn include_and_exclude_globs_narrow_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout, quantized) = quantize(dir.path(), "q.safetensors", &["--exclude", "*embeddings*"]);
    assert_eq!(quantized, [QUERY]);
    assert_eq!(out.st().tensor(EMB).unwrap().dtype(), Dtype::F32);
    assert!(stdout.contains(&format!("kept 1 (matched by --exclude): {EMB}")), "{stdout}");
    let record: Value = serde_json::from_str(&out.metadata()["quantlab.selection"]).unwrap();
    assert_eq!(record["exclude"], serde_json::json!(["*embeddings*"]));

    // Repeatable, and --all lets an --include reach 1-D tensors.
    let (_, _, quantized) =
        quantize(dir.path(), "q2.safetensors", &["--all", "--include", "*.bias", "--include", "*query.weight"]);
    assert_eq!(quantized, [BIAS, QUERY]);
    let (_, _, quantized) = quantize(dir.path(), "q3.safetensors", &["--include", "*.bias"]);
    assert!(quantized.is_empty(), "{quantized:?}");
}

#[test]
fn cast_uses_the_same_selection() {
    let dir = tempfile::tempdir().unwrap();
    let input = model(dir.path());
    let out = dir.path().join("c.safetensors");
    let stdout = ok(&["cast", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--to", "bf16"]);
    let c = Loaded::open(&out);
    assert_eq!(c.st().tensor(QUERY).unwrap().dtype(), Dtype::BF16);
    assert_eq!(c.st().tensor(EMB).unwrap().dtype(), Dtype::BF16);
    assert_eq!(c.st().tensor(NORM).unwrap().dtype(), Dtype::F32);
    assert_eq!(c.st().tensor("pooler.dense.weight").unwrap().dtype(), Dtype::F32);
    assert!(stdout.starts_with("cast to bfloat16: 2 tensor(s); kept 4 as they are"), "{stdout}");
    assert!(c.metadata()["quantlab.selection"].contains(r#""one_dim":["#), "{:?}", c.metadata());
}

#[test]
fn footprint_reports_the_same_selection_and_no_ratio_for_empty_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let input = model(dir.path());
    let json = ok(&["footprint", input.to_str().unwrap(), "--dtype", "int8", "--json"]);
    let report: Value = serde_json::from_str(&json).unwrap();
    let tensors = report["tensors"].as_array().unwrap();
    let find = |n: &str| tensors.iter().find(|t| t["name"] == n).unwrap();
    assert!(find(QUERY)["kept"].is_null());
    assert_eq!(find(QUERY)["storages"][0]["bytes"], 64 + 8); // codes + one scale and zero point
    let norm = find(NORM);
    assert_eq!(norm["kept"], "fewer than 2 dimensions; --all converts them");
    assert_eq!(norm["storages"][0]["bytes"], 32); // 8 f32 as stored
    assert_eq!(norm["storages"][0]["mse"], 0.0);
    let empty = find("pooler.dense.weight");
    assert_eq!(empty["kept"], "empty");
    assert!(empty["storages"][0]["ratio"].is_null());
    // The whole file: int8 for the 2-D floats, the rest as stored.
    assert_eq!(report["total"][0]["bytes"], (128 + 8) + (64 + 8) + 32 + 32 + 32);

    let text = ok(&["footprint", input.to_str().unwrap(), "--dtype", "int8"]);
    assert!(text.contains(&format!("{NORM} [8] F32: kept as is, fewer than 2 dimensions")), "{text}");
    assert!(!text.contains("NaN"), "{text}");
    let all = ok(&["footprint", input.to_str().unwrap(), "--dtype", "int8", "--json", "--all"]);
    let all: Value = serde_json::from_str(&all).unwrap();
    let norm = all["tensors"].as_array().unwrap().iter().find(|t| t["name"] == NORM).unwrap().clone();
    assert_eq!(norm["storages"][0]["bytes"], 8 + 8);
    let all_text = ok(&["footprint", input.to_str().unwrap(), "--dtype", "int8", "--all"]);
    assert!(!all_text.contains("NaN"), "{all_text}");

    // A file of nothing but an empty tensor: its ratio has no meaning, shown as `-`.
    let only_empty = dir.path().join("empty.safetensors");
    write_safetensors(&only_empty, &[("e", Dtype::F32, vec![0], vec![])]);
    let text = ok(&["footprint", only_empty.to_str().unwrap(), "--dtype", "int8"]);
    let total = text.lines().find(|l| l.starts_with("(whole file)")).unwrap();
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(cols[..6], ["(whole", "file)", "int8", "0", "B", "-"], "{text}");
    let json: Value = serde_json::from_str(&ok(&["footprint", only_empty.to_str().unwrap(), "--json"])).unwrap();
    assert!(json["total"].as_array().unwrap().iter().all(|c| c["ratio"].is_null()), "{json}");
}
