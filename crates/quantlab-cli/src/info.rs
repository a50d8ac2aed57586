//! `quantlab info`: the limits of a data type, a table of all of them, or
//! what a GGUF file holds.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use quantlab::io::gguf::GgufFile;
use quantlab::{DType, PLATFORM_SUPPORT, Support, finfo, format_g, human_bytes, iinfo};

use crate::args::{InfoArgs, InfoSubject};

/// Runs `quantlab info`.
pub fn run(args: &InfoArgs, out: &mut impl Write) -> Result<()> {
    match &args.subject {
        Some(InfoSubject::DType(dtype)) => writeln!(out, "{}", line(*dtype)?)?,
        Some(InfoSubject::Gguf(path)) => gguf(path, out)?,
        None => table(out)?,
    }
    Ok(())
}

/// A GGUF file as `gguf-dump` shows it, in short: the header, every metadata
/// key (long arrays cut to their first values), then one line per tensor with
/// its shape (row-major, as numpy and torch show it), ggml type, bytes and
/// bits per weight, and the totals.
fn gguf(path: &Path, out: &mut impl Write) -> Result<()> {
    let file = path.display().to_string();
    let gf = GgufFile::open(path)?;
    let g = gf.parse().with_context(|| file.clone())?;
    let bpw = |b: Option<f64>| b.map_or("-".to_string(), |b| format!("{b:.4}"));
    writeln!(
        out,
        "{file}: GGUF v{}, {} metadata keys, {} tensors, alignment {}, {} on disk",
        g.version,
        g.metadata.len(),
        g.tensors.len(),
        g.alignment,
        human_bytes(gf.len())
    )?;
    writeln!(out)?;
    for (k, v) in &g.metadata {
        writeln!(out, "  {k} = {v}")?;
    }
    writeln!(out)?;
    let width = g.tensors.iter().map(|t| t.name.len()).max().unwrap_or(0).max(6);
    writeln!(out, "{:<width$}  {:<18} {:<8} {:>12} {:>11}", "tensor", "shape", "type", "bytes", "bits/weight")?;
    for t in &g.tensors {
        writeln!(
            out,
            "{:<width$}  {:<18} {:<8} {:>12} {:>11}",
            t.name,
            format!("{:?}", t.shape),
            t.ggml_type.name(),
            t.nbytes,
            bpw(t.bits_per_weight())
        )?;
    }
    let (bytes, numel) = g.totals();
    let total_bpw = (numel > 0).then(|| bytes as f64 * 8.0 / numel as f64);
    writeln!(
        out,
        "\ntotal: {} tensors, {numel} values, {bytes} bytes ({}), {} bits per weight",
        g.tensors.len(),
        human_bytes(bytes),
        bpw(total_bpw)
    )?;
    Ok(())
}

/// The torch-style line: `iinfo(...)` for integers, `finfo(...)` for floats.
/// (PyTorch has no `iinfo` for int1…int7/uint1…uint7 nor `finfo` for float6,
/// float4, e4m3, e3m4, e4m3b11fnuz: those lines are quantlab's, in PyTorch's format.)
fn line(dtype: DType) -> Result<String> {
    Ok(if dtype.is_float() { finfo(dtype)?.to_string() } else { iinfo(dtype)?.to_string() })
}

/// Every data type with its width, range, eps and platform support, then the notes.
fn table(out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "{:<18} {:>4} {:>5}  {:>20} {:>20}  {:>11}  {:<8} {:<8} Arm",
        "dtype", "bits", "bytes", "min", "max", "eps", "PyTorch", "TFLite"
    )?;
    let mut notes = Vec::new();
    for row in PLATFORM_SUPPORT {
        let d = row.dtype;
        let (min, max, eps) = if d.is_float() {
            let f = finfo(d)?;
            (format_g(f.min), format_g(f.max), format_g(f.eps))
        } else {
            let i = iinfo(d)?;
            (i.min.to_string(), i.max.to_string(), "-".to_string())
        };
        writeln!(
            out,
            "{:<18} {:>4} {:>5}  {:>20} {:>20}  {:>11}  {:<8} {:<8} {}",
            d.name(),
            d.bits(),
            d.byte_size(),
            min,
            max,
            eps,
            row.pytorch.mark(),
            row.tflite.mark(),
            row.arm.mark()
        )?;
        for (who, s) in [("PyTorch", row.pytorch), ("TFLite", row.tflite), ("Arm", row.arm)] {
            if let Support::Partial(note) = s {
                notes.push(format!("{d} on {who}: {note}"));
            }
        }
    }
    writeln!(out, "\npartial support:")?;
    for n in notes {
        writeln!(out, "  {n}")?;
    }
    Ok(())
}
