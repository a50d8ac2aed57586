//! How much a weight format changes the model, measured on its embeddings:
//! the numbers the model lesson plots.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use quantlab::linear::Linear;

use super::MiniLm;
use super::error::Result;
use super::format::Format;
use super::pooling::cosine;

/// Cosine similarity of every pair of rows of `embeddings` (`[n, d]` to `[n, n]`), in f64.
pub fn similarity_matrix(embeddings: ArrayView2<f32>) -> Array2<f64> {
    let rows: Vec<Vec<f32>> = embeddings.axis_iter(Axis(0)).map(|r| r.to_vec()).collect();
    Array2::from_shape_fn((rows.len(), rows.len()), |(i, j)| cosine(&rows[i], &rows[j]))
}

/// For each sentence, the index of its most similar other sentence (the
/// first on a tie; itself only when it is alone).
pub fn nearest_neighbours(similarity: &Array2<f64>) -> Vec<usize> {
    (0..similarity.nrows())
        .map(|i| {
            (0..similarity.ncols())
                .filter(|&j| j != i)
                .fold(None, |best: Option<usize>, j| match best {
                    Some(b) if similarity[[i, b]] >= similarity[[i, j]] => Some(b),
                    _ => Some(j),
                })
                .unwrap_or(i)
        })
        .collect()
}

/// The fraction of sentences whose nearest neighbour differs between two
/// sets of embeddings of the same sentences (0 = retrieval unchanged).
pub fn neighbour_change_rate(reference: ArrayView2<f32>, other: ArrayView2<f32>) -> f64 {
    let (a, b) = (nearest_neighbours(&similarity_matrix(reference)), nearest_neighbours(&similarity_matrix(other)));
    if a.is_empty() {
        return 0.0;
    }
    a.iter().zip(&b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

/// Cosine of each row of `other` with the same row of `reference`.
pub fn row_cosines(reference: ArrayView2<f32>, other: ArrayView2<f32>) -> Array1<f64> {
    reference.axis_iter(Axis(0)).zip(other.axis_iter(Axis(0))).map(|(a, b)| cosine(&a.to_vec(), &b.to_vec())).collect()
}

/// Which layers hurt most: for each encoder linear layer alone in
/// `format` (every other layer f32), the mean cosine of the sentences'
/// embeddings against the f32 model's. One entry per layer, in
/// [`super::Bert::linear_names`] order.
pub fn layer_sensitivity<S: AsRef<str>>(
    model: &MiniLm,
    sentences: &[S],
    format: &Format,
) -> Result<Vec<(String, f64)>> {
    let reference = model.embed_all(sentences)?;
    let names = model.bert().linear_names();
    names
        .iter()
        .map(|target| {
            let one = model
                .map_linears(|name, lin: &Linear| if name == target { format.apply(lin) } else { Ok(lin.clone()) })?;
            let e = one.embed_all(sentences)?;
            Ok((target.clone(), row_cosines(reference.view(), e.view()).mean().unwrap_or(f64::NAN)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn neighbours_and_their_changes() {
        // Rows 0 and 1 point almost the same way, row 2 is orthogonal to row 0.
        let a = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0]];
        let s = similarity_matrix(a.view());
        assert!((s[[0, 0]] - 1.0).abs() < 1e-12 && s[[0, 2]].abs() < 1e-12);
        assert_eq!(nearest_neighbours(&s), vec![1, 0, 1]);
        assert_eq!(neighbour_change_rate(a.view(), a.view()), 0.0);
        // Row 2 turned toward row 0, so far that it is now the nearest of both others.
        let b = array![[1.0f32, 0.0], [0.9, 0.1], [1.0, 0.05]];
        assert_eq!(nearest_neighbours(&similarity_matrix(b.view())), vec![2, 2, 0]);
        assert_eq!(neighbour_change_rate(a.view(), b.view()), 1.0);
        // Only row 2 turned a little: row 2's neighbour is still row 1, nothing changes.
        let c = array![[1.0f32, 0.0], [0.9, 0.1], [0.1, 1.0]];
        assert_eq!(neighbour_change_rate(a.view(), c.view()), 0.0);
        // Row 1 turned toward row 2: its nearest neighbour becomes row 2; the others keep theirs.
        let d = array![[1.0f32, 0.0], [0.3, 1.0], [0.0, 1.0]];
        assert_eq!(nearest_neighbours(&similarity_matrix(d.view())), vec![1, 2, 1]);
        assert!((neighbour_change_rate(a.view(), d.view()) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            row_cosines(a.view(), a.view()).to_vec().iter().map(|c| (c * 1e9).round()).collect::<Vec<_>>(),
            vec![1e9; 3]
        );
    }
}
