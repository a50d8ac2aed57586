//! `quantize --format` and `dequantize` of block formats, end to end: the
//! values that come back equal the references' dequantized values in
//! tests/fixtures/formats_golden.safetensors (torchao, bitsandbytes, ggml).

use crate::common::{Loaded, entries, f32s, fixture, ok, quantlab};

/// Quantizes formats_input with `flags` into `out_name`, dequantizes it, and
/// compares tensor `m` with the golden `key`.
fn round_trip(flags: &[&str], out_name: &str, m: &str, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join(out_name);
    let back = dir.path().join("back.safetensors");
    let input = fixture("formats_input.safetensors");
    let mut args = vec!["quantize".to_string(), input.display().to_string(), "-o".into(), q.display().to_string()];
    args.extend(flags.iter().map(|s| s.to_string()));
    ok(&args);
    ok(&["dequantize", &q.display().to_string(), "-o", &back.display().to_string()]);
    let golden = Loaded::open(&fixture("formats_golden.safetensors"));
    let want = f32s(golden.st().tensor(key).unwrap().data());
    let got_file = Loaded::open(&back);
    let st = got_file.st();
    let got = f32s(st.tensor(m).unwrap().data());
    assert_eq!(got.len(), want.len(), "{key}");
    assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{flags:?}: {m} differs from {key}");
}

#[test]
fn block_formats_round_trip_to_the_references_values() {
    round_trip(&["--format", "mxfp4"], "q.safetensors", "special", "mxfp4_floor/special.dequant");
    round_trip(&["--format", "mxfp8_e5m2"], "q.safetensors", "extreme", "mxfp8_e5m2_floor/extreme.dequant");
    round_trip(&["--format", "mxfp6_e2m3"], "q.safetensors", "small", "mxfp6_e2m3_floor/small.dequant");
    round_trip(&["--format", "nvfp4"], "q.safetensors", "heavy", "nvfp4_pts/heavy.dequant");
    round_trip(&["--format", "nvfp4", "--no-tensor-scale"], "q.safetensors", "special", "nvfp4/special.dequant");
    round_trip(&["--format", "nf4"], "q.safetensors", "heavy", "nf4_b64/heavy.dequant");
    round_trip(
        &["--format", "nf4", "--double-quant", "--block-size", "128"],
        "q.safetensors",
        "special",
        "nf4_b128_dq/special.dequant",
    );
    round_trip(&["--format", "q4_k"], "q.gguf", "heavy", "q4_k/heavy.dequant");
    round_trip(&["--format", "q6_k"], "q.safetensors", "special", "q6_k/special.dequant");
    round_trip(&["--format", "q5_1"], "q.gguf", "small", "q5_1/small.dequant");
    round_trip(&["--format", "mxfp4"], "q.gguf", "special", "mxfp4/special.dequant");
}

#[test]
fn block_format_errors_are_one_line_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("formats_input.safetensors").display().to_string();
    for (flags, says) in [
        (vec!["--format", "q3_xs"], "unknown block format"),
        (vec!["--format", "nf4", "--block-size", "48"], "block size 48"),
        (vec!["--format", "q8_0", "--scale-rule", "even"], "--scale-rule"),
        (vec!["--format", "mxfp4", "--scale-rule", "sideways"], "scale rule"),
        (vec!["--format", "q4_0", "--dtype", "int8"], "cannot be used"),
    ] {
        let out = dir.path().join("o.gguf");
        let mut args = vec!["quantize", &input, "-o", out.to_str().unwrap()];
        args.extend(flags.iter());
        let r = quantlab(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(entries(dir.path()).is_empty(), "{flags:?} left {:?}", entries(dir.path()));
    }
    // nvfp4 has no GGUF type gguf-py reads.
    let r = quantlab(&["quantize", &input, "-o", dir.path().join("o.gguf").to_str().unwrap(), "--format", "nvfp4"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no GGUF type"));
    // A truncated .gguf is one line, exit 2, nothing written.
    let gguf = std::fs::read(fixture("gguf_reference.gguf")).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &gguf[..gguf.len() / 2]).unwrap();
    let back = dir.path().join("back.safetensors");
    let r = quantlab(&["dequantize", cut.to_str().unwrap(), "-o", back.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("not a readable GGUF file") && err.trim().lines().count() == 1, "{err}");
    assert!(!back.exists());
}

#[test]
fn dequantize_reads_a_gguf_written_by_gguf_py() {
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("back.safetensors");
    ok(&["dequantize", fixture("gguf_reference.gguf").to_str().unwrap(), "-o", back.to_str().unwrap()]);
    let want_file = Loaded::open(&fixture("gguf_reference_expected.safetensors"));
    let want = want_file.st();
    let got_file = Loaded::open(&back);
    let got = got_file.st();
    for name in [
        "f32_matrix",
        "f16_matrix",
        "bf16_matrix",
        "vector",
        "blk.0.q8_0",
        "blk.0.q4_0_3d",
        "blk.0.q4_k",
        "blk.0.q6_k",
        "blk.0.mxfp4",
    ] {
        let w = f32s(want.tensor(&format!("{name}.dequant")).unwrap().data());
        let g = f32s(got.tensor(name).unwrap().data());
        assert!(w.len() == g.len() && w.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}");
    }
    assert_eq!(got_file.metadata().get("gguf.general.name").map(String::as_str), Some("quantlab golden"));
}

#[test]
fn footprint_counts_block_formats_bits_per_weight() {
    let input = fixture("formats_input.safetensors");
    let json =
        ok(&["footprint", input.to_str().unwrap(), "--dtype", "mxfp4,nvfp4,nf4,q4_k,q8_0,q6_k,mxfp8_e4m3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let heavy = v["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "heavy").unwrap();
    // heavy is [4, 256]: 1024 weights.
    let bytes: Vec<(String, u64)> = heavy["storages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["storage"].as_str().unwrap().to_string(), c["bytes"].as_u64().unwrap()))
        .collect();
    let want = [
        ("mxfp4", 1024 * 425 / 800),    // 4.25 bits
        ("nvfp4", 1024 * 45 / 80 + 4),  // 4.5 bits + the f32 tensor scale
        ("nf4", 1024 * 45 / 80),        // 4.5 bits
        ("q4_k", 1024 * 45 / 80),       // 4.5 bits
        ("q8_0", 1024 * 85 / 80),       // 8.5 bits
        ("q6_k", 1024 * 65625 / 80000), // 6.5625 bits
        ("mxfp8_e4m3", 1024 * 825 / 800),
    ];
    for ((name, got), (wname, w)) in bytes.iter().zip(want) {
        assert_eq!((name.as_str(), *got), (wname, w as u64));
    }
    // A tensor a block format cannot take is counted as F32, and says so.
    let odd = v["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "odd").unwrap();
    assert_eq!(odd["storages"][3]["storage"], "q4_k (F32)");
    assert_eq!(odd["storages"][3]["bytes"], 35 * 4);
    assert!(heavy["storages"][0]["sqnr_db"].as_f64().unwrap() > 10.0);
}

/// Block formats follow the same tensor selection as linear quantization:
/// `--exclude` keeps a tensor in float (F32 in GGUF, unchanged in
/// safetensors), the output records it, and the CLI says what it kept.
#[test]
fn block_formats_follow_the_tensor_selection() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("formats_input.safetensors");
    let input = input.display().to_string();
    let st = dir.path().join("q.safetensors").display().to_string();
    let printed = ok(&["quantize", &input, "-o", &st, "--format", "nf4", "--exclude", "heavy"]);
    assert!(printed.contains("kept 1 (matched by --exclude): heavy"), "{printed}");
    let file = Loaded::open(std::path::Path::new(&st));
    let heavy = file.st().tensor("heavy").unwrap();
    let original = Loaded::open(&fixture("formats_input.safetensors"));
    assert_eq!(heavy.data(), original.st().tensor("heavy").unwrap().data(), "excluded tensor copied unchanged");
    assert_eq!(file.st().tensor("special").unwrap().dtype(), safetensors::Dtype::U8, "selected tensor quantized");
    let selection: serde_json::Value = serde_json::from_str(&file.metadata()["quantlab.selection"]).unwrap();
    assert_eq!(selection["kept"]["excluded"], serde_json::json!(["heavy"]));

    let gguf = dir.path().join("q.gguf").display().to_string();
    let printed = ok(&["quantize", &input, "-o", &gguf, "--format", "q8_0", "--include", "spec*"]);
    assert!(printed.contains("quantized to q8_0: 1 tensor(s)"), "{printed}");
    let g = quantlab::io::gguf::GgufFile::open(std::path::Path::new(&gguf)).unwrap();
    let g = g.parse().unwrap();
    let types: Vec<(String, u32)> = g.tensors.iter().map(|t| (t.name.clone(), t.ggml_type.0)).collect();
    for (name, ty) in &types {
        // ggml type 0 is F32, 8 is Q8_0.
        assert_eq!(*ty, if name == "special" { 8 } else { 0 }, "{name}: {types:?}");
    }
}
