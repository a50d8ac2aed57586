//! GGUF files (llama.cpp's format): a reader for any GGUF v2/v3 file and a
//! writer of GGUF v3.
//!
//! Layout (gguf-py 0.19 `gguf_writer.py` / `gguf_reader.py`, little-endian):
//! the magic `GGUF`, the version (u32), the tensor and metadata counts (u64),
//! the metadata key-value pairs (key: u64 length + UTF-8; value: u32 type +
//! value; arrays: u32 element type, u64 count, elements), then one info per
//! tensor (name, u32 dimension count, u64 dimensions innermost first, u32 ggml
//! type, u64 offset into the data section), then padding to
//! `general.alignment` (32 unless the metadata says otherwise), then the data
//! section, each tensor at an aligned offset.
//!
//! The reader trusts nothing in the header: every count is checked against
//! the bytes that are left before anything is allocated for it, every tensor's
//! extent against the file, and a file that lies is a [`Error::BadGguf`] that
//! says where. Shapes are given in row-major order (numpy's), the reverse of
//! GGUF's dimension order.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use half::{bf16, f16};

use super::{Bytes, Dtype, OutTensor, Tensor};
use crate::error::{Error, Result};
use crate::formats::{BlockFormat, GgmlBlock, MxElement, ScaleRule};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The version this writer writes.
pub const VERSION: u32 = 3;
/// The alignment of tensor data when the metadata names none.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// llama.cpp's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
/// How deeply arrays may nest in metadata (gguf-py allows any; a bound keeps a hostile file from exhausting the stack).
const MAX_ARRAY_DEPTH: usize = 8;

/// A ggml tensor type, by the id GGUF stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

/// (id, values per block, bytes per block, name): gguf-py 0.19's `GGML_QUANT_SIZES`.
const TYPES: [(u32, u64, u64, &str); 34] = [
    (0, 1, 4, "F32"),
    (1, 1, 2, "F16"),
    (2, 32, 18, "Q4_0"),
    (3, 32, 20, "Q4_1"),
    (6, 32, 22, "Q5_0"),
    (7, 32, 24, "Q5_1"),
    (8, 32, 34, "Q8_0"),
    (9, 32, 40, "Q8_1"),
    (10, 256, 84, "Q2_K"),
    (11, 256, 110, "Q3_K"),
    (12, 256, 144, "Q4_K"),
    (13, 256, 176, "Q5_K"),
    (14, 256, 210, "Q6_K"),
    (15, 256, 292, "Q8_K"),
    (16, 256, 66, "IQ2_XXS"),
    (17, 256, 74, "IQ2_XS"),
    (18, 256, 98, "IQ3_XXS"),
    (19, 256, 50, "IQ1_S"),
    (20, 32, 18, "IQ4_NL"),
    (21, 256, 110, "IQ3_S"),
    (22, 256, 82, "IQ2_S"),
    (23, 256, 136, "IQ4_XS"),
    (24, 1, 1, "I8"),
    (25, 1, 2, "I16"),
    (26, 1, 4, "I32"),
    (27, 1, 8, "I64"),
    (28, 1, 8, "F64"),
    (29, 256, 56, "IQ1_M"),
    (30, 1, 2, "BF16"),
    (34, 256, 54, "TQ1_0"),
    (35, 256, 66, "TQ2_0"),
    (39, 32, 17, "MXFP4"),
    (40, 64, 36, "NVFP4"),
    (41, 128, 18, "Q1_0"),
];

impl GgmlType {
    /// F32.
    pub const F32: GgmlType = GgmlType(0);
    /// F16.
    pub const F16: GgmlType = GgmlType(1);
    /// BF16.
    pub const BF16: GgmlType = GgmlType(30);

    fn info(self) -> Option<(u64, u64, &'static str)> {
        TYPES.iter().find(|t| t.0 == self.0).map(|t| (t.1, t.2, t.3))
    }

    /// The type's name (`Q4_K`), or `type N` for an id gguf-py 0.19 does not know.
    pub fn name(self) -> Cow<'static, str> {
        self.info().map_or_else(|| format!("type {}", self.0).into(), |i| i.2.into())
    }

    /// Values per block and bytes per block, if the type is known.
    pub fn block_and_size(self) -> Option<(u64, u64)> {
        self.info().map(|i| (i.0, i.1))
    }

    /// The safetensors type of an integer ggml type (I8, I16, I32, I64), which
    /// GGUF stores as plain little-endian values.
    pub fn int_dtype(self) -> Option<Dtype> {
        Some(match self.0 {
            24 => Dtype::I8,
            25 => Dtype::I16,
            26 => Dtype::I32,
            27 => Dtype::I64,
            _ => return None,
        })
    }

    /// The ggml type that stores a safetensors integer type as it is.
    pub fn of_int_dtype(d: Dtype) -> Option<Self> {
        Some(GgmlType(match d {
            Dtype::I8 => 24,
            Dtype::I16 => 25,
            Dtype::I32 => 26,
            Dtype::I64 => 27,
            _ => return None,
        }))
    }

    /// Whether [`Gguf::tensor_f32`] reads this type: F32, F16, BF16, F64 and
    /// the block types quantlab has.
    pub fn is_readable_float(self) -> bool {
        matches!(self.0, 0 | 1 | 28 | 30) || GgmlBlock::from_ggml_type(self.0).is_some()
    }

    /// The type of a quantlab ggml block format.
    pub fn of_block(b: GgmlBlock) -> Self {
        GgmlType(b.ggml_type())
    }

    /// Bytes of a tensor of `numel` values whose innermost dimension is
    /// `inner`, or why there cannot be one.
    pub fn nbytes(self, numel: u64, inner: u64) -> std::result::Result<u64, String> {
        let (block, size) = self.block_and_size().ok_or_else(|| format!("unknown ggml type {}", self.0))?;
        if !inner.is_multiple_of(block) {
            return Err(format!("{}'s rows of {inner} values are not whole blocks of {block}", self.name()));
        }
        (numel / block).checked_mul(size).ok_or_else(|| "tensor size overflows".to_string())
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// u8 (type 0).
    U8(u8),
    /// i8 (type 1).
    I8(i8),
    /// u16 (type 2).
    U16(u16),
    /// i16 (type 3).
    I16(i16),
    /// u32 (type 4).
    U32(u32),
    /// i32 (type 5).
    I32(i32),
    /// f32 (type 6).
    F32(f32),
    /// bool (type 7).
    Bool(bool),
    /// UTF-8 string (type 8).
    Str(String),
    /// An array of values of one type (type 9).
    Array(Vec<GgufValue>),
    /// u64 (type 10).
    U64(u64),
    /// i64 (type 11).
    I64(i64),
    /// f64 (type 12).
    F64(f64),
}

impl GgufValue {
    fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::Str(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }

    /// The value as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        if let GgufValue::Str(s) = self { Some(s) } else { None }
    }
}

impl std::fmt::Display for GgufValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GgufValue::U8(v) => write!(f, "{v}"),
            GgufValue::I8(v) => write!(f, "{v}"),
            GgufValue::U16(v) => write!(f, "{v}"),
            GgufValue::I16(v) => write!(f, "{v}"),
            GgufValue::U32(v) => write!(f, "{v}"),
            GgufValue::I32(v) => write!(f, "{v}"),
            GgufValue::F32(v) => write!(f, "{v}"),
            GgufValue::Bool(v) => write!(f, "{v}"),
            GgufValue::Str(v) => write!(f, "{v:?}"),
            GgufValue::U64(v) => write!(f, "{v}"),
            GgufValue::I64(v) => write!(f, "{v}"),
            GgufValue::F64(v) => write!(f, "{v}"),
            GgufValue::Array(a) => {
                let shown: Vec<String> = a.iter().take(8).map(|v| v.to_string()).collect();
                write!(f, "[{}{}] ({} values)", shown.join(", "), if a.len() > 8 { ", ..." } else { "" }, a.len())
            }
        }
    }
}

/// One tensor's entry in a GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// Its name.
    pub name: String,
    /// Its shape, row-major (the reverse of GGUF's dimension order).
    pub shape: Vec<usize>,
    /// Its ggml type.
    pub ggml_type: GgmlType,
    /// Its offset from the start of the data section.
    pub offset: u64,
    /// Its bytes.
    pub nbytes: u64,
}

impl GgufTensorInfo {
    /// Values held.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bits stored per value, block scales included (`None` for an empty tensor).
    pub fn bits_per_weight(&self) -> Option<f64> {
        let n = self.numel();
        (n > 0).then(|| self.nbytes as f64 * 8.0 / n as f64)
    }
}

/// A parsed GGUF file over its bytes (usually a memory map).
#[derive(Debug)]
pub struct Gguf<'a> {
    /// The GGUF version (2 or 3).
    pub version: u32,
    /// The metadata, in file order.
    pub metadata: Vec<(String, GgufValue)>,
    /// The tensors, in file order.
    pub tensors: Vec<GgufTensorInfo>,
    /// The data alignment.
    pub alignment: u64,
    data: &'a [u8],
}

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn bad(offset: usize, reason: impl Into<String>) -> Error {
    Error::BadGguf { offset: offset as u64, reason: reason.into() }
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(bad(self.at, format!("the file ends inside {what} ({n} bytes needed, {} left)", self.left())));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A count of items of at least `min_size` bytes each, checked against the bytes left.
    fn count(&mut self, what: &str, min_size: usize) -> Result<usize> {
        let at = self.at;
        let n = self.u64(what)?;
        let fits = usize::try_from(n).ok().filter(|&n| n.checked_mul(min_size).is_some_and(|b| b <= self.left()));
        fits.ok_or_else(|| bad(at, format!("{what} is {n}, more than the {} bytes left can hold", self.left())))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.at;
        let n = self.count(what, 1)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad(at, format!("{what} is not UTF-8")))
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<GgufValue> {
        let at = self.at;
        Ok(match ty {
            0 => GgufValue::U8(self.array::<1>("a u8 value")?[0]),
            1 => GgufValue::I8(self.array::<1>("an i8 value")?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.array("a u16 value")?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array("an i16 value")?)),
            4 => GgufValue::U32(self.u32("a u32 value")?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array("an i32 value")?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array("an f32 value")?)),
            7 => match self.array::<1>("a bool value")?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(bad(at, format!("a bool value is {b}, neither 0 nor 1"))),
            },
            8 => GgufValue::Str(self.string("a string value's length")?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(bad(at, format!("arrays nest deeper than {MAX_ARRAY_DEPTH}")));
                }
                let elem = self.u32("an array's element type")?;
                let min = match elem {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    t => return Err(bad(self.at - 4, format!("unknown metadata value type {t}"))),
                };
                let n = self.count("an array's length", min)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value(elem, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64("a u64 value")?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array("an i64 value")?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array("an f64 value")?)),
            t => return Err(bad(at, format!("unknown metadata value type {t}"))),
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses a GGUF file's bytes. Errors ([`Error::BadGguf`]): bad magic, a
    /// version other than 2 or 3, counts or lengths beyond the file, unknown
    /// types, more than 4 dimensions, rows that are not whole blocks,
    /// duplicate names, misaligned or overlapping tensors, data past the end.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut c = Cursor { bytes, at: 0 };
        let magic = c.array::<4>("the magic number")?;
        if magic != MAGIC {
            return Err(bad(0, format!("it starts with {magic:02x?}, not the magic `GGUF`")));
        }
        let version = c.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(bad(4, format!("version {version}: quantlab reads GGUF versions 2 and 3")));
        }
        // A tensor info is at least 8 (name length) + 4 + 4 + 8 bytes; a key-value pair 8 + 4 + 1.
        let n_tensors = c.count("the tensor count", 24)?;
        let n_kv = c.count("the metadata count", 13)?;
        let mut metadata = Vec::with_capacity(n_kv);
        for _ in 0..n_kv {
            let key = c.string("a metadata key's length")?;
            let ty = c.u32("a metadata value type")?;
            let value = c.value(ty, 0)?;
            metadata.push((key, value));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a.is_power_of_two() && a <= 1 << 30 => a,
                _ => return Err(bad(c.at, format!("general.alignment is {v}, not a power of two"))),
            },
        };
        let mut tensors: Vec<GgufTensorInfo> = Vec::with_capacity(n_tensors);
        let mut names = std::collections::HashSet::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let at = c.at;
            let name = c.string("a tensor name's length")?;
            let n_dims = c.u32("a tensor's dimension count")? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad(at, format!("tensor `{name}` has {n_dims} dimensions (GGUF allows 1 to {MAX_DIMS})")));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64("a tensor dimension")?);
            }
            let ggml_type = GgmlType(c.u32("a tensor type")?);
            let offset = c.u64("a tensor offset")?;
            let numel = dims.iter().try_fold(1u64, |p, &d| p.checked_mul(d));
            let shape: Option<Vec<usize>> = dims.iter().rev().map(|&d| usize::try_from(d).ok()).collect();
            let (Some(numel), Some(shape)) = (numel, shape) else {
                return Err(bad(at, format!("tensor `{name}`'s dimensions {dims:?} overflow")));
            };
            let nbytes = ggml_type.nbytes(numel, dims[0]).map_err(|r| bad(at, format!("tensor `{name}`: {r}")))?;
            if offset % alignment != 0 {
                return Err(bad(
                    at,
                    format!("tensor `{name}`'s offset {offset} is not a multiple of the alignment {alignment}"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(bad(at, format!("two tensors are named `{name}`")));
            }
            tensors.push(GgufTensorInfo { name, shape, ggml_type, offset, nbytes });
        }
        let data_start = (c.at as u64).div_ceil(alignment) * alignment;
        let data_len = bytes.len() as u64;
        let data = if data_start <= data_len { &bytes[data_start as usize..] } else { &bytes[bytes.len()..] };
        let mut extents: Vec<(u64, u64, &str)> = Vec::with_capacity(tensors.len());
        for t in &tensors {
            let end = t.offset.checked_add(t.nbytes).filter(|&e| e <= data.len() as u64);
            let Some(end) = end else {
                return Err(bad(
                    (data_start + t.offset) as usize,
                    format!(
                        "tensor `{}` ({} bytes at data offset {}) runs past the end of the file ({} bytes of data)",
                        t.name,
                        t.nbytes,
                        t.offset,
                        data.len()
                    ),
                ));
            };
            extents.push((t.offset, end, &t.name));
        }
        extents.sort_unstable();
        if let Some(w) = extents.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(bad(
                data_start as usize + w[1].0 as usize,
                format!("tensors `{}` and `{}` overlap", w[0].2, w[1].2),
            ));
        }
        Ok(Gguf { version, metadata, tensors, alignment, data })
    }

    /// A metadata value by key.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A tensor's raw bytes (checked in range when parsing).
    pub fn tensor_bytes(&self, t: &GgufTensorInfo) -> &'a [u8] {
        &self.data[t.offset as usize..(t.offset + t.nbytes) as usize]
    }

    /// A tensor as a quantlab [`Tensor`]: float and block types dequantized to
    /// F32 (one tensor in memory at a time), integer types viewed in place.
    /// A type quantlab cannot read is an error that names it.
    pub fn tensor(&self, t: &GgufTensorInfo) -> Result<Tensor<'a>> {
        let (dtype, data) = match t.ggml_type.int_dtype() {
            Some(d) => (d, Cow::Borrowed(self.tensor_bytes(t))),
            None => {
                let x = self.tensor_f32(t)?;
                (Dtype::F32, Cow::Owned(x.iter().flat_map(|v| v.to_le_bytes()).collect()))
            }
        };
        Ok(Tensor { name: t.name.clone(), dtype, shape: t.shape.clone(), data, stored_as: None })
    }

    /// Bytes of tensor data, and values, over every tensor.
    pub fn totals(&self) -> (u64, u64) {
        self.tensors.iter().fold((0, 0), |(b, n), t| (b + t.nbytes, n + t.numel() as u64))
    }

    /// A tensor's values as f32: F32, F16, BF16, F64 and every block type
    /// quantlab has (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, MXFP4), as
    /// gguf-py 0.19 dequantizes them. Other types are an error that names them.
    pub fn tensor_f32(&self, t: &GgufTensorInfo) -> Result<Vec<f32>> {
        let b = self.tensor_bytes(t);
        let n = t.numel();
        Ok(match t.ggml_type.0 {
            0 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            1 => b.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            30 => b.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            28 => b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32).collect(),
            id => match GgmlBlock::from_ggml_type(id) {
                Some(block) => block.dequantize(b, n)?,
                None => {
                    return Err(Error::BadParams {
                        reason: format!(
                            "tensor `{}` is {}, which quantlab cannot dequantize yet (it reads F32, F16, BF16, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, MXFP4)",
                            t.name,
                            t.ggml_type.name()
                        ),
                    });
                }
            },
        })
    }
}

impl<'a> Gguf<'a> {
    /// Every tensor as a safetensors tensor to write: float and block types
    /// as F32 values (dequantized when the writer asks, one tensor at a
    /// time), integer types copied as they are. A type quantlab cannot
    /// dequantize is an error naming the tensor, before anything is made.
    pub fn to_safetensors(&self) -> Result<Vec<OutTensor<'_>>> {
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            if let Some(dtype) = t.ggml_type.int_dtype() {
                let bytes = self.tensor_bytes(t);
                let (name, shape, len) = (t.name.clone(), t.shape.clone(), bytes.len());
                out.push(OutTensor { name, dtype, shape, len, bytes: Bytes::Borrowed(bytes) });
                continue;
            }
            if !t.ggml_type.is_readable_float() {
                return Err(Error::BadFile {
                    path: t.name.clone(),
                    reason: format!("{} is a GGUF type quantlab cannot dequantize yet", t.ggml_type.name()),
                });
            }
            let make =
                move || -> Result<Vec<u8>> { Ok(self.tensor_f32(t)?.iter().flat_map(|v| v.to_le_bytes()).collect()) };
            out.push(OutTensor {
                name: t.name.clone(),
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                len: t.numel() * 4,
                bytes: Bytes::Lazy(Box::new(make)),
            });
        }
        Ok(out)
    }

    /// The string metadata as safetensors metadata, each key prefixed `gguf.`
    /// (safetensors metadata holds strings only; the other values are left out).
    pub fn safetensors_metadata(&self) -> HashMap<String, String> {
        self.metadata.iter().filter_map(|(k, v)| Some((format!("gguf.{k}"), v.as_str()?.to_string()))).collect()
    }
}

/// The ggml block type a block format is stored as in GGUF: a ggml type is
/// its own, and MXFP4 with the FLOOR scale rule is ggml's MXFP4 (quantized as
/// gguf-py 0.19 and ggml do: ties round toward zero, where torchao's `to_mx`
/// rounds them to even). Any other format is [`Error::NoGgufType`]: neither
/// gguf-py nor llama.cpp reads it.
pub fn ggml_block_of(format: BlockFormat) -> Result<GgmlBlock> {
    match format {
        BlockFormat::Ggml(b) => Ok(b),
        BlockFormat::Mx { element: MxElement::E2m1, rule: ScaleRule::Floor } => Ok(GgmlBlock::Mxfp4),
        other => Err(Error::NoGgufType { format: other.to_string() }),
    }
}

impl<'a> GgufOutTensor<'a> {
    /// A safetensors tensor as GGUF stores it: a float tensor quantized to
    /// `block` when one is given (its rows must be whole blocks) and as F32
    /// otherwise, an integer tensor (I8 to I64) as it is; `None` for a type
    /// GGUF has none for (bool, unsigned, complex). A scalar becomes shape
    /// `[1]` (GGUF has no zero-dimensional tensors). The values are read and
    /// quantized when the writer reaches the tensor.
    pub fn from_tensor(t: &'a Tensor<'_>, block: Option<GgmlBlock>) -> Option<Self> {
        let scalar_as_1 = || if t.shape.is_empty() { vec![1] } else { t.shape.clone() };
        if t.floats().is_some() {
            let cols = t.shape.last().copied().unwrap_or(1);
            let (ggml_type, shape) = match block {
                Some(b) => (GgmlType::of_block(b), t.shape.clone()),
                None => (GgmlType::F32, scalar_as_1()),
            };
            let make = move || -> Result<Cow<'a, [u8]>> {
                let x = t.to_f32().unwrap_or_default();
                match block {
                    Some(b) => Ok(Cow::Owned(BlockFormat::Ggml(b).quantize(&x, cols)?.data)),
                    None => Ok(Cow::Owned(x.iter().flat_map(|v| v.to_le_bytes()).collect())),
                }
            };
            return Some(GgufOutTensor { name: t.name.clone(), shape, ggml_type, bytes: Box::new(make) });
        }
        let ggml_type = GgmlType::of_int_dtype(t.dtype)?;
        let bytes = Box::new(move || Ok(Cow::Borrowed(&t.data[..])));
        Some(GgufOutTensor { name: t.name.clone(), shape: scalar_as_1(), ggml_type, bytes })
    }
}

/// A tensor to write: its name, row-major shape, ggml type and bytes (as GGUF stores them).
pub struct GgufOutTensor<'a> {
    /// Its name.
    pub name: String,
    /// Its shape, row-major.
    pub shape: Vec<usize>,
    /// Its ggml type.
    pub ggml_type: GgmlType,
    /// Makes its bytes when the writer reaches it (so a caller can quantize one tensor at a time).
    pub bytes: Box<dyn FnOnce() -> Result<Cow<'a, [u8]>> + 'a>,
}

fn put_string(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_value(w: &mut impl Write, v: &GgufValue) -> std::io::Result<()> {
    match v {
        GgufValue::U8(x) => w.write_all(&[*x]),
        GgufValue::I8(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::U16(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::I16(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::U32(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::I32(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::F32(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::Bool(x) => w.write_all(&[u8::from(*x)]),
        GgufValue::Str(s) => put_string(w, s),
        GgufValue::Array(a) => {
            // Arrays are checked to be of one type before writing (`check_arrays`).
            w.write_all(&a.first().map_or(0, GgufValue::type_id).to_le_bytes())?;
            w.write_all(&(a.len() as u64).to_le_bytes())?;
            a.iter().try_for_each(|v| put_value(w, v))
        }
        GgufValue::U64(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::I64(x) => w.write_all(&x.to_le_bytes()),
        GgufValue::F64(x) => w.write_all(&x.to_le_bytes()),
    }
}

/// GGUF arrays hold values of one type (nested arrays included).
fn check_array(key: &str, v: &GgufValue) -> Result<()> {
    if let GgufValue::Array(a) = v {
        if let Some(first) = a.first()
            && a.iter().any(|x| x.type_id() != first.type_id())
        {
            return Err(Error::BadParams {
                reason: format!("metadata `{key}`: a GGUF array holds values of one type"),
            });
        }
        a.iter().try_for_each(|x| check_array(key, x))?;
    }
    Ok(())
}

/// Writes a GGUF v3 stream: header, `metadata` (with `general.alignment` =
/// 32 added unless present), tensor infos, aligned data. Each tensor's bytes
/// are made, checked against its shape and type, and written in turn.
pub fn write_gguf_to(
    w: &mut impl Write,
    metadata: &[(String, GgufValue)],
    tensors: Vec<GgufOutTensor<'_>>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::BadParams { reason: format!("writing GGUF: {e}") };
    let mut kv: Vec<(String, GgufValue)> = metadata.to_vec();
    let alignment = match kv.iter().find(|(k, _)| k == "general.alignment") {
        Some((_, v)) => v
            .as_u64()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| Error::BadParams { reason: format!("general.alignment {v} is not a power of two") })?,
        None => {
            kv.push(("general.alignment".into(), GgufValue::U32(DEFAULT_ALIGNMENT as u32)));
            DEFAULT_ALIGNMENT
        }
    };
    for (k, v) in &kv {
        check_array(k, v)?;
    }
    let mut header = Vec::new();
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    header.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (k, v) in &kv {
        put_string(&mut header, k).map_err(io)?;
        header.extend_from_slice(&v.type_id().to_le_bytes());
        put_value(&mut header, v).map_err(io)?;
    }
    let mut offset = 0u64;
    let mut sizes = Vec::with_capacity(tensors.len());
    let mut seen = std::collections::HashSet::new();
    for t in &tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(Error::BadParams { reason: format!("two tensors are named `{}`", t.name) });
        }
        if t.shape.is_empty() || t.shape.len() > MAX_DIMS {
            return Err(Error::BadParams {
                reason: format!("tensor `{}` has {} dimensions; GGUF takes 1 to {MAX_DIMS}", t.name, t.shape.len()),
            });
        }
        let numel = t.shape.iter().product::<usize>() as u64;
        let inner = *t.shape.last().unwrap_or(&1) as u64;
        let nbytes = t
            .ggml_type
            .nbytes(numel, inner)
            .map_err(|r| Error::BadParams { reason: format!("tensor `{}`: {r}", t.name) })?;
        put_string(&mut header, &t.name).map_err(io)?;
        header.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for &d in t.shape.iter().rev() {
            header.extend_from_slice(&(d as u64).to_le_bytes());
        }
        header.extend_from_slice(&t.ggml_type.0.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        sizes.push(nbytes);
        offset += nbytes.div_ceil(alignment) * alignment;
    }
    let pad = |len: u64| vec![0u8; (len.div_ceil(alignment) * alignment - len) as usize];
    header.extend(pad(header.len() as u64));
    w.write_all(&header).map_err(io)?;
    for (t, nbytes) in tensors.into_iter().zip(sizes) {
        let name = t.name;
        let bytes = (t.bytes)()?;
        if bytes.len() as u64 != nbytes {
            return Err(Error::WrongByteLength {
                what: format!("tensor `{name}`"),
                expected: nbytes as usize,
                got: bytes.len(),
            });
        }
        w.write_all(&bytes).map_err(io)?;
        w.write_all(&pad(nbytes)).map_err(io)?;
    }
    Ok(())
}

/// [`write_gguf_to`] a file, atomically: staged beside `path` and renamed into place only on success.
pub fn write_gguf(path: &Path, metadata: &[(String, GgufValue)], tensors: Vec<GgufOutTensor<'_>>) -> Result<()> {
    let shown = path.display().to_string();
    let file_error =
        |action: &'static str, e: std::io::Error| Error::File { path: shown.clone(), action, reason: e.to_string() };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut staged = tempfile::Builder::new()
        .prefix(".quantlab-")
        .suffix(".gguf")
        .tempfile_in(parent)
        .map_err(|e| file_error("create a temporary file beside it", e))?;
    {
        let mut w = std::io::BufWriter::new(staged.as_file_mut());
        write_gguf_to(&mut w, metadata, tensors)?;
        w.flush().map_err(|e| file_error("write", e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(staged.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| file_error("set permissions", e))?;
    }
    staged.persist(path).map_err(|e| file_error("write", e.error))?;
    Ok(())
}

/// A GGUF file opened through a memory map (tensor bytes are paged in only when read).
pub struct GgufFile {
    path: std::path::PathBuf,
    map: memmap2::Mmap,
}

impl GgufFile {
    /// Opens and maps `path`.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::File {
            path: shown.clone(),
            action: "open",
            reason: e.to_string(),
        })?;
        // SAFETY: the map is read-only and lives as long as `GgufFile`; as with
        // every memory-mapped reader, another process truncating the file while
        // it is mapped is outside what the program can defend against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::File {
            path: shown,
            action: "map",
            reason: e.to_string(),
        })?;
        Ok(GgufFile { path: path.to_path_buf(), map })
    }

    /// The parsed header over the mapped bytes.
    pub fn parse(&self) -> Result<Gguf<'_>> {
        Gguf::parse(&self.map)
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// True for an empty file (which is not a valid GGUF file).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Whether `path` names a GGUF file (by its extension).
pub fn is_gguf_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}
