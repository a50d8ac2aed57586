//! Checkpoint files as a library: `.safetensors` and `.npy` read through a
//! memory map, `.safetensors` written one tensor at a time, atomically, and
//! the layout quantlab stores quantized tensors in.
//!
//! Inputs are memory-mapped, so a tensor's bytes are only paged in when a
//! caller touches them; float data is viewed in place when it is aligned
//! (the usual case) and copied only when it is not. One file per file format:
//! `safetensors` reads and writes safetensors, [`npy`]
//! reads `.npy`, [`layout`] is quantlab's own layout of codes, scales and zero
//! points inside a safetensors file, [`blocks`] the layouts of the block
//! formats (gpt-oss' MXFP4, NVFP4, the MX and ggml types), [`bnb`]
//! bitsandbytes' NF4 layout (as transformers saves 4-bit weights), and
//! [`gguf`] reads and writes GGUF.
//!
//! ```no_run
//! use quantlab::io::Input;
//! let input = Input::open("model.safetensors".as_ref())?;
//! for t in input.tensors()? {
//!     println!("{} {:?} {:?}", t.name, t.dtype, t.shape);
//! }
//! # Ok::<(), quantlab::Error>(())
//! ```

pub mod blocks;
pub mod bnb;
pub mod gguf;
pub mod layout;
pub mod narrow;
pub mod npy;
pub mod safetensors;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};
use memmap2::Mmap;

use crate::dtype::DType;
use crate::element::Element;
use crate::error::{Error, Result};

/// The element types a safetensors file names, as the `safetensors` crate
/// spells them (re-exported so callers need not depend on it).
pub use ::safetensors::tensor::Dtype;

pub use self::safetensors::{Bytes, OutTensor, write_safetensors};

/// An input file, memory-mapped.
pub struct Input {
    path: PathBuf,
    map: Mmap,
    npy: bool,
}

/// One tensor of an input file: raw little-endian bytes in row-major order.
#[derive(Debug, Clone)]
pub struct Tensor<'a> {
    /// Its name (a `.npy` file's one tensor is named after the file's stem).
    pub name: String,
    /// Its safetensors data type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its bytes, borrowed from the memory map when possible.
    pub data: Cow<'a, [u8]>,
    /// For `U8` codes of a narrow float, the type the file's `quantlab.dtypes`
    /// metadata names (see [`narrow`]).
    pub stored_as: Option<DType>,
}

impl Input {
    /// Opens and maps `path`; a `.npy` file is recognised by its magic bytes,
    /// anything else is read as safetensors.
    pub fn open(path: &Path) -> Result<Input> {
        let file_error = |action: &'static str, e: std::io::Error| Error::File {
            path: path.display().to_string(),
            action,
            reason: e.to_string(),
        };
        let file = File::open(path).map_err(|e| file_error("open", e))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::BadFile {
                path: path.display().to_string(),
                reason: "is a directory, not a .safetensors or .npy file".into(),
            });
        }
        // SAFETY: the map is read-only and lives as long as `Input`. Another
        // process truncating or rewriting the file while we read it could
        // change what we see (or fault); every checkpoint tool that maps
        // files accepts this, and we never write through the map.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| file_error("map", e))?;
        let npy = map.starts_with(npy::MAGIC);
        Ok(Input { path: path.to_path_buf(), map, npy })
    }

    /// The path as the caller gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The input's size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// True for an empty file (which is not a valid checkpoint).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every tensor, in the order they are stored.
    pub fn tensors(&self) -> Result<Vec<Tensor<'_>>> {
        if self.npy {
            return Ok(vec![npy::tensor(&self.path, self.stem(), &self.map)?]);
        }
        self::safetensors::tensors(&self.path, &self.map)
    }

    /// The file's `__metadata__` (none for `.npy`).
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        if self.npy {
            return Ok(HashMap::new());
        }
        self::safetensors::metadata(&self.path, &self.map)
    }

    fn stem(&self) -> String {
        self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tensor".into())
    }
}

impl Tensor<'_> {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The float data, typed, if quantlab reads this tensor's type.
    pub fn floats(&self) -> Option<Floats<'_>> {
        // Narrow floats (safetensors' F4/F6/E8M0/FNUZ types, or named U8 codes)
        // are decoded to f32, which holds every one of their values exactly.
        if let Some(d) = self.stored_as.or_else(|| narrow::narrow_of(self.dtype)) {
            let values = narrow::decode(&self.data, d, self.numel(), self.stored_as.is_some()).ok()?;
            return Some(Floats::F32(Cow::Owned(values)));
        }
        Some(match self.dtype {
            Dtype::F64 => Floats::F64(decode(&self.data)),
            Dtype::F32 => Floats::F32(decode(&self.data)),
            Dtype::F16 => Floats::F16(decode(&self.data)),
            Dtype::BF16 => Floats::BF16(decode(&self.data)),
            Dtype::F8_E4M3 => Floats::E4M3(decode(&self.data)),
            Dtype::F8_E5M2 => Floats::E5M2(decode(&self.data)),
            _ => return None,
        })
    }

    /// The float data as f32, if quantlab reads this tensor's type: exact
    /// from f32, f16, bf16 and the float8 and narrower types, rounded once
    /// (to nearest even) from f64.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        fn widen<T: Element>(x: &[T]) -> Vec<f32> {
            x.iter().map(|v| v.to_f64() as f32).collect()
        }
        Some(match self.floats()? {
            Floats::F64(x) => widen(&x),
            Floats::F32(x) => x.into_owned(),
            Floats::F16(x) => widen(&x),
            Floats::BF16(x) => widen(&x),
            Floats::E4M3(x) => widen(&x),
            Floats::E5M2(x) => widen(&x),
        })
    }

    /// True for a floating-point type that quantlab cannot read (complex):
    /// such tensors are copied through with a warning.
    pub fn is_unread_float(&self) -> bool {
        matches!(self.dtype, Dtype::C64)
    }
}

/// A float tensor's elements, in their own type.
#[derive(Debug, Clone)]
pub enum Floats<'a> {
    /// F64.
    F64(Cow<'a, [f64]>),
    /// F32.
    F32(Cow<'a, [f32]>),
    /// F16.
    F16(Cow<'a, [f16]>),
    /// BF16.
    BF16(Cow<'a, [bf16]>),
    /// F8_E4M3 (PyTorch's float8_e4m3fn).
    E4M3(Cow<'a, [F8E4M3]>),
    /// F8_E5M2.
    E5M2(Cow<'a, [F8E5M2]>),
}

/// The safetensors type of a float quantlab type, where safetensors 0.8 has
/// one (F4 and F6 only for tensors of a whole number of bytes: see
/// [`narrow::float_storage`], which also says how the others are stored).
pub fn safetensors_float(d: DType) -> Option<Dtype> {
    narrow::float_storage(d, 8).filter(|s| !s.codes).map(|s| s.dtype)
}

/// Element types whose every bit pattern is a valid value, stored as their
/// little-endian bytes.
///
/// # Safety
/// Implementors must be plain data: no padding, no invalid bit patterns,
/// `size_of` equal to their storage size.
unsafe trait Pod: Element {}
// SAFETY: IEEE floats and the `repr(transparent)` u16/u8 wrappers of half and
// float8 accept every bit pattern and have no padding.
unsafe impl Pod for f64 {}
// SAFETY: as above.
unsafe impl Pod for f32 {}
// SAFETY: as above.
unsafe impl Pod for f16 {}
// SAFETY: as above.
unsafe impl Pod for bf16 {}
// SAFETY: as above.
unsafe impl Pod for F8E4M3 {}
// SAFETY: as above.
unsafe impl Pod for F8E5M2 {}

/// Views little-endian bytes as `T` without copying when they are aligned,
/// and copies them otherwise.
fn decode<T: Pod>(bytes: &[u8]) -> Cow<'_, [T]> {
    let size = size_of::<T>();
    let aligned = bytes.as_ptr().align_offset(align_of::<T>()) == 0;
    if cfg!(target_endian = "little") && aligned && bytes.len().is_multiple_of(size) {
        // SAFETY: `T: Pod` accepts any bit pattern, the pointer is aligned for
        // `T` (checked), the length covers whole elements (checked), the
        // machine is little-endian like the file, and the slice borrows `bytes`.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
    } else {
        Cow::Owned(bytes.chunks_exact(size).map(T::read_le).collect())
    }
}
