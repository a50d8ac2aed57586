//! `quantlab cast`: every floating-point tensor to another float type.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use quantlab::CastOptions;
use quantlab::io::{Bytes, Input, OutTensor, narrow};

use std::io::Write;

use crate::args::CastArgs;
use crate::io::{self, with_floats};
use crate::par;
use crate::select::{self, Kept, Selection};

/// Runs `quantlab cast`; prints what it cast and what it kept.
pub fn run(args: &CastArgs, report: &mut impl Write) -> Result<()> {
    let selection = Selection::new(&args.select)?;
    let to = args.to;
    if !to.is_float() {
        return Err(anyhow!("{to} is not a float type"));
    }
    let options = args.overflow.map_or(CastOptions::saturate(args.saturate), CastOptions::from);
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    let mut kept = Kept::new(&selection);
    // Tensors stored as U8 codes, named in the output's `quantlab.dtypes`
    // metadata: the cast ones, and the kept ones the input names.
    let mut named = BTreeMap::new();
    let input_named = narrow::named_dtypes(&input.metadata()?)?;
    for t in &tensors {
        let keep = selection.keep(t);
        kept.record(&t.name, keep);
        if keep.is_some() {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
            }
            if let Some(&d) = input_named.get(&t.name) {
                named.insert(t.name.clone(), d);
            }
            out.push(OutTensor::copy(t));
            continue;
        }
        let numel = t.numel();
        let stored = narrow::float_storage(to, numel).ok_or_else(|| anyhow!("{to} is not a float type"))?;
        if stored.codes {
            named.insert(t.name.clone(), to);
        }
        let file = file.clone();
        let make = move || -> Result<Vec<u8>> {
            let x = t.floats().ok_or_else(|| anyhow!("not a float tensor"))?;
            let packed = with_floats!(x, x => par::cast(&x, to, options))
                .map_err(anyhow::Error::from)
                .with_context(|| format!("{file}: {}", t.name))?;
            Ok(if stored.codes { narrow::codes_per_byte(&packed, to, numel)? } else { packed })
        };
        out.push(OutTensor {
            name: t.name.clone(),
            dtype: stored.dtype,
            shape: t.shape.clone(),
            len: if stored.codes { numel } else { to.storage_bytes(numel as u64) as usize },
            bytes: Bytes::Lazy(Box::new(make)),
        });
    }
    let mut metadata = input.metadata()?;
    metadata.remove(narrow::DTYPES_KEY);
    if let Some(json) = narrow::dtypes_json(&named) {
        metadata.insert(narrow::DTYPES_KEY.to_string(), json);
    }
    metadata.insert(select::KEY.to_string(), kept.to_json());
    io::write(&args.output, out, metadata, "casting")?;
    for line in kept.summary(&format!("cast to {to}:")) {
        writeln!(report, "{line}")?;
    }
    Ok(())
}
