//! GGUF: reading a file gguf-py 0.19's GGUFWriter wrote (tests/fixtures/gguf_reference.gguf, contents in
//! gguf_reference_expected.safetensors), writing one that reads back the same, and refusing lying files.

use std::borrow::Cow;
use std::path::PathBuf;

use quantlab::Error;
use quantlab::formats::{BlockFormat, GgmlBlock};
use quantlab::io::gguf::{GgmlType, Gguf, GgufOutTensor, GgufValue, write_gguf, write_gguf_to};
use safetensors::SafeTensors;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)).unwrap()
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn reads_a_file_written_by_gguf_py() {
    let file = fixture("gguf_reference.gguf");
    let g = Gguf::parse(&file).unwrap();
    let expected_bytes = fixture("gguf_reference_expected.safetensors");
    let (_, meta) = SafeTensors::read_metadata(&expected_bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    let e = SafeTensors::deserialize(&expected_bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 32);

    // Metadata: every key gguf-py wrote, with its type and value.
    let kv: serde_json::Value = serde_json::from_str(&meta["kv"]).unwrap();
    let want = |k: &str| &kv[k];
    assert_eq!(g.get("general.architecture").and_then(GgufValue::as_str), want("general.architecture").as_str());
    assert_eq!(g.get("general.name").and_then(GgufValue::as_str), want("general.name").as_str());
    assert_eq!(g.get("test.u8"), Some(&GgufValue::U8(7)));
    assert_eq!(g.get("test.i8"), Some(&GgufValue::I8(-7)));
    assert_eq!(g.get("test.u16"), Some(&GgufValue::U16(65535)));
    assert_eq!(g.get("test.i16"), Some(&GgufValue::I16(-300)));
    assert_eq!(g.get("test.u32"), Some(&GgufValue::U32(4_000_000_000)));
    assert_eq!(g.get("test.i32"), Some(&GgufValue::I32(-2_000_000_000)));
    assert_eq!(g.get("test.f32"), Some(&GgufValue::F32(0.15625)));
    assert_eq!(g.get("test.bool"), Some(&GgufValue::Bool(true)));
    assert_eq!(g.get("test.string").and_then(GgufValue::as_str), want("test.string").as_str());
    assert_eq!(g.get("test.u64").and_then(GgufValue::as_u64), want("test.u64").as_u64());
    assert_eq!(g.get("test.i64"), Some(&GgufValue::I64(want("test.i64").as_i64().unwrap())));
    assert_eq!(g.get("test.f64"), Some(&GgufValue::F64(want("test.f64").as_f64().unwrap())));
    assert_eq!(
        g.get("test.arr_i32"),
        Some(&GgufValue::Array(vec![GgufValue::I32(1), GgufValue::I32(-2), GgufValue::I32(3)]))
    );
    assert_eq!(
        g.get("test.arr_str"),
        Some(&GgufValue::Array(["a", "bc", ""].map(|s| GgufValue::Str(s.into())).to_vec()))
    );
    assert_eq!(g.get("test.arr_f32"), Some(&GgufValue::Array(vec![GgufValue::F32(0.5), GgufValue::F32(-1.25)])));

    // Tensors: order, names, shapes, types, bytes and dequantized values.
    let order: Vec<String> = serde_json::from_str(&meta["order"]).unwrap();
    assert_eq!(g.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>(), order);
    for t in &g.tensors {
        let shape: Vec<usize> =
            i64s(e.tensor(&format!("{}.shape", t.name)).unwrap().data()).iter().map(|&d| d as usize).collect();
        assert_eq!(t.shape, shape, "{}", t.name);
        assert_eq!(i64::from(t.ggml_type.0), i64s(e.tensor(&format!("{}.type", t.name)).unwrap().data())[0]);
        assert_eq!(g.tensor_bytes(t), e.tensor(&t.name).unwrap().data(), "{} bytes", t.name);
        let want = f32s(e.tensor(&format!("{}.dequant", t.name)).unwrap().data());
        let got = g.tensor_f32(t).unwrap();
        assert_eq!(got.len(), want.len(), "{}", t.name);
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{} dequantized", t.name);
    }
    assert_eq!(g.tensors.iter().find(|t| t.name == "blk.0.q4_k").unwrap().ggml_type.name(), "Q4_K");
}

/// A small file: metadata of every kind and tensors of several types, written by quantlab.
fn ours() -> Vec<u8> {
    let x: Vec<f32> = (0..512).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
    let q4k = BlockFormat::Ggml(GgmlBlock::Q4K).quantize(&x, 256).unwrap().data;
    let q8 = BlockFormat::Ggml(GgmlBlock::Q8_0).quantize(&x[..96], 32).unwrap().data;
    let f32_bytes: Vec<u8> = x[..5].iter().flat_map(|v| v.to_le_bytes()).collect();
    let meta = vec![
        ("general.architecture".to_string(), GgufValue::Str("llama".into())),
        ("test.nested".to_string(), GgufValue::Array(vec![GgufValue::Array(vec![GgufValue::U8(1)])])),
        ("test.f64".to_string(), GgufValue::F64(-2.5)),
    ];
    let tensors = vec![
        GgufOutTensor {
            name: "w.q4_k".into(),
            shape: vec![2, 256],
            ggml_type: GgmlType(12),
            bytes: Box::new(move || Ok(Cow::Owned(q4k))),
        },
        GgufOutTensor {
            name: "w.q8_0".into(),
            shape: vec![3, 32],
            ggml_type: GgmlType(8),
            bytes: Box::new(move || Ok(Cow::Owned(q8))),
        },
        GgufOutTensor {
            name: "bias".into(),
            shape: vec![5],
            ggml_type: GgmlType::F32,
            bytes: Box::new(move || Ok(Cow::Owned(f32_bytes))),
        },
    ];
    let mut out = Vec::new();
    write_gguf_to(&mut out, &meta, tensors).unwrap();
    out
}

#[test]
fn writes_gguf_v3_that_reads_back() {
    let bytes = ours();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.get("general.alignment"), Some(&GgufValue::U32(32)));
    assert_eq!(g.get("test.f64"), Some(&GgufValue::F64(-2.5)));
    let names: Vec<&str> = g.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w.q4_k", "w.q8_0", "bias"]);
    assert_eq!(g.tensors[0].shape, [2, 256]);
    assert!(g.tensors.iter().all(|t| t.offset % 32 == 0));
    let x: Vec<f32> = (0..512).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
    let q = BlockFormat::Ggml(GgmlBlock::Q4K).quantize(&x, 256).unwrap();
    assert_eq!(g.tensor_bytes(&g.tensors[0]), q.data.as_slice());
    assert_eq!(g.tensor_f32(&g.tensors[0]).unwrap(), q.dequantize().unwrap());
    assert_eq!(g.tensor_f32(&g.tensors[2]).unwrap(), x[..5]);
    // The data section (each tensor padded to 32 bytes) ends the file and starts aligned.
    let data: usize = [144 * 2, 34 * 3, 4 * 5].iter().map(|n: &usize| n.div_ceil(32) * 32).sum();
    assert_eq!((bytes.len() - data) % 32, 0);

    // To a file: staged, renamed; a failure leaves nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.gguf");
    let bad = vec![GgufOutTensor {
        name: "t".into(),
        shape: vec![32],
        ggml_type: GgmlType(8),
        bytes: Box::new(|| Ok(Cow::Owned(vec![0u8; 33]))),
    }];
    assert!(matches!(write_gguf(&path, &[], bad), Err(Error::WrongByteLength { expected: 34, got: 33, .. })));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left after a failed write");
    let good = vec![GgufOutTensor {
        name: "t".into(),
        shape: vec![32],
        ggml_type: GgmlType(8),
        bytes: Box::new(|| Ok(Cow::Owned(vec![0u8; 34]))),
    }];
    write_gguf(&path, &[], good).unwrap();
    assert_eq!(Gguf::parse(&std::fs::read(&path).unwrap()).unwrap().tensors[0].nbytes, 34);
    // Shapes that are not whole blocks are refused before writing.
    let odd = vec![GgufOutTensor {
        name: "t".into(),
        shape: vec![2, 48],
        ggml_type: GgmlType(8),
        bytes: Box::new(|| Ok(Cow::Owned(vec![]))),
    }];
    assert!(matches!(write_gguf_to(&mut Vec::new(), &[], odd), Err(Error::BadParams { .. })));
}

fn is_bad_gguf(bytes: &[u8]) -> bool {
    matches!(Gguf::parse(bytes), Err(Error::BadGguf { .. }))
}

#[test]
fn every_truncation_and_lie_is_a_typed_error() {
    for file in [fixture("gguf_reference.gguf"), ours()] {
        let g = Gguf::parse(&file).unwrap();
        // Every strict prefix is refused (the last tensor's bytes end at the file's end, less padding).
        let last = g.tensors.iter().map(|t| t.offset + t.nbytes).max().unwrap();
        let data_start =
            file.len() as u64 - g.tensors.iter().map(|t| t.offset + t.nbytes.div_ceil(32) * 32).max().unwrap();
        for len in 0..(data_start + last) as usize {
            assert!(is_bad_gguf(&file[..len]), "a prefix of {len} bytes was accepted");
        }
    }
    let file = fixture("gguf_reference.gguf");
    let lie = |at: usize, bytes: &[u8]| {
        let mut f = file.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        f
    };
    let msg = |f: &[u8]| Gguf::parse(f).unwrap_err().to_string();
    assert!(msg(&lie(0, b"GGUG")).contains("magic"));
    assert!(msg(&lie(4, &1u32.to_le_bytes())).contains("version 1"));
    assert!(msg(&lie(4, &4u32.to_le_bytes())).contains("version 4"));
    // Absurd counts: refused before anything is allocated for them.
    assert!(msg(&lie(8, &u64::MAX.to_le_bytes())).contains("tensor count"));
    assert!(msg(&lie(16, &(1u64 << 40).to_le_bytes())).contains("metadata count"));
    // The first key's length.
    assert!(msg(&lie(24, &(u64::MAX / 2).to_le_bytes())).contains("key"));
    // A tensor whose offset lies past the end, or off the alignment; too many dimensions.
    let g = Gguf::parse(&file).unwrap();
    let name = g.tensors[0].name.as_bytes();
    let pos = file
        .windows(name.len() + 8)
        .position(|w| &w[8..] == name && w[..8] == (name.len() as u64).to_le_bytes())
        .unwrap();
    let dims_at = pos + 8 + name.len();
    let n_dims = g.tensors[0].shape.len();
    let offset_at = dims_at + 4 + 8 * n_dims + 4;
    assert!(msg(&lie(offset_at, &(1u64 << 32).to_le_bytes())).contains("past the end"));
    assert!(msg(&lie(offset_at, &7u64.to_le_bytes())).contains("alignment"));
    assert!(msg(&lie(dims_at, &9u32.to_le_bytes())).contains("dimensions"));
    // Dimensions whose product overflows.
    assert!(
        msg(&lie(dims_at + 4, &u64::MAX.to_le_bytes())).contains("overflow")
            || is_bad_gguf(&lie(dims_at + 4, &u64::MAX.to_le_bytes()))
    );
    // An unknown tensor type.
    assert!(msg(&lie(dims_at + 4 + 8 * n_dims, &250u32.to_le_bytes())).contains("unknown ggml type"));
    // Garbage never panics.
    let mut state = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut f = file.clone();
        for _ in 0..4 {
            state = state.wrapping_mul(1664525).wrapping_add(1013904223);
            let at = (state as usize >> 4) % 400.min(f.len());
            f[at] = (state >> 24) as u8;
        }
        if let Ok(g) = Gguf::parse(&f) {
            for t in &g.tensors {
                let _ = g.tensor_f32(t);
            }
        }
    }
}
