//! Seeded sample data for the lesson: reproducible random tensors and the
//! tensor shapes of transformer models, small and published.
//!
//! Every generator takes a seed, so a notebook shows the same numbers on
//! every run. The stream comes from [`rand::rngs::StdRng`], which is stable
//! for a given `rand` version (the workspace pins it in `Cargo.lock`).

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand::distr::{Distribution, StandardUniform};
use rand::rngs::StdRng;
use rand_distr::{LogNormal, StandardNormal, StudentT};

/// `n` values uniform in `[0, 1)`, like `torch.rand(n)`.
///
/// ```
/// let x = quantlab_lesson::data::uniform(1000, 42);
/// assert!(x.iter().all(|v| (0.0..1.0).contains(v)));
/// assert_eq!(x, quantlab_lesson::data::uniform(1000, 42)); // same seed, same values
/// ```
pub fn uniform(n: usize, seed: u64) -> Array1<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| StandardUniform.sample(&mut rng)).collect()
}

/// `n` values from the standard normal distribution, like `torch.randn(n)`.
pub fn normal(n: usize, seed: u64) -> Array1<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Degrees of freedom of the Student-t draws in [`weights`]: 4 gives the
/// heavy tails of trained weights (a few values many deviations out) while
/// keeping a finite variance.
pub const WEIGHT_TAIL_DOF: f32 = 4.0;

/// A weight matrix that looks like a trained linear layer's: `rows` output
/// channels of `cols` inputs each.
///
/// Two features of real weights matter for quantization and are built in:
/// heavy tails (Student-t values, so a few outliers stretch the range) and
/// channels of different magnitude (each row scaled by a log-normal factor),
/// which is why per-channel and per-group scales beat a single one.
/// Typical values are a few hundredths, as in a trained layer.
///
/// ```
/// let w = quantlab_lesson::data::weights(64, 256, 7);
/// assert_eq!(w.dim(), (64, 256));
/// let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
/// let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
/// assert!(max > 6.0 * std); // outliers far beyond the typical value
/// ```
pub fn weights(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let t = StudentT::new(WEIGHT_TAIL_DOF).expect("positive degrees of freedom");
    // sigma 0.5: rows differ by up to ~4x in spread, as across real channels.
    let row_scale = LogNormal::new(0.0f32, 0.5).expect("finite, positive sigma");
    let scales: Vec<f32> = (0..rows).map(|_| 0.02 * row_scale.sample(&mut rng)).collect();
    Array2::from_shape_fn((rows, cols), |(r, _)| scales[r] * t.sample(&mut rng))
}

/// The shape of a decoder-only transformer in the Llama layout: enough to
/// list its weight tensors and count their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformerConfig {
    /// A name for tables and plots.
    pub name: &'static str,
    /// Vocabulary size (rows of the embedding and of the output head).
    pub vocab: usize,
    /// Hidden size (model width).
    pub hidden: usize,
    /// Number of decoder layers.
    pub layers: usize,
    /// Width of the feed-forward (MLP) layer.
    pub ffn: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` with grouped-query attention).
    pub kv_heads: usize,
}

/// A small model for the lesson: 4 layers of width 256, 5.5M parameters.
pub const TINY: TransformerConfig =
    TransformerConfig { name: "tiny (4 x 256)", vocab: 4096, hidden: 256, layers: 4, ffn: 768, heads: 4, kv_heads: 4 };

/// Llama 2 7B (Touvron et al. 2023): 6,738,415,616 parameters.
pub const LLAMA2_7B: TransformerConfig = TransformerConfig {
    name: "Llama 2 7B",
    vocab: 32000,
    hidden: 4096,
    layers: 32,
    ffn: 11008,
    heads: 32,
    kv_heads: 32,
};

/// Llama 2 13B: 13,015,864,320 parameters.
pub const LLAMA2_13B: TransformerConfig = TransformerConfig {
    name: "Llama 2 13B",
    vocab: 32000,
    hidden: 5120,
    layers: 40,
    ffn: 13824,
    heads: 40,
    kv_heads: 40,
};

/// Llama 2 70B (grouped-query attention, 8 key/value heads): 68,976,648,192 parameters.
pub const LLAMA2_70B: TransformerConfig = TransformerConfig {
    name: "Llama 2 70B",
    vocab: 32000,
    hidden: 8192,
    layers: 80,
    ffn: 28672,
    heads: 64,
    kv_heads: 8,
};

impl TransformerConfig {
    /// Every weight tensor with its name and shape (`[out, in]` for linear
    /// layers, as PyTorch stores them), in checkpoint order.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, kv) = (self.hidden, self.hidden / self.heads.max(1) * self.kv_heads);
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab, d])];
        for i in 0..self.layers {
            let p = format!("model.layers.{i}");
            out.extend([
                (format!("{p}.self_attn.q_proj.weight"), vec![d, d]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, d]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, d]),
                (format!("{p}.self_attn.o_proj.weight"), vec![d, d]),
                (format!("{p}.mlp.gate_proj.weight"), vec![self.ffn, d]),
                (format!("{p}.mlp.up_proj.weight"), vec![self.ffn, d]),
                (format!("{p}.mlp.down_proj.weight"), vec![d, self.ffn]),
                (format!("{p}.input_layernorm.weight"), vec![d]),
                (format!("{p}.post_attention_layernorm.weight"), vec![d]),
            ]);
        }
        out.push(("model.norm.weight".to_string(), vec![d]));
        out.push(("lm_head.weight".to_string(), vec![self.vocab, d]));
        out
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> u64 {
        self.shapes().iter().map(|(_, s)| s.iter().map(|&n| n as u64).product::<u64>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_std(x: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
        let n = x.clone().count() as f64;
        let mean = x.clone().map(f64::from).sum::<f64>() / n;
        let var = x.map(|v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn uniform_and_normal_have_their_moments() {
        let u = uniform(100_000, 1);
        let (m, s) = mean_std(u.iter().copied());
        // U[0,1): mean 1/2, std 1/sqrt(12) = 0.2887.
        assert!((m - 0.5).abs() < 0.01 && (s - 0.2887).abs() < 0.01, "{m} {s}");
        let n = normal(100_000, 1);
        let (m, s) = mean_std(n.iter().copied());
        assert!(m.abs() < 0.02 && (s - 1.0).abs() < 0.02, "{m} {s}");
        assert_ne!(normal(10, 1), normal(10, 2));
        assert_eq!(normal(10, 3), normal(10, 3));
    }

    #[test]
    fn weights_are_heavy_tailed_and_uneven_across_rows() {
        let w = weights(64, 1024, 7);
        assert_eq!(w, weights(64, 1024, 7));
        let x: Vec<f32> = w.iter().copied().collect();
        let (m, s) = mean_std(x.iter().copied());
        // Kurtosis of Student-t(4) is infinite in theory; a normal has 3.
        let kurt = x.iter().map(|v| ((f64::from(*v) - m) / s).powi(4)).sum::<f64>() / x.len() as f64;
        assert!(kurt > 5.0, "kurtosis {kurt}");
        assert!(m.abs() < 0.002 && s > 0.01 && s < 0.06, "{m} {s}");
        let row_max: Vec<f32> = w.rows().into_iter().map(|r| r.iter().fold(0f32, |a, v| a.max(v.abs()))).collect();
        let (lo, hi) = row_max.iter().fold((f32::MAX, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(hi > 2.0 * lo, "row ranges {lo}..{hi}");
    }

    #[test]
    fn llama_configs_give_the_published_parameter_counts() {
        // The counts Meta's model cards and Hugging Face report.
        assert_eq!(LLAMA2_7B.num_params(), 6_738_415_616);
        assert_eq!(LLAMA2_13B.num_params(), 13_015_864_320);
        assert_eq!(LLAMA2_70B.num_params(), 68_976_648_192);
        assert_eq!(TINY.num_params(), 5_507_328);
        let shapes = LLAMA2_70B.shapes();
        assert_eq!(shapes.len(), 3 + 80 * 9);
        assert_eq!(shapes[2], ("model.layers.0.self_attn.k_proj.weight".to_string(), vec![1024, 8192]));
    }
}
