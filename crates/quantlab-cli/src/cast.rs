//! `quantlab cast`: every floating-point tensor to another float type.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use quantlab::CastOptions;
use quantlab::io::{Bytes, Input, OutTensor, narrow};

use crate::args::CastArgs;
use crate::io::{self, with_floats};
use crate::par;

/// Runs `quantlab cast`.
pub fn run(args: &CastArgs) -> Result<()> {
    let to = args.to;
    if !to.is_float() {
        return Err(anyhow!("{to} is not a float type"));
    }
    let options = args.overflow.map_or(CastOptions::saturate(args.saturate), CastOptions::from);
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    // Tensors stored as U8 codes, named in the output's `quantlab.dtypes` metadata.
    let mut named = BTreeMap::new();
    for t in &tensors {
        if t.floats().is_none() {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
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
    io::write(&args.output, out, metadata, "casting")
}
