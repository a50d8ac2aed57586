//! What the lesson's cells show, computed with the library: comparisons of
//! quantization schemes, model footprints, and the [`Table`] that prints them.
//!
//! A notebook cell ending in one of these values shows a table (evcxr calls
//! `evcxr_display`); `.bar_chart(..)` and friends draw the matching figure.

use std::fmt;

use ndarray::{ArrayBase, Data, Dimension};

use quantlab::{DType, Element, ErrorStats, QuantSpec, QuantizeExt, Storage, human_bytes, model_footprint};

use crate::data::TransformerConfig;
use crate::error::{Core, Error, Result};
use crate::plot::{BarChart, Figure, LineChart};

/// A small text table with a title: printed aligned as text, shown as HTML
/// in a notebook.
///
/// ```
/// use quantlab_lesson::lesson::Table;
/// let mut t = Table::new("Sizes", ["dtype", "bytes"]);
/// t.row(["float32", "4"]);
/// t.row(["int4", "0.5"]);
/// assert_eq!(t.to_string(), "Sizes\ndtype    bytes\n-------  -----\nfloat32      4\nint4       0.5\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with a title and column headers.
    pub fn new<I: IntoIterator<Item = T>, T: Into<String>>(title: impl Into<String>, headers: I) -> Self {
        Table { title: title.into(), headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Appends a row; missing cells print empty, extra cells are kept.
    pub fn row<I: IntoIterator<Item = T>, T: Into<String>>(&mut self, cells: I) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The column headers.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The rows, as text.
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The HTML form a notebook shows.
    pub fn to_html(&self) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut h = format!("<table>\n<caption>{}</caption>\n<thead><tr>", esc(&self.title));
        for c in &self.headers {
            h += &format!("<th>{}</th>", esc(c));
        }
        h += "</tr></thead>\n<tbody>\n";
        for r in &self.rows {
            h += "<tr>";
            for c in r {
                let align = if looks_numeric(c) { " style=\"text-align:right\"" } else { "" };
                h += &format!("<td{align}>{}</td>", esc(c));
            }
            h += "</tr>\n";
        }
        h + "</tbody>\n</table>"
    }

    /// Shows the table in a notebook: HTML, with the aligned text as the
    /// plain-text form.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html());
        println!("EVCXR_BEGIN_CONTENT text/plain\n{self}EVCXR_END_CONTENT");
    }
}

/// Numbers, sizes and ratios right-align: they start with a digit or a sign
/// followed by a digit.
fn looks_numeric(s: &str) -> bool {
    let s = s.trim_start_matches(['-', '+']);
    s.starts_with(|c: char| c.is_ascii_digit()) || s == "inf"
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ncols = self.rows.iter().map(Vec::len).chain([self.headers.len()]).max().unwrap_or(0);
        let cell = |row: &[String], c: usize| row.get(c).cloned().unwrap_or_default();
        let widths: Vec<usize> = (0..ncols)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| cell(r, c).chars().count())
                    .chain([cell(&self.headers, c).chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, row: &[String], numeric_right: bool| -> fmt::Result {
            let parts: Vec<String> = (0..ncols)
                .map(|c| {
                    let s = cell(row, c);
                    if numeric_right && looks_numeric(&s) {
                        format!("{s:>w$}", w = widths[c])
                    } else {
                        format!("{s:<w$}", w = widths[c])
                    }
                })
                .collect();
            writeln!(f, "{}", parts.join("  ").trim_end())
        };
        if !self.title.is_empty() {
            writeln!(f, "{}", self.title)?;
        }
        line(f, &self.headers, false)?;
        writeln!(f, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "))?;
        for r in &self.rows {
            line(f, r, true)?;
        }
        Ok(())
    }
}

/// One quantization of the data and how well it did.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    /// How the data was quantized.
    pub spec: QuantSpec,
    /// The round trip's error.
    pub stats: ErrorStats,
    /// Bytes stored: packed codes plus scales and zero points.
    pub bytes: u64,
}

/// Several quantizations of the same data, side by side (see [`compare`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Elements in the data.
    pub numel: u64,
    /// One row per spec, in the order given.
    pub rows: Vec<ComparisonRow>,
}

/// Quantizes `x` with every spec and measures the round trip.
///
/// ```
/// use quantlab_lesson::prelude::*;
/// let x = array![[191.6, -13.5, 728.6], [92.14, 295.5, -184.0], [0.0, 684.6, 245.5]];
/// let int8 = QuantSpec::new(DType::Int8).symmetric();
/// let c = quantlab_lesson::lesson::compare(&x, &[int8, int8.per_channel(0)])?;
/// // PyTorch's MSEs for these two: 2.5092 and 1.8084.
/// assert_eq!(format!("{:.4} {:.4}", c.rows[0].stats.mse, c.rows[1].stats.mse), "2.5092 1.8084");
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
pub fn compare<A, S, D>(x: &ArrayBase<S, D>, specs: &[QuantSpec]) -> Result<Comparison>
where
    A: Element,
    S: Data<Elem = A>,
    D: Dimension,
{
    if specs.is_empty() {
        return Err(Core::Empty { what: "a comparison of quantization specs" }.into());
    }
    let rows = specs
        .iter()
        .map(|&spec| {
            let q = x.quantize(spec)?;
            Ok(ComparisonRow { spec, stats: q.error_stats(x)?, bytes: q.storage_bytes() })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Comparison { numel: x.len() as u64, rows })
}

impl Comparison {
    /// The comparison as a table: error measures, bytes and bits per value
    /// (scales and zero points included).
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("Quantizing {} values", self.numel),
            ["dtype", "scheme", "granularity", "MSE", "max abs error", "SQNR (dB)", "bytes", "bits/value"],
        );
        for r in &self.rows {
            t.row([
                r.spec.dtype.to_string(),
                r.spec.scheme.to_string(),
                r.spec.granularity.to_string(),
                format!("{:.4e}", r.stats.mse),
                format!("{:.4}", r.stats.max_abs),
                format!("{:.2}", r.stats.sqnr_db),
                r.bytes.to_string(),
                format!("{:.2}", (r.bytes * 8) as f64 / self.numel as f64),
            ]);
        }
        t
    }

    /// Shows the table in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// MSE as grouped bars: one group per type and granularity, one bar per
    /// scheme. Every scheme must have been run for every group.
    pub fn bar_chart(&self, title: &str) -> Result<Figure> {
        let mut groups: Vec<(DType, String)> = Vec::new();
        let mut schemes = Vec::new();
        for r in &self.rows {
            let g = (r.spec.dtype, r.spec.granularity.to_string());
            if !groups.contains(&g) {
                groups.push(g);
            }
            if !schemes.contains(&r.spec.scheme) {
                schemes.push(r.spec.scheme);
            }
        }
        let one_dtype = groups.iter().all(|g| g.0 == groups[0].0);
        let mut chart = BarChart::new(title)
            .axes("granularity", "mean squared error")
            .groups(groups.iter().map(|(d, g)| if one_dtype { g.clone() } else { format!("{d} {g}") }));
        for scheme in schemes {
            let values = groups
                .iter()
                .map(|(d, g)| {
                    self.rows
                        .iter()
                        .find(|r| r.spec.scheme == scheme && r.spec.dtype == *d && r.spec.granularity.to_string() == *g)
                        .map(|r| r.stats.mse)
                        .ok_or_else(|| Error::Plot {
                            title: title.to_string(),
                            reason: format!(
                                "no {scheme} result for {d} {g}: compare every scheme for every granularity"
                            ),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            chart = chart.series(scheme.to_string(), values);
        }
        chart.draw()
    }

    /// MSE against bits per code, one line per scheme and granularity, on a
    /// log scale: each bit fewer multiplies the error by about four.
    pub fn error_vs_bits(&self, title: &str) -> Result<Figure> {
        let mut lines: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in &self.rows {
            let key = format!("{} {}", r.spec.scheme, r.spec.granularity);
            let point = (f64::from(r.spec.dtype.bits()), r.stats.mse);
            match lines.iter_mut().find(|(k, _)| *k == key) {
                Some((_, pts)) => pts.push(point),
                None => lines.push((key, vec![point])),
            }
        }
        let mut chart = LineChart::new(title).axes("bits per code", "mean squared error").log_y();
        for (name, mut pts) in lines {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart = chart.series(name, pts);
        }
        chart.draw()
    }
}

/// The storages the lesson compares: the three float types and int8/int4
/// with their scales counted (int8 symmetric per output channel, int4
/// symmetric in groups of 128, as GPTQ/AWQ-style checkpoints store it).
pub fn lesson_storages() -> Vec<Storage> {
    vec![
        DType::Float32.into(),
        DType::Float16.into(),
        DType::BFloat16.into(),
        QuantSpec::new(DType::Int8).symmetric().per_channel(0).into(),
        QuantSpec::new(DType::Int4).symmetric().per_group(128).into(),
    ]
}

/// Bytes of several models in several storages (see [`footprints`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Footprints {
    /// The models measured.
    pub models: Vec<TransformerConfig>,
    /// Their parameter counts.
    pub params: Vec<u64>,
    /// The storages measured.
    pub storages: Vec<Storage>,
    /// `bytes[model][storage]`, scales and zero points included.
    pub bytes: Vec<Vec<u64>>,
}

/// The weight memory of every model in every storage.
///
/// ```
/// use quantlab_lesson::{data, lesson, DType};
/// let f = lesson::footprints(&[data::LLAMA2_7B], &[DType::BFloat16.into()])?;
/// assert_eq!(f.bytes[0][0], 2 * 6_738_415_616);
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
pub fn footprints(models: &[TransformerConfig], storages: &[Storage]) -> Result<Footprints> {
    if models.is_empty() || storages.is_empty() {
        return Err(Core::Empty { what: "a footprint table" }.into());
    }
    let mut bytes = Vec::with_capacity(models.len());
    let mut params = Vec::with_capacity(models.len());
    for m in models {
        let shapes = m.shapes();
        let mut row = Vec::with_capacity(storages.len());
        for &s in storages {
            let f = model_footprint(shapes.iter().map(|(n, s)| (n.as_str(), s.as_slice())), s)?;
            row.push(f.total_bytes);
        }
        params.push(m.num_params());
        bytes.push(row);
    }
    Ok(Footprints { models: models.to_vec(), params, storages: storages.to_vec(), bytes })
}

/// A parameter count as people say it: `6.74B`, `5.51M`.
pub fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

const GIB: f64 = (1u64 << 30) as f64;

impl Footprints {
    /// One row per model, one column per storage.
    pub fn table(&self) -> Table {
        let headers = ["model".to_string(), "parameters".to_string()]
            .into_iter()
            .chain(self.storages.iter().map(|s| s.to_string()));
        let mut t = Table::new("Weight memory (scales and zero points counted)", headers);
        for (i, m) in self.models.iter().enumerate() {
            t.row(
                [m.name.to_string(), human_count(self.params[i])]
                    .into_iter()
                    .chain(self.bytes[i].iter().map(|&b| human_bytes(b))),
            );
        }
        t
    }

    /// Shows the table in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// For each model, the storages whose weights fit in `budget` bytes.
    ///
    /// ```
    /// use quantlab_lesson::{data, lesson};
    /// let f = lesson::footprints(&[data::LLAMA2_7B], &lesson::lesson_storages())?;
    /// let t = f.fits(16 << 30);
    /// assert_eq!(t.rows()[0][1], "float16, bfloat16, int8 per-channel(0), int4 g128");
    /// # Ok::<(), quantlab_lesson::Error>(())
    /// ```
    pub fn fits(&self, budget: u64) -> Table {
        let mut t = Table::new(format!("What fits in {}", human_bytes(budget)), ["model", "fits", "smallest"]);
        for (i, m) in self.models.iter().enumerate() {
            let fitting: Vec<String> = self
                .storages
                .iter()
                .zip(&self.bytes[i])
                .filter(|(_, b)| **b <= budget)
                .map(|(s, _)| s.to_string())
                .collect();
            let smallest = self.bytes[i].iter().zip(&self.storages).min_by_key(|(b, _)| **b);
            let smallest = smallest.map(|(b, s)| format!("{s}: {}", human_bytes(*b))).unwrap_or_default();
            t.row([
                m.name.to_string(),
                if fitting.is_empty() { "nothing".into() } else { fitting.join(", ") },
                smallest,
            ]);
        }
        t
    }

    /// GiB per model and storage as grouped bars on a log scale, with the
    /// budget as a reference line.
    pub fn bar_chart(&self, title: &str, budget: u64) -> Result<Figure> {
        let mut chart = BarChart::new(title)
            .axes("model", "weights (GiB, log scale)")
            .groups(self.models.iter().map(|m| m.name))
            .log_y()
            .reference(format!("{} budget", human_bytes(budget)), budget as f64 / GIB);
        for (j, s) in self.storages.iter().enumerate() {
            chart = chart.series(s.to_string(), self.bytes.iter().map(|row| row[j] as f64 / GIB));
        }
        chart.draw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use ndarray::array;

    fn lesson_tensor() -> ndarray::Array2<f64> {
        array![[191.6, -13.5, 728.6], [92.14, 295.5, -184.0], [0.0, 684.6, 245.5]]
    }

    #[test]
    fn comparison_holds_pytorchs_errors() {
        let x = lesson_tensor();
        let int8 = QuantSpec::new(DType::Int8);
        let c =
            compare(&x, &[int8, int8.symmetric(), int8.symmetric().per_channel(0), int8.symmetric().per_channel(1)])
                .unwrap();
        // PyTorch: asymmetric per-tensor ~1.57, symmetric 2.5092, per-channel dim 0 1.8084, dim 1 1.0781.
        let mse: Vec<String> = c.rows.iter().map(|r| format!("{:.4}", r.stats.mse)).collect();
        assert!(mse[0].starts_with("1.5"), "{mse:?}");
        assert_eq!(mse[1..], ["2.5092", "1.8084", "1.0781"]);
        assert_eq!(c.rows[0].bytes, 9 + 8);
        let t = c.table();
        assert_eq!(t.headers()[0], "dtype");
        assert_eq!(t.rows()[2][2], "per-channel (axis 0)");
        assert_eq!(t.rows()[0][7], format!("{:.2}", 17.0 * 8.0 / 9.0));
        let full =
            compare(&x, &[int8, int8.symmetric(), int8.per_channel(0), int8.symmetric().per_channel(0)]).unwrap();
        let fig = full.bar_chart("int8 error").unwrap();
        for want in ["per-tensor", "per-channel (axis 0)", "symmetric", "asymmetric"] {
            assert!(fig.svg().contains(want), "{want}");
        }
        // Asymmetric was not run per channel: the chart says so instead of inventing a bar.
        assert!(c.bar_chart("gaps").unwrap_err().to_string().contains("no asymmetric result"));
    }

    #[test]
    fn error_vs_bits_draws_one_line_per_scheme() {
        let w = data::weights(16, 128, 3);
        let specs: Vec<QuantSpec> = [DType::Int8, DType::Int4, DType::Int2]
            .iter()
            .map(|&d| QuantSpec::new(d).symmetric().per_channel(0))
            .collect();
        let c = compare(&w, &specs).unwrap();
        // Fewer bits, more error.
        assert!(c.rows[0].stats.mse < c.rows[1].stats.mse && c.rows[1].stats.mse < c.rows[2].stats.mse);
        let fig = c.error_vs_bits("bits").unwrap();
        assert!(fig.svg().contains("symmetric per-channel (axis 0)"));
        assert_eq!(fig.svg().matches("<circle").count(), 3);
    }

    #[test]
    fn footprints_count_scales_and_answer_the_budget_question() {
        let f = footprints(&[data::TINY, data::LLAMA2_7B, data::LLAMA2_70B], &lesson_storages()).unwrap();
        let n7 = 6_738_415_616u64;
        assert_eq!(f.bytes[1][0], 4 * n7);
        assert_eq!(f.bytes[1][2], 2 * n7);
        // int4 in groups of 128: half a byte per weight plus 8 bytes per group.
        assert_eq!(f.bytes[1][4], n7 / 2 + n7 / 128 * 8);
        let table = f.table().to_string();
        assert!(table.contains("Llama 2 70B") && table.contains("6.74B") && table.contains("25.10 GiB"), "{table}");
        let fits = f.fits(16 << 30);
        assert_eq!(fits.rows()[2][1], "nothing");
        assert!(fits.rows()[0][1].starts_with("float32"));
        let fig = f.bar_chart("memory", 16 << 30).unwrap();
        assert!(fig.svg().contains("16.00 GiB budget") && fig.svg().contains("int4 g128"));
    }

    #[test]
    fn table_formats() {
        let mut t = Table::new("", ["a", "long header"]);
        t.row(["x<y", "-1.5"]).row(["only one"]);
        assert_eq!(t.to_string(), "a         long header\n--------  -----------\nx<y              -1.5\nonly one\n");
        assert!(t.to_html().contains("<td>x&lt;y</td><td style=\"text-align:right\">-1.5</td>"));
        assert_eq!(human_count(68_976_648_192), "68.98B");
        assert_eq!(human_count(5_507_328), "5.51M");
    }
}
