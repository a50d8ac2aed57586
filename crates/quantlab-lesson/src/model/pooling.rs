//! From token vectors to one sentence vector, as sentence-transformers does:
//! the mean over the tokens the attention mask keeps, then L2 normalization.

use ndarray::{Array1, ArrayView2, Axis};

/// `Σ_t mask[t] · h[t] / max(Σ_t mask[t], 1e-9)` (sentence-transformers'
/// `Pooling` with `pooling_mode_mean_tokens`). `mask` has one 0/1 per row of `h`.
pub fn mean_pool(h: ArrayView2<f32>, mask: &[u32]) -> Array1<f32> {
    let mut sum = Array1::<f32>::zeros(h.ncols());
    let mut count = 0f32;
    for (row, &m) in h.axis_iter(Axis(0)).zip(mask) {
        if m != 0 {
            sum += &row;
            count += 1.0;
        }
    }
    sum / count.max(1e-9)
}

/// `v / max(‖v‖₂, 1e-12)` (`torch.nn.functional.normalize`, which the
/// `Normalize` module calls).
pub fn l2_normalize(v: Array1<f32>) -> Array1<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v / norm.max(1e-12)
}

/// Cosine similarity of two vectors (1 for the same direction), computed in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mean_skips_masked_rows_and_normalize_gives_unit_length() {
        let h = array![[1.0f32, 2.0], [3.0, 4.0], [100.0, 100.0]];
        assert_eq!(mean_pool(h.view(), &[1, 1, 0]), array![2.0, 3.0]);
        assert_eq!(l2_normalize(array![3.0, 4.0]), array![0.6, 0.8]);
        assert_eq!(l2_normalize(array![0.0, 0.0]), array![0.0, 0.0]);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
    }
}
