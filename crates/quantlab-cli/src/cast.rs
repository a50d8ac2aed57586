//! `quantlab cast`: every floating-point tensor to another float type.

use anyhow::{Context, Result, anyhow};
use quantlab::CastOptions;

use crate::args::CastArgs;
use crate::io::{self, Bytes, Input, OutTensor, with_floats};
use crate::par;

/// Runs `quantlab cast`.
pub fn run(args: &CastArgs) -> Result<()> {
    let to = args.to;
    let storage = io::safetensors_float(to).ok_or_else(|| anyhow!("{to} is not a float type"))?;
    let options = CastOptions::saturate(args.saturate);
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path.display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        if t.floats().is_none() {
            if t.is_unread_float() {
                io::warn_unread(&input.path, t);
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
    let bar = io::progress(out.len(), "casting");
    io::write_safetensors(&args.output, out, input.metadata()?, &bar)
}
