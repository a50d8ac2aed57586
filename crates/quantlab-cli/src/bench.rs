//! `quantlab bench`: single-thread throughput of the library's kernels, next
//! to this machine's copy bandwidth measured in the same run.
//!
//! Every operation goes through the library's public API on one f32 buffer of
//! N seeded values, on the calling thread. Each is timed as the best of at
//! least five runs (more while under half a second), and reported as
//! elements per second: N / best seconds.
//!
//! Then the linear layer's matrix-vector product (`--gemv-size`, 4096 by
//! default): one SIZE x SIZE weight times one f32 vector, in f32 (ndarray's
//! `dot`, and as a SIZE x 1 matrix product through matrixmultiply) and held
//! quantized by [`quantlab::linear::Linear`] (int8 per row, int4 per group of
//! 32 and 128, ggml Q8_0 and Q4_0 blocks, MXFP4, NVFP4 and NF4 (blocks of
//! 64), and, when SIZE is a multiple of 256, Q4_K and Q6_K through the
//! generic block path), each the best of the same runs; and int8 and Q8_0
//! weights times int8 activations (x quantized to Q8_0 inside each timed run),
//! with its speed-up over the faster f32 row.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use half::{bf16, f16};
use ndarray::{Array1, Array2, ArrayView1, Axis};
use quantlab::formats::{BlockFormat, GgmlBlock};
use quantlab::linear::{Activations, Linear};
use quantlab::{CastExt, CastOptions, DType, Element, QuantParams, QuantSpec, QuantizeExt, asymmetric_params};
use serde_json::json;

use crate::args::BenchArgs;

/// The default N: 64 MiB of f32, far beyond any cache.
const BIG: usize = 1 << 24;
/// The in-cache N of the table: 256 KiB of f32.
const SMALL: usize = 1 << 16;
/// The int4 group size, which N must be a multiple of.
const GROUP: usize = 128;
const MIN_REPS: usize = 5;
const MIN_TIME: Duration = Duration::from_millis(500);

/// The operations, in report order, with the bytes each moves per element
/// (read plus write), which turn elements/s into GB/s.
const OPS: [(&str, f64); 7] = [
    ("copy", 8.0),
    ("quantize_int8", 5.0),
    ("dequantize_int8", 5.0),
    ("cast_bf16", 6.0),
    ("cast_f16", 6.0),
    ("quantize_int4_g128", 4.5),
    ("cast_e4m3fn", 5.0),
];

/// The block formats timed, by `BlockFormat::parse` name, each quantized
/// (`quantize_<name>`) and dequantized (`dequantize_<name>`) through the
/// public API, a new output each run as every peer gives one.
const FORMATS: [&str; 8] = ["q8_0", "q4_0", "gguf_mxfp4", "mxfp4", "mxfp8_e4m3", "mxfp8_e5m2", "nvfp4", "nf4"];

/// Symmetric int4 per-group (G=128) quantization including packing: one line
/// to change when the library gains a fused quantize-and-pack call.
fn quantize_int4_g128(x: ArrayView1<'_, f32>) -> Result<Vec<u8>> {
    Ok(x.quantize_packed(QuantSpec::new(DType::Int4).symmetric().per_group(GROUP))?.0)
}

/// Runs `quantlab bench`.
pub fn run(args: &BenchArgs, out: &mut impl Write) -> Result<()> {
    if args.json {
        // Written by hand to keep the contract's key order (serde_json sorts keys).
        let n = args.n.unwrap_or(BIG);
        let ops: Vec<String> =
            measure(n, args.reuse_output)?.iter().map(|(name, e)| format!("{}: {}", json!(name), json!(e))).collect();
        let cpu = quantlab::cpu_features();
        let features: Vec<&str> = cpu.features.iter().filter(|f| f.present).map(|f| f.name).collect();
        let cpu = json!({"vendor": cpu.vendor, "model": cpu.model, "arch": cpu.arch, "features": features});
        let gemv = measure_gemv(args.gemv_size)?
            .iter()
            .map(|r| format!("{}: {}", json!(r.name), json!({"seconds": r.secs, "weight_bytes": r.bytes})))
            .collect::<Vec<_>>();
        writeln!(
            out,
            "{{\"n\": {n}, \"kernel\": {}, \"kernel_detail\": {}, \"cpu\": {cpu}, \"ops\": {{{}}}, \"gemv_size\": {}, \"gemv\": {{{}}}}}",
            json!(quantlab::kernel()),
            json!(quantlab::kernel_detail()),
            ops.join(", "),
            args.gemv_size,
            gemv.join(", ")
        )?;
        return Ok(());
    }
    let sizes = match args.n {
        Some(n) => vec![n],
        None => vec![BIG, SMALL],
    };
    let results = sizes.iter().map(|&n| measure(n, args.reuse_output)).collect::<Result<Vec<_>>>()?;
    let cpu = quantlab::cpu_features();
    let features: Vec<&str> = cpu.features.iter().filter(|f| f.present).map(|f| f.name).collect();
    writeln!(out, "CPU: {} ({}, {}); features: {}", cpu.model, cpu.vendor, cpu.arch, features.join(" "))?;
    writeln!(out, "kernel choice: {}", quantlab::kernel_detail())?;
    writeln!(
        out,
        "kernel: {} (available: {}); one thread; best of >= {MIN_REPS} runs; casts into {}",
        quantlab::kernel(),
        quantlab::available_kernels().join(", "),
        if args.reuse_output { "one preallocated output" } else { "a new array each run" }
    )?;
    write!(out, "{:<20}", "operation")?;
    for n in &sizes {
        write!(out, " {:>28}", format!("N = 2^{:.0} ({n})", (*n as f64).log2()))?;
    }
    writeln!(out)?;
    write!(out, "{:<20}", "")?;
    for _ in &sizes {
        write!(out, " {:>12} {:>7} {:>7}", "Melem/s", "GB/s", "% copy")?;
    }
    writeln!(out)?;
    for (i, (name, bytes)) in ops().iter().enumerate() {
        write!(out, "{name:<20}")?;
        for r in &results {
            let e = r[i].1;
            write!(out, " {:>12.1} {:>7.2} {:>6.0}%", e / 1e6, e * bytes / 1e9, 100.0 * e * bytes / (r[0].1 * 8.0))?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "(GB/s counts bytes read plus written; copy is this machine's single-thread limit; 2^16 f32 stay in \
         cache, 2^24 do not)"
    )?;
    if args.gemv_size > 0 {
        write_gemv(args.gemv_size, &measure_gemv(args.gemv_size)?, out)?;
    }
    Ok(())
}

/// One row of the matrix-vector table.
struct GemvRow {
    name: &'static str,
    /// Bytes of the weight as held (scales included).
    bytes: u64,
    /// Best seconds of one product.
    secs: f64,
}

fn write_gemv(size: usize, rows: &[GemvRow], out: &mut impl Write) -> Result<()> {
    let f32_best = rows.iter().filter(|r| r.name.starts_with("f32")).map(|r| r.secs).fold(f64::INFINITY, f64::min);
    writeln!(out)?;
    writeln!(
        out,
        "matrix-vector product: {size} x {size} weight times one f32 vector; gemv kernel: {} (int8 activations: {}); one thread; best of >= {MIN_REPS} runs",
        quantlab::gemv_kernel(),
        quantlab::a8_kernel()
    )?;
    writeln!(out, "{:<22} {:>10} {:>11} {:>7} {:>7}", "weight", "ms", "weight MB", "GB/s", "x f32")?;
    for r in rows {
        writeln!(
            out,
            "{:<22} {:>10.4} {:>11.2} {:>7.1} {:>7.2}",
            r.name,
            r.secs * 1e3,
            r.bytes as f64 / 1e6,
            r.bytes as f64 / r.secs / 1e9,
            f32_best / r.secs
        )?;
    }
    writeln!(out, "(x f32: the faster f32 row's time over this row's; GB/s: weight bytes read per second;")?;
    writeln!(out, " \"x int8 act\"/\"x q8_0 act\": x quantized to Q8_0 in each run, products in integers)")?;
    Ok(())
}

/// The matrix-vector rows for a `size` x `size` weight (none for 0).
fn measure_gemv(size: usize) -> Result<Vec<GemvRow>> {
    if size == 0 {
        return Ok(Vec::new());
    }
    if !size.is_multiple_of(GROUP) {
        bail!("--gemv-size {size}: use a multiple of {GROUP} (the largest int4 group size)");
    }
    let w = Array2::from_shape_vec((size, size), seeded(size * size))?;
    let x = Array1::from(seeded(size).into_iter().rev().collect::<Vec<_>>());
    let x_col = x.clone().insert_axis(Axis(1));
    let f32_bytes = 4 * (size * size) as u64;
    let mut rows = vec![
        GemvRow {
            name: "f32 ndarray dot",
            bytes: f32_bytes,
            secs: best(|| {
                black_box(w.dot(black_box(&x)));
                Ok(())
            })?,
        },
        GemvRow {
            name: "f32 matrixmultiply",
            bytes: f32_bytes,
            secs: best(|| {
                black_box(w.dot(black_box(&x_col)));
                Ok(())
            })?,
        },
    ];
    let mut layers = vec![
        ("int8 per row", Linear::int8_per_channel(w.view(), None)?),
        // W8A8: the time includes quantizing x to Q8_0 (gguf-py's quantizer).
        ("int8 x int8 act", Linear::int8_per_channel(w.view(), None)?.with_activations(Activations::Q8_0)?),
        ("int4 g32", Linear::int4_per_group(w.view(), 32, None)?),
        ("int4 g128", Linear::int4_per_group(w.view(), 128, None)?),
        ("q8_0", Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q8_0), None)?),
        (
            "q8_0 x q8_0 act",
            Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q8_0), None)?.with_activations(Activations::Q8_0)?,
        ),
        ("q4_0", Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q4_0), None)?),
        ("mxfp4", Linear::block(w.view(), BlockFormat::parse("mxfp4")?, None)?),
        ("nvfp4", Linear::block(w.view(), BlockFormat::parse("nvfp4")?, None)?),
        ("nf4", Linear::block(w.view(), BlockFormat::parse("nf4")?, None)?),
    ];
    // The generic block path (one decoded block at a time), when rows are
    // whole 256-value K-quant super-blocks.
    if size.is_multiple_of(256) {
        layers.push(("q4_k", Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q4K), None)?));
        layers.push(("q6_k", Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q6K), None)?));
    }
    drop(w);
    let x = x.to_vec();
    let mut y = vec![0f32; size];
    for (name, layer) in &layers {
        let secs = best(|| Ok(layer.matvec_into(black_box(&x), &mut y)?))?;
        rows.push(GemvRow { name, bytes: layer.weight_bytes(), secs });
    }
    Ok(rows)
}

/// Elements per second of every operation on N values; `reuse` casts into
/// one preallocated output rather than a new array each run.
/// Every operation timed, with its bytes per element: [`OPS`], then each of
/// [`FORMATS`] quantized and dequantized (4 bytes of f32 plus the format's
/// bits per weight).
fn ops() -> Vec<(String, f64)> {
    let mut ops: Vec<(String, f64)> = OPS.iter().map(|(n, b)| (n.to_string(), *b)).collect();
    for name in FORMATS {
        let bytes = 4.0 + BlockFormat::parse(name).map_or(0.0, |f| f.bits_per_weight() / 8.0);
        ops.push((format!("quantize_{name}"), bytes));
        ops.push((format!("dequantize_{name}"), bytes));
    }
    ops
}

fn measure(n: usize, reuse: bool) -> Result<Vec<(String, f64)>> {
    if n == 0 || !n.is_multiple_of(GROUP) {
        bail!("--n {n}: use a positive multiple of {GROUP} (the int4 group size)");
    }
    let x = seeded(n);
    let view = ArrayView1::from(&x);
    let (lo, hi) = x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (s, z) = asymmetric_params(lo, hi, DType::Int8)?;
    let params = QuantParams::per_tensor(s, z);
    let q8 = view.quantize_with(DType::Int8, &params)?;
    let mut dst = vec![0f32; n];
    let (mut b16, mut h16) = (Array1::from_elem(n, bf16::ZERO), Array1::from_elem(n, f16::ZERO));
    let mut e4 = Array1::from_elem(n, float8::F8E4M3::from_bits(0));
    let secs = [
        best(|| {
            dst.copy_from_slice(black_box(&x));
            black_box(&mut dst);
            Ok(())
        })?,
        best(|| {
            black_box(view.quantize_with(DType::Int8, &params)?);
            Ok(())
        })?,
        best(|| {
            black_box(q8.dequantize()?);
            Ok(())
        })?,
        best(|| cast_once(view, &mut b16, reuse))?,
        best(|| cast_once(view, &mut h16, reuse))?,
        best(|| {
            black_box(quantize_int4_g128(view)?);
            Ok(())
        })?,
        best(|| cast_once(view, &mut e4, reuse))?,
    ];
    let mut secs = secs.to_vec();
    for name in FORMATS {
        let f = BlockFormat::parse(name)?;
        // Rows of GROUP values: whole blocks of every format timed.
        let q = f.quantize(&x, GROUP)?;
        secs.push(best(|| {
            black_box(f.quantize(black_box(&x), GROUP)?);
            Ok(())
        })?);
        secs.push(best(|| {
            black_box(q.dequantize()?);
            Ok(())
        })?);
    }
    Ok(ops().into_iter().zip(secs).map(|((name, _), s)| (name, n as f64 / s)).collect())
}

/// One cast of `x` to `T`: into `out` when `reuse`, else into a new array.
fn cast_once<T: Element>(x: ArrayView1<'_, f32>, out: &mut Array1<T>, reuse: bool) -> Result<()> {
    if reuse {
        x.cast_into(out, CastOptions::default())?;
        black_box(out);
    } else {
        black_box(x.cast::<T>()?);
    }
    Ok(())
}

/// The shortest of at least `MIN_REPS` runs, going on until `MIN_TIME` has passed.
fn best(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut reps = 0;
    while reps < MIN_REPS || (start.elapsed() < MIN_TIME && reps < 10_000) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
        reps += 1;
    }
    Ok(best.max(1e-9))
}

/// N values near a normal distribution (sum of three uniforms), the same on
/// every run: splitmix64 from a fixed seed.
fn seeded(n: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    (0..n).map(|_| uniform() + uniform() + uniform()).collect()
}
