//! `quantlab cast`: every floating-point tensor to another float type.

use anyhow::{Context, Result, anyhow};
use quantlab::CastOptions;
use quantlab::io::{Bytes, Input, OutTensor, safetensors_float};

use std::io::Write;

use crate::args::CastArgs;
use crate::io::{self, with_floats};
use crate::par;
use crate::select::{self, Kept, Selection};

/// Runs `quantlab cast`; prints what it cast and what it kept.
pub fn run(args: &CastArgs, report: &mut impl Write) -> Result<()> {
    let selection = Selection::new(&args.select)?;
    let to = args.to;
    let storage = safetensors_float(to).ok_or_else(|| anyhow!("{to} is not a float type"))?;
    let options = CastOptions { saturate: args.saturate };
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    let mut kept = Kept::new(&selection);
    for t in &tensors {
        let keep = selection.keep(t);
        kept.record(&t.name, keep);
        if keep.is_some() {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
            }
            out.push(OutTensor::copy(t));
            continue;
        }
        let file = file.clone();
        let make = move || -> Result<Vec<u8>> {
            let x = t.floats().ok_or_else(|| anyhow!("not a float tensor"))?;
            with_floats!(x, x => par::cast(&x, to, options))
                .map_err(anyhow::Error::from)
                .with_context(|| format!("{file}: {}", t.name))
        };
        out.push(OutTensor {
            name: t.name.clone(),
            dtype: storage,
            shape: t.shape.clone(),
            len: to.storage_bytes(t.numel() as u64) as usize,
            bytes: Bytes::Lazy(Box::new(make)),
        });
    }
    let mut metadata = input.metadata()?;
    metadata.insert(select::KEY.to_string(), kept.to_json());
    io::write(&args.output, out, metadata, "casting")?;
    for line in kept.summary(&format!("cast to {to}:")) {
        writeln!(report, "{line}")?;
    }
    Ok(())
}
