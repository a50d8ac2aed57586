//! `quantlab cast` to and from every narrow float type, and issue 12's bugs
//! and bad inputs at the command line.
//!
//! The library checks the narrow types' values against ml_dtypes and PyTorch
//! (crates/quantlab/tests/narrow_golden.rs); here every value of each type
//! goes through a file: stored as safetensors 0.8 names it (or as `U8` codes
//! named in `quantlab.dtypes`), then read back by `quantlab cast`.

use quantlab::DType;
use safetensors::tensor::Dtype;

use crate::common::{Loaded, entries, f32_bytes, f32s, ok, quantlab, write_safetensors};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// Every value of every narrow type survives f32 -> type -> f32, and the file
/// holds the type's codes in the layout its safetensors type prescribes.
#[test]
fn every_narrow_type_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for (d, stored) in [
        (DType::Float8E4M3Fnuz, Dtype::F8_E4M3FNUZ),
        (DType::Float8E5M2Fnuz, Dtype::F8_E5M2FNUZ),
        (DType::Float8E8M0Fnu, Dtype::F8_E8M0),
        (DType::Float6E2M3Fn, Dtype::F6_E2M3),
        (DType::Float6E3M2Fn, Dtype::F6_E3M2),
        (DType::Float4E2M1Fn, Dtype::F4),
        (DType::Float8E4M3, Dtype::U8),
        (DType::Float8E3M4, Dtype::U8),
        (DType::Float8E4M3B11Fnuz, Dtype::U8),
    ] {
        let m = d.minifloat().unwrap();
        let codes: Vec<u16> = m.codes().filter(|&c| !m.decode(c).is_nan()).collect();
        let values: Vec<f32> = codes.iter().map(|&c| m.decode_f32(c)).collect();
        // float6/float4 have no NaN: all 2^bits codes, a whole number of bytes.
        assert!(!d.is_sub_byte() || values.len() == 1 << d.bits(), "{d}");
        let input = dir.path().join(format!("{d}.in.safetensors"));
        write_safetensors(&input, &[("w", Dtype::F32, vec![values.len()], f32_bytes(&values))]);
        let narrow = dir.path().join(format!("{d}.safetensors"));
        ok(&["cast", "--all", path(&input), "-o", path(&narrow), "--to", d.name()]);
        let file = Loaded::open(&narrow);
        let t = file.st().tensor("w").unwrap();
        assert_eq!((t.dtype(), t.shape()), (stored, &[values.len()][..]), "{d}");
        let want: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
        let want = if stored == Dtype::U8 { want } else { quantlab::pack::pack_codes(&want, d.bits()).unwrap() };
        assert_eq!(t.data(), &want[..], "{d}: codes");
        let meta = file.metadata();
        if stored == Dtype::U8 {
            assert_eq!(meta["quantlab.dtypes"], format!(r#"{{"w":"{d}"}}"#));
        } else {
            assert!(!meta.contains_key("quantlab.dtypes"), "{d}");
        }
        let back = dir.path().join(format!("{d}.back.safetensors"));
        ok(&["cast", "--all", path(&narrow), "-o", path(&back), "--to", "float32"]);
        let got = f32s(Loaded::open(&back).st().tensor("w").unwrap().data());
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{d}"
        );
    }
}

/// A float4 or float6 tensor that is not a whole number of bytes is stored as
/// U8 codes, named in the metadata, and still read back.
#[test]
fn odd_sized_sub_byte_floats_are_named_codes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.safetensors");
    write_safetensors(&input, &[("x", Dtype::F32, vec![3], f32_bytes(&[1.0, -2.0, 2.6]))]);
    let f4 = dir.path().join("f4.safetensors");
    ok(&["cast", "--all", path(&input), "-o", path(&f4), "--to", "float4_e2m1fn"]);
    let file = Loaded::open(&f4);
    let t = file.st().tensor("x").unwrap();
    assert_eq!((t.dtype(), t.data()), (Dtype::U8, &[0x2u8, 0xc, 0x5][..]));
    assert_eq!(file.metadata()["quantlab.dtypes"], r#"{"x":"float4_e2m1fn"}"#);
    let back = dir.path().join("back.safetensors");
    ok(&["cast", "--all", path(&f4), "-o", path(&back), "--to", "f32"]);
    assert_eq!(f32s(Loaded::open(&back).st().tensor("x").unwrap().data()), [1.0, -2.0, 3.0]);
}

/// Issue 12, bug 1 at the command line: `--saturate` was ignored for f16 and bf16.
#[test]
fn saturate_clamps_f16_and_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.safetensors");
    write_safetensors(&input, &[("x", Dtype::F32, vec![3], f32_bytes(&[70000.0, -3.4e38, 1.0]))]);
    for (to, want) in [("float16", [65504.0, -65504.0, 1.0]), ("bfloat16", [70144.0, -3.3895314e38, 1.0])] {
        let out = dir.path().join(format!("{to}.safetensors"));
        ok(&["cast", "--all", path(&input), "-o", path(&out), "--to", to, "--saturate"]);
        let back = dir.path().join(format!("{to}.back.safetensors"));
        ok(&["cast", "--all", path(&out), "-o", path(&back), "--to", "float32"]);
        assert_eq!(f32s(Loaded::open(&back).st().tensor("x").unwrap().data()), want, "{to}");
    }
}

/// NaN into a type without NaN, out of range without --saturate, e8m0 of a
/// negative value: one line, exit 2, nothing written.
#[test]
fn bad_values_for_narrow_types() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.safetensors");
    for (values, to, want) in [
        (
            [1.0, f32::NAN],
            "float4_e2m1fn",
            "x: nan at flat index 1 cannot be stored in float4_e2m1fn: it has no NaN; replace or mask NaN first",
        ),
        ([1.0, 7.0], "float4_e2m1fn", "x: 7 at flat index 1 is out of range for float4_e2m1fn (largest magnitude 6)"),
        (
            [0.5, -0.25],
            "float8_e8m0fnu",
            "x: -0.25 at flat index 1 cannot be stored in float8_e8m0fnu: it holds only positive powers of two",
        ),
        (
            [0.5, 300.0],
            "float8_e4m3fnuz",
            "x: 300 at flat index 1 is out of range for float8_e4m3fnuz (largest magnitude 240)",
        ),
    ] {
        write_safetensors(&input, &[("x", Dtype::F32, vec![2], f32_bytes(&values))]);
        let out = dir.path().join("out.safetensors");
        let run = quantlab(&["cast", "--all", path(&input), "-o", path(&out), "--to", to]);
        let stderr = String::from_utf8(run.stderr).unwrap();
        assert_eq!((run.status.code(), stderr.lines().count()), (Some(2), 1), "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert!(!out.exists());
        assert_eq!(entries(dir.path()), ["x.safetensors"]);
    }
}

/// `--overflow` names PyTorch's or ml_dtypes' rule: 1000 -> float8_e4m3fn is
/// 448 in PyTorch 2.15, NaN in ml_dtypes (and an error by default).
#[test]
fn overflow_policies_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.safetensors");
    write_safetensors(&input, &[("x", Dtype::F32, vec![2], f32_bytes(&[1000.0, -1.0]))]);
    for (policy, want) in [("pytorch", [0x7eu8, 0xb8]), ("ml_dtypes", [0x7f, 0xb8]), ("saturate", [0x7e, 0xb8])] {
        let out = dir.path().join(format!("{policy}.safetensors"));
        ok(&["cast", "--all", path(&input), "-o", path(&out), "--to", "float8_e4m3fn", "--overflow", policy]);
        assert_eq!(Loaded::open(&out).st().tensor("x").unwrap().data(), want, "{policy}");
    }
    let out = dir.path().join("bad.safetensors");
    let run = quantlab(&["cast", "--all", path(&input), "-o", path(&out), "--to", "f16", "--overflow", "wrap"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8(run.stderr).unwrap().contains("unknown overflow policy `wrap`"));
}

/// `footprint` knows every narrow float: its bytes are the type's bits per
/// value, and its error is that of `cast` there and back (which the
/// round-trip test above holds to ml_dtypes' codes), saturating at the
/// type's largest value.
#[test]
fn footprint_counts_every_narrow_float() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) * 0.37).collect();
    let input = dir.path().join("in.safetensors");
    write_safetensors(&input, &[("w", Dtype::F32, vec![8, 8], f32_bytes(&values))]);
    let types = [DType::Float4E2M1Fn, DType::Float6E3M2Fn, DType::Float8E4M3Fnuz, DType::Float8E3M4];
    let names: Vec<&str> = types.iter().map(|d| d.name()).collect();
    let json = ok(&["footprint", path(&input), "--dtype", &names.join(","), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let cells = v["tensors"][0]["storages"].as_array().unwrap();
    for (d, cell) in types.iter().zip(cells) {
        assert_eq!(cell["storage"], d.name());
        assert_eq!(cell["bytes"].as_u64().unwrap(), 64 * u64::from(d.bits()) / 8, "{d}");
        let narrow = dir.path().join(format!("{d}.safetensors"));
        ok(&["cast", path(&input), "-o", path(&narrow), "--to", d.name(), "--overflow", "saturate"]);
        let back = dir.path().join(format!("{d}.back.safetensors"));
        ok(&["cast", path(&narrow), "-o", path(&back), "--to", "float32"]);
        let got = f32s(Loaded::open(&back).st().tensor("w").unwrap().data());
        let errors: Vec<f64> = values.iter().zip(&got).map(|(&a, &b)| f64::from(a) - f64::from(b)).collect();
        let mse = errors.iter().map(|e| e * e).sum::<f64>() / 64.0;
        let max_abs = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
        assert!(mse > 0.0, "{d}: the values are not all representable");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-30);
        assert!(close(cell["mse"].as_f64().unwrap(), mse), "{d}: {cell} vs {mse}");
        assert!(close(cell["max_abs"].as_f64().unwrap(), max_abs), "{d}: {cell} vs {max_abs}");
    }
}
