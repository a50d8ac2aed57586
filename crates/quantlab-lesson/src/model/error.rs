//! What can go wrong loading or running the model.

use std::path::Path;

/// An error of the model module: a missing or unreadable model folder, a
/// file that is not what it should be, or an error of the library.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The model's folder (or a file in it) is not there.
    #[error("{what} not found at {path}: {hint}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Where.
        path: String,
        /// How to get it.
        hint: String,
    },
    /// A file that could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    BadFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint tensor that is missing or has the wrong type or shape.
    #[error("tensor `{name}` of the checkpoint: {reason}")]
    BadTensor {
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer could not encode the text.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizers crate's message.
        reason: String,
    },
    /// A weight format name that is not known.
    #[error("unknown weight format `{name}`: use one of {known}")]
    UnknownFormat {
        /// The name given.
        name: String,
        /// The names accepted.
        known: String,
    },
    /// An error of the library (a shape, a format that does not fit a layer, ...).
    #[error(transparent)]
    Quantlab(#[from] quantlab::Error),
}

impl ModelError {
    pub(crate) fn bad_file(path: &Path, reason: impl std::fmt::Display) -> Self {
        ModelError::BadFile { path: path.display().to_string(), reason: reason.to_string() }
    }

    pub(crate) fn bad_tensor(name: &str, reason: impl std::fmt::Display) -> Self {
        ModelError::BadTensor { name: name.to_string(), reason: reason.to_string() }
    }
}

/// The model module's result type.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
