//! The model folder's configuration: `config.json` (the BERT encoder),
//! `sentence_bert_config.json` (the longest input), `modules.json` and
//! `1_Pooling/config.json` (what sentence-transformers does after the encoder).

use std::path::Path;

use serde::Deserialize;

use super::error::{ModelError, Result};

/// The encoder's hyper-parameters, as Hugging Face's `BertConfig` names them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Width of every token's vector (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Encoder layers (6).
    pub num_hidden_layers: usize,
    /// Attention heads per layer (12).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer (1536).
    pub intermediate_size: usize,
    /// The feed-forward activation; only `gelu` (the erf form) is supported.
    pub hidden_act: String,
    /// LayerNorm's epsilon (1e-12).
    pub layer_norm_eps: f64,
    /// Positions the position table has (512).
    pub max_position_embeddings: usize,
    /// Token types the type table has (2).
    pub type_vocab_size: usize,
    /// Tokens the vocabulary has (30522).
    pub vocab_size: usize,
    /// Only `absolute` is supported.
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_string()
}

/// What sentence-transformers does around the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceConfig {
    /// Inputs are truncated to this many tokens (256), `[CLS]` and `[SEP]` included.
    pub max_seq_length: usize,
    /// Whether the pooled vector is L2-normalized (a `Normalize` module).
    pub normalize: bool,
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::bad_file(path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::bad_file(path, e))
}

impl BertConfig {
    /// Reads `config.json` and checks that this encoder can run it.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let c: BertConfig = read_json(&path)?;
        let unsupported = |what: String| Err(ModelError::bad_file(&path, what));
        if c.hidden_act != "gelu" {
            return unsupported(format!("hidden_act `{}`: only `gelu` is supported", c.hidden_act));
        }
        if c.position_embedding_type != "absolute" {
            return unsupported(format!("position_embedding_type `{}`: only `absolute`", c.position_embedding_type));
        }
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return unsupported(format!("{} heads do not split a width of {}", c.num_attention_heads, c.hidden_size));
        }
        Ok(c)
    }
}

#[derive(Deserialize)]
struct SentenceBert {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Pooling {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

impl SentenceConfig {
    /// Reads sentence-transformers' files; only mean pooling is supported.
    pub fn read(dir: &Path) -> Result<Self> {
        let max_seq_length = read_json::<SentenceBert>(&dir.join("sentence_bert_config.json"))?.max_seq_length;
        let modules: Vec<Module> = read_json(&dir.join("modules.json"))?;
        let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
        let pooling_path = dir.join("1_Pooling").join("config.json");
        let p: Pooling = read_json(&pooling_path)?;
        if !p.pooling_mode_mean_tokens || p.pooling_mode_cls_token || p.pooling_mode_max_tokens {
            return Err(ModelError::bad_file(
                &pooling_path,
                "only mean pooling (pooling_mode_mean_tokens) is supported",
            ));
        }
        Ok(SentenceConfig { max_seq_length, normalize })
    }
}
