//! Does the model still work? What the model lesson measures for a weight
//! format: the embeddings' cosine against the f32 model, how often a
//! sentence's nearest neighbour changes, the memory the weights take, the
//! time of one forward pass, and which layers hurt most when quantized alone.
//!
//! The measures are plain functions of embedding matrices (one row per
//! sentence), so they are tested on small hand-checkable matrices; the
//! sweeps ([`compare_formats`], [`layer_sensitivity`]) only run the model
//! through [`MiniLm::with_format`] and [`MiniLm::map_linears`] and apply them.

use std::time::Instant;

use ndarray::{Array2, ArrayView2};

use super::MiniLm;
use super::bert::LINEAR_NAMES;
use super::error::Result;
use super::format::Format;
use super::pooling::cosine;

/// Cosine similarity of every pair of rows: `s[i][j] = cos(e_i, e_j)`, in f64.
pub fn similarity_matrix(embeddings: ArrayView2<f32>) -> Array2<f64> {
    let rows: Vec<Vec<f32>> = embeddings.rows().into_iter().map(|r| r.to_vec()).collect();
    let n = rows.len();
    Array2::from_shape_fn((n, n), |(i, j)| cosine(&rows[i], &rows[j]))
}

/// For each row of a similarity matrix, the column of the largest value
/// other than the row itself (the nearest other sentence; the first one on a
/// tie). A 1 x 1 matrix has no other sentence: its row gets its own index.
pub fn nearest_neighbours(similarity: ArrayView2<f64>) -> Vec<usize> {
    similarity
        .rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(None, |best: Option<(usize, f64)>, (j, &v)| match best {
                    Some((_, b)) if b >= v => best,
                    _ => Some((j, v)),
                })
                .map_or(i, |(j, _)| j)
        })
        .collect()
}

/// The cosine of each row of `a` with the same row of `b`.
pub fn row_cosines(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Vec<f64>> {
    check_same_shape(a, b)?;
    Ok(a.rows().into_iter().zip(b.rows()).map(|(x, y)| cosine(&x.to_vec(), &y.to_vec())).collect())
}

/// The fraction of sentences (rows) whose nearest other sentence under `b`
/// is not the one under `reference`: 0 when the format keeps every
/// neighbour, 1 when it changes them all.
pub fn nearest_change_rate(reference: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<f64> {
    check_same_shape(reference, b)?;
    let before = nearest_neighbours(similarity_matrix(reference).view());
    let after = nearest_neighbours(similarity_matrix(b).view());
    let changed = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    Ok(changed as f64 / before.len().max(1) as f64)
}

fn check_same_shape(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<()> {
    if a.dim() != b.dim() || a.is_empty() {
        return Err(quantlab::Error::ShapeMismatch {
            what: "two sets of embeddings (one row per sentence, both non-empty)",
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        }
        .into());
    }
    Ok(())
}

/// What one weight format does to the model (see [`compare_formats`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FormatReport {
    /// The format's name, as given.
    pub name: String,
    /// Bits per weight of the encoder's matrices, scales included (the model's average).
    pub bits_per_weight: f64,
    /// Bytes the encoder's weight matrices take stored in this format.
    pub weight_bytes: u64,
    /// Mean over the sentences of the cosine of the embedding with the f32 model's.
    pub mean_cosine: f64,
    /// The worst sentence's cosine.
    pub min_cosine: f64,
    /// The fraction of sentences whose nearest other sentence changed.
    pub nearest_changed: f64,
    /// Wall time of one forward pass (tokens to embedding), in milliseconds,
    /// averaged over the sentences.
    pub forward_ms: f64,
}

/// Bytes the encoder's linear weights take when stored in `format`: each
/// matrix's bits per weight (scales included) times its size, plus a block
/// format's per-tensor constants.
pub fn stored_weight_bytes(model: &MiniLm, format: &Format) -> u64 {
    let per_tensor = match format {
        Format::Block(b) => b.bits_per_tensor() as f64,
        _ => 0.0,
    };
    let bits: f64 = model
        .bert()
        .linears()
        .iter()
        .map(|(_, l)| {
            let (rows, cols) = (l.out_features(), l.in_features());
            format.bits_per_weight(cols) * (rows * cols) as f64 + per_tensor
        })
        .sum();
    (bits / 8.0).ceil() as u64
}

fn linear_params(model: &MiniLm) -> u64 {
    model.bert().linears().iter().map(|(_, l)| (l.out_features() * l.in_features()) as u64).sum()
}

/// Embeds `sentences` with `model`, timing each forward pass; gives the
/// embeddings and the mean milliseconds per sentence.
pub fn embed_timed<S: AsRef<str>>(model: &MiniLm, sentences: &[S]) -> Result<(Array2<f32>, f64)> {
    let start = Instant::now();
    let e = model.embed_all(sentences)?;
    Ok((e, start.elapsed().as_secs_f64() * 1e3 / sentences.len().max(1) as f64))
}

/// Runs the model in each named format (see [`Format::parse`]) on
/// `sentences` and measures it against the f32 model's embeddings.
pub fn compare_formats<S: AsRef<str>>(model: &MiniLm, sentences: &[S], formats: &[&str]) -> Result<Vec<FormatReport>> {
    if sentences.len() < 2 {
        return Err(quantlab::Error::Empty { what: "the sentences to compare formats on (give at least two)" }.into());
    }
    let reference = model.embed_all(sentences)?;
    let params = linear_params(model) as f64;
    formats
        .iter()
        .map(|name| {
            let format = Format::parse(name)?;
            let quantized = model.with_format(&format)?;
            let (e, forward_ms) = embed_timed(&quantized, sentences)?;
            let cos = row_cosines(reference.view(), e.view())?;
            let weight_bytes = stored_weight_bytes(model, &format);
            Ok(FormatReport {
                name: name.to_string(),
                bits_per_weight: weight_bytes as f64 * 8.0 / params,
                weight_bytes,
                mean_cosine: cos.iter().sum::<f64>() / cos.len() as f64,
                min_cosine: cos.iter().copied().fold(f64::INFINITY, f64::min),
                nearest_changed: nearest_change_rate(reference.view(), e.view())?,
                forward_ms,
            })
        })
        .collect()
}

/// The reports as a table (one row per format), for a notebook cell.
pub fn format_table(reports: &[FormatReport]) -> crate::lesson::Table {
    let mut t = crate::lesson::Table::new(
        "Weight formats on all-MiniLM-L6-v2",
        ["format", "bits/weight", "weights (MiB)", "mean cosine", "min cosine", "nearest changed", "ms/sentence"],
    );
    for r in reports {
        t.row([
            r.name.clone(),
            format!("{:.2}", r.bits_per_weight),
            format!("{:.2}", r.weight_bytes as f64 / (1 << 20) as f64),
            format!("{:.6}", r.mean_cosine),
            format!("{:.6}", r.min_cosine),
            format!("{:.0}%", r.nearest_changed * 100.0),
            format!("{:.1}", r.forward_ms),
        ]);
    }
    t
}

/// How much one linear layer, quantized alone, changes the embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSensitivity {
    /// The checkpoint name (`encoder.layer.3.intermediate.dense`).
    pub name: String,
    /// The encoder layer, 0-based.
    pub layer: usize,
    /// Which of the layer's six linears ([`LINEAR_NAMES`]).
    pub kind: &'static str,
    /// `1 - mean cosine` against the f32 embeddings (0: no change).
    pub damage: f64,
}

/// Quantizes each of the encoder's linear layers alone in `format` (all
/// others f32) and measures `1 - mean cosine` of the embeddings of
/// `sentences` against the f32 model's, layer by layer.
pub fn layer_sensitivity<S: AsRef<str>>(
    model: &MiniLm,
    sentences: &[S],
    format: &Format,
) -> Result<Vec<LayerSensitivity>> {
    if sentences.is_empty() {
        return Err(quantlab::Error::Empty { what: "the sentences to measure sensitivity on" }.into());
    }
    let reference = model.embed_all(sentences)?;
    let names = model.bert().linear_names();
    names
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let alone =
                model.map_linears(|name, lin| if name == target { format.apply(lin) } else { Ok(lin.clone()) })?;
            let e = alone.embed_all(sentences)?;
            let cos = row_cosines(reference.view(), e.view())?;
            let kind = LINEAR_NAMES[i % LINEAR_NAMES.len()];
            Ok(LayerSensitivity {
                name: target.clone(),
                layer: i / LINEAR_NAMES.len(),
                kind,
                damage: 1.0 - cos.iter().sum::<f64>() / cos.len() as f64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn similarity_and_nearest_neighbours_of_known_vectors() {
        // Rows: x axis, 45 degrees, y axis, almost x.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let e = array![[1.0f32, 0.0], [h, h], [0.0, 1.0], [0.99, 0.141]];
        let s = similarity_matrix(e.view());
        assert_eq!(s.dim(), (4, 4));
        for i in 0..4 {
            assert!((s[[i, i]] - 1.0).abs() < 1e-6, "{s}");
        }
        assert!((s[[0, 1]] - f64::from(h)).abs() < 1e-7 && s[[0, 2]].abs() < 1e-12 && s[[1, 0]] == s[[0, 1]]);
        // 0 -> 3 (cos 0.990), 1 -> 3 (cos 0.80) over 0 (0.707), 2 -> 1, 3 -> 0.
        assert_eq!(nearest_neighbours(s.view()), vec![3, 3, 1, 0]);
        assert_eq!(nearest_neighbours(array![[1.0]].view()), vec![0]);
        // A tie keeps the first column.
        assert_eq!(nearest_neighbours(array![[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]].view()), vec![1, 0, 0]);
    }

    #[test]
    fn change_rate_counts_sentences_whose_neighbour_moved() {
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let a = array![[1.0f32, 0.0], [h, h], [0.0, 1.0], [0.99, 0.141]];
        assert_eq!(nearest_change_rate(a.view(), a.view()).unwrap(), 0.0);
        // Move row 3 next to the y axis: the neighbours of 0, 2 and 3 change, 1's stays 3.
        let b = array![[1.0f32, 0.0], [h, h], [0.0, 1.0], [0.141, 0.99]];
        let before = nearest_neighbours(similarity_matrix(a.view()).view());
        let after = nearest_neighbours(similarity_matrix(b.view()).view());
        assert_eq!(before, vec![3, 3, 1, 0]);
        assert_eq!(after, vec![1, 3, 3, 2]);
        assert_eq!(nearest_change_rate(a.view(), b.view()).unwrap(), 0.75);
        let cos = row_cosines(a.view(), b.view()).unwrap();
        assert!(cos[..3].iter().all(|c| (c - 1.0).abs() < 1e-12), "{cos:?}");
        assert!((cos[3] - (0.99 * 0.141 * 2.0) / (0.99f64 * 0.99 + 0.141 * 0.141)).abs() < 1e-6, "{cos:?}");
        assert!(nearest_change_rate(a.view(), b.slice(ndarray::s![..2, ..])).is_err());
        assert!(row_cosines(a.view(), array![[1.0f32]].view()).is_err());
    }

    #[test]
    fn block_formats_parse_and_count_their_bits() {
        for (name, bits) in [("mxfp4", 4.25), ("nf4", 4.5), ("q4_k", 4.5), ("q8_0", 8.5), ("nvfp4", 4.5)] {
            let f = Format::parse(name).unwrap();
            assert!(matches!(f, Format::Block(_)), "{name}");
            assert_eq!(f.bits_per_weight(384), bits, "{name}");
            assert_eq!(f.to_string(), name);
        }
        // The round trip of a block format is the library's dequantize of its quantize.
        let w = crate::data::weights(4, 64, 3);
        let lin = quantlab::linear::Linear::new(w.clone(), None).unwrap();
        let block = quantlab::formats::BlockFormat::parse("mxfp4").unwrap();
        let want = block.quantize(w.as_slice().unwrap(), 64).unwrap().dequantize().unwrap();
        let got = Format::parse("mxfp4").unwrap().apply(&lin).unwrap().dequantized_weight();
        assert_eq!(got.as_slice().unwrap(), &want[..]);
        assert_ne!(got, w);
        // Rows that are not whole blocks are the library's typed error, not a panic.
        let short = quantlab::linear::Linear::new(Array2::ones((2, 48)), None).unwrap();
        assert!(Format::parse("q4_k").unwrap().apply(&short).is_err());
    }

    #[test]
    fn nearest_neighbour_changes() {
        // Rows 0 and 1 point almost the same way, row 2 is orthogonal to row 0.
        let a = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0]];
        assert_eq!(nearest_neighbours(similarity_matrix(a.view()).view()), vec![1, 0, 1]);
        assert_eq!(nearest_change_rate(a.view(), a.view()).unwrap(), 0.0);
        // Row 2 turned toward row 0, so far that it is now the nearest of both others.
        let b = array![[1.0f32, 0.0], [0.9, 0.1], [1.0, 0.05]];
        assert_eq!(nearest_neighbours(similarity_matrix(b.view()).view()), vec![2, 2, 0]);
        assert_eq!(nearest_change_rate(a.view(), b.view()).unwrap(), 1.0);
        // Only row 2 turned a little: row 2's neighbour is still row 1, nothing changes.
        let c = array![[1.0f32, 0.0], [0.9, 0.1], [0.1, 1.0]];
        assert_eq!(nearest_change_rate(a.view(), c.view()).unwrap(), 0.0);
        // Row 1 turned toward row 2: its nearest neighbour becomes row 2; the others keep theirs.
        let d = array![[1.0f32, 0.0], [0.3, 1.0], [0.0, 1.0]];
        assert_eq!(nearest_neighbours(similarity_matrix(d.view()).view()), vec![1, 2, 1]);
        assert!((nearest_change_rate(a.view(), d.view()).unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }
}
