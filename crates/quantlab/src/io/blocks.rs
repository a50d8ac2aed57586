//! Block formats (MX, NVFP4, NF4, the ggml types) inside a safetensors file,
//! written and read.
//!
//! A tensor `NAME` quantized to a block format is stored as:
//!
//! | format | tensors |
//! |---|---|
//! | MXFP4 | `NAME_blocks` U8 `[..., cols / 32, 16]` (two e2m1 codes a byte) and `NAME_scales` U8 `[..., cols / 32]` (e8m0 exponents), as gpt-oss checkpoints hold them and transformers loads them |
//! | the other MX formats | `NAME` U8 `[rows, bytes per row]` (packed element codes) and `NAME.scales` U8 `[rows, blocks per row]` (e8m0) |
//! | NVFP4 | `NAME` U8 `[rows, cols / 2]`, `NAME.scales` U8 `[rows, cols / 16]` (e4m3fn) and, with a tensor scale, `NAME.tensor_scale` F32 `[1]` |
//! | the ggml types | `NAME` U8 `[rows, bytes per row]`: the blocks as GGUF stores them, scales inside |
//! | NF4 | bitsandbytes' own tensors ([`bnb`]), as transformers loads a `Linear4bit` weight |
//!
//! Beside them the metadata key [`KEY`] holds a JSON object that maps every
//! `NAME` to its [`Entry`]: the format and its options, the original shape,
//! and which tensor holds which part. The layouts other tools read (gpt-oss,
//! bitsandbytes) are kept exactly, so the file loads there too; the metadata
//! is what lets quantlab read back the formats those tools have no layout for.
//!
//! [`store`] gives the tensors and entry of one quantized tensor; [`restore`]
//! gives a file's tensors with every block-format tensor back to f32 (and
//! [`find`] the block-format tensors alone, for a caller that wants them one
//! by one).
//!
//! ```no_run
//! use std::collections::HashMap;
//! use quantlab::formats::BlockFormat;
//! use quantlab::io::{Dtype, Input, blocks, write_safetensors};
//!
//! // Write one tensor as MXFP4 (gpt-oss' layout)...
//! let x: Vec<f32> = (0..64).map(|i| i as f32 / 8.0).collect();
//! let q = BlockFormat::parse("mxfp4")?.quantize(&x, 32)?;
//! let (tensors, entry) = blocks::store("w", Dtype::F32, &[2, 32], q)?;
//! let layout = blocks::Layout::from([("w".to_string(), entry)]);
//! let metadata = HashMap::from([(blocks::KEY.to_string(), blocks::to_json(&layout))]);
//! write_safetensors::<quantlab::Error>("w.safetensors".as_ref(), tensors, metadata, &|| {})?;
//!
//! // ...and read it back.
//! let input = Input::open("w.safetensors".as_ref())?;
//! let tensors = input.tensors()?;
//! for found in blocks::find(&tensors, &input.metadata()?)? {
//!     let values = found.dequantize(&tensors)?;
//!     println!("{}: {} values", found.name, values.len());
//! }
//! # Ok::<(), quantlab::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

use super::bnb::{self, Nf4Weight};
use super::{Bytes, Dtype, OutTensor, Tensor};
use crate::error::{Error, Result};
use crate::formats::{BlockFormat, BlockQuantized, MxElement, ScaleRule, Scales};

/// The metadata key that holds the block-format layout (a JSON object of [`Entry`]s).
pub const KEY: &str = "quantlab_blocks";

/// How one tensor is stored in a block format.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The format, options included.
    pub format: BlockFormat,
    /// The original tensor's shape.
    pub shape: Vec<usize>,
    /// Which tensor of the file holds each part, by role: `data` (or
    /// `blocks` for gpt-oss' MXFP4), `scales`, `tensor_scale`, and for NF4
    /// bitsandbytes' names (`absmax`, `quant_map`, ...).
    pub parts: BTreeMap<String, String>,
}

/// The whole `quantlab_blocks` metadata value, ordered by tensor name.
pub type Layout = BTreeMap<String, Entry>;

fn bad(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::BadLayout { reason: format!("`{name}`: {reason}") }
}

impl Entry {
    /// The entry as the metadata stores it: `format` (its name), `options`
    /// (as it prints), the format's own options (`scale_rule`; `block_size`
    /// and `double_quant`; `tensor_scale`), `shape` and `parts`.
    pub fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("format".into(), self.format.name().into());
        entry.insert("options".into(), self.format.to_string().into());
        match self.format {
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
        entry.insert("shape".into(), self.shape.clone().into());
        let parts: Map<String, Value> = self.parts.iter().map(|(k, v)| (k.clone(), v.as_str().into())).collect();
        entry.insert("parts".into(), parts.into());
        entry.into()
    }

    /// The entry of tensor `name` from its JSON ([`Entry::to_json`]'s form).
    /// Errors ([`Error::BadLayout`], naming the tensor): no or an unknown
    /// format, options that do not fit it, a shape or parts of the wrong form.
    pub fn from_json(name: &str, e: &Value) -> Result<Entry> {
        let format_name = e["format"].as_str().ok_or_else(|| bad(name, "the entry has no `format`"))?;
        let format = BlockFormat::parse(format_name).map_err(|err| bad(name, err))?;
        let format = match format {
            BlockFormat::Mx { .. } => {
                let rule = e["scale_rule"].as_str().and_then(ScaleRule::parse);
                format.with_scale_rule(rule.ok_or_else(|| bad(name, "no valid `scale_rule`"))?)
            }
            BlockFormat::Nf4 { .. } => {
                let block = e["block_size"].as_u64().and_then(|b| usize::try_from(b).ok());
                let block = block.ok_or_else(|| bad(name, "no `block_size`"))?;
                BlockFormat::nf4(block, e["double_quant"].as_bool().unwrap_or(false)).map_err(|err| bad(name, err))?
            }
            BlockFormat::Nvfp4 { .. } => {
                BlockFormat::Nvfp4 { tensor_scale: e["tensor_scale"].as_bool().unwrap_or(true) }
            }
            other => other,
        };
        let shape: Option<Vec<usize>> = e["shape"]
            .as_array()
            .and_then(|a| a.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect());
        let shape = shape.ok_or_else(|| bad(name, format!("`shape` is {}, not a list of sizes", e["shape"])))?;
        let parts: Option<BTreeMap<String, String>> = e["parts"]
            .as_object()
            .and_then(|o| o.iter().map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect());
        let parts = parts.ok_or_else(|| bad(name, "`parts` is not an object of tensor names"))?;
        Ok(Entry { format, shape, parts })
    }

    /// The tensor that holds part `role`, if the entry names one.
    pub fn part(&self, role: &str) -> Option<&str> {
        self.parts.get(role).map(String::as_str)
    }
}

/// Parses the `quantlab_blocks` metadata value.
pub fn parse(json: &str) -> Result<Layout> {
    let v: Map<String, Value> = serde_json::from_str(json)
        .map_err(|e| Error::BadLayout { reason: format!("the `{KEY}` metadata is not a JSON object ({e})") })?;
    v.iter().map(|(name, e)| Ok((name.clone(), Entry::from_json(name, e)?))).collect()
}

/// Serialises the layout for the metadata.
pub fn to_json(layout: &Layout) -> String {
    let map: Map<String, Value> = layout.iter().map(|(k, e)| (k.clone(), e.to_json())).collect();
    Value::Object(map).to_string()
}

/// Whether a tensor of `shape` is stored in `format`: it has at least two
/// dimensions, and its rows are whole blocks (NF4 takes any length).
/// Tensors that do not fit are kept in float, as llama.cpp's converter does.
pub fn fits(format: BlockFormat, shape: &[usize]) -> bool {
    let cols = shape.last().copied().unwrap_or(1);
    shape.len() >= 2 && (!format.needs_whole_rows() || cols.is_multiple_of(format.block_size()))
}

/// The tensors that store `q`, the block-format quantization of tensor
/// `name` (of `shape`, originally of type `dtype`), and its layout entry: see
/// the [module docs](self) for names, types and shapes. NF4 is written as
/// bitsandbytes writes it ([`bnb::nf4_tensors`]; `dtype` is the one its
/// quant state records). Errors: `q` does not fit `shape`, or its parts do
/// not fit its format.
pub fn store<E>(
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    q: BlockQuantized,
) -> Result<(Vec<OutTensor<'static, E>>, Entry)> {
    let format = q.format;
    let mut parts = BTreeMap::new();
    let mut out = Vec::new();
    if let BlockFormat::Nf4 { .. } = format {
        let torch = bnb::torch_dtype_name(dtype).unwrap_or("float32");
        let prefix = format!("{name}.");
        for o in bnb::nf4_tensors(name, shape, torch, &q)? {
            let role = o.name.strip_prefix(&prefix).unwrap_or("data").to_string();
            parts.insert(role, o.name.clone());
            out.push(o);
        }
        return Ok((out, Entry { format, shape: shape.to_vec(), parts }));
    }
    q.validate()?;
    if q.is_empty() || shape.last() != Some(&q.cols) || shape.iter().product::<usize>() != q.len() {
        return Err(Error::BadParams {
            reason: format!("{name}: shape {shape:?} does not fit {} rows of {} values of {format}", q.rows, q.cols),
        });
    }
    let mut push = |name: String, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>, role: &str| {
        parts.insert(role.to_string(), name.clone());
        out.push(OutTensor { name, dtype, shape, len: bytes.len(), bytes: Bytes::Owned(bytes) });
    };
    let (rows, cols) = (q.rows, q.cols);
    match (format, q.scales) {
        // gpt-oss' layout, as transformers' Mxfp4HfQuantizer loads it: blocks of 16 bytes under the leading axes.
        (BlockFormat::Mx { element: MxElement::E2m1, .. }, Scales::E8m0(s)) => {
            let lead = &shape[..shape.len() - 1];
            let blocks = cols / 32;
            push(format!("{name}_blocks"), Dtype::U8, [lead, &[blocks, 16]].concat(), q.data, "blocks");
            push(format!("{name}_scales"), Dtype::U8, [lead, &[blocks]].concat(), s, "scales");
        }
        (_, scales) => {
            let per_row = q.data.len() / rows;
            push(name.to_string(), Dtype::U8, vec![rows, per_row], q.data, "data");
            match scales {
                Scales::InBlocks => {}
                Scales::E8m0(s) | Scales::E4m3 { blocks: s, tensor: None } => {
                    let n = s.len();
                    push(format!("{name}.scales"), Dtype::U8, vec![rows, n / rows], s, "scales");
                }
                Scales::E4m3 { blocks, tensor: Some(ts) } => {
                    let n = blocks.len();
                    push(format!("{name}.scales"), Dtype::U8, vec![rows, n / rows], blocks, "scales");
                    push(
                        format!("{name}.tensor_scale"),
                        Dtype::F32,
                        vec![1],
                        ts.to_le_bytes().to_vec(),
                        "tensor_scale",
                    );
                }
                // `validate` has checked that the scales are the format's; NF4's went to bitsandbytes' layout.
                Scales::Absmax(_) | Scales::DoubleQuant { .. } => {
                    return Err(Error::BadParams { reason: format!("{name}: NF4 scales for {format}") });
                }
            }
        }
    }
    Ok((out, Entry { format, shape: shape.to_vec(), parts }))
}

/// How a found block-format tensor is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// As a [`KEY`] entry describes it.
    Blocks(Entry),
    /// As bitsandbytes stores an NF4 weight (whoever wrote the file).
    Bnb(Nf4Weight),
}

/// A block-format tensor found in a file, its parts checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockTensor {
    /// The original tensor's name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The tensor that holds its packed data (restored, the tensor takes its place in file order).
    pub data: String,
    /// The other tensors it is stored in.
    pub parts: Vec<String>,
    /// How it is stored.
    pub stored: Stored,
}

fn tensor<'t, 'a>(tensors: &'t [Tensor<'a>], name: &str, n: &str) -> Result<&'t Tensor<'a>> {
    tensors.iter().find(|t| t.name == n).ok_or_else(|| bad(name, format!("tensor `{n}` is missing")))
}

impl BlockTensor {
    /// Values held.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The tensor as a [`BlockQuantized`] from its parts among `tensors` (for
    /// a [`Stored::Blocks`] tensor; a bitsandbytes weight has its own
    /// [`Nf4Weight::dequantize`]), checked against its format and shape.
    pub fn quantized(&self, tensors: &[Tensor<'_>]) -> Result<BlockQuantized> {
        let Stored::Blocks(entry) = &self.stored else {
            return Err(bad(&self.name, "a bitsandbytes NF4 weight is read by `bnb::Nf4Weight`"));
        };
        let name = &self.name;
        let part = |role: &str| -> Result<&Tensor<'_>> {
            let n = entry.part(role).ok_or_else(|| bad(name, format!("no `{role}` part")))?;
            tensor(tensors, name, n)
        };
        let scales = match entry.format {
            BlockFormat::Mx { .. } => Scales::E8m0(part("scales")?.data.to_vec()),
            BlockFormat::Ggml(_) => Scales::InBlocks,
            BlockFormat::Nvfp4 { tensor_scale } => {
                let tensor = if tensor_scale {
                    let b = &part("tensor_scale")?.data;
                    let b: [u8; 4] = b[..].try_into().map_err(|_| bad(name, "the tensor scale is not one f32"))?;
                    Some(f32::from_le_bytes(b))
                } else {
                    None
                };
                Scales::E4m3 { blocks: part("scales")?.data.to_vec(), tensor }
            }
            BlockFormat::Nf4 { .. } => return Err(bad(name, "NF4 is read as bitsandbytes' layout")),
        };
        let cols = self.shape.last().copied().unwrap_or(1);
        let rows = self.numel().checked_div(cols).unwrap_or(0);
        let data = tensor(tensors, name, &self.data)?.data.to_vec();
        let q = BlockQuantized { format: entry.format, rows, cols, data, scales };
        q.validate().map_err(|e| bad(name, e))?;
        Ok(q)
    }

    /// The tensor's values as f32, row-major, from its parts among `tensors`:
    /// as the format's reference dequantizes ([`BlockQuantized::dequantize`]),
    /// or as bitsandbytes does for its NF4 weights ([`Nf4Weight::dequantize`]).
    pub fn dequantize(&self, tensors: &[Tensor<'_>]) -> Result<Vec<f32>> {
        match &self.stored {
            Stored::Bnb(w) => w.dequantize(&tensor(tensors, &self.name, &self.data)?.data),
            Stored::Blocks(_) => self.quantized(tensors)?.dequantize(),
        }
    }
}

/// Every block-format tensor among `tensors`: those the [`KEY`] metadata
/// names (if `metadata` has it) and every bitsandbytes NF4 weight, each
/// checked (parts present and of the lengths its format and shape need)
/// before any is dequantized. bitsandbytes weights come first, in file order,
/// then the metadata's entries by name. Errors: [`Error::BadLayout`] or
/// [`Error::BadQuantState`], naming the tensor.
pub fn find(tensors: &[Tensor<'_>], metadata: &HashMap<String, String>) -> Result<Vec<BlockTensor>> {
    let layout = metadata.get(KEY).map(|json| parse(json)).transpose()?.unwrap_or_default();
    let mut found: Vec<BlockTensor> = bnb::find_nf4(tensors)?
        .into_iter()
        .map(|w| BlockTensor {
            name: w.name.clone(),
            shape: w.shape.clone(),
            data: w.name.clone(),
            parts: w.parts.clone(),
            stored: Stored::Bnb(w),
        })
        .collect();
    for (name, entry) in layout {
        if let BlockFormat::Nf4 { .. } = entry.format {
            // Restored from bitsandbytes' own tensors, found above.
            if !found.iter().any(|b| b.name == name) {
                return Err(bad(
                    &name,
                    "the metadata names an NF4 tensor, but its bitsandbytes quant state is missing",
                ));
            }
            continue;
        }
        // gpt-oss' MXFP4 keeps its codes in `NAME_blocks`; every other format in `NAME`.
        let gpt_oss = matches!(entry.format, BlockFormat::Mx { .. }) && entry.parts.contains_key("blocks");
        let data_role = if gpt_oss { "blocks" } else { "data" };
        let data = entry.part(data_role).ok_or_else(|| bad(&name, format!("no `{data_role}` part")))?.to_string();
        let parts = entry.parts.values().filter(|p| **p != data).cloned().collect();
        let b = BlockTensor { name, shape: entry.shape.clone(), data, parts, stored: Stored::Blocks(entry) };
        // Check now, so that a bad part stops the caller before anything is written.
        b.quantized(tensors)?;
        found.push(b);
    }
    Ok(found)
}

/// `tensors` (a file's, with its `metadata`) ready to write back with every
/// block-format tensor ([`find`]) restored to F32 in the place of its packed
/// data, its other parts left out, and every other tensor copied. The values
/// are computed when the writer asks for them, one tensor at a time. The
/// caller drops [`KEY`] from the metadata it writes.
pub fn restore<'a>(tensors: &'a [Tensor<'_>], metadata: &HashMap<String, String>) -> Result<Vec<OutTensor<'a>>> {
    let mut restored: HashMap<String, OutTensor<'a>> = HashMap::new();
    let mut consumed = HashSet::new();
    for b in find(tensors, metadata)? {
        consumed.extend(b.parts.iter().cloned());
        let (name, shape, len, data) = (b.name.clone(), b.shape.clone(), b.numel() * 4, b.data.clone());
        let make =
            move || -> Result<Vec<u8>> { Ok(b.dequantize(tensors)?.iter().flat_map(|v| v.to_le_bytes()).collect()) };
        restored.insert(data, OutTensor { name, dtype: Dtype::F32, shape, len, bytes: Bytes::Lazy(Box::new(make)) });
    }
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        if let Some(o) = restored.remove(&t.name) {
            out.push(o);
        } else if !consumed.contains(&t.name) {
            out.push(OutTensor::copy(t));
        }
    }
    Ok(out)
}
