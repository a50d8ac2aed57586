//! `quantlab quantize --format F` (block formats, into .gguf or .safetensors)
//! and `quantlab dequantize X.gguf`. The numbers come from
//! [`quantlab::formats`] and the files from [`quantlab::io::gguf`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use quantlab::Element;
use quantlab::formats::{BlockFormat, GgmlBlock, MxElement, Scales};
use quantlab::io::gguf::{GgmlType, GgufFile, GgufOutTensor, GgufValue, is_gguf_path, write_gguf};
use quantlab::io::{Bytes, Dtype, Input, OutTensor, Tensor, bnb};

use crate::args::{DequantizeArgs, QuantizeArgs};
use crate::io::{self, with_floats};
use crate::select::{self, Kept, Reason, Selection};

/// The format the flags describe, with its options applied and checked.
fn format_of(args: &QuantizeArgs) -> Result<BlockFormat> {
    let mut format = args.format.ok_or_else(|| anyhow!("no --format given"))?;
    if let Some(rule) = args.scale_rule {
        if !matches!(format, BlockFormat::Mx { .. }) {
            bail!("--scale-rule applies to the MX formats, not {}", format.name());
        }
        format = format.with_scale_rule(rule);
    }
    let nf4 = matches!(format, BlockFormat::Nf4 { .. });
    if (args.block_size.is_some() || args.double_quant) && !nf4 {
        bail!("--block-size and --double-quant apply to nf4, not {}", format.name());
    }
    if nf4 {
        format = BlockFormat::nf4(args.block_size.unwrap_or(64), args.double_quant)?;
    }
    if args.no_tensor_scale {
        if !matches!(format, BlockFormat::Nvfp4 { .. }) {
            bail!("--no-tensor-scale applies to nvfp4, not {}", format.name());
        }
        format = BlockFormat::Nvfp4 { tensor_scale: false };
    }
    Ok(format)
}

/// A float tensor's values as f32 (exact from f32, f16, bf16 and float8; rounded once from f64).
fn f32_values(t: &Tensor<'_>) -> Option<Vec<f32>> {
    let x = t.floats()?;
    Some(with_floats!(x, x => x.iter().map(|v| v.to_f64() as f32).collect()))
}

/// Runs `quantlab quantize --format F`.
/// Which tensors it converts follows `--all`/`--include`/`--exclude` as for
/// linear quantization; it prints what it quantized and what it kept.
pub fn quantize(args: &QuantizeArgs, report: &mut impl Write) -> Result<()> {
    let format = format_of(args)?;
    let selection = Selection::new(&args.select)?;
    let mut kept = Kept::new(&selection);
    if is_gguf_path(&args.output) {
        to_gguf(args, format, &selection, &mut kept)?;
    } else {
        to_safetensors(args, format, &selection, &mut kept)?;
    }
    for line in kept.summary(&format!("quantized to {format}:")) {
        writeln!(report, "{line}")?;
    }
    Ok(())
}

/// Why `t` is kept as it is: the selection's reason, or [`Reason::Unfit`]
/// when `fits` says the format cannot take its shape (said on stderr, as
/// llama.cpp's converter does).
fn keep_reason(selection: &Selection, t: &Tensor<'_>, fits: bool, ctx: &str, stored: &str) -> Option<Reason> {
    let reason = selection.keep(t);
    if reason.is_none() && !fits {
        eprintln!("quantlab: note: {ctx}: shape {:?} does not split into the format's blocks; {stored}", t.shape);
        return Some(Reason::Unfit);
    }
    reason
}

/// The ggml block type a format is stored as in GGUF, or why it cannot be.
fn ggml_block(format: BlockFormat) -> Result<GgmlBlock> {
    match format {
        BlockFormat::Ggml(b) => Ok(b),
        BlockFormat::Mx { element: MxElement::E2m1, rule: quantlab::formats::ScaleRule::Floor } => {
            eprintln!(
                "quantlab: note: mxfp4 in GGUF is ggml's MXFP4 type, quantized as gguf-py and ggml do (FLOOR scale; \
                 rounding ties toward zero, where torchao's to_mx rounds them to even)"
            );
            Ok(GgmlBlock::Mxfp4)
        }
        other => bail!(
            "{other} has no GGUF type that gguf-py and llama.cpp read: write .safetensors, or use one of q8_0, q4_0, \
             q4_1, q5_0, q5_1, q4_k, q6_k, mxfp4 (FLOOR)"
        ),
    }
}

fn to_gguf(args: &QuantizeArgs, format: BlockFormat, selection: &Selection, kept: &mut Kept) -> Result<()> {
    let block = ggml_block(format)?;
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let cols = t.shape.last().copied().unwrap_or(1);
        let ctx = format!("{file}: {}", t.name);
        let fits = t.shape.len() >= 2 && cols % block.block_size() == 0;
        let reason = keep_reason(selection, t, fits, &ctx, "stored as F32 (as llama.cpp's converter does)");
        kept.record(&t.name, reason);
        if t.floats().is_some() {
            let (ggml_type, shape) = if reason.is_none() {
                (GgmlType::of_block(block), t.shape.clone())
            } else {
                (GgmlType::F32, if t.shape.is_empty() { vec![1] } else { t.shape.clone() })
            };
            let make = move || -> quantlab::Result<Cow<'_, [u8]>> {
                let x = f32_values(t).unwrap_or_default();
                if ggml_type == GgmlType::F32 {
                    return Ok(Cow::Owned(x.iter().flat_map(|v| v.to_le_bytes()).collect()));
                }
                Ok(Cow::Owned(BlockFormat::Ggml(block).quantize(&x, cols)?.data))
            };
            out.push(GgufOutTensor { name: t.name.clone(), shape, ggml_type, bytes: Box::new(make) });
        } else if let Some(ggml_type) = GgmlType::of_int_dtype(t.dtype) {
            let shape = if t.shape.is_empty() { vec![1] } else { t.shape.clone() };
            out.push(GgufOutTensor {
                name: t.name.clone(),
                shape,
                ggml_type,
                bytes: Box::new(|| Ok(Cow::Borrowed(&t.data[..]))),
            });
        } else {
            eprintln!("quantlab: warning: {ctx}: {:?} has no GGUF type; left out", t.dtype);
        }
    }
    let stem = args.input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let metadata = vec![
        ("general.name".to_string(), GgufValue::Str(stem)),
        ("quantlab.format".to_string(), GgufValue::Str(block.gguf_name().to_string())),
        (select::KEY.to_string(), GgufValue::Str(kept.to_json())),
    ];
    // Errors inside a tensor (NaN, say) come back without its name: find it for the message.
    write_gguf(&args.output, &metadata, out).map_err(|e| {
        let culprit = tensors.iter().find(|t| f32_values(t).is_some_and(|x| x.iter().any(|v| !v.is_finite())));
        match culprit {
            Some(t) => anyhow!("{file}: {}: {e}", t.name),
            None => anyhow!("{file}: {e}"),
        }
    })
}

/// The safetensors layout of block formats: for a tensor NAME, `NAME` holds
/// the packed bytes (U8, shape [rows, bytes per row]) and its scales sit
/// beside it; the `quantlab_blocks` metadata key (JSON) gives each tensor's
/// format, shape and parts. MXFP4 is stored as gpt-oss and transformers load
/// it: `NAME_blocks` U8 [rows, cols / 32, 16] and `NAME_scales` U8
/// [rows, cols / 32] (e8m0 exponents). NF4 is stored as bitsandbytes saves a
/// `Linear4bit` weight for transformers ([`quantlab::io::bnb`]).
fn to_safetensors(args: &QuantizeArgs, format: BlockFormat, selection: &Selection, kept: &mut Kept) -> Result<()> {
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len() * 2);
    let mut layout = serde_json::Map::new();
    for t in &tensors {
        let cols = t.shape.last().copied().unwrap_or(1);
        let fits = t.shape.len() >= 2 && (!format.needs_whole_rows() || cols % format.block_size() == 0);
        let reason = keep_reason(selection, t, fits, &format!("{file}: {}", t.name), "copied unchanged");
        kept.record(&t.name, reason);
        let Some(x) = f32_values(t).filter(|_| reason.is_none()) else {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
            }
            out.push(OutTensor::copy(t));
            continue;
        };
        let q = format.quantize(&x, cols).with_context(|| format!("{file}: {}", t.name))?;
        let rows = q.rows;
        let mut parts = serde_json::Map::new();
        if let BlockFormat::Nf4 { .. } = format {
            // bitsandbytes' own layout (Params4bit + QuantState.as_dict(packed=True)), as transformers loads it.
            let dtype = bnb::torch_dtype_name(t.dtype).unwrap_or("float32");
            let prefix = format!("{}.", t.name);
            for o in bnb::nf4_tensors(&t.name, &t.shape, dtype, &q).with_context(|| format!("{file}: {}", t.name))? {
                let role = o.name.strip_prefix(&prefix).unwrap_or("data").to_string();
                parts.insert(role, serde_json::Value::String(o.name.clone()));
                out.push(o);
            }
            layout.insert(t.name.clone(), layout_entry(format, &t.shape, parts));
            continue;
        }
        let mut push = |name: String, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>, role: &str| {
            parts.insert(role.to_string(), serde_json::Value::String(name.clone()));
            out.push(OutTensor { name, dtype, shape, len: bytes.len(), bytes: Bytes::Owned(bytes) });
        };
        let lead = &t.shape[..t.shape.len() - 1];
        match (&format, q.scales) {
            (BlockFormat::Mx { element: MxElement::E2m1, .. }, Scales::E8m0(s)) => {
                let blocks = cols / 32;
                push(format!("{}_blocks", t.name), Dtype::U8, [lead, &[blocks, 16]].concat(), q.data, "blocks");
                push(format!("{}_scales", t.name), Dtype::U8, [lead, &[blocks]].concat(), s, "scales");
            }
            (_, scales) => {
                let per_row = q.data.len() / rows;
                let shape = if format.needs_whole_rows() { vec![rows, per_row] } else { vec![q.data.len()] };
                push(t.name.clone(), Dtype::U8, shape, q.data, "data");
                match scales {
                    Scales::InBlocks => {}
                    Scales::E8m0(s) | Scales::E4m3 { blocks: s, tensor: None } => {
                        let n = s.len();
                        push(format!("{}.scales", t.name), Dtype::U8, vec![rows, n / rows], s, "scales");
                    }
                    Scales::E4m3 { blocks, tensor: Some(ts) } => {
                        let n = blocks.len();
                        push(format!("{}.scales", t.name), Dtype::U8, vec![rows, n / rows], blocks, "scales");
                        push(
                            format!("{}.tensor_scale", t.name),
                            Dtype::F32,
                            vec![1],
                            ts.to_le_bytes().to_vec(),
                            "tensor_scale",
                        );
                    }
                    Scales::Absmax(_) | Scales::DoubleQuant { .. } => {
                        bail!("{file}: {}: internal error: NF4 scales for {format}", t.name)
                    }
                }
            }
        }
        layout.insert(t.name.clone(), layout_entry(format, &t.shape, parts));
    }
    let mut metadata = input.metadata()?;
    metadata.insert(BLOCKS_KEY.to_string(), serde_json::Value::Object(layout).to_string());
    metadata.insert(select::KEY.to_string(), kept.to_json());
    io::write(&args.output, out, metadata, "writing")
}

/// A tensor's entry in the `quantlab_blocks` metadata: its format, options, shape and parts.
fn layout_entry(
    format: BlockFormat,
    shape: &[usize],
    parts: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    entry.insert("format".into(), format.name().into());
    entry.insert("options".into(), format.to_string().into());
    match format {
        BlockFormat::Mx { rule, .. } => {
            entry.insert("scale_rule".into(), rule.name().into());
        }
        BlockFormat::Nf4 { block, double_quant } => {
            entry.insert("block_size".into(), block.into());
            entry.insert("double_quant".into(), double_quant.into());
        }
        BlockFormat::Nvfp4 { tensor_scale } => {
            entry.insert("tensor_scale".into(), tensor_scale.into());
        }
        BlockFormat::Ggml(_) => {}
    }
    entry.insert("shape".into(), shape.to_vec().into());
    entry.insert("parts".into(), parts.into());
    entry.into()
}

/// Runs `quantlab dequantize X.gguf`: every tensor back to F32 (integer tensors copied as they are).
pub fn dequantize_gguf(args: &DequantizeArgs) -> Result<()> {
    let gf = GgufFile::open(&args.input)?;
    let file = args.input.display().to_string();
    let g = gf.parse().with_context(|| file.clone())?;
    let mut out = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        if let Some(dtype) = t.ggml_type.int_dtype() {
            out.push(OutTensor::owned(t.name.clone(), dtype, t.shape.clone(), g.tensor_bytes(t).to_vec()));
            continue;
        }
        // Check the type before writing anything.
        if !t.ggml_type.is_readable_float() {
            bail!("{file}: {}: {} is a GGUF type quantlab cannot dequantize yet", t.name, t.ggml_type.name());
        }
        let (g, file) = (&g, file.clone());
        let make = move || -> Result<Vec<u8>> {
            let x = g.tensor_f32(t).with_context(|| format!("{file}: {}", t.name))?;
            Ok(x.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        out.push(OutTensor {
            name: t.name.clone(),
            dtype: Dtype::F32,
            shape: t.shape.clone(),
            len: t.numel() * 4,
            bytes: Bytes::Lazy(Box::new(make)),
        });
    }
    let mut metadata = HashMap::new();
    for (k, v) in &g.metadata {
        if let Some(s) = v.as_str() {
            metadata.insert(format!("gguf.{k}"), s.to_string());
        }
    }
    io::write(&args.output, out, metadata, "writing")
}

/// The metadata key of the block-format safetensors layout.
pub const BLOCKS_KEY: &str = "quantlab_blocks";

/// The format an entry of the layout names, options included.
fn entry_format(e: &serde_json::Value) -> Result<BlockFormat> {
    let name = e["format"].as_str().ok_or_else(|| anyhow!("an entry has no format"))?;
    let format = BlockFormat::parse(name)?;
    Ok(match format {
        BlockFormat::Mx { .. } => {
            let rule = e["scale_rule"].as_str().and_then(quantlab::formats::ScaleRule::parse);
            format.with_scale_rule(rule.ok_or_else(|| anyhow!("no valid scale_rule"))?)
        }
        BlockFormat::Nf4 { .. } => BlockFormat::nf4(
            e["block_size"].as_u64().ok_or_else(|| anyhow!("no block_size"))? as usize,
            e["double_quant"].as_bool().unwrap_or(false),
        )?,
        BlockFormat::Nvfp4 { .. } => BlockFormat::Nvfp4 { tensor_scale: e["tensor_scale"].as_bool().unwrap_or(true) },
        other => other,
    })
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Whether `tensors` hold bitsandbytes 4-bit weights (a `quant_state.bitsandbytes__*` tensor).
pub fn has_bnb_weights(tensors: &[Tensor<'_>]) -> bool {
    tensors.iter().any(|t| t.name.contains(".quant_state.bitsandbytes__"))
}

/// `quantlab dequantize` of a file `quantize --format` wrote as safetensors
/// (`json` is its `quantlab_blocks` metadata), or of a bitsandbytes NF4
/// checkpoint (`json` is `None`): every block-format tensor and every
/// bitsandbytes NF4 weight back to F32, its parts consumed, the rest copied.
pub fn dequantize_blocks(args: &DequantizeArgs, input: &Input, json: Option<&str>) -> Result<()> {
    let file = input.path().display().to_string();
    let layout: serde_json::Map<String, serde_json::Value> = match json {
        Some(json) => serde_json::from_str(json)
            .with_context(|| format!("{file}: the `{BLOCKS_KEY}` metadata is not a JSON object"))?,
        None => serde_json::Map::new(),
    };
    let tensors = input.tensors()?;
    let by_name: HashMap<&str, &Tensor<'_>> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut restored: HashMap<String, OutTensor<'_, anyhow::Error>> = HashMap::new();
    let mut consumed = std::collections::HashSet::new();
    // NF4 weights in bitsandbytes' layout, whoever wrote them: each checked now, restored when written.
    let weights = bnb::find_nf4(&tensors).with_context(|| file.clone())?;
    for w in weights {
        let packed = by_name.get(w.name.as_str()).copied().ok_or_else(|| anyhow!("{file}: {} is missing", w.name))?;
        consumed.extend(w.parts.iter().cloned());
        let (name, shape, len, file) = (w.name.clone(), w.shape.clone(), w.numel() * 4, file.clone());
        let make = move || -> Result<Vec<u8>> {
            let x = w.dequantize(&packed.data).with_context(|| file.clone())?;
            Ok(x.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        let out = OutTensor { name: name.clone(), dtype: Dtype::F32, shape, len, bytes: Bytes::Lazy(Box::new(make)) };
        restored.insert(name, out);
    }
    for (name, e) in &layout {
        let ctx = format!("{file}: {name}");
        let format = entry_format(e).with_context(|| ctx.clone())?;
        if let BlockFormat::Nf4 { .. } = format {
            if !restored.contains_key(name) {
                bail!("{ctx}: the metadata names an NF4 tensor, but its bitsandbytes quant state is missing");
            }
            continue;
        }
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| anyhow!("{ctx}: no shape"))?;
        let part = |role: &str| -> Result<&Tensor<'_>> {
            let n = e["parts"][role].as_str().ok_or_else(|| anyhow!("{ctx}: no `{role}` part"))?;
            by_name.get(n).copied().ok_or_else(|| anyhow!("{ctx}: tensor `{n}` is missing"))
        };
        let (data_role, scales) = match (&format, e["parts"].get("blocks")) {
            (BlockFormat::Mx { .. }, Some(_)) => ("blocks", Scales::E8m0(part("scales")?.data.to_vec())),
            (BlockFormat::Ggml(_), _) => ("data", Scales::InBlocks),
            (BlockFormat::Mx { .. }, None) => ("data", Scales::E8m0(part("scales")?.data.to_vec())),
            (BlockFormat::Nvfp4 { tensor_scale }, _) => {
                let tensor = if *tensor_scale { f32s(&part("tensor_scale")?.data).first().copied() } else { None };
                ("data", Scales::E4m3 { blocks: part("scales")?.data.to_vec(), tensor })
            }
            (BlockFormat::Nf4 { .. }, _) => bail!("{ctx}: internal error: NF4 is read as bitsandbytes' layout"),
        };
        if let Some(obj) = e["parts"].as_object() {
            consumed.extend(obj.values().filter_map(|v| v.as_str().map(String::from)));
        }
        let cols = shape.last().copied().unwrap_or(1);
        let rows = shape.iter().product::<usize>().checked_div(cols).unwrap_or(0);
        let q = quantlab::formats::BlockQuantized { format, rows, cols, data: part(data_role)?.data.to_vec(), scales };
        let values = q.dequantize().with_context(|| ctx.clone())?;
        // The restored tensor takes the place of its packed data in file order.
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        restored.insert(part(data_role)?.name.clone(), OutTensor::owned(name.clone(), Dtype::F32, shape, bytes));
    }
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        if let Some(o) = restored.remove(&t.name) {
            out.push(o);
        } else if !consumed.contains(&t.name) {
            out.push(OutTensor::copy(t));
        }
    }
    let mut metadata = input.metadata()?;
    metadata.remove(BLOCKS_KEY);
    io::write(&args.output, out, metadata, "writing")
}
