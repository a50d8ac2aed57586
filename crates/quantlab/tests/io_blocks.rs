//! Block formats in safetensors and GGUF through the library alone
//! (`quantlab::io::blocks`, `quantlab::io::gguf`): written, read back, and
//! compared with the format's own dequantize (the formats themselves are
//! checked against the references' values in tests/formats.rs).

use std::collections::HashMap;
use std::path::Path;

use quantlab::Error;
use quantlab::formats::{BlockFormat, GgmlBlock};
use quantlab::io::blocks::{self, Stored};
use quantlab::io::gguf::{GgufFile, GgufOutTensor, ggml_block_of, write_gguf};
use quantlab::io::{Dtype, Input, OutTensor, Tensor, write_safetensors};

/// Values with a spread of magnitudes and signs, so every block has its own scale.
fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * (1.0 + (i / 32) as f32) / 7.0).collect()
}

fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Writes `name` (of `shape`) quantized to `format` and an f32 `bias` beside
/// it, with the layout metadata; returns the format's own dequantized values.
fn write_quantized(path: &Path, format: BlockFormat, shape: &[usize]) -> Vec<f32> {
    let x = values(shape.iter().product());
    let q = format.quantize(&x, *shape.last().unwrap()).unwrap();
    let want = q.dequantize().unwrap();
    let (mut tensors, entry) = blocks::store::<Error>("w", Dtype::F32, shape, q).unwrap();
    tensors.push(OutTensor::owned("bias".into(), Dtype::F32, vec![3], f32_bytes(&[1.0, -2.0, 3.5])));
    let layout = blocks::Layout::from([("w".to_string(), entry)]);
    let metadata = HashMap::from([(blocks::KEY.to_string(), blocks::to_json(&layout))]);
    write_safetensors::<Error>(path, tensors, metadata, &|| {}).unwrap();
    want
}

fn by_name<'a>(tensors: &'a [Tensor<'a>], name: &str) -> &'a Tensor<'a> {
    tensors.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("no tensor {name}"))
}

/// `restore`d to a second file: `w` back as F32 in its packed data's place, the bias copied.
fn check_restore(input: &Input, dir: &Path, want: &[f32], shape: &[usize]) {
    let tensors = input.tensors().unwrap();
    let out = blocks::restore(&tensors, &input.metadata().unwrap()).unwrap();
    let back = dir.join("back.safetensors");
    write_safetensors::<Error>(&back, out, HashMap::new(), &|| {}).unwrap();
    let back = Input::open(&back).unwrap();
    let restored = back.tensors().unwrap();
    let names: Vec<&str> = restored.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["bias", "w"]);
    let w = by_name(&restored, "w");
    assert_eq!((w.dtype, w.shape.as_slice()), (Dtype::F32, shape));
    assert!(same(&f32s(&w.data), want), "restored values differ from the format's dequantize");
    assert_eq!(f32s(&by_name(&restored, "bias").data), [1.0, -2.0, 3.5]);
}

#[test]
fn mxfp4_round_trips_in_gpt_oss_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mxfp4.safetensors");
    let shape = [2, 3, 64];
    let format = BlockFormat::parse("mxfp4").unwrap();
    let want = write_quantized(&path, format, &shape);

    let input = Input::open(&path).unwrap();
    let tensors = input.tensors().unwrap();
    // gpt-oss' tensors: 16 bytes (32 e2m1 codes) per block, one e8m0 scale per block, under the leading axes.
    let (b, s) = (by_name(&tensors, "w_blocks"), by_name(&tensors, "w_scales"));
    assert_eq!((b.dtype, b.shape.as_slice()), (Dtype::U8, &[2, 3, 2, 16][..]));
    assert_eq!((s.dtype, s.shape.as_slice()), (Dtype::U8, &[2, 3, 2][..]));
    let q = format.quantize(&values(384), 64).unwrap();
    assert_eq!(b.data.as_ref(), q.data.as_slice());

    let metadata = input.metadata().unwrap();
    let layout = blocks::parse(&metadata[blocks::KEY]).unwrap();
    assert_eq!(layout["w"].format, format);
    assert_eq!(layout["w"].shape, shape);
    assert_eq!(layout["w"].part("scales"), Some("w_scales"));

    let found = blocks::find(&tensors, &metadata).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].data.as_str()), ("w", "w_blocks"));
    assert_eq!(found[0].parts, ["w_scales"]);
    assert!(matches!(found[0].stored, Stored::Blocks(_)));
    assert!(same(&found[0].dequantize(&tensors).unwrap(), &want));
    assert_eq!(found[0].quantized(&tensors).unwrap(), q);
    check_restore(&input, dir.path(), &want, &shape);
}

#[test]
fn nvfp4_and_q4_k_round_trip_with_their_scales() {
    let dir = tempfile::tempdir().unwrap();
    for (format, shape, parts) in [
        (BlockFormat::Nvfp4 { tensor_scale: true }, [4, 32], vec![("w", [4, 16]), ("w.scales", [4, 2])]),
        (BlockFormat::Ggml(GgmlBlock::Q4K), [2, 256], vec![("w", [2, 144])]),
    ] {
        let path = dir.path().join(format!("{}.safetensors", format.name()));
        let want = write_quantized(&path, format, &shape);
        let input = Input::open(&path).unwrap();
        let tensors = input.tensors().unwrap();
        for (name, part_shape) in parts {
            let t = by_name(&tensors, name);
            assert_eq!((t.dtype, t.shape.as_slice()), (Dtype::U8, &part_shape[..]), "{format}: {name}");
        }
        if let BlockFormat::Nvfp4 { .. } = format {
            let ts = by_name(&tensors, "w.tensor_scale");
            assert_eq!((ts.dtype, ts.shape.as_slice()), (Dtype::F32, &[1][..]));
            let amax = values(128).iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(f32s(&ts.data), [quantlab::formats::tensor_scale_of(amax)]);
        }
        let found = blocks::find(&tensors, &input.metadata().unwrap()).unwrap();
        assert!(same(&found[0].dequantize(&tensors).unwrap(), &want), "{format}");
        check_restore(&input, dir.path(), &want, &shape);
    }
}

#[test]
fn bad_layouts_are_errors_that_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nvfp4.safetensors");
    write_quantized(&path, BlockFormat::Nvfp4 { tensor_scale: true }, &[4, 32]);
    let input = Input::open(&path).unwrap();
    let tensors = input.tensors().unwrap();
    let metadata = input.metadata().unwrap();
    let layout_error =
        |tensors: &[Tensor<'_>], metadata: &HashMap<String, String>| match blocks::find(tensors, metadata) {
            Err(e @ Error::BadLayout { .. }) => e.to_string(),
            other => panic!("expected a layout error, got {other:?}"),
        };

    // A part missing, or cut short.
    let without: Vec<Tensor<'_>> = tensors.iter().filter(|t| t.name != "w.scales").cloned().collect();
    let e = layout_error(&without, &metadata);
    assert!(e.contains("`w`") && e.contains("tensor `w.scales` is missing"), "{e}");
    let mut short = tensors.clone();
    let s = short.iter_mut().find(|t| t.name == "w.scales").unwrap();
    s.data = s.data[1..].to_vec().into();
    let e = layout_error(&short, &metadata);
    assert!(e.contains("`w`") && e.contains("expected 8 bytes, got 7"), "{e}");
    assert!(blocks::restore(&short, &metadata).is_err());

    // Metadata that is not JSON, an unknown format, a shape of the wrong form.
    let with = |json: &str| HashMap::from([(blocks::KEY.to_string(), json.to_string())]);
    assert!(layout_error(&tensors, &with("[1, 2")).contains("not a JSON object"));
    let json = &metadata[blocks::KEY];
    let e = layout_error(&tensors, &with(&json.replace("\"nvfp4\"", "\"nvfp5\"")));
    assert!(e.contains("`w`") && e.contains("unknown block format `nvfp5`"), "{e}");
    let e = layout_error(&tensors, &with(&json.replace("[4,32]", "[4,-32]")));
    assert!(e.contains("`shape` is [4,-32]"), "{e}");
    // An NF4 entry without bitsandbytes' tensors.
    let nf4 = r#"{"v":{"format":"nf4","block_size":64,"shape":[64],"parts":{}}}"#;
    assert!(layout_error(&tensors, &with(nf4)).contains("bitsandbytes quant state is missing"));

    // `store` checks that the quantized tensor fits the shape it is given.
    let q = BlockFormat::Nvfp4 { tensor_scale: true }.quantize(&values(128), 32).unwrap();
    assert!(matches!(blocks::store::<Error>("w", Dtype::F32, &[2, 64], q), Err(Error::BadParams { .. })));
}

#[test]
fn gguf_stores_block_formats_and_reads_them_back() {
    assert_eq!(ggml_block_of(BlockFormat::parse("mxfp4").unwrap()), Ok(GgmlBlock::Mxfp4));
    assert_eq!(ggml_block_of(BlockFormat::parse("q8_0").unwrap()), Ok(GgmlBlock::Q8_0));
    let e = ggml_block_of(BlockFormat::parse("nvfp4").unwrap()).unwrap_err();
    assert!(matches!(e, Error::NoGgufType { .. }) && e.to_string().contains("nvfp4 has no GGUF type"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let x = values(64);
    let st = dir.path().join("in.safetensors");
    let ints: Vec<u8> = [7i32, -3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let input = vec![
        OutTensor::owned("w".into(), Dtype::F32, vec![2, 32], f32_bytes(&x)),
        OutTensor::owned("scalar".into(), Dtype::F32, vec![], f32_bytes(&[0.25])),
        OutTensor::owned("ids".into(), Dtype::I32, vec![2], ints.clone()),
        OutTensor::owned("flags".into(), Dtype::BOOL, vec![1], vec![1]),
    ];
    write_safetensors::<Error>(&st, input, HashMap::new(), &|| {}).unwrap();
    let st = Input::open(&st).unwrap();
    let tensors = st.tensors().unwrap();
    let out: Vec<GgufOutTensor<'_>> = tensors
        .iter()
        .filter_map(|t| GgufOutTensor::from_tensor(t, (t.name == "w").then_some(GgmlBlock::Q8_0)))
        .collect();
    assert_eq!(out.len(), 3, "bool has no GGUF type");
    let path = dir.path().join("out.gguf");
    write_gguf(&path, &[], out).unwrap();

    let file = GgufFile::open(&path).unwrap();
    let g = file.parse().unwrap();
    // (The safetensors writer orders tensors by type and size: compare by name.)
    let mut types: Vec<(&str, &[usize], String)> =
        g.tensors.iter().map(|t| (t.name.as_str(), t.shape.as_slice(), t.ggml_type.name().into_owned())).collect();
    types.sort();
    assert_eq!(
        types,
        [("ids", &[2][..], "I32".to_string()), ("scalar", &[1], "F32".into()), ("w", &[2, 32], "Q8_0".into())]
    );
    let want = BlockFormat::Ggml(GgmlBlock::Q8_0).quantize(&x, 32).unwrap().dequantize().unwrap();
    let back = g.to_safetensors().unwrap();
    let names: Vec<&str> = back.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, g.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), "in the GGUF's order");
    let st_back = dir.path().join("back.safetensors");
    write_safetensors::<Error>(&st_back, back, g.safetensors_metadata(), &|| {}).unwrap();
    let back = Input::open(&st_back).unwrap();
    let back_tensors = back.tensors().unwrap();
    assert!(same(&f32s(&by_name(&back_tensors, "w").data), &want));
    assert_eq!(f32s(&by_name(&back_tensors, "scalar").data), [0.25]);
    assert_eq!(by_name(&back_tensors, "ids").data.as_ref(), ints.as_slice());
    assert_eq!(back.metadata().unwrap().get("gguf.general.alignment"), None, "only strings are kept");
}
