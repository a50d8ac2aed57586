//! Reading `.safetensors` and `.npy` files through a memory map, and writing
//! `.safetensors` one tensor at a time, atomically.
//!
//! Inputs are memory-mapped, so a tensor's bytes are only paged in when a
//! command touches them; float data is viewed in place when it is aligned
//! (the usual case) and copied only when it is not. Outputs are written by
//! `safetensors::serialize_to_file` from lazy views that compute one tensor's
//! bytes when the writer asks for them, so only one output tensor is alive
//! at a time. The file is staged in a private directory beside the output and
//! renamed into place only when every tensor succeeded: a failed run leaves
//! nothing behind and never clobbers an existing file.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};
use indicatif::{ProgressBar, ProgressStyle};
use memmap2::Mmap;
use ndarray::{ArrayD, ArrayViewD};
use ndarray_npy::{ReadNpyExt, ViewNpyError, ViewNpyExt};
use quantlab::{DType, Element};
use safetensors::tensor::{Dtype, SafeTensors, View};

/// The first bytes of every `.npy` file.
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Below this many tensors a progress bar is more noise than help.
const PROGRESS_MIN_TENSORS: usize = 8;

/// An input file, memory-mapped.
pub struct Input {
    /// The path as the user gave it, for messages.
    pub path: PathBuf,
    map: Mmap,
    npy: bool,
}

/// One tensor of an input file: raw little-endian bytes in row-major order.
pub struct Tensor<'a> {
    /// Its name (a `.npy` file's one tensor is named after the file's stem).
    pub name: String,
    /// Its safetensors data type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its bytes, borrowed from the memory map when possible.
    pub data: Cow<'a, [u8]>,
    /// For `U8` codes of a narrow float, the type the file's `quantlab.dtypes` names.
    pub stored_as: Option<DType>,
}

impl Input {
    /// Opens and maps `path`; a `.npy` file is recognised by its magic bytes,
    /// anything else is read as safetensors.
    pub fn open(path: &Path) -> Result<Input> {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            bail!("{}: is a directory, not a .safetensors or .npy file", path.display());
        }
        // SAFETY: the map is read-only and lives as long as `Input`. Another
        // process truncating or rewriting the file while we read it could
        // change what we see (or fault); every checkpoint tool that maps
        // files accepts this, and we never write through the map.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("{}: cannot map", path.display()))?;
        let npy = map.starts_with(NPY_MAGIC);
        Ok(Input { path: path.to_path_buf(), map, npy })
    }

    /// The input's size in bytes.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Every tensor, in the order they are stored.
    pub fn tensors(&self) -> Result<Vec<Tensor<'_>>> {
        let file = self.path.display();
        if self.npy {
            return Ok(vec![npy_tensor(self.stem(), &self.map).with_context(|| format!("{file}"))?]);
        }
        let (_, meta) = SafeTensors::read_metadata(&self.map).map_err(|e| safetensors_error(&self.path, e))?;
        let st = SafeTensors::deserialize(&self.map).map_err(|e| safetensors_error(&self.path, e))?;
        let named = crate::storage::named_dtypes(&self.metadata()?).with_context(|| format!("{file}"))?;
        meta.offset_keys()
            .into_iter()
            .map(|name| {
                let view = st.tensor(&name).map_err(|e| safetensors_error(&self.path, e))?;
                let stored_as = named.get(&name).copied().filter(|_| view.dtype() == Dtype::U8);
                let (dtype, shape, data) = (view.dtype(), view.shape().to_vec(), Cow::Borrowed(view.data()));
                Ok(Tensor { dtype, shape, data, name, stored_as })
            })
            .collect()
    }

    /// The file's `__metadata__` (none for `.npy`).
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        if self.npy {
            return Ok(HashMap::new());
        }
        let (_, meta) = SafeTensors::read_metadata(&self.map).map_err(|e| safetensors_error(&self.path, e))?;
        Ok(meta.metadata().clone().unwrap_or_default())
    }

    fn stem(&self) -> String {
        self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tensor".into())
    }
}

fn safetensors_error(path: &Path, e: safetensors::SafeTensorError) -> anyhow::Error {
    anyhow!("{}: not a valid .safetensors or .npy file (truncated or corrupt?): {e}", path.display())
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
        if let Some(d) = self.stored_as.or_else(|| crate::storage::narrow_of(self.dtype)) {
            let values = crate::storage::decode(&self.data, d, self.numel(), self.stored_as.is_some()).ok()?;
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

    /// True for a floating-point type that quantlab cannot read (complex):
    /// such tensors are copied through with a warning.
    pub fn is_unread_float(&self) -> bool {
        matches!(self.dtype, Dtype::C64)
    }
}

/// Prints the warning for a float tensor that is copied through unread.
pub fn warn_unread(file: &Path, t: &Tensor<'_>) {
    eprintln!(
        "quantlab: warning: {}: {}: {:?} is not a type quantlab reads; copied unchanged",
        file.display(),
        t.name,
        t.dtype
    );
}

/// A float tensor's elements, in their own type.
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

/// Runs `$body` with `$x` bound to the typed slice of a [`Floats`], whatever
/// its element type: a generic closure, which Rust does not have.
macro_rules! with_floats {
    ($floats:expr, $x:ident => $body:expr) => {
        match $floats {
            $crate::io::Floats::F64($x) => $body,
            $crate::io::Floats::F32($x) => $body,
            $crate::io::Floats::F16($x) => $body,
            $crate::io::Floats::BF16($x) => $body,
            $crate::io::Floats::E4M3($x) => $body,
            $crate::io::Floats::E5M2($x) => $body,
        }
    };
}
pub(crate) use with_floats;

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

/// Little-endian bytes of the element types a `.npy` file can hold.
trait NpyBytes: Copy {
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! npy_bytes {
    ($($t:ty),*) => {$(
        impl NpyBytes for $t {
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
npy_bytes!(f32, f64, i8, u8, i16, u16, i32, u32, i64, u64);

impl NpyBytes for bool {
    fn extend_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// The one tensor of a `.npy` file, viewed in place when it is row-major,
/// native-endian and aligned, read into memory otherwise.
fn npy_tensor(name: String, buf: &[u8]) -> Result<Tensor<'_>> {
    fn owned<T: NpyBytes>(name: String, dtype: Dtype, a: ArrayViewD<'_, T>) -> Tensor<'static> {
        let mut data = Vec::with_capacity(a.len() * size_of::<T>());
        a.iter().for_each(|v| v.extend_le(&mut data));
        Tensor { name, dtype, shape: a.shape().to_vec(), data: Cow::Owned(data), stored_as: None }
    }
    let mut descriptor: Option<String> = None;
    macro_rules! try_type {
        ($t:ty, $dtype:expr) => {
            match ArrayViewD::<$t>::view_npy(buf) {
                Ok(view) if view.is_standard_layout() => {
                    // `view_npy` checked that the data are the last bytes of the file.
                    let nbytes = view.len() * size_of::<$t>();
                    let data = Cow::Borrowed(&buf[buf.len() - nbytes..]);
                    return Ok(Tensor { name, dtype: $dtype, shape: view.shape().to_vec(), data, stored_as: None });
                }
                Ok(view) => return Ok(owned(name, $dtype, view)),
                Err(ViewNpyError::WrongDescriptor(d)) => {
                    descriptor.get_or_insert_with(|| d.to_string());
                }
                Err(ViewNpyError::NonNativeEndian | ViewNpyError::MisalignedData) => {
                    let a = ArrayD::<$t>::read_npy(buf).context("not a valid .npy file")?;
                    return Ok(owned(name, $dtype, a.view()));
                }
                Err(e) => return Err(e).context("not a valid .npy file (truncated or corrupt?)"),
            }
        };
    }
    try_type!(f32, Dtype::F32);
    try_type!(f64, Dtype::F64);
    try_type!(i8, Dtype::I8);
    try_type!(u8, Dtype::U8);
    try_type!(i16, Dtype::I16);
    try_type!(u16, Dtype::U16);
    try_type!(i32, Dtype::I32);
    try_type!(u32, Dtype::U32);
    try_type!(i64, Dtype::I64);
    try_type!(u64, Dtype::U64);
    try_type!(bool, Dtype::BOOL);
    let descriptor = descriptor.unwrap_or_default();
    bail!(
        "a .npy file of element type {descriptor} is not supported: save it as float32 or float64 \
         (numpy's float16 and ml_dtypes' bfloat16 are not readable by ndarray-npy; use .safetensors for those)"
    )
}

/// Bytes of an output tensor: copied from the input, or computed when written.
pub enum Bytes<'a> {
    /// Unchanged bytes of an input tensor.
    Borrowed(&'a [u8]),
    /// Small bytes known in advance (scales, zero points).
    Owned(Vec<u8>),
    /// Computed on demand; the error names the tensor and the problem.
    Lazy(Box<dyn Fn() -> Result<Vec<u8>> + 'a>),
}

/// One tensor of an output file.
pub struct OutTensor<'a> {
    /// Its name.
    pub name: String,
    /// Its safetensors type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its size in bytes, known before the bytes are.
    pub len: usize,
    /// Its bytes.
    pub bytes: Bytes<'a>,
}

impl<'a> OutTensor<'a> {
    /// An input tensor copied through unchanged.
    pub fn copy(t: &'a Tensor<'_>) -> Self {
        OutTensor {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            len: t.data.len(),
            bytes: Bytes::Borrowed(t.data.as_ref()),
        }
    }
}

/// The view `serialize_to_file` writes: it computes the bytes when asked and,
/// since `View::data` cannot fail, keeps the first error for the caller.
struct LazyView<'a, 'b> {
    tensor: OutTensor<'a>,
    failed: &'b RefCell<Option<anyhow::Error>>,
    progress: &'b ProgressBar,
}

impl View for LazyView<'_, '_> {
    fn dtype(&self) -> Dtype {
        self.tensor.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        self.progress.inc(1);
        // After a failure the file is thrown away: write cheap zeros.
        let zeros = || Cow::Owned(vec![0u8; self.tensor.len]);
        if self.failed.borrow().is_some() {
            return zeros();
        }
        let result = match &self.tensor.bytes {
            Bytes::Borrowed(b) => return Cow::Borrowed(b),
            Bytes::Owned(b) => return Cow::Borrowed(b),
            Bytes::Lazy(make) => make(),
        };
        match result {
            Ok(bytes) if bytes.len() == self.tensor.len => Cow::Owned(bytes),
            Ok(bytes) => {
                *self.failed.borrow_mut() = Some(anyhow!(
                    "{}: internal error: {} bytes computed, {} announced",
                    self.tensor.name,
                    bytes.len(),
                    self.tensor.len
                ));
                zeros()
            }
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                zeros()
            }
        }
    }

    fn data_len(&self) -> usize {
        self.tensor.len
    }
}

/// A progress bar on stderr for files with many tensors; hidden when stderr
/// is not a terminal, so logs and pipes stay clean.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if len < PROGRESS_MIN_TENSORS || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} tensors [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Writes `tensors` to `path` as safetensors, atomically: staged in a
/// temporary directory beside `path`, renamed into place on success only.
pub fn write_safetensors(
    path: &Path,
    tensors: Vec<OutTensor<'_>>,
    metadata: HashMap<String, String>,
    progress: &ProgressBar,
) -> Result<()> {
    let mut seen = HashSet::new();
    if let Some(dup) = tensors.iter().find(|t| !seen.insert(t.name.as_str())) {
        bail!(
            "{}: {}: the output would hold two tensors of this name (does the input already have \
             a tensor called `{}`?)",
            path.display(),
            dup.name,
            dup.name
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stage = tempfile::Builder::new()
        .prefix(".quantlab-")
        .tempdir_in(parent)
        .with_context(|| format!("{}: cannot create a temporary file in {}", path.display(), parent.display()))?;
    let staged = stage.path().join("output.safetensors");
    let failed = RefCell::new(None);
    let views = tensors.into_iter().map(|tensor| (tensor.name.clone(), LazyView { tensor, failed: &failed, progress }));
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let written = safetensors::serialize_to_file(views, metadata, &staged);
    progress.finish_and_clear();
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    written.with_context(|| format!("{}: cannot write", path.display()))?;
    // The staging file is created private (0600); a checkpoint is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("{}: cannot set permissions", path.display()))?;
    }
    std::fs::rename(&staged, path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}
