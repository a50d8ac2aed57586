//! `quantlab quantize`: floating-point tensors to integer codes plus scales
//! and zero points, in the layout of [`quantlab::io::layout`].

use anyhow::{Context, Result, anyhow};
use ndarray::{ArrayViewD, IxDyn};
use quantlab::io::layout::{self, Entry, Layout};
use quantlab::io::{Bytes, Dtype, Input, OutTensor, Tensor};
use quantlab::{DType, QuantParams, QuantSpec, QuantizeExt};
use rayon::prelude::*;

use std::io::Write;

use crate::args::QuantizeArgs;
use crate::io::{self, with_floats};
use crate::par;
use crate::select::{self, Kept, Selection};

/// Runs `quantlab quantize`; prints what it quantized and what it kept.
pub fn run(args: &QuantizeArgs, report: &mut impl Write) -> Result<()> {
    if args.format.is_some() {
        return crate::blocks::quantize(args, report);
    }
    let spec = spec(args)?;
    spec.check()?;
    let selection = Selection::new(&args.select)?;
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();

    // First pass: the parameters of every float tensor. It reads each tensor
    // once (min and max), so bad data (NaN, a shape the axis or group size does
    // not fit) stops the run before anything is written.
    let bar = io::progress(tensors.len(), "measuring");
    let params: Vec<Result<Option<QuantParams>>> = tensors
        .par_iter()
        .map(|t| {
            let p = match selection.keep(t) {
                Some(_) => Ok(None),
                None => plan(t, spec).with_context(|| format!("{file}: {}", t.name)),
            };
            bar.inc(1);
            p
        })
        .collect();
    // The first failure in file order, whichever core met it first.
    let params = params.into_iter().collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();

    let mut layout = Layout::new();
    let mut kept = Kept::new(&selection);
    let mut out = Vec::with_capacity(tensors.len() * 3);
    for (t, params) in tensors.iter().zip(params) {
        let Some(params) = params else {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
            }
            kept.record(&t.name, selection.keep(t));
            out.push(OutTensor::copy(t));
            continue;
        };
        kept.record(&t.name, None);
        layout.insert(t.name.clone(), Entry::new(spec, &t.shape));
        out.extend(outputs(t, spec.dtype, params, &file));
    }
    let mut metadata = input.metadata()?;
    metadata.insert(layout::KEY.to_string(), layout::to_json(&layout));
    metadata.insert(select::KEY.to_string(), kept.to_json());
    io::write(&args.output, out, metadata, "writing")?;
    for line in kept.summary(&format!("quantized to {spec}:")) {
        writeln!(report, "{line}")?;
    }
    Ok(())
}

/// The spec the flags describe.
fn spec(args: &QuantizeArgs) -> Result<QuantSpec> {
    let dtype = args.dtype.ok_or_else(|| anyhow!("give --dtype (linear quantization) or --format (a block format)"))?;
    let spec = QuantSpec::new(dtype.into());
    let spec = if args.symmetric { spec.symmetric() } else { spec };
    Ok(match (args.axis, args.group_size) {
        (Some(axis), _) => spec.per_channel(axis),
        (None, Some(size)) => spec.per_group(size),
        (None, None) => spec,
    })
}

/// The parameters of a float tensor, or `None` for a tensor copied through.
fn plan(t: &Tensor<'_>, spec: QuantSpec) -> Result<Option<QuantParams>> {
    let Some(x) = t.floats() else { return Ok(None) };
    let params = with_floats!(x, x => ArrayViewD::from_shape(IxDyn(&t.shape), &x[..])?.quant_params(spec))?;
    Ok(Some(params))
}

/// The three output tensors of one quantized tensor: codes (computed when
/// written), scales and zero points.
fn outputs<'a>(t: &'a Tensor<'_>, dtype: DType, params: QuantParams, file: &str) -> [OutTensor<'a, anyhow::Error>; 3] {
    let count = params.scale.len();
    let pshape = layout::param_shape(params.granularity, count);
    let scale: Vec<u8> = params.scale.iter().flat_map(|s| s.to_le_bytes()).collect();
    let zero_point: Vec<u8> = params.zero_point.iter().flat_map(|z| z.to_le_bytes()).collect();
    let file = file.to_string();
    let codes = move || -> Result<Vec<u8>> {
        let x = t.floats().ok_or_else(|| anyhow!("not a float tensor"))?;
        with_floats!(x, x => par::quantize(&x, &t.shape, dtype, &params)).with_context(|| format!("{file}: {}", t.name))
    };
    [
        OutTensor {
            name: t.name.clone(),
            dtype: layout::code_storage(dtype),
            shape: layout::code_shape(dtype, &t.shape),
            len: dtype.storage_bytes(t.numel() as u64) as usize,
            bytes: Bytes::Lazy(Box::new(codes)),
        },
        OutTensor::owned(format!("{}.scale", t.name), Dtype::F32, pshape.clone(), scale),
        OutTensor::owned(format!("{}.zero_point", t.name), Dtype::I32, pshape, zero_point),
    ]
}
