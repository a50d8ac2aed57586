//! NF4 in safetensors as bitsandbytes 0.50.2 serializes a 4-bit weight for
//! transformers, written and read.
//!
//! `Linear4bit._save_to_state_dict` stores the `Params4bit` weight `W` (the
//! packed codes) and, beside it, `QuantState.as_dict(packed=True)` under
//! `W.` + key (bitsandbytes `functional.py` and `utils.pack_dict_to_tensor`):
//!
//! | tensor | dtype | shape | holds |
//! |---|---|---|---|
//! | `W` | U8 (or the `quant_storage` type, same bytes) | `[(n + 1) / 2, 1]` | two NF4 codes a byte, the first in the high nibble |
//! | `W.absmax` | F32, or U8 when nested | `[blocks]` | each block's absmax (or its dynamic-code byte) |
//! | `W.quant_map` | F32 | `[16]` | the NF4 code values |
//! | `W.nested_absmax` | F32 | `[blocks / 256]` | double quantization: the absmaxes' own absmax |
//! | `W.nested_quant_map` | F32 | `[256]` | double quantization: the dynamic 8-bit code |
//! | `W.quant_state.bitsandbytes__nf4` | U8 | `[len]` | UTF-8 JSON: `quant_type`, `blocksize`, `dtype` (torch's name without `torch.`), `shape`, and when nested `nested_blocksize`, `nested_dtype`, `nested_offset` |
//!
//! [`nf4_tensors`] writes these from a [`BlockQuantized`] NF4 tensor;
//! [`find_nf4`] finds every such weight among a file's tensors (whoever wrote
//! it) and [`Nf4Weight::dequantize`] restores its values as bitsandbytes'
//! CPU `dequantize_4bit` does, with the file's own code tables.

use serde_json::{Map, Value};

use super::{Dtype, OutTensor, Tensor};
use crate::error::{Error, Result};
use crate::formats::{BlockFormat, BlockQuantized, DYNAMIC_CODE, NF4_CODE, Scales};

/// The suffix of the packed-JSON tensor of an NF4 quant state.
pub const NF4_STATE_SUFFIX: &str = ".quant_state.bitsandbytes__nf4";
/// bitsandbytes' own 4-bit float (not OCP e2m1), which quantlab does not read.
const FP4_STATE_SUFFIX: &str = ".quant_state.bitsandbytes__fp4";

/// Whether `tensors` hold bitsandbytes 4-bit weights: a
/// `W.quant_state.bitsandbytes__nf4` (or `__fp4`) tensor.
pub fn has_quant_state(tensors: &[Tensor<'_>]) -> bool {
    tensors.iter().any(|t| t.name.contains(".quant_state.bitsandbytes__"))
}

/// torch's name of a float type as `QuantState.as_dict` stores it (`str(dtype).strip("torch.")`).
pub fn torch_dtype_name(d: Dtype) -> Option<&'static str> {
    Some(match d {
        Dtype::F64 => "float64",
        Dtype::F32 => "float32",
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        Dtype::F8_E4M3 => "float8_e4m3fn",
        Dtype::F8_E5M2 => "float8_e5m2",
        _ => return None,
    })
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The tensors bitsandbytes 0.50.2 saves for the NF4 weight `name` of `shape`
/// (its original type `dtype`, a torch name such as `float32`), quantized as
/// `q`: see the [module docs](self) for names, types and shapes. The JSON is
/// `json.dumps`' (keys in bitsandbytes' order, `", "` and `": "` separators).
pub fn nf4_tensors<E>(
    name: &str,
    shape: &[usize],
    dtype: &str,
    q: &BlockQuantized,
) -> Result<Vec<OutTensor<'static, E>>> {
    let BlockFormat::Nf4 { block, double_quant } = q.format else {
        return Err(Error::BadParams { reason: format!("{} is not nf4: bitsandbytes' layout holds NF4", q.format) });
    };
    q.validate()?;
    let n: usize = shape.iter().product();
    if n != q.len() || q.data.len() != n.div_ceil(2) {
        return Err(Error::BadParams {
            reason: format!("{name}: shape {shape:?} does not fit {} packed bytes of {} values", q.data.len(), q.len()),
        });
    }
    let shape_json = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let mut json =
        format!(r#"{{"quant_type": "nf4", "blocksize": {block}, "dtype": {dtype:?}, "shape": [{shape_json}]"#);
    let mut out = vec![OutTensor::owned(name.to_string(), Dtype::U8, vec![q.data.len(), 1], q.data.clone())];
    let tensor = |suffix: &str, dtype: Dtype, bytes: Vec<u8>| {
        let len = bytes.len() / if dtype == Dtype::U8 { 1 } else { 4 };
        OutTensor::owned(format!("{name}.{suffix}"), dtype, vec![len], bytes)
    };
    match (&q.scales, double_quant) {
        (Scales::Absmax(a), false) => out.push(tensor("absmax", Dtype::F32, f32_bytes(a))),
        (Scales::DoubleQuant { codes, absmax2, offset }, true) => {
            out.push(tensor("absmax", Dtype::U8, codes.clone()));
            out.push(tensor("nested_absmax", Dtype::F32, f32_bytes(absmax2)));
            out.push(tensor("nested_quant_map", Dtype::F32, f32_bytes(&DYNAMIC_CODE)));
            // Python's float repr of the f32 offset: the shortest f64 that reads back (serde_json's too).
            let offset = serde_json::to_string(&f64::from(*offset))
                .map_err(|e| Error::BadParams { reason: format!("{name}: offset {offset}: {e}") })?;
            json.push_str(&format!(
                r#", "nested_blocksize": {}, "nested_dtype": "float32", "nested_offset": {offset}"#,
                crate::formats::NF4_DOUBLE_QUANT_BLOCK
            ));
        }
        _ => return Err(Error::BadParams { reason: format!("{name}: NF4 scales do not fit {}", q.format) }),
    }
    json.push('}');
    out.push(tensor("quant_map", Dtype::F32, f32_bytes(&NF4_CODE)));
    out.push(tensor(&NF4_STATE_SUFFIX[1..], Dtype::U8, json.into_bytes()));
    Ok(out)
}

/// The absmaxes of an NF4 weight as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Nf4Absmax {
    /// One f32 per block.
    Plain(Vec<f32>),
    /// Double quantization: `quant_map[codes[i]] * absmax[i / blocksize] + offset`.
    Nested {
        /// One byte per NF4 block.
        codes: Vec<u8>,
        /// One f32 per `blocksize` codes.
        absmax: Vec<f32>,
        /// The code table (256 values).
        quant_map: Vec<f32>,
        /// Codes per nested absmax.
        blocksize: usize,
        /// The mean taken off, as bitsandbytes reads it back (`torch.tensor(float(x))`: f32).
        offset: f32,
    },
}

/// One bitsandbytes NF4 weight found in a file: its quant state, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Nf4Weight {
    /// The packed weight's name (`W`, usually `....weight`).
    pub name: String,
    /// The original shape.
    pub shape: Vec<usize>,
    /// The original torch type (`float32`, `bfloat16`, ...).
    pub dtype: String,
    /// Values per absmax.
    pub blocksize: usize,
    /// The 16 code values.
    pub quant_map: Vec<f32>,
    /// The absmaxes.
    pub absmax: Nf4Absmax,
    /// Names of every tensor of this weight besides `name` itself.
    pub parts: Vec<String>,
}

fn usize_of(state: &Map<String, Value>, key: &str) -> std::result::Result<usize, String> {
    state
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("`{key}` in the quant state is {}, not a positive integer", show(state.get(key))))
}

fn show(v: Option<&Value>) -> String {
    v.map_or("missing".to_string(), Value::to_string)
}

/// Every bitsandbytes NF4 weight among `tensors` (found by their
/// `W.quant_state.bitsandbytes__nf4` tensors), in file order, each checked:
/// every part present with bitsandbytes' type and length. A bitsandbytes
/// `fp4` weight, or a quant state that does not fit, is an
/// [`Error::BadQuantState`] naming the weight.
pub fn find_nf4(tensors: &[Tensor<'_>]) -> Result<Vec<Nf4Weight>> {
    let by_name: std::collections::HashMap<&str, &Tensor<'_>> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut found = Vec::new();
    for t in tensors {
        if let Some(w) = t.name.strip_suffix(FP4_STATE_SUFFIX) {
            return Err(Error::BadQuantState {
                weight: w.to_string(),
                reason: "it is bitsandbytes' fp4, which quantlab does not read (it reads nf4)".into(),
            });
        }
        let Some(w) = t.name.strip_suffix(NF4_STATE_SUFFIX) else { continue };
        let bad = |reason: String| Error::BadQuantState { weight: w.to_string(), reason };
        found.push(read_weight(w, t, &by_name).map_err(bad)?);
    }
    Ok(found)
}

fn read_weight(
    w: &str,
    state_tensor: &Tensor<'_>,
    by_name: &std::collections::HashMap<&str, &Tensor<'_>>,
) -> std::result::Result<Nf4Weight, String> {
    if state_tensor.dtype != Dtype::U8 {
        return Err(format!("its quant state is {:?}, not U8 bytes of JSON", state_tensor.dtype));
    }
    let state: Map<String, Value> = serde_json::from_slice(&state_tensor.data)
        .map_err(|e| format!("its quant state is not a JSON object ({e})"))?;
    if state.get("quant_type").and_then(Value::as_str) != Some("nf4") {
        return Err(format!("quant_type is {}, not \"nf4\"", show(state.get("quant_type"))));
    }
    let blocksize = usize_of(&state, "blocksize")?;
    let shape: Vec<usize> = state
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect())
        .ok_or_else(|| format!("`shape` in the quant state is {}, not a list of sizes", show(state.get("shape"))))?;
    let n = shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d)).ok_or("its shape overflows")?;
    let dtype = state.get("dtype").and_then(Value::as_str).unwrap_or("float32").to_string();
    let find = |suffix: &str, dtype: Dtype, len: usize| -> std::result::Result<&Tensor<'_>, String> {
        let name = format!("{w}.{suffix}");
        let t = by_name.get(name.as_str()).ok_or_else(|| format!("tensor `{name}` is missing"))?;
        let width = if dtype == Dtype::U8 { 1 } else { 4 };
        if t.dtype != dtype || t.data.len() != len * width {
            return Err(format!(
                "`{name}` is {:?} of {} bytes; a weight of shape {shape:?} in blocks of {blocksize} needs {dtype:?} \
                 of {len} values",
                t.dtype,
                t.data.len()
            ));
        }
        Ok(t)
    };
    // The packed weight may be stored in another type (`Params4bit(quant_storage=torch.bfloat16)`, for
    // FSDP): bitsandbytes views it as bytes, and so does quantlab.
    let packed = by_name.get(w).ok_or_else(|| format!("tensor `{w}` (the packed weight) is missing"))?;
    if packed.data.len() != n.div_ceil(2) {
        return Err(format!(
            "`{w}` holds {} bytes; a weight of shape {shape:?} packs into {} bytes",
            packed.data.len(),
            n.div_ceil(2)
        ));
    }
    let blocks = n.div_ceil(blocksize);
    let quant_map = f32s(&find("quant_map", Dtype::F32, 16)?.data);
    let mut parts = vec![format!("{w}.absmax"), format!("{w}.quant_map"), state_tensor.name.clone()];
    let absmax =
        if state.contains_key("nested_blocksize") || by_name.contains_key(format!("{w}.nested_absmax").as_str()) {
            let nested_blocksize = usize_of(&state, "nested_blocksize")?;
            let offset = state
                .get("nested_offset")
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("`nested_offset` is {}, not a number", show(state.get("nested_offset"))))?;
            let codes = find("absmax", Dtype::U8, blocks)?.data.to_vec();
            let absmax = f32s(&find("nested_absmax", Dtype::F32, blocks.div_ceil(nested_blocksize))?.data);
            let quant_map = f32s(&find("nested_quant_map", Dtype::F32, 256)?.data);
            parts.extend([format!("{w}.nested_absmax"), format!("{w}.nested_quant_map")]);
            Nf4Absmax::Nested { codes, absmax, quant_map, blocksize: nested_blocksize, offset: offset as f32 }
        } else {
            Nf4Absmax::Plain(f32s(&find("absmax", Dtype::F32, blocks)?.data))
        };
    Ok(Nf4Weight { name: w.to_string(), shape, dtype, blocksize, quant_map, absmax, parts })
}

impl Nf4Weight {
    /// Values held.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values of `packed` (the weight's own U8 tensor, checked by
    /// [`find_nf4`]) as f32: bitsandbytes 0.50's CPU `dequantize_4bit`
    /// (`quant_map[q] * absmax` in f32, the absmaxes first restored as
    /// `nested_quant_map[c] * nested_absmax + offset` when nested), rounded
    /// to the weight's `dtype` (bfloat16, float16) as bitsandbytes returns it.
    pub fn dequantize(&self, packed: &[u8]) -> Result<Vec<f32>> {
        let n = self.numel();
        let bad = |reason: String| Err(Error::BadQuantState { weight: self.name.clone(), reason });
        if packed.len() != n.div_ceil(2) {
            return bad(format!("{} packed bytes for {n} values", packed.len()));
        }
        // The fields are public: check what indexing relies on.
        let blocks = if self.blocksize == 0 { usize::MAX } else { n.div_ceil(self.blocksize) };
        let fits = match &self.absmax {
            Nf4Absmax::Plain(a) => a.len() == blocks,
            Nf4Absmax::Nested { codes, absmax, quant_map, blocksize, .. } => {
                *blocksize > 0
                    && codes.len() == blocks
                    && absmax.len() == blocks.div_ceil(*blocksize)
                    && quant_map.len() == 256
            }
        };
        if self.quant_map.len() != 16 || !fits {
            return bad(format!(
                "its quant map ({} values), block size {} and absmaxes do not fit {n} values",
                self.quant_map.len(),
                self.blocksize
            ));
        }
        let absmax: Vec<f32> = match &self.absmax {
            Nf4Absmax::Plain(a) => a.clone(),
            Nf4Absmax::Nested { codes, absmax, quant_map, blocksize, offset } => codes
                .iter()
                .enumerate()
                .map(|(i, &c)| quant_map[usize::from(c)] * absmax[i / blocksize] + offset)
                .collect(),
        };
        // bitsandbytes returns the weight's own type: round to it (exactly representable in f32).
        let round: fn(f32) -> f32 = match self.dtype.as_str() {
            "bfloat16" => |v| half::bf16::from_f32(v).to_f32(),
            "float16" => |v| half::f16::from_f32(v).to_f32(),
            _ => |v| v,
        };
        Ok((0..n)
            .map(|i| {
                let byte = packed[i / 2];
                let q = if i % 2 == 0 { byte >> 4 } else { byte & 15 };
                round(self.quant_map[usize::from(q)] * absmax[i / self.blocksize])
            })
            .collect())
    }
}
