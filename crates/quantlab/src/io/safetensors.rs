//! `.safetensors` files: tensors read from a memory map, and written one at a
//! time by the `safetensors` crate's own serializer, atomically.
//!
//! Outputs are written by `safetensors::serialize_to_file` from lazy views
//! that compute one tensor's bytes when the writer asks for them, so only one
//! output tensor is alive at a time. The file is staged in a private
//! directory beside the output and renamed into place only when every tensor
//! succeeded: a failed run leaves nothing behind and never clobbers an
//! existing file.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use super::Tensor;
use crate::error::{Error, Result};

fn invalid(path: &Path, e: safetensors::SafeTensorError) -> Error {
    Error::BadFile {
        path: path.display().to_string(),
        reason: format!("not a valid .safetensors or .npy file (truncated or corrupt?): {e}"),
    }
}

/// Every tensor of the safetensors file in `map`, in the order they are stored.
pub(super) fn tensors<'a>(path: &Path, map: &'a [u8]) -> Result<Vec<Tensor<'a>>> {
    let (_, meta) = SafeTensors::read_metadata(map).map_err(|e| invalid(path, e))?;
    let st = SafeTensors::deserialize(map).map_err(|e| invalid(path, e))?;
    let named = super::narrow::named_dtypes(meta.metadata().as_ref().unwrap_or(&HashMap::new()))?;
    meta.offset_keys()
        .into_iter()
        .map(|name| {
            let view = st.tensor(&name).map_err(|e| invalid(path, e))?;
            let stored_as = named.get(&name).copied().filter(|_| view.dtype() == Dtype::U8);
            let (dtype, shape, data) = (view.dtype(), view.shape().to_vec(), Cow::Borrowed(view.data()));
            Ok(Tensor { dtype, shape, data, name, stored_as })
        })
        .collect()
}

/// The `__metadata__` of the safetensors file in `map`.
pub(super) fn metadata(path: &Path, map: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(map).map_err(|e| invalid(path, e))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// A lazily computed tensor's bytes, or the caller's error.
type Make<'a, E> = Box<dyn Fn() -> std::result::Result<Vec<u8>, E> + 'a>;

/// Bytes of an output tensor: copied from the input, or computed when written.
pub enum Bytes<'a, E = Error> {
    /// Unchanged bytes of an input tensor.
    Borrowed(&'a [u8]),
    /// Small bytes known in advance (scales, zero points).
    Owned(Vec<u8>),
    /// Computed on demand; the error names the tensor and the problem.
    Lazy(Make<'a, E>),
}

/// One tensor of an output file.
pub struct OutTensor<'a, E = Error> {
    /// Its name.
    pub name: String,
    /// Its safetensors type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its size in bytes, known before the bytes are.
    pub len: usize,
    /// Its bytes.
    pub bytes: Bytes<'a, E>,
}

impl<'a, E> OutTensor<'a, E> {
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

    /// A small tensor whose bytes are already known.
    pub fn owned(name: String, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) -> Self {
        OutTensor { name, dtype, shape, len: bytes.len(), bytes: Bytes::Owned(bytes) }
    }

    /// The same tensor with its lazy error turned into the caller's type
    /// (a command line adding the file's name, say).
    pub fn map_err<F>(self, f: impl Fn(E) -> F + 'a) -> OutTensor<'a, F>
    where
        E: 'a,
    {
        let bytes = match self.bytes {
            Bytes::Borrowed(b) => Bytes::Borrowed(b),
            Bytes::Owned(b) => Bytes::Owned(b),
            Bytes::Lazy(make) => Bytes::Lazy(Box::new(move || make().map_err(&f))),
        };
        OutTensor { name: self.name, dtype: self.dtype, shape: self.shape, len: self.len, bytes }
    }
}

/// The view `serialize_to_file` writes: it computes the bytes when asked and,
/// since `View::data` cannot fail, keeps the first error for the caller.
struct LazyView<'a, 'b, E> {
    tensor: OutTensor<'a, E>,
    failed: &'b RefCell<Option<E>>,
    progress: &'b dyn Fn(),
}

impl<E: From<Error>> View for LazyView<'_, '_, E> {
    fn dtype(&self) -> Dtype {
        self.tensor.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        (self.progress)();
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
                *self.failed.borrow_mut() = Some(E::from(Error::BadFile {
                    path: self.tensor.name.clone(),
                    reason: format!("internal error: {} bytes computed, {} announced", bytes.len(), self.tensor.len),
                }));
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

/// Writes `tensors` to `path` as safetensors, atomically: staged in a
/// temporary directory beside `path`, renamed into place on success only.
/// `progress` is called once per tensor as it is written. A lazy tensor's
/// error is returned as it was made; the writer's own errors become `E`.
pub fn write_safetensors<E: From<Error>>(
    path: &Path,
    tensors: Vec<OutTensor<'_, E>>,
    metadata: HashMap<String, String>,
    progress: &dyn Fn(),
) -> std::result::Result<(), E> {
    let shown = path.display().to_string();
    let file_error =
        |action: &'static str, e: std::io::Error| Error::File { path: shown.clone(), action, reason: e.to_string() };
    let mut seen = HashSet::new();
    if let Some(dup) = tensors.iter().find(|t| !seen.insert(t.name.as_str())) {
        return Err(Error::BadFile {
            path: format!("{shown}: {}", dup.name),
            reason: format!(
                "the output would hold two tensors of this name (does the input already have a tensor called `{}`?)",
                dup.name
            ),
        }
        .into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let stage = tempfile::Builder::new().prefix(".quantlab-").tempdir_in(parent).map_err(|e| Error::File {
        path: shown.clone(),
        action: "create a temporary file beside it",
        reason: e.to_string(),
    })?;
    let staged = stage.path().join("output.safetensors");
    let failed = RefCell::new(None);
    let views = tensors.into_iter().map(|tensor| (tensor.name.clone(), LazyView { tensor, failed: &failed, progress }));
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let written = safetensors::serialize_to_file(views, metadata, &staged);
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    written.map_err(|e| Error::File { path: shown.clone(), action: "write", reason: e.to_string() })?;
    // The staging file is created private (0600); a checkpoint is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| file_error("set permissions", e))?;
    }
    std::fs::rename(&staged, path).map_err(|e| file_error("write", e))?;
    Ok(())
}
