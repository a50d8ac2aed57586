//! The BERT encoder, as Hugging Face's `BertModel` computes it (eager
//! attention, no dropout): embeddings, then layers of self-attention and a
//! GELU feed-forward, each followed by a residual sum and LayerNorm.
//!
//! Every matrix product with a weight goes through [`quantlab::linear::Linear`],
//! so the weights can be held in any of its formats (or replaced by their
//! quantize + dequantize round trip) without a second copy of this code: see
//! [`Bert::map_linears`].

use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use quantlab::linear::Linear;

use super::config::BertConfig;
use super::error::{ModelError, Result};
use super::weights::Checkpoint;

/// `y = (x - mean) / sqrt(var + eps) · weight + bias` over each row (biased variance).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    weight: Array1<f32>,
    bias: Array1<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(ck: &Checkpoint<'_>, prefix: &str, width: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            weight: ck.array1(&format!("{prefix}.weight"), width)?,
            bias: ck.array1(&format!("{prefix}.bias"), width)?,
            eps,
        })
    }

    fn forward(&self, mut x: Array2<f32>) -> Array2<f32> {
        let n = x.ncols() as f32;
        for mut row in x.axis_iter_mut(Axis(0)) {
            let mean = row.sum() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + self.eps).sqrt();
            row.iter_mut()
                .zip(self.weight.iter().zip(&self.bias))
                .for_each(|(v, (w, b))| *v = (*v - mean) * inv * w + b);
        }
        x
    }
}

/// The token, position and token-type tables, summed and normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    word: Array2<f32>,
    position: Array2<f32>,
    token_type: Array2<f32>,
    norm: LayerNorm,
}

/// One encoder layer. Its six linear layers, in the order
/// [`Bert::linear_names`] lists them: query, key, value, attention output,
/// intermediate, output.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    linears: [Linear; 6],
    attention_norm: LayerNorm,
    output_norm: LayerNorm,
}

/// The names of a layer's linear layers, as the checkpoint calls them (after `encoder.layer.N.`).
pub const LINEAR_NAMES: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

/// The encoder: embeddings and layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Bert {
    config: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

/// GELU's erf form, PyTorch's `gelu` (approximate='none'): `x/2 · (1 + erf(x/√2))`,
/// with `libm`'s erf (std has no stable one) in f64, rounded once to f32.
fn gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

impl Bert {
    pub(crate) fn load(config: BertConfig, ck: &Checkpoint<'_>) -> Result<Self> {
        let (h, eps) = (config.hidden_size, config.layer_norm_eps as f32);
        let embeddings = Embeddings {
            word: ck.array2("embeddings.word_embeddings.weight", config.vocab_size, h)?,
            position: ck.array2("embeddings.position_embeddings.weight", config.max_position_embeddings, h)?,
            token_type: ck.array2("embeddings.token_type_embeddings.weight", config.type_vocab_size, h)?,
            norm: LayerNorm::load(ck, "embeddings.LayerNorm", h, eps)?,
        };
        let i = config.intermediate_size;
        let shapes = [(h, h), (h, h), (h, h), (h, h), (i, h), (h, i)];
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                let linear = |k: usize| -> Result<Linear> {
                    let (rows, cols) = shapes[k];
                    let name = format!("{p}.{}", LINEAR_NAMES[k]);
                    let w = ck.array2(&format!("{name}.weight"), rows, cols)?;
                    let b = ck.array1(&format!("{name}.bias"), rows)?;
                    Ok(Linear::new(w, Some(b))?)
                };
                Ok(Layer {
                    linears: [linear(0)?, linear(1)?, linear(2)?, linear(3)?, linear(4)?, linear(5)?],
                    attention_norm: LayerNorm::load(ck, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    output_norm: LayerNorm::load(ck, &format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert { config, embeddings, layers })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The checkpoint names of every linear layer (`encoder.layer.0.attention.self.query`, ...), in order.
    pub fn linear_names(&self) -> Vec<String> {
        (0..self.layers.len())
            .flat_map(|l| LINEAR_NAMES.iter().map(move |n| format!("encoder.layer.{l}.{n}")))
            .collect()
    }

    /// Every linear layer, named as [`Bert::linear_names`] names them.
    pub fn linears(&self) -> Vec<(String, &Linear)> {
        self.linear_names().into_iter().zip(self.layers.iter().flat_map(|l| l.linears.iter())).collect()
    }

    /// A copy of the encoder whose every linear layer is `f(name, layer)`:
    /// the one place a weight format plugs in (int8 or int4 kernels, a
    /// quantize + dequantize round trip, one layer only for a sensitivity
    /// study...). The result must keep the layer's shape.
    pub fn map_linears(&self, mut f: impl FnMut(&str, &Linear) -> Result<Linear>) -> Result<Bert> {
        let mut out = self.clone();
        let names = self.linear_names();
        for (name, lin) in names.iter().zip(out.layers.iter_mut().flat_map(|l| l.linears.iter_mut())) {
            let new = f(name, lin)?;
            if (new.out_features(), new.in_features()) != (lin.out_features(), lin.in_features()) {
                return Err(ModelError::bad_tensor(
                    name,
                    format!(
                        "the replacement is [{}, {}], the layer [{}, {}]",
                        new.out_features(),
                        new.in_features(),
                        lin.out_features(),
                        lin.in_features()
                    ),
                ));
            }
            *lin = new;
        }
        Ok(out)
    }

    /// The last layer's token vectors, `[tokens, hidden_size]`, for one sequence.
    pub fn forward(&self, ids: &[u32], type_ids: &[u32]) -> Result<Array2<f32>> {
        let (c, e) = (&self.config, &self.embeddings);
        if ids.is_empty() || ids.len() > c.max_position_embeddings || type_ids.len() != ids.len() {
            return Err(ModelError::Tokenizer {
                reason: format!(
                    "{} ids and {} type ids: need 1 to {} of each, as many of one as of the other",
                    ids.len(),
                    type_ids.len(),
                    c.max_position_embeddings
                ),
            });
        }
        let mut x = Array2::<f32>::zeros((ids.len(), c.hidden_size));
        for (t, (&id, &ty)) in ids.iter().zip(type_ids).enumerate() {
            let (id, ty) = (id as usize, ty as usize);
            if id >= c.vocab_size || ty >= c.type_vocab_size {
                return Err(ModelError::Tokenizer { reason: format!("token id {id} or type {ty} beyond the tables") });
            }
            let mut row = x.row_mut(t);
            row += &e.word.row(id);
            row += &e.token_type.row(ty);
            row += &e.position.row(t);
        }
        let mut x = e.norm.forward(x);
        for layer in &self.layers {
            x = self.layer_forward(layer, x)?;
        }
        Ok(x)
    }

    fn layer_forward(&self, layer: &Layer, x: Array2<f32>) -> Result<Array2<f32>> {
        let [query, key, value, attn_out, intermediate, output] = &layer.linears;
        let (q, k, v) = (query.forward(x.view())?, key.forward(x.view())?, value.forward(x.view())?);
        let ctx = self.attention(q.view(), k.view(), v.view());
        let a = layer.attention_norm.forward(attn_out.forward(ctx.view())? + &x);
        let mut m = intermediate.forward(a.view())?;
        m.mapv_inplace(gelu);
        Ok(layer.output_norm.forward(output.forward(m.view())? + &a))
    }

    /// softmax(q_h k_hᵀ / sqrt(d)) v_h for each head h, side by side.
    fn attention(&self, q: ArrayView2<f32>, k: ArrayView2<f32>, v: ArrayView2<f32>) -> Array2<f32> {
        let heads = self.config.num_attention_heads;
        let d = self.config.hidden_size / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut ctx = Array2::<f32>::zeros(q.raw_dim());
        for h in 0..heads {
            let cols = s![.., h * d..(h + 1) * d];
            let mut scores = q.slice(cols).dot(&k.slice(cols).t());
            for mut row in scores.axis_iter_mut(Axis(0)) {
                row.mapv_inplace(|s| s * scale);
                let max = row.fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                row.mapv_inplace(|s| (s - max).exp());
                let sum = row.sum();
                row.mapv_inplace(|s| s / sum);
            }
            ctx.slice_mut(cols).assign(&scores.dot(&v.slice(cols)));
        }
        ctx
    }
}
