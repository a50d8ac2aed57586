//! Every bad input: one line on stderr naming the file, the tensor and the
//! problem, exit code 2, no output file, no panic.

use std::path::Path;

use safetensors::tensor::Dtype;

use crate::common::{entries, f32_bytes, fixture, quantlab, write_safetensors};

/// Runs a command that must fail; returns its one stderr line.
fn fails(args: &[&std::ffi::OsStr]) -> String {
    let out = quantlab(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line: {stderr}");
    assert!(stderr.starts_with("quantlab: "), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    assert!(out.stdout.is_empty());
    stderr
}

/// Runs `quantlab quantize INPUT -o DIR/out.safetensors EXTRA...` expecting
/// failure, and checks that the directory is left as it was.
fn quantize_fails(input: &Path, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let mut args: Vec<&std::ffi::OsStr> = vec!["quantize".as_ref(), input.as_os_str(), "-o".as_ref(), out.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let line = fails(&args);
    assert!(entries(dir.path()).is_empty(), "left behind: {:?}", entries(dir.path()));
    line
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn missing_file() {
    let line = quantize_fails(Path::new("no/such/model.safetensors"), &["--dtype", "int8"]);
    assert!(line.contains("no/such/model.safetensors: cannot open: No such file"), "{line}");
    let line = fails(&[os("footprint"), os("missing.npy")]);
    assert!(line.contains("missing.npy: cannot open"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    let line = fails(&[os("footprint"), dir.path().as_os_str()]);
    assert!(line.contains("is a directory"), "{line}");
}

#[test]
fn truncated_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::fs::read(fixture("model.safetensors")).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &model[..model.len() - 10]).unwrap();
    let line = quantize_fails(&truncated, &["--dtype", "int8"]);
    assert!(line.contains("truncated.safetensors: not a valid .safetensors or .npy file"), "{line}");

    let corrupt = dir.path().join("corrupt.safetensors");
    let mut bad = model.clone();
    bad[10] = b'!'; // inside the JSON header
    std::fs::write(&corrupt, &bad).unwrap();
    let line = quantize_fails(&corrupt, &["--dtype", "int8"]);
    assert!(line.contains("corrupt.safetensors: not a valid"), "{line}");

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(quantize_fails(&empty, &["--dtype", "int8"]).contains("empty.safetensors: not a valid"));

    let npy = std::fs::read(fixture("vector.npy")).unwrap();
    let short = dir.path().join("short.npy");
    std::fs::write(&short, &npy[..npy.len() - 3]).unwrap();
    let line = quantize_fails(&short, &["--dtype", "int8"]);
    assert!(line.contains("short.npy: not a valid .npy file"), "{line}");
}

#[test]
fn unknown_dtypes() {
    let line = fails(&[os("info"), os("int9")]);
    assert!(line.contains("unknown data type `int9`: use one of uint8, int8"), "{line}");
    let model = fixture("model.safetensors");
    let line = fails(&[os("cast"), model.as_os_str(), os("-o"), os("x.safetensors"), os("--to"), os("float9")]);
    assert!(line.contains("unknown data type `float9`"), "{line}");
    let line = fails(&[os("cast"), model.as_os_str(), os("-o"), os("x.safetensors"), os("--to"), os("int8")]);
    assert!(line.contains("int8 is not a float type"), "{line}");
    let line = quantize_fails(&model, &["--dtype", "int3"]);
    assert!(line.contains("invalid value 'int3' for '--dtype <DTYPE>'"), "{line}");
    let line = fails(&[os("footprint"), model.as_os_str(), os("--dtype"), os("int16")]);
    assert!(line.contains("--dtype int16"), "{line}");
    assert!(!Path::new("x.safetensors").exists());
}

#[test]
fn axis_out_of_range_names_the_tensor() {
    // Axis 2 exists only in w_bf16; the first float tensor in the file
    // (safetensors stores F32 before F16 and BF16, by name within a type) is ties [2, 4].
    let line = quantize_fails(&fixture("model.safetensors"), &["--dtype", "int8", "--axis", "2"]);
    assert!(
        line.contains("model.safetensors: ties: axis 2 is out of range for a tensor with 2 dimension(s)"),
        "{line}"
    );
}

#[test]
fn group_size_that_does_not_divide() {
    let line = quantize_fails(&fixture("model.safetensors"), &["--dtype", "int4", "--group-size", "16"]);
    assert!(
        line.contains("model.safetensors: ties: group size 16 does not divide the 8 elements of the tensor"),
        "{line}"
    );
}

#[test]
fn symmetric_unsigned_and_conflicting_flags() {
    let line = quantize_fails(&fixture("vector.npy"), &["--dtype", "uint8", "--symmetric"]);
    assert!(line.contains("symmetric quantization needs a signed type, but uint8 is unsigned"), "{line}");
    let line = quantize_fails(&fixture("vector.npy"), &["--dtype", "int8", "--axis", "0", "--group-size", "4"]);
    assert!(line.contains("cannot be used with"), "{line}");
}

#[test]
fn non_finite_data_names_the_element() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("nan.safetensors");
    write_safetensors(
        &input,
        &[
            ("good", Dtype::F32, vec![2], f32_bytes(&[1.0, 2.0])),
            ("bad", Dtype::F32, vec![3], f32_bytes(&[1.0, f32::NAN, 2.0])),
        ],
    );
    let line = quantize_fails(&input, &["--dtype", "int8", "--all"]);
    assert!(line.contains("nan.safetensors: bad: the tensor holds NaN at flat index 1"), "{line}");
}

#[test]
fn float8_overflow_without_saturate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let line = fails(&[
        os("cast"),
        fixture("big.npy").as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--to"),
        os("float8_e4m3fn"),
        os("--all"),
    ]);
    assert!(line.contains("big.npy: big: -500 at flat index 1 is out of range for float8_e4m3fn"), "{line}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
}

#[test]
fn a_failed_run_keeps_an_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"previous result").unwrap();
    fails(&[
        os("cast"),
        fixture("big.npy").as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--to"),
        os("e4m3"),
        os("--all"),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), b"previous result");
    assert_eq!(entries(dir.path()), ["out.safetensors"]);
}

#[test]
fn dequantize_needs_quantlab_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let line = fails(&[os("dequantize"), fixture("model.safetensors").as_os_str(), os("-o"), out.as_os_str()]);
    assert!(line.contains("model.safetensors: no `quantlab` metadata"), "{line}");

    // A quantized file with a scale removed.
    let q = dir.path().join("q.safetensors");
    crate::common::ok(&[
        os("quantize"),
        fixture("vector.npy").as_os_str(),
        os("-o"),
        q.as_os_str(),
        os("--dtype"),
        os("int8"),
        os("--all"),
    ]);
    let bytes = std::fs::read(&q).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let kept: Vec<_> = st.iter().filter(|(n, _)| *n != "vector.scale").collect();
    let broken = dir.path().join("broken.safetensors");
    safetensors::serialize_to_file(kept, meta.metadata().clone(), &broken).unwrap();
    let line = fails(&[os("dequantize"), broken.as_os_str(), os("-o"), out.as_os_str()]);
    assert!(line.contains("broken.safetensors: vector: tensor `vector.scale` is missing"), "{line}");
    assert!(!out.exists());
}

#[test]
fn missing_output_directory() {
    let line = fails(&[
        os("quantize"),
        fixture("vector.npy").as_os_str(),
        os("-o"),
        os("/nonexistent-dir/q.safetensors"),
        os("--dtype"),
        os("int8"),
    ]);
    assert!(line.contains("/nonexistent-dir/q.safetensors: cannot create a temporary file"), "{line}");
}

/// Corrupt `.npy` headers whose ndarray-npy message runs over several lines
/// (quantlab used to print it as it was), and cut files: one line, exit 2,
/// no output.
#[test]
fn every_bad_npy_is_one_line() {
    let good = std::fs::read(fixture("vector.npy")).unwrap();
    let header_len = 10 + u16::from_le_bytes([good[8], good[9]]) as usize;
    let multi_line = |bytes: &[u8]| {
        ndarray_npy::ReadNpyExt::read_npy(bytes)
            .map(|_: ndarray::ArrayD<f32>| ())
            .is_err_and(|e: ndarray_npy::ReadNpyError| e.to_string().contains('\n'))
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for at in 6..header_len {
        for b in [b'\n', b'(', b'{', b'\'', 0xff] {
            let mut bad = good.clone();
            bad[at] = b;
            if multi_line(&bad) && cases.len() < 12 {
                cases.push(bad);
            }
        }
    }
    assert!(cases.len() >= 6, "only {} multi-line cases", cases.len());
    cases.extend([9, 40, header_len - 1, header_len + 3].map(|len| good[..len].to_vec()));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.npy");
    for bad in cases {
        std::fs::write(&input, &bad).unwrap();
        let out = tempfile::tempdir().unwrap();
        let output = out.path().join("o.safetensors");
        let line = fails(&[os("quantize"), input.as_os_str(), os("-o"), output.as_os_str(), os("--dtype"), os("int8")]);
        assert!(line.contains("bad.npy: not a valid .npy file"), "{line}");
        assert!(entries(out.path()).is_empty());
    }
}
