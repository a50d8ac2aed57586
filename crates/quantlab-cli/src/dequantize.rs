//! `quantlab dequantize`: float32 tensors back from the layout `quantize` writes.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, anyhow, bail};
use ndarray::Array1;
use quantlab::io::layout::{self, Entry};
use quantlab::io::{Bytes, Dtype, Input, OutTensor, Tensor};
use quantlab::{DType, QuantParams};

use crate::args::DequantizeArgs;
use crate::io;
use crate::par;

/// Runs `quantlab dequantize`.
pub fn run(args: &DequantizeArgs) -> Result<()> {
    if quantlab::io::gguf::is_gguf_path(&args.input) {
        return crate::blocks::dequantize_gguf(args);
    }
    let input = Input::open(&args.input)?;
    let file = input.path().display().to_string();
    let mut metadata = input.metadata()?;
    if metadata.contains_key(quantlab::io::blocks::KEY)
        || !metadata.contains_key(layout::KEY) && quantlab::io::bnb::has_quant_state(&input.tensors()?)
    {
        // Block formats, or a bitsandbytes 4-bit checkpoint (as transformers saves it).
        return crate::blocks::dequantize_blocks(args, &input);
    }
    let json = metadata.remove(layout::KEY).ok_or_else(|| {
        anyhow!(
            "{file}: no `quantlab` metadata and no bitsandbytes NF4 weights: this file was not written by \
                 `quantlab quantize`"
        )
    })?;
    let layout = layout::parse(&json).with_context(|| file.clone())?;
    // Which tensors `quantize` kept no longer means anything once restored.
    metadata.remove(crate::select::KEY);
    let tensors = input.tensors()?;
    let by_name: HashMap<&str, &Tensor<'_>> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();

    // Check every quantized tensor before writing anything.
    let mut plans = HashMap::new();
    let mut consumed = HashSet::new();
    for (name, entry) in &layout {
        let plan = check(name, entry, &by_name).with_context(|| format!("{file}: {name}"))?;
        consumed.extend([format!("{name}.scale"), format!("{name}.zero_point")]);
        plans.insert(name.as_str(), plan);
    }

    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        if let Some((dtype, params)) = plans.remove(t.name.as_str()) {
            let shape = layout[&t.name].shape.clone();
            let numel: usize = shape.iter().product();
            let (file, shape2) = (file.clone(), shape.clone());
            let make = move || {
                par::dequantize(&t.data, &shape2, dtype, &params).with_context(|| format!("{file}: {}", t.name))
            };
            out.push(OutTensor {
                name: t.name.clone(),
                dtype: Dtype::F32,
                shape,
                len: numel * 4,
                bytes: Bytes::Lazy(Box::new(make)),
            });
        } else if !consumed.contains(&t.name) {
            out.push(OutTensor::copy(t));
        }
    }
    io::write(&args.output, out, metadata, "writing")
}

/// Checks that the codes, scales and zero points of `name` fit its entry,
/// and returns the code type and the parameters.
fn check(name: &str, entry: &Entry, by_name: &HashMap<&str, &Tensor<'_>>) -> Result<(DType, QuantParams)> {
    let dtype = entry.code_dtype()?;
    let granularity = entry.granularity()?;
    let find = |n: &str| by_name.get(n).copied().ok_or_else(|| anyhow!("tensor `{n}` is missing"));
    let codes = find(name)?;
    let (want_dtype, want_shape) = (layout::code_storage(dtype), layout::code_shape(dtype, &entry.shape));
    if codes.dtype != want_dtype || codes.shape != want_shape {
        bail!(
            "the codes are {:?} of shape {:?}, but {dtype} codes of a tensor of shape {:?} are {want_dtype:?} of \
             shape {want_shape:?}",
            codes.dtype,
            codes.shape,
            entry.shape
        );
    }
    let scale = find(&format!("{name}.scale"))?;
    let zero_point = find(&format!("{name}.zero_point"))?;
    if scale.dtype != Dtype::F32 || zero_point.dtype != Dtype::I32 || scale.shape != zero_point.shape {
        bail!(
            "expected an F32 scale and an I32 zero point of one shape, found {:?} {:?} and {:?} {:?}",
            scale.dtype,
            scale.shape,
            zero_point.dtype,
            zero_point.shape
        );
    }
    let s: Array1<f32> = scale.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let z: Array1<i32> =
        zero_point.data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if scale.shape != layout::param_shape(granularity, s.len()) {
        bail!("scale of shape {:?} does not fit {granularity}", scale.shape);
    }
    let params = QuantParams { granularity, scale: s, zero_point: z };
    params.check(dtype, &entry.shape)?;
    Ok((dtype, params))
}
