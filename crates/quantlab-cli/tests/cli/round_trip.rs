//! Quantize then dequantize: every element within half a step of the original.

use ndarray::Array2;
use ndarray_npy::WriteNpyExt;
use safetensors::tensor::Dtype;

use crate::common::{Loaded, entries, f32_bytes, f32s, ok, quantlab, write_safetensors};

/// A [600, 512] tensor (more than one parallel piece) of uneven values.
fn big() -> Array2<f32> {
    Array2::from_shape_fn((600, 512), |(i, j)| {
        let k = (i * 512 + j) as f32;
        (k * 0.618_034).sin() * (1.0 + (i % 7) as f32) + if j == 3 { 0.25 * i as f32 } else { 0.0 }
    })
}

#[test]
fn quantize_then_dequantize_stays_within_half_a_step() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.npy");
    let x = big();
    x.write_npy(std::fs::File::create(&input).unwrap()).unwrap();
    let cases: [&[&str]; 6] = [
        &["--dtype", "int8"],
        &["--dtype", "int8", "--symmetric", "--axis", "1"],
        &["--dtype", "uint8", "--axis", "0"],
        &["--dtype", "int4", "--symmetric", "--group-size", "128"],
        &["--dtype", "uint4", "--group-size", "64"],
        &["--dtype", "int2", "--axis", "0"],
    ];
    for flags in cases {
        let q = dir.path().join("q.safetensors");
        let back = dir.path().join("back.safetensors");
        let mut args = vec!["quantize", input.to_str().unwrap(), "-o", q.to_str().unwrap()];
        args.extend(flags);
        ok(&args);
        ok(&["dequantize", q.to_str().unwrap(), "-o", back.to_str().unwrap()]);
        let (q, back) = (Loaded::open(&q), Loaded::open(&back));
        let scale = f32s(q.st().tensor("big.scale").unwrap().data());
        let restored = back.st().tensor("big").unwrap();
        assert_eq!((restored.dtype(), restored.shape()), (Dtype::F32, &[600usize, 512][..]));
        let y = f32s(restored.data());
        let axis = flags.iter().position(|f| *f == "--axis").map(|i| flags[i + 1]);
        let group = flags.iter().position(|f| *f == "--group-size").map(|i| flags[i + 1].parse::<usize>().unwrap());
        for (k, (&a, &b)) in x.iter().zip(&y).enumerate() {
            let s = match (axis, group) {
                (Some("0"), _) => scale[k / 512],
                (Some(_), _) => scale[k % 512],
                (None, Some(g)) => scale[k / g],
                (None, None) => scale[0],
            };
            // Half a step, plus the rounding of the float32 arithmetic itself.
            let bound = s / 2.0 + 4.0 * f32::EPSILON * a.abs().max(s);
            assert!((a - b).abs() <= bound, "{flags:?}: element {k}: {a} came back as {b} (scale {s})");
        }
    }
}

#[test]
fn many_tensors_quietly_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("many.safetensors");
    let names: Vec<String> = (0..12).map(|i| format!("layer{i:02}.weight")).collect();
    let tensors: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (n.as_str(), Dtype::F32, vec![4, 8], f32_bytes(&(0..32).map(|j| (i * j) as f32 - 7.5).collect::<Vec<_>>()))
        })
        .collect();
    write_safetensors(&input, &tensors);
    let out = dir.path().join("q.safetensors");
    let run = quantlab(&["quantize", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--dtype", "int4"]);
    assert!(run.status.success());
    assert!(run.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(Loaded::open(&out).st().len(), 36);
    assert_eq!(entries(dir.path()), ["many.safetensors", "q.safetensors"], "no temporary files left");
}

#[test]
fn cast_to_bf16_round_trips_through_f32() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.safetensors");
    // Values exactly representable in bf16 survive f32 -> bf16 unchanged.
    let values = [1.0f32, -2.5, 0.0078125, f32::from_bits(0x7f7f_0000), -0.0]; // bf16's max
    write_safetensors(&input, &[("x", Dtype::F32, vec![5], f32_bytes(&values))]);
    let out = dir.path().join("b.safetensors");
    ok(&["cast", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--to", "bf16", "--all"]);
    let b = Loaded::open(&out);
    let t = b.st().tensor("x").unwrap();
    assert_eq!(t.dtype(), Dtype::BF16);
    let got: Vec<f32> = t.data().chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect();
    assert_eq!(
        got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
