//! `quantlab quantize --format F` (block formats, into .gguf or .safetensors)
//! and `quantlab dequantize` of what it writes. The numbers come from
//! [`quantlab::formats`] and the files' layouts from [`quantlab::io::blocks`]
//! and [`quantlab::io::gguf`]; this file chooses the format and the tensors,
//! and reports.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use quantlab::formats::BlockFormat;
use quantlab::io::gguf::{self, GgufFile, GgufOutTensor, GgufValue, is_gguf_path, write_gguf};
use quantlab::io::{Input, OutTensor, Tensor, blocks};

use crate::args::{DequantizeArgs, QuantizeArgs};
use crate::io;
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

fn to_gguf(args: &QuantizeArgs, format: BlockFormat, selection: &Selection, kept: &mut Kept) -> Result<()> {
    let block = gguf::ggml_block_of(format)?;
    // The one format GGUF takes that is not a ggml type is MXFP4, whose ties round differently there: say so.
    if !matches!(format, BlockFormat::Ggml(_)) {
        eprintln!(
            "quantlab: note: mxfp4 in GGUF is ggml's MXFP4 type, quantized as gguf-py and ggml do (FLOOR scale; \
             rounding ties toward zero, where torchao's to_mx rounds them to even)"
        );
    }
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let ctx = format!("{file}: {}", t.name);
        let fits = blocks::fits(BlockFormat::Ggml(block), &t.shape);
        let reason = keep_reason(selection, t, fits, &ctx, "stored as F32 (as llama.cpp's converter does)");
        kept.record(&t.name, reason);
        match GgufOutTensor::from_tensor(t, reason.is_none().then_some(block)) {
            Some(o) => out.push(o),
            None => eprintln!("quantlab: warning: {ctx}: {:?} has no GGUF type; left out", t.dtype),
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
        let culprit = tensors.iter().find(|t| t.to_f32().is_some_and(|x| x.iter().any(|v| !v.is_finite())));
        match culprit {
            Some(t) => anyhow!("{file}: {}: {e}", t.name),
            None => anyhow!("{file}: {e}"),
        }
    })
}

/// Writes the block-format tensors in safetensors, in the layouts
/// [`quantlab::io::blocks`] describes (gpt-oss' MXFP4, bitsandbytes' NF4,
/// quantlab's `quantlab_blocks` metadata for the rest).
fn to_safetensors(args: &QuantizeArgs, format: BlockFormat, selection: &Selection, kept: &mut Kept) -> Result<()> {
    let input = Input::open(&args.input)?;
    let tensors = input.tensors()?;
    let file = input.path().display().to_string();
    let mut out = Vec::with_capacity(tensors.len() * 2);
    let mut layout = blocks::Layout::new();
    for t in &tensors {
        let cols = t.shape.last().copied().unwrap_or(1);
        let fits = blocks::fits(format, &t.shape);
        let reason = keep_reason(selection, t, fits, &format!("{file}: {}", t.name), "copied unchanged");
        kept.record(&t.name, reason);
        let Some(x) = t.to_f32().filter(|_| reason.is_none()) else {
            if t.is_unread_float() {
                io::warn_unread(input.path(), t);
            }
            out.push(OutTensor::copy(t));
            continue;
        };
        let ctx = || format!("{file}: {}", t.name);
        let q = format.quantize(&x, cols).with_context(ctx)?;
        let (stored, entry) = blocks::store(&t.name, t.dtype, &t.shape, q).with_context(ctx)?;
        out.extend(stored);
        layout.insert(t.name.clone(), entry);
    }
    let mut metadata = input.metadata()?;
    metadata.insert(blocks::KEY.to_string(), blocks::to_json(&layout));
    metadata.insert(select::KEY.to_string(), kept.to_json());
    io::write(&args.output, out, metadata, "writing")
}

/// The library's lazy outputs with the file named in their errors.
fn naming_file<'a>(out: Vec<OutTensor<'a>>, file: &str) -> Vec<OutTensor<'a, anyhow::Error>> {
    out.into_iter()
        .map(|o| {
            let file = file.to_string();
            o.map_err(move |e| anyhow::Error::new(e).context(file.clone()))
        })
        .collect()
}

/// Runs `quantlab dequantize X.gguf`: every tensor back to F32 (integer tensors copied as they are).
pub fn dequantize_gguf(args: &DequantizeArgs) -> Result<()> {
    let gf = GgufFile::open(&args.input)?;
    let file = args.input.display().to_string();
    let g = gf.parse().with_context(|| file.clone())?;
    let out = g.to_safetensors().with_context(|| file.clone())?;
    io::write(&args.output, naming_file(out, &file), g.safetensors_metadata(), "writing")
}

/// `quantlab dequantize` of a file `quantize --format` wrote as safetensors,
/// or of a bitsandbytes NF4 checkpoint: every block-format tensor and every
/// bitsandbytes NF4 weight back to F32, its parts consumed, the rest copied.
pub fn dequantize_blocks(args: &DequantizeArgs, input: &Input) -> Result<()> {
    let file = input.path().display().to_string();
    let tensors = input.tensors()?;
    let mut metadata = input.metadata()?;
    let out = blocks::restore(&tensors, &metadata).with_context(|| file.clone())?;
    metadata.remove(blocks::KEY);
    io::write(&args.output, naming_file(out, &file), metadata, "writing")
}
