//! `quantlab footprint`: what a checkpoint takes in each data type, with
//! scales and zero points counted, and the error each type would cause.

use std::io::Write;

use anyhow::{Context, Result, bail};
use ndarray::{ArrayViewD, IxDyn};
use quantlab::formats::BlockFormat;
use quantlab::{
    CastExt, CastOptions, DType, Element, ErrorStats, Overflow, QuantSpec, QuantizeExt, Storage as LibStorage,
    error_stats, human_bytes, tensor_bytes,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::args::{FootprintArgs, Measure};
use crate::select::{Reason, Selection};
use quantlab::io::gguf::{GgufFile, is_gguf_path};
use quantlab::io::{Dtype, Input, Tensor};

use crate::io::with_floats;

/// The data types measured when none are given.
const DEFAULT_DTYPES: [DType; 5] = [DType::Float32, DType::Float16, DType::BFloat16, DType::Int8, DType::Int4];

/// One storage of one tensor (or of the whole file).
#[derive(Debug, Clone, Serialize)]
struct Cell {
    /// The storage, e.g. `float16`, `int4 g128`.
    storage: String,
    /// Bytes, scales and zero points included.
    bytes: u64,
    /// Bytes in float32 divided by `bytes` (`null` when both are 0: an empty tensor).
    ratio: Option<f64>,
    /// Mean squared error of the round trip (`null` for tensors kept as they are).
    mse: Option<f64>,
    /// Largest absolute error.
    max_abs: Option<f64>,
    /// Signal-to-quantization-noise ratio in dB (`null` when the round trip is exact or not done).
    sqnr_db: Option<f64>,
}

#[derive(Debug, Serialize)]
struct TensorReport {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    numel: u64,
    /// Bytes as stored in the file (a GGUF tensor's in its ggml type, block scales included).
    stored_bytes: u64,
    /// `stored_bytes` in bits per value (`null` for an empty tensor).
    stored_bits_per_weight: Option<f64>,
    floating: bool,
    /// Why the tensor is kept as it is in every storage (`null` when converted).
    kept: Option<String>,
    storages: Vec<Cell>,
}

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    file_bytes: u64,
    numel: u64,
    /// Bytes of tensor data as stored, and in bits per value.
    stored_bytes: u64,
    stored_bits_per_weight: Option<f64>,
    total: Vec<Cell>,
    tensors: Vec<TensorReport>,
}

/// Sums for the whole-file line: squared signal and noise, so SQNR is exact.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    bytes: u64,
    f32_bytes: u64,
    signal: f64,
    noise: f64,
    numel_float: u64,
    max_abs: f64,
}

/// Runs `quantlab footprint`.
pub fn run(args: &FootprintArgs, out: &mut impl Write) -> Result<()> {
    let storages = storages(args)?;
    let selection = Selection::new(&args.select)?;
    let file = args.input.display().to_string();
    let mut totals = vec![Totals::default(); storages.len()];
    let mut reports = Vec::new();
    let file_bytes;
    if is_gguf_path(&args.input) {
        // A GGUF tensor is measured from its dequantized values, one tensor at a time.
        let gf = GgufFile::open(&args.input)?;
        file_bytes = gf.len();
        let g = gf.parse().with_context(|| file.clone())?;
        for info in &g.tensors {
            let ctx = || format!("{file}: {}", info.name);
            let stored = Stored { bytes: info.nbytes, dtype: info.ggml_type.name().into_owned() };
            let t = if info.ggml_type.is_readable_float() || info.ggml_type.int_dtype().is_some() {
                g.tensor(info).with_context(ctx)?
            } else {
                eprintln!(
                    "quantlab: note: {}: {} is a GGUF type quantlab cannot dequantize; counted as stored",
                    ctx(),
                    stored.dtype
                );
                let data = std::borrow::Cow::Borrowed(g.tensor_bytes(info));
                Tensor { name: info.name.clone(), dtype: Dtype::U8, shape: info.shape.clone(), data, stored_as: None }
            };
            reports.push(measure(&t, &stored, selection.keep(&t), &storages, &mut totals).with_context(ctx)?);
        }
    } else {
        let input = Input::open(&args.input)?;
        file_bytes = input.len();
        for t in &input.tensors()? {
            let stored = Stored { bytes: t.data.len() as u64, dtype: format!("{:?}", t.dtype) };
            let report = measure(t, &stored, selection.keep(t), &storages, &mut totals)
                .with_context(|| format!("{file}: {}", t.name))?;
            reports.push(report);
        }
    }
    let total = storages
        .iter()
        .zip(&totals)
        .map(|(s, t)| {
            let exact = t.noise == 0.0;
            let any = t.numel_float > 0;
            Cell {
                storage: s.to_string(),
                bytes: t.bytes,
                ratio: ratio(t.f32_bytes, t.bytes),
                mse: any.then(|| t.noise / t.numel_float as f64),
                max_abs: any.then_some(t.max_abs),
                sqnr_db: (any && !exact).then(|| 10.0 * (t.signal / t.noise).log10()),
            }
        })
        .collect();
    let numel: u64 = reports.iter().map(|r| r.numel).sum();
    let stored_bytes: u64 = reports.iter().map(|r| r.stored_bytes).sum();
    let report = Report {
        file,
        file_bytes,
        numel,
        stored_bytes,
        stored_bits_per_weight: bits_per_weight(stored_bytes, numel),
        total,
        tensors: reports,
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        print_table(&report, out)?;
    }
    Ok(())
}

/// A storage of the library's footprint, or a block format (measured by [`block_cell`]).
#[derive(Debug, Clone, Copy)]
enum Storage {
    Lib(LibStorage),
    Block(BlockFormat),
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Lib(s) => s.fmt(f),
            Storage::Block(b) => f.write_str(b.name()),
        }
    }
}

/// The storages the flags ask for.
fn storages(args: &FootprintArgs) -> Result<Vec<Storage>> {
    let dtypes: Vec<Measure> = if args.dtypes.is_empty() {
        DEFAULT_DTYPES.iter().map(|&d| Measure::DType(d)).collect()
    } else {
        args.dtypes.clone()
    };
    dtypes
        .into_iter()
        .map(|m| {
            let d = match m {
                Measure::DType(d) => d,
                Measure::Format(f) => return Ok(Storage::Block(f)),
            };
            if d.is_float() {
                return Ok(Storage::Lib(LibStorage::Plain(d)));
            }
            if !DType::QUANTIZED.contains(&d) {
                bail!("--dtype {d}: measure a float type or a quantized type (int8, uint8, int4, uint4, int2, uint2)");
            }
            let spec = QuantSpec::new(d);
            let spec = if args.symmetric { spec.symmetric() } else { spec };
            let spec = match args.group_size {
                Some(g) => spec.per_group(g),
                None => spec,
            };
            spec.check()?;
            Ok(Storage::Lib(LibStorage::Quantized(spec)))
        })
        .collect()
}

/// How a tensor is stored in its file: bytes and the type's name.
struct Stored {
    bytes: u64,
    dtype: String,
}

/// Bits per value; no meaning for no values.
fn bits_per_weight(bytes: u64, numel: u64) -> Option<f64> {
    (numel > 0).then(|| bytes as f64 * 8.0 / numel as f64)
}

/// Bytes in float32 per byte stored; no meaning for zero bytes.
fn ratio(f32_bytes: u64, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| f32_bytes as f64 / bytes as f64)
}

/// One tensor in every storage, or as it is stored when `kept`; adds it to
/// the file's totals.
fn measure(
    t: &Tensor<'_>,
    stored_as: &Stored,
    kept: Option<Reason>,
    storages: &[Storage],
    totals: &mut [Totals],
) -> Result<TensorReport> {
    let numel = t.numel() as u64;
    let stored = stored_as.bytes;
    let floats = t.floats();
    let as_stored = |_| {
        // A float tensor kept as it is has no error; other types have none to show.
        let exact = floats.is_some().then_some(0.0);
        let f32_bytes = if floats.is_some() { 4 * numel } else { stored };
        (
            Cell {
                storage: String::new(),
                bytes: stored,
                ratio: ratio(f32_bytes, stored),
                mse: exact,
                max_abs: exact,
                sqnr_db: None,
            },
            0.0,
        )
    };
    let cells: Vec<(Cell, f64)> = match (&floats, kept) {
        (None, _) | (_, Some(_)) => storages
            .iter()
            .map(|s| {
                let (mut cell, noise) = as_stored(s);
                cell.storage = s.to_string();
                if floats.is_none() {
                    (cell.mse, cell.max_abs) = (None, None);
                }
                (cell, noise)
            })
            .collect(),
        (Some(x), None) => with_floats!(x, x => {
            let view = ArrayViewD::from_shape(IxDyn(&t.shape), &x[..])?;
            let f32_bytes = tensor_bytes(&t.shape, DType::Float32.into())?;
            // Each storage is independent work: the two cores share them.
            storages.par_iter().map(|&s| cell(&view, s, f32_bytes)).collect::<Result<Vec<_>>>()?
        }),
    };
    let signal = match &floats {
        Some(x) => with_floats!(x, x => x.iter().map(|v| { let v = v.to_f64(); v * v }).sum::<f64>()),
        None => 0.0,
    };
    for (tot, (c, noise)) in totals.iter_mut().zip(&cells) {
        tot.bytes += c.bytes;
        if floats.is_some() {
            tot.f32_bytes += 4 * numel;
            tot.signal += signal;
            tot.noise += noise;
            tot.numel_float += numel;
            tot.max_abs = tot.max_abs.max(c.max_abs.unwrap_or(0.0));
        } else {
            tot.f32_bytes += stored;
        }
    }
    Ok(TensorReport {
        name: t.name.clone(),
        dtype: stored_as.dtype.clone(),
        shape: t.shape.clone(),
        numel,
        stored_bytes: stored,
        stored_bits_per_weight: bits_per_weight(stored, numel),
        floating: floats.is_some(),
        kept: kept.filter(|r| *r != Reason::NotFloat).map(|r| r.to_string()),
        storages: cells.into_iter().map(|(c, _)| c).collect(),
    })
}

/// One float tensor in one storage, and its summed squared error.
fn cell<T: Element>(x: &ArrayViewD<'_, T>, storage: Storage, f32_bytes: u64) -> Result<(Cell, f64)> {
    let storage = match storage {
        Storage::Lib(s) => s,
        Storage::Block(f) => return block_cell(x, f, f32_bytes),
    };
    let bytes = tensor_bytes(x.shape(), storage)?;
    let stats = if x.is_empty() {
        None
    } else {
        Some(match storage {
            LibStorage::Plain(d) => cast_error(x, d)?,
            LibStorage::Quantized(spec) => x.quantize(spec)?.error_stats(x)?,
        })
    };
    let noise = stats.map_or(0.0, |s| s.mse * x.len() as f64);
    let cell = Cell {
        storage: storage.to_string(),
        bytes,
        ratio: ratio(f32_bytes, bytes),
        mse: stats.map(|s| s.mse),
        max_abs: stats.map(|s| s.max_abs),
        sqnr_db: stats.and_then(|s| s.sqnr_db.is_finite().then_some(s.sqnr_db)),
    };
    Ok((cell, noise))
}

/// One float tensor in a block format: its bytes with every scale counted
/// (a tensor the format cannot take, 1-D or rows not whole blocks, is counted
/// as F32, as GGUF files store it) and the error of the round trip.
fn block_cell<T: Element>(x: &ArrayViewD<'_, T>, f: BlockFormat, f32_bytes: u64) -> Result<(Cell, f64)> {
    let cols = x.shape().last().copied().unwrap_or(1);
    let fits = !x.is_empty() && x.ndim() >= 2 && (!f.needs_whole_rows() || cols % f.block_size() == 0);
    let (bytes, stats) = if fits {
        let v: Vec<f32> = x.iter().map(|v| v.to_f64() as f32).collect();
        let q = f.quantize(&v, cols)?;
        let back = ndarray::ArrayD::from_shape_vec(IxDyn(x.shape()), q.dequantize()?)?;
        (q.nbytes() as u64, Some(error_stats(x, &back)?))
    } else {
        (4 * x.len() as u64, (!x.is_empty()).then(|| cast_error(x, DType::Float32)).transpose()?)
    };
    let noise = stats.map_or(0.0, |s| s.mse * x.len() as f64);
    let storage = if fits { f.name().to_string() } else { format!("{} (F32)", f.name()) };
    let cell = Cell {
        storage,
        bytes,
        ratio: ratio(f32_bytes, bytes),
        mse: stats.map(|s| s.mse),
        max_abs: stats.map(|s| s.max_abs),
        sqnr_db: stats.and_then(|s| s.sqnr_db.is_finite().then_some(s.sqnr_db)),
    };
    Ok((cell, noise))
}

/// The error of a round trip through the float type `d`. float8_e4m3fn
/// saturates at ±448, as checkpoints stored in it do.
fn cast_error<T: Element>(x: &ArrayViewD<'_, T>, d: DType) -> Result<ErrorStats> {
    use float8::{F8E4M3, F8E5M2};
    use half::{bf16, f16};
    let o = CastOptions::saturate(d == DType::Float8E4M3Fn);
    Ok(match d {
        DType::Float64 => error_stats(x, &x.cast_with::<f64>(o)?)?,
        DType::Float32 => error_stats(x, &x.cast_with::<f32>(o)?)?,
        DType::Float16 => error_stats(x, &x.cast_with::<f16>(o)?)?,
        DType::BFloat16 => error_stats(x, &x.cast_with::<bf16>(o)?)?,
        DType::Float8E4M3Fn => error_stats(x, &x.cast_with::<F8E4M3>(o)?)?,
        DType::Float8E5M2 => error_stats(x, &x.cast_with::<F8E5M2>(o)?)?,
        other => {
            // The narrow types (float8 variants, float6, float4, e8m0): the
            // per-value model, saturating as checkpoints stored in them are.
            let Some(m) = other.minifloat() else { bail!("{other} is not a float type") };
            let back = x
                .iter()
                .map(|v| m.encode(v.to_f64(), Overflow::Saturate).map(|c| m.decode(c)))
                .collect::<Result<Vec<f64>, _>>()?;
            error_stats(x, &ndarray::ArrayD::from_shape_vec(IxDyn(x.shape()), back)?)?
        }
    })
}

fn print_table(r: &Report, out: &mut impl Write) -> Result<()> {
    let floating = r.tensors.iter().filter(|t| t.floating).count();
    writeln!(
        out,
        "{}: {} tensors ({floating} floating point), {} elements, {} on disk, {} of tensors stored ({} bits per \
         weight)",
        r.file,
        r.tensors.len(),
        r.numel,
        human_bytes(r.file_bytes),
        human_bytes(r.stored_bytes),
        r.stored_bits_per_weight.map_or("-".to_string(), |b| format!("{b:.2}"))
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<24} {:<14} {:>11} {:>8} {:>10} {:>10} {:>8}",
        "tensor", "as", "bytes", "ratio", "MSE", "max abs", "SQNR dB"
    )?;
    for (i, c) in r.total.iter().enumerate() {
        row(out, if i == 0 { "(whole file)" } else { "" }, c)?;
    }
    for t in &r.tensors {
        if !t.floating {
            writeln!(
                out,
                "{} {:?} {}: not floating point, kept as is ({})",
                t.name,
                t.shape,
                t.dtype,
                human_bytes(t.stored_bytes)
            )?;
            continue;
        }
        if let Some(reason) = &t.kept {
            writeln!(
                out,
                "{} {:?} {}: kept as is, {reason} ({})",
                t.name,
                t.shape,
                t.dtype,
                human_bytes(t.stored_bytes)
            )?;
            continue;
        }
        let bpw = t.stored_bits_per_weight.map_or("-".to_string(), |b| format!("{b:.2}"));
        writeln!(
            out,
            "{} {:?} {}: stored {} ({bpw} bits per weight)",
            t.name,
            t.shape,
            t.dtype,
            human_bytes(t.stored_bytes)
        )?;
        for c in &t.storages {
            row(out, "", c)?;
        }
    }
    Ok(())
}

/// One line of the table: `-` where there is no error to show, `inf` for an exact round trip.
fn row(out: &mut impl Write, name: &str, c: &Cell) -> Result<()> {
    let sci = |v: Option<f64>| match v {
        None => "-".to_string(),
        Some(0.0) => "0".to_string(),
        Some(v) => format!("{v:.3e}"),
    };
    let sqnr = match (c.sqnr_db, c.mse) {
        (Some(v), _) => format!("{v:.2}"),
        (None, Some(_)) => "inf".to_string(),
        (None, None) => "-".to_string(),
    };
    let ratio = c.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
    writeln!(
        out,
        "{name:<24} {:<14} {:>11} {ratio:>8} {:>10} {:>10} {sqnr:>8}",
        c.storage,
        human_bytes(c.bytes),
        sci(c.mse),
        sci(c.max_abs)
    )?;
    Ok(())
}
