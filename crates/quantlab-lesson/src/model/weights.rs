//! Reading the encoder's tensors from `model.safetensors` (with the
//! `safetensors` crate), by Hugging Face's names, checking type and shape.

use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use super::error::{ModelError, Result};

/// The bytes of a checkpoint file.
pub(crate) struct CheckpointFile {
    bytes: Vec<u8>,
    path: std::path::PathBuf,
}

/// A parsed view of a [`CheckpointFile`].
pub(crate) struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
}

impl CheckpointFile {
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::bad_file(path, e))?;
        Ok(CheckpointFile { bytes, path: path.to_path_buf() })
    }

    pub(crate) fn parse(&self) -> Result<Checkpoint<'_>> {
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(|e| ModelError::bad_file(&self.path, e))?;
        Ok(Checkpoint { tensors })
    }
}

impl Checkpoint<'_> {
    /// The f32 values of `name` (or `bert.{name}`, as BertForX checkpoints
    /// store it), which must have `shape`.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self
            .tensors
            .tensor(name)
            .or_else(|_| self.tensors.tensor(&format!("bert.{name}")))
            .map_err(|_| ModelError::bad_tensor(name, "not in the checkpoint"))?;
        if t.dtype() != Dtype::F32 {
            return Err(ModelError::bad_tensor(name, format!("is {:?}; this loader reads F32 checkpoints", t.dtype())));
        }
        if t.shape() != shape {
            return Err(ModelError::bad_tensor(name, format!("has shape {:?}, the config says {shape:?}", t.shape())));
        }
        Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    pub(crate) fn array1(&self, name: &str, len: usize) -> Result<Array1<f32>> {
        Ok(Array1::from(self.values(name, &[len])?))
    }

    pub(crate) fn array2(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>> {
        let v = self.values(name, &[rows, cols])?;
        Ok(Array2::from_shape_vec((rows, cols), v).expect("shape checked"))
    }
}
