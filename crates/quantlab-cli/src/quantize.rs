//! `quantlab quantize`: every floating-point tensor to integer codes plus
//! scales and zero points, in the layout of [`crate::layout`].

use anyhow::{Context, Result, anyhow};
use ndarray::{ArrayViewD, IxDyn};
use quantlab::{DType, Granularity, QuantParams, QuantSpec, QuantizeExt};
use rayon::prelude::*;
use safetensors::tensor::Dtype;

use crate::args::QuantizeArgs;
use crate::io::{self, Bytes, Input, OutTensor, Tensor, with_floats};
use crate::layout::{self, Entry, Layout};
use crate::par;

/// Runs `quantlab quantize`.
pub fn run(args: &QuantizeArgs) -> Result<()> {
    let spec = spec(args);
    spec.check()?;
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path.display().to_string();

    // First pass: the parameters of every float tensor. It reads each tensor
    // once (min and max), so bad data (NaN, a shape the axis or group size does
    // not fit) stops the run before anything is written.
    let bar = io::progress(tensors.len(), "measuring");
    let params: Vec<Result<Option<QuantParams>>> = tensors
        .par_iter()
        .map(|t| {
            let p = plan(t, spec).with_context(|| format!("{file}: {}", t.name));
            bar.inc(1);
            p
        })
        .collect();
    // The first failure in file order, whichever core met it first.
    let params = params.into_iter().collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();

    let mut layout = Layout::new();
    let mut out = Vec::with_capacity(tensors.len() * 3);
    for (t, params) in tensors.iter().zip(params) {
        let Some(params) = params else {
            if t.is_unread_float() {
                io::warn_unread(&input.path, t);
            }
            out.push(OutTensor::copy(t));
            continue;
        };
        layout.insert(t.name.clone(), entry(spec, &t.shape));
        out.extend(outputs(t, spec.dtype, params, &file));
    }
    let mut metadata = input.metadata()?;
    metadata.insert(layout::KEY.to_string(), layout::to_json(&layout));
    let bar = io::progress(out.len(), "writing");
    io::write_safetensors(&args.output, out, metadata, &bar)
}

/// The spec the flags describe.
fn spec(args: &QuantizeArgs) -> QuantSpec {
    let spec = QuantSpec::new(args.dtype.into());
    let spec = if args.symmetric { spec.symmetric() } else { spec };
    match (args.axis, args.group_size) {
        (Some(axis), _) => spec.per_channel(axis),
        (None, Some(size)) => spec.per_group(size),
        (None, None) => spec,
    }
}

/// The parameters of a float tensor, or `None` for a tensor copied through.
fn plan(t: &Tensor<'_>, spec: QuantSpec) -> Result<Option<QuantParams>> {
    let Some(x) = t.floats() else { return Ok(None) };
    let params = with_floats!(x, x => ArrayViewD::from_shape(IxDyn(&t.shape), &x[..])?.quant_params(spec))?;
    Ok(Some(params))
}

/// The metadata entry of a tensor of `shape`.
fn entry(spec: QuantSpec, shape: &[usize]) -> Entry {
    let (axis, group_size) = match spec.granularity {
        Granularity::PerTensor => (None, None),
        Granularity::PerChannel { axis } => (Some(axis), None),
        Granularity::PerGroup { size } => (None, Some(size)),
    };
    Entry {
        dtype: spec.dtype.name().to_string(),
        shape: shape.to_vec(),
        symmetric: spec.scheme == quantlab::Scheme::Symmetric,
        axis,
        group_size,
    }
}

/// The three output tensors of one quantized tensor: codes (computed when
/// written), scales and zero points.
fn outputs<'a>(t: &'a Tensor<'_>, dtype: DType, params: QuantParams, file: &str) -> [OutTensor<'a>; 3] {
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
        owned(format!("{}.scale", t.name), Dtype::F32, pshape.clone(), scale),
        owned(format!("{}.zero_point", t.name), Dtype::I32, pshape, zero_point),
    ]
}

/// A small output tensor whose bytes are already known.
fn owned<'a>(name: String, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) -> OutTensor<'a> {
    OutTensor { name, dtype, shape, len: bytes.len(), bytes: Bytes::Owned(bytes) }
}
