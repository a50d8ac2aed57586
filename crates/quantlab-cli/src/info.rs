//! `quantlab info`: the limits of a data type, or a table of all of them.

use std::io::Write;

use anyhow::Result;
use quantlab::{DType, PLATFORM_SUPPORT, Support, finfo, format_g, iinfo};

use crate::args::InfoArgs;

/// Runs `quantlab info`.
pub fn run(args: &InfoArgs, out: &mut impl Write) -> Result<()> {
    match args.dtype {
        Some(dtype) => writeln!(out, "{}", line(dtype)?)?,
        None => table(out)?,
    }
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
