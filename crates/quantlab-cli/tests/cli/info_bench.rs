//! `quantlab info` and `quantlab bench`.

use crate::common::{ok, quantlab};

#[test]
fn info_prints_pytorchs_lines() {
    // As printed by PyTorch 2.x: torch.iinfo(torch.int16), torch.finfo(torch.bfloat16), ...
    assert_eq!(ok(&["info", "int16"]), "iinfo(min=-32768, max=32767, dtype=int16)\n");
    assert_eq!(
        ok(&["info", "torch.bfloat16"]),
        "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, smallest_normal=1.17549e-38, \
         tiny=1.17549e-38, dtype=bfloat16)\n"
    );
    assert_eq!(
        ok(&["info", "float8_e4m3fn"]),
        "finfo(resolution=1, min=-448, max=448, eps=0.125, smallest_normal=0.015625, tiny=0.015625, dtype=float8_e4m3fn)\n"
    );
}

#[test]
fn info_all_lists_every_dtype() {
    let table = ok(&["info", "--all"]);
    let rows: Vec<&str> = table.lines().skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 37, "{table}");
    let int4: Vec<&str> = rows.iter().find(|r| r.starts_with("int4 ")).unwrap().split_whitespace().collect();
    assert_eq!(int4[..6], ["int4", "4", "0.5", "-8", "7", "-"]);
    let f16: Vec<&str> = rows.iter().find(|r| r.starts_with("float16 ")).unwrap().split_whitespace().collect();
    assert_eq!(f16[..6], ["float16", "16", "2", "-65504", "65504", "0.000976562"]);
    assert!(table.contains("partial support:"));
    let e8m0: Vec<&str> = rows.iter().find(|r| r.starts_with("float8_e8m0fnu ")).unwrap().split_whitespace().collect();
    assert_eq!(e8m0[..8], ["float8_e8m0fnu", "8", "1", "5.87747e-39", "1.70141e+38", "1", "partial", "-"]);
    let f4: Vec<&str> = rows.iter().find(|r| r.starts_with("float4_e2m1fn ")).unwrap().split_whitespace().collect();
    assert_eq!(f4[..6], ["float4_e2m1fn", "4", "0.5", "-6", "6", "0.5"]);
    let f6: Vec<&str> = rows.iter().find(|r| r.starts_with("float6_e3m2fn ")).unwrap().split_whitespace().collect();
    assert_eq!(f6[..6], ["float6_e3m2fn", "6", "0.75", "-28", "28", "0.25"]);
    let int1: Vec<&str> = rows.iter().find(|r| r.starts_with("int1 ")).unwrap().split_whitespace().collect();
    assert_eq!(int1[..6], ["int1", "1", "0.125", "-1", "0", "-"]);
    assert!(table.contains("float8_e4m3fnuz on PyTorch: storage and scaled matmul on AMD MI300"), "{table}");
}

#[test]
fn info_prints_the_new_types() {
    // PyTorch 2.15's own lines (torch.finfo(torch.float8_e4m3fnuz), ...), quoted in issue 12.
    assert_eq!(
        ok(&["info", "torch.float8_e4m3fnuz"]),
        "finfo(resolution=1, min=-240, max=240, eps=0.125, smallest_normal=0.0078125, tiny=0.0078125, dtype=float8_e4m3fnuz)\n"
    );
    assert_eq!(
        ok(&["info", "float8_e5m2fnuz"]),
        "finfo(resolution=1, min=-57344, max=57344, eps=0.25, smallest_normal=3.05176e-05, tiny=3.05176e-05, dtype=float8_e5m2fnuz)\n"
    );
    assert_eq!(
        ok(&["info", "float8_e8m0fnu"]),
        "finfo(resolution=1, min=5.87747e-39, max=1.70141e+38, eps=1, smallest_normal=5.87747e-39, tiny=5.87747e-39, dtype=float8_e8m0fnu)\n"
    );
    // Ours, in PyTorch's format (PyTorch refuses these).
    assert_eq!(ok(&["info", "int1"]), "iinfo(min=-1, max=0, dtype=int1)\n");
    assert_eq!(
        ok(&["info", "float4_e2m1fn"]),
        "finfo(resolution=1, min=-6, max=6, eps=0.5, smallest_normal=1, tiny=1, dtype=float4_e2m1fn)\n"
    );
}

#[test]
fn bench_json_has_the_contracted_shape() {
    let out = ok(&["bench", "--n", "4096", "--json"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 4096);
    let kernel = v["kernel"].as_str().unwrap();
    assert!(quantlab::available_kernels().contains(&kernel), "{kernel}");
    // Which CPU it ran on, and which features and kernel it used.
    assert!(v["kernel_detail"].as_str().unwrap().starts_with(kernel), "{out}");
    let cpu = quantlab::cpu_features();
    assert_eq!(v["cpu"]["vendor"], cpu.vendor.as_str());
    assert_eq!(v["cpu"]["model"], cpu.model.as_str());
    let features: Vec<&str> = v["cpu"]["features"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(features.iter().all(|f| cpu.has(f)), "{out}");
    assert_eq!(features.len(), cpu.features.iter().filter(|f| f.present).count());
    let ops = v["ops"].as_object().unwrap();
    let names: Vec<&str> = ops.keys().map(String::as_str).collect();
    let mut want: Vec<String> =
        ["copy", "quantize_int8", "dequantize_int8", "cast_bf16", "cast_f16", "quantize_int4_g128", "cast_e4m3fn"]
            .map(String::from)
            .into();
    // Every block format bench/compare.py compares, quantized and dequantized, and MXFP8 e5m2 (not compared there).
    for f in ["q8_0", "q4_0", "gguf_mxfp4", "mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "nvfp4", "nf4"] {
        want.push(format!("quantize_{f}"));
        want.push(format!("dequantize_{f}"));
    }
    want.sort();
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, want);
    assert!(ops.values().all(|e| e.as_f64().unwrap() > 0.0));
    // The same shape when the casts reuse one output.
    let reused: serde_json::Value =
        serde_json::from_str(&ok(&["bench", "--n", "4096", "--json", "--reuse-output"])).unwrap();
    let mut keys: Vec<&str> = reused["ops"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, want);
    let bad = quantlab(&["bench", "--n", "100"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// The matrix-vector rows: every weight format, in one run, with numbers that
/// parse (the last two, the K-quants, only when the size is a multiple of 256).
const GEMV_ROWS: [&str; 14] = [
    "f32 ndarray dot",
    "f32 matrixmultiply",
    "int8 per row",
    "int8 x int8 act",
    "int4 g32",
    "int4 g128",
    "q8_0",
    "q8_0 x q8_0 act",
    "q4_0",
    "mxfp4",
    "nvfp4",
    "nf4",
    "q4_k",
    "q6_k",
];

#[test]
fn bench_prints_the_matrix_vector_rows() {
    let out = ok(&["bench", "--n", "4096", "--gemv-size", "256"]);
    let head = out.lines().position(|l| l.starts_with("matrix-vector product: 256 x 256 weight")).expect(&out);
    assert!(out.lines().nth(head).unwrap().contains(&format!("gemv kernel: {}", quantlab::gemv_kernel())), "{out}");
    let rows: Vec<&str> = out.lines().skip(head + 2).take(GEMV_ROWS.len()).collect();
    // Weight sizes: 256 * 256 values at 32 bits, 8 (+ an f32 scale a row; twice: f32 and int8 activations),
    // 4 (+ one per 32 or 128), 8.5 (twice), 4.5, 4.25, 4.5 (+ 4 bytes), 4.5, 4.5 and 6.5625.
    let mb = [
        0.262144, 0.262144, 0.06656, 0.06656, 0.04096, 0.034816, 0.069632, 0.069632, 0.036864, 0.034816, 0.036868,
        0.036864, 0.036864, 0.05376,
    ];
    for ((row, name), want_mb) in rows.iter().zip(GEMV_ROWS).zip(mb) {
        let nums: Vec<f64> = row
            .strip_prefix(name)
            .unwrap_or_else(|| panic!("{name:?} row missing in {out}"))
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let [ms, mb, gbs, ratio] = nums[..] else { panic!("{row}") };
        assert!(ms > 0.0 && gbs > 0.0 && ratio > 0.0, "{row}");
        assert!((mb - want_mb).abs() < 0.0051, "{row}: {mb} MB, want {want_mb}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["bench", "--n", "4096", "--json", "--gemv-size", "128"])).unwrap();
    assert_eq!(v["gemv_size"], 128);
    let gemv = v["gemv"].as_object().unwrap();
    // 128 is not whole K-quant super-blocks: their rows are left out.
    assert_eq!(gemv.len(), GEMV_ROWS.len() - 2);
    assert!(!gemv.contains_key("q4_k") && !gemv.contains_key("q6_k"));
    for &name in &GEMV_ROWS[..GEMV_ROWS.len() - 2] {
        assert!(gemv[name]["seconds"].as_f64().unwrap() > 0.0, "{name}");
    }
    assert_eq!(gemv["q4_0"]["weight_bytes"], 128 * 128 / 32 * 18);
    let none: serde_json::Value =
        serde_json::from_str(&ok(&["bench", "--n", "4096", "--json", "--gemv-size", "0"])).unwrap();
    assert!(none["gemv"].as_object().unwrap().is_empty());
    assert_eq!(quantlab(&["bench", "--n", "4096", "--gemv-size", "100"]).status.code(), Some(2));
}
