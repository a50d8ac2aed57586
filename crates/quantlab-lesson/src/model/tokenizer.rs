//! Text to token ids with Hugging Face's `tokenizers` crate, reading the
//! model's own `tokenizer.json` (BERT's WordPiece, lower-casing, accent
//! stripping), truncated as sentence-transformers truncates.

use std::path::Path;

use tokenizers::{Tokenizer as HfTokenizer, TruncationParams};

use super::error::{ModelError, Result};

/// The model's tokenizer, set up as sentence-transformers calls it: with
/// `[CLS]` and `[SEP]`, truncated to `max_seq_length` tokens, no padding (one
/// sentence at a time).
#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenizer(tokenizer.json)")
    }
}

/// One encoded sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids, `[CLS]` first and `[SEP]` last.
    pub ids: Vec<u32>,
    /// Token type ids (all 0 for one sentence).
    pub type_ids: Vec<u32>,
}

impl Tokenizer {
    /// Reads `dir/tokenizer.json`.
    pub fn read(dir: &Path, max_seq_length: usize) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let mut inner = HfTokenizer::from_file(&path).map_err(|e| ModelError::bad_file(&path, e))?;
        inner
            .with_truncation(Some(TruncationParams { max_length: max_seq_length, ..Default::default() }))
            .map_err(|e| ModelError::bad_file(&path, e))?;
        inner.with_padding(None);
        Ok(Tokenizer { inner })
    }

    /// The ids of one sentence.
    pub fn encode(&self, text: &str) -> Result<Encoding> {
        let e = self.inner.encode(text, true).map_err(|e| ModelError::Tokenizer { reason: e.to_string() })?;
        Ok(Encoding { ids: e.get_ids().to_vec(), type_ids: e.get_type_ids().to_vec() })
    }

    /// The tokens of one sentence as strings (`[CLS]`, `quant`, `##ization`, ...).
    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        let e = self.inner.encode(text, true).map_err(|e| ModelError::Tokenizer { reason: e.to_string() })?;
        Ok(e.get_tokens().to_vec())
    }
}
