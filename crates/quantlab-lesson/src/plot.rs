//! Inline plots for the lesson (plotters, SVG, shown by evcxr).
//!
//! Every helper draws one complete figure, with a title, labelled axes and a
//! legend where there are series, and returns a [`Figure`]: the SVG text,
//! which a notebook cell ending in the figure shows inline (evcxr calls
//! [`Figure::evcxr_display`]) and which tests can read.
//!
//! Drawing uses plotters' SVG backend, whose text is laid out without font
//! files, so figures render the same on any machine. We do not use
//! `plotters::evcxr::evcxr_figure`: it panics when drawing fails and hides the
//! SVG behind its wrapper; here a failure is an [`Error::Plot`].

use std::fmt;

use ndarray::{ArrayBase, ArrayView2, Data, Ix2};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use quantlab::{DType, Element, Quantized};

use crate::error::{Core, Error, Result};

/// A drawn figure: SVG text with its title.
#[derive(Clone, PartialEq)]
pub struct Figure {
    title: String,
    svg: String,
}

impl Figure {
    /// The figure's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The SVG document.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// Shows the figure in a notebook: evcxr calls this for a cell's final
    /// value. The SVG goes inline as HTML (as plotters' own evcxr support
    /// does), with a text line for viewers that cannot show HTML.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n<div>{}</div>\nEVCXR_END_CONTENT", self.svg);
        println!("EVCXR_BEGIN_CONTENT text/plain\n[figure: {}]\nEVCXR_END_CONTENT", self.title);
    }
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Figure {{ title: {:?}, svg: {} bytes }}", self.title, self.svg.len())
    }
}

/// What a drawing closure returns: plotters' errors, boxed.
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Matplotlib's "tab10" colours: distinct, and readable by most colour-blind people.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

const FONT: &str = "sans-serif";

/// Draws into a fresh SVG of `size` pixels, white background, `title` on top.
fn render(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<Figure> {
    let mut svg = String::new();
    let outcome = (|| -> DrawResult {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let body = root.titled(title, (FONT, 20))?;
        draw(body)?;
        root.present()?;
        Ok(())
    })();
    outcome.map_err(|e| Error::Plot { title: title.to_string(), reason: e.to_string() })?;
    Ok(Figure { title: title.to_string(), svg })
}

fn centered(size: u32, color: &RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: (FONT, size).into_font(),
        color: color.to_backend_color(),
        pos: Pos::new(HPos::Center, VPos::Center),
    }
}

/// The chart frame every bar and line chart shares: margins and label areas.
fn frame<'a, 'b>(area: &'a DrawingArea<SVGBackend<'b>, Shift>) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(area);
    b.margin(12).x_label_area_size(45).y_label_area_size(70);
    b
}

/// A number in at most about four characters of significant digits, for
/// labels on bars and heatmap cells.
fn short(v: f64) -> String {
    let a = v.abs();
    if v == v.trunc() && a < 1e6 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1e-3 {
        // Three significant digits, trailing zeros dropped.
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    } else {
        // 1.50e-5 stays, 1.00e-4 becomes 1e-4 (log-axis ticks).
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') && m.trim_end_matches('0').ends_with('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        }
    }
}

/// A matrix value for a heatmap cell: integers as integers, otherwise at
/// most two decimals (one above 100), so the lesson's `92.14` reads as typed.
fn annot(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        return format!("{v:.0}");
    }
    let s = if v.abs() >= 100.0 { format!("{v:.1}") } else { format!("{v:.2}") };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn check_finite<'a>(what: &'static str, values: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    match values.into_iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, v)) => Err(Core::NonFinite { what, value: v.to_string(), index }.into()),
        None => Ok(()),
    }
}

/// The floating-point formats of the lesson's picture, widest first.
pub const FLOAT_FORMATS: [DType; 5] =
    [DType::Float32, DType::Float16, DType::BFloat16, DType::Float8E4M3Fn, DType::Float8E5M2];

/// The bit layouts of fp32, fp16, bf16 and the two fp8 formats, one row
/// each: sign, exponent and mantissa bits, drawn from [`DType::float_layout`].
pub fn float_formats() -> Result<Figure> {
    float_formats_of(&FLOAT_FORMATS)
}

/// Today's narrow floating-point formats, for Part 2's picture: the float8
/// family (OCP's e4m3fn and e5m2, AMD's fnuz pair, the IEEE-style e4m3 and
/// e3m4, Graphcore's e4m3b11fnuz), the MX scale e8m0 and the MXFP6/MXFP4/NVFP4
/// elements.
pub const NARROW_FLOAT_FORMATS: [DType; 11] = [
    DType::Float8E4M3Fn,
    DType::Float8E4M3Fnuz,
    DType::Float8E4M3,
    DType::Float8E5M2,
    DType::Float8E5M2Fnuz,
    DType::Float8E3M4,
    DType::Float8E4M3B11Fnuz,
    DType::Float8E8M0Fnu,
    DType::Float6E2M3Fn,
    DType::Float6E3M2Fn,
    DType::Float4E2M1Fn,
];

/// The bit layouts of [`NARROW_FLOAT_FORMATS`], drawn like [`float_formats`]
/// (8 bits wide; e8m0 has no sign and no mantissa, float6 and float4 fill 6
/// and 4 of the 8 columns).
pub fn narrow_float_formats() -> Result<Figure> {
    float_formats_of(&NARROW_FLOAT_FORMATS)
}

/// The bit layouts of the given floating-point types, one row each, widest
/// bit count setting the scale.
///
/// ```
/// use quantlab_lesson::{plot, DType};
/// let fig = plot::float_formats_of(&[DType::Float32, DType::BFloat16])?;
/// assert!(fig.svg().contains("bfloat16") && fig.svg().contains("mantissa"));
/// assert!(plot::float_formats_of(&[DType::Int8]).is_err());
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
pub fn float_formats_of(dtypes: &[DType]) -> Result<Figure> {
    const WHAT: &str = "a floating-point format figure";
    if dtypes.is_empty() {
        return Err(Core::Empty { what: WHAT }.into());
    }
    let layouts = dtypes
        .iter()
        .map(|&d| {
            d.float_layout().map(|l| (d, l)).ok_or(Error::from(Core::WrongDType {
                what: WHAT,
                dtype: d,
                hint: "pass floating-point types such as float32 or bfloat16",
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let width = dtypes.iter().map(|d| d.bits()).max().unwrap_or(32) as f64;
    let rows = dtypes.len();
    let height = 90 + 48 * rows as u32;
    let title = "Floating-point formats: sign, exponent and mantissa bits";
    render(title, (900, height), |area| {
        let names: Vec<String> = layouts.iter().map(|(d, _)| d.name().to_string()).collect();
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..width, -0.5f64..rows as f64 - 0.5)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("bit (most significant first)")
            .y_desc("format")
            .x_labels(9)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(rows)
            .y_label_formatter(&|y| {
                let r = y.round();
                if (y - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < rows {
                    names[rows - 1 - r as usize].clone()
                } else {
                    String::new()
                }
            })
            .draw()?;
        // One series per role, so the legend names the colours.
        let roles = [("sign", PALETTE[3]), ("exponent", PALETTE[0]), ("mantissa", PALETTE[2])];
        for (role_index, &(role, color)) in roles.iter().enumerate() {
            let mut cells = Vec::new();
            let mut labels = Vec::new();
            for (r, (_, l)) in layouts.iter().enumerate() {
                let y = (rows - 1 - r) as f64;
                let (start, len) = match role_index {
                    0 => (0, l.sign),
                    1 => (l.sign, l.exponent),
                    _ => (l.sign + l.exponent, l.mantissa),
                };
                for b in start..start + len {
                    let b = f64::from(b);
                    cells.push(Rectangle::new([(b + 0.04, y - 0.32), (b + 0.96, y + 0.32)], color.filled()));
                }
                // An empty field (e8m0's sign and mantissa) gets no label.
                if len > 0 {
                    let mid = f64::from(start) + f64::from(len) / 2.0;
                    labels.push(Text::new(len.to_string(), (mid, y), centered(13, &WHITE)));
                }
            }
            chart
                .draw_series(cells)?
                .label(role)
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
            chart.draw_series(labels)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// Side-by-side heatmaps of small matrices, every cell annotated with its
/// value; rows top to bottom, as the matrix prints.
///
/// ```
/// use quantlab_lesson::{ndarray::array, plot};
/// let a = array![[1.0, 2.0], [3.0, 4.5]];
/// let fig = plot::heatmaps("Two panels", &[("left", a.view()), ("right", a.view())])?;
/// assert!(fig.svg().contains("4.5") && fig.svg().contains("right"));
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
pub fn heatmaps(title: &str, panels: &[(&str, ArrayView2<f64>)]) -> Result<Figure> {
    const WHAT: &str = "a heatmap";
    if panels.is_empty() || panels.iter().any(|(_, m)| m.is_empty()) {
        return Err(Core::Empty { what: WHAT }.into());
    }
    for (_, m) in panels {
        check_finite(WHAT, m.iter())?;
    }
    let width = 20 + 300 * panels.len() as u32;
    render(title, (width, 360), |area| {
        let cells = area.split_evenly((1, panels.len()));
        for (k, ((name, m), cell_area)) in panels.iter().zip(&cells).enumerate() {
            let (rows, cols) = m.dim();
            let (lo, hi) = m.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let base = PALETTE[k % PALETTE.len()];
            let mut chart = ChartBuilder::on(cell_area)
                .caption(*name, (FONT, 16))
                .margin(8)
                .x_label_area_size(38)
                .y_label_area_size(40)
                .build_cartesian_2d(-0.5f64..cols as f64 - 0.5, -0.5f64..rows as f64 - 0.5)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("column")
                .y_desc("row")
                .x_labels(cols.min(10))
                .y_labels(rows.min(10))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{:.0}", (rows - 1) as f64 - y))
                .draw()?;
            let annotate = rows * cols <= 100;
            let mut rects = Vec::with_capacity(rows * cols);
            let mut texts = Vec::new();
            for ((r, c), &v) in m.indexed_iter() {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                let t = 0.08 + 0.8 * t; // keep the lightest cells off pure white
                let mix = |w: u8, b: u8| (f64::from(w) * (1.0 - t) + f64::from(b) * t).round() as u8;
                let color = RGBColor(mix(255, base.0), mix(255, base.1), mix(255, base.2));
                let (x, y) = (c as f64, (rows - 1 - r) as f64);
                rects.push(Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], color.filled()));
                if annotate {
                    let ink = if t > 0.55 { WHITE } else { BLACK };
                    texts.push(Text::new(annot(v), (x, y), centered(13, &ink)));
                }
            }
            chart.draw_series(rects)?;
            chart.draw_series(texts)?;
        }
        Ok(())
    })
}

/// The lesson's four panels for a quantized matrix: the original values, the
/// integer codes, the dequantized values and the absolute error.
///
/// ```
/// use quantlab_lesson::prelude::*;
/// let x = array![[191.6, -13.5], [0.0, 728.6]];
/// let q = x.quantize(QuantSpec::new(DType::Int8))?;
/// let fig = quantlab_lesson::plot::quantization_heatmaps(&x, &q)?;
/// assert!(fig.svg().contains("quantized codes") && fig.svg().contains("728.6"));
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
pub fn quantization_heatmaps<A, S>(original: &ArrayBase<S, Ix2>, q: &Quantized<Ix2>) -> Result<Figure>
where
    A: Element,
    S: Data<Elem = A>,
{
    let x = original.mapv(Element::to_f64);
    let dq = q.dequantize()?.mapv(f64::from);
    if x.shape() != dq.shape() {
        return Err(Core::ShapeMismatch {
            what: "quantization heatmaps",
            left: x.shape().to_vec(),
            right: dq.shape().to_vec(),
        }
        .into());
    }
    let codes = q.codes().to_i32().mapv(f64::from);
    let err = (&x - &dq).mapv(f64::abs);
    let stats = quantlab::error_stats(&x, &dq)?;
    let title = format!("{} {} quantization: MSE {:.4}", q.dtype(), q.params().granularity, stats.mse);
    heatmaps(
        &title,
        &[
            ("original", x.view()),
            ("quantized codes", codes.view()),
            ("dequantized", dq.view()),
            ("absolute error", err.view()),
        ],
    )
}

/// A grouped bar chart: one group per x category, one coloured bar per series.
///
/// ```
/// use quantlab_lesson::plot::BarChart;
/// let fig = BarChart::new("Error by granularity")
///     .axes("granularity", "MSE")
///     .groups(["per-tensor", "per-channel"])
///     .series("symmetric", [2.5, 1.8])
///     .series("asymmetric", [1.6, 1.1])
///     .draw()?;
/// assert!(fig.svg().contains("per-channel") && fig.svg().contains("asymmetric"));
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    title: String,
    x_desc: String,
    y_desc: String,
    groups: Vec<String>,
    series: Vec<(String, Vec<f64>)>,
    log_y: bool,
    reference: Option<(String, f64)>,
}

impl BarChart {
    /// An empty chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        BarChart {
            title: title.into(),
            x_desc: String::new(),
            y_desc: String::new(),
            groups: Vec::new(),
            series: Vec::new(),
            log_y: false,
            reference: None,
        }
    }

    /// The axis labels.
    pub fn axes(mut self, x: impl Into<String>, y: impl Into<String>) -> Self {
        (self.x_desc, self.y_desc) = (x.into(), y.into());
        self
    }

    /// The categories along x.
    pub fn groups<I: IntoIterator<Item = T>, T: Into<String>>(mut self, groups: I) -> Self {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a series: one value per group, in group order.
    pub fn series(mut self, name: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        self.series.push((name.into(), values.into_iter().collect()));
        self
    }

    /// Uses a logarithmic y axis (values must then be positive).
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Draws a horizontal reference line at `y`, named in the legend.
    pub fn reference(mut self, label: impl Into<String>, y: f64) -> Self {
        self.reference = Some((label.into(), y));
        self
    }

    fn check(&self) -> Result<(f64, f64)> {
        const WHAT: &str = "a bar chart";
        if self.groups.is_empty() || self.series.is_empty() {
            return Err(Core::Empty { what: WHAT }.into());
        }
        for (_, values) in &self.series {
            if values.len() != self.groups.len() {
                return Err(Core::ShapeMismatch {
                    what: WHAT,
                    left: vec![self.groups.len()],
                    right: vec![values.len()],
                }
                .into());
            }
            check_finite(WHAT, values)?;
        }
        let all = || self.series.iter().flat_map(|(_, v)| v.iter().copied()).chain(self.reference.iter().map(|r| r.1));
        check_finite(WHAT, &all().collect::<Vec<_>>())?;
        let (lo, hi) = all().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if self.log_y {
            if lo <= 0.0 {
                return Err(Error::Plot {
                    title: self.title.clone(),
                    reason: format!("a log scale needs positive values, got {lo}: drop log_y or the value"),
                });
            }
            // Whole decades around the data, with headroom for the value labels.
            Ok((10f64.powf(lo.log10().floor()), 10f64.powf((hi * 3.0).log10().ceil())))
        } else {
            // 30% headroom keeps the value labels and the legend clear of the bars.
            Ok((lo.min(0.0) * 1.3, hi.max(0.0) * 1.3 + f64::EPSILON))
        }
    }

    /// Draws the chart.
    pub fn draw(&self) -> Result<Figure> {
        let (lo, hi) = self.check()?;
        let n = self.groups.len();
        let k = self.series.len();
        let width = (160 + n * (40 + 36 * k)).clamp(560, 1000) as u32;
        render(&self.title, (width, 420), |area| {
            let x_range = -0.5f64..n as f64 - 0.5;
            let x_fmt = |x: &f64| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < n {
                    self.groups[r as usize].clone()
                } else {
                    String::new()
                }
            };
            // The legend goes over the lower end of the chart, so that it hides no tall bar.
            let group_max = |g: usize| self.series.iter().map(|(_, v)| v[g]).fold(f64::MIN, f64::max);
            let legend_corner = if group_max(n - 1) < group_max(0) {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::UpperLeft
            };
            let bar_w = 0.8 / k as f64;
            let bars = |i: usize, bottom: f64| {
                let color = PALETTE[i % PALETTE.len()];
                self.series[i].1.iter().enumerate().map(move |(g, &v)| {
                    let x0 = g as f64 - 0.4 + i as f64 * bar_w;
                    Rectangle::new([(x0, bottom), (x0 + bar_w * 0.92, v)], color.filled())
                })
            };
            let labels = |i: usize| {
                let style = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
                self.series[i].1.iter().enumerate().map(move |(g, &v)| {
                    Text::new(short(v), (g as f64 - 0.4 + (i as f64 + 0.46) * bar_w, v), style.clone())
                })
            };
            macro_rules! finish {
                ($chart:ident, $bottom:expr) => {{
                    $chart
                        .configure_mesh()
                        .disable_x_mesh()
                        .x_desc(self.x_desc.as_str())
                        .y_desc(self.y_desc.as_str())
                        .x_labels(n)
                        .x_label_formatter(&x_fmt)
                        .y_label_formatter(&|y| short(*y))
                        .draw()?;
                    for (i, (name, _)) in self.series.iter().enumerate() {
                        let color = PALETTE[i % PALETTE.len()];
                        $chart
                            .draw_series(bars(i, $bottom))?
                            .label(name.as_str())
                            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
                        $chart.draw_series(labels(i))?;
                    }
                    if let Some((label, y)) = &self.reference {
                        let red = RGBColor(200, 0, 0);
                        $chart
                            .draw_series(DashedLineSeries::new(
                                [(-0.5, *y), (n as f64 - 0.5, *y)],
                                8,
                                5,
                                red.stroke_width(2),
                            ))?
                            .label(label.as_str())
                            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], red.stroke_width(2)));
                    }
                    $chart
                        .configure_series_labels()
                        .position(legend_corner)
                        .background_style(WHITE.mix(0.9))
                        .border_style(BLACK)
                        .draw()?;
                }};
            }
            if self.log_y {
                let mut chart = frame(&area).build_cartesian_2d(x_range, (lo..hi).log_scale())?;
                finish!(chart, lo);
            } else {
                let mut chart = frame(&area).build_cartesian_2d(x_range, lo..hi)?;
                finish!(chart, 0.0);
            }
            Ok(())
        })
    }
}

/// A line chart of named series of `(x, y)` points, markers on the points.
///
/// ```
/// use quantlab_lesson::plot::LineChart;
/// let fig = LineChart::new("Error against bits")
///     .axes("bits", "MSE")
///     .series("per-tensor", [(2.0, 0.3), (4.0, 0.02), (8.0, 0.0001)])
///     .log_y()
///     .draw()?;
/// assert!(fig.svg().contains("per-tensor") && fig.svg().contains("bits"));
/// # Ok::<(), quantlab_lesson::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    title: String,
    x_desc: String,
    y_desc: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
    log_y: bool,
}

impl LineChart {
    /// An empty chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            x_desc: String::new(),
            y_desc: String::new(),
            series: Vec::new(),
            log_y: false,
        }
    }

    /// The axis labels.
    pub fn axes(mut self, x: impl Into<String>, y: impl Into<String>) -> Self {
        (self.x_desc, self.y_desc) = (x.into(), y.into());
        self
    }

    /// Adds a series of points, drawn in the order given.
    pub fn series(mut self, name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        self.series.push((name.into(), points.into_iter().collect()));
        self
    }

    /// Uses a logarithmic y axis (values must then be positive).
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Draws the chart.
    pub fn draw(&self) -> Result<Figure> {
        const WHAT: &str = "a line chart";
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        if points.is_empty() {
            return Err(Core::Empty { what: WHAT }.into());
        }
        check_finite(WHAT, &points.iter().flat_map(|&(x, y)| [x, y]).collect::<Vec<_>>())?;
        let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        if self.log_y && y0 <= 0.0 {
            return Err(Error::Plot {
                title: self.title.clone(),
                reason: format!("a log scale needs positive values, got {y0}: drop log_y or the value"),
            });
        }
        let pad = ((x1 - x0) * 0.05).max(0.5);
        let x_range = x0 - pad..x1 + pad;
        render(&self.title, (760, 420), |area| {
            macro_rules! finish {
                ($chart:ident) => {{
                    $chart
                        .configure_mesh()
                        .x_desc(self.x_desc.as_str())
                        .y_desc(self.y_desc.as_str())
                        .x_label_formatter(&|x| short(*x))
                        .y_label_formatter(&|y| short(*y))
                        .draw()?;
                    for (i, (name, pts)) in self.series.iter().enumerate() {
                        let color = PALETTE[i % PALETTE.len()];
                        $chart
                            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                            .label(name.as_str())
                            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
                        $chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
                    }
                    $chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperRight)
                        .background_style(WHITE.mix(0.9))
                        .border_style(BLACK)
                        .draw()?;
                }};
            }
            let mut b = frame(&area);
            if self.log_y {
                let range = (10f64.powf(y0.log10().floor())..10f64.powf(y1.log10().ceil())).log_scale();
                let mut chart = b.build_cartesian_2d(x_range, range)?;
                finish!(chart);
            } else {
                let mut chart = b.build_cartesian_2d(x_range, y0.min(0.0)..y1 * 1.1 + f64::EPSILON)?;
                finish!(chart);
            }
            Ok(())
        })
    }
}

/// The model lesson's quality-against-size plot: for each weight format,
/// `1 - mean cosine` of the embeddings against f32 (log scale, lower is
/// better) at its bits per weight, one line per family of formats (integer
/// grids, float casts, block formats), each drawn from few bits to many.
#[cfg(feature = "model")]
pub fn quality_against_bits(reports: &[crate::model::FormatReport]) -> Result<Figure> {
    use crate::model::Format;
    let family = |name: &str| match Format::parse(name) {
        Ok(Format::Cast(_)) => "float casts (bf16, fp8, ...)",
        Ok(Format::Block(_)) => "block formats (MX, NF4, ggml)",
        _ => "integer grids (int8, int4, int2)",
    };
    let mut chart = LineChart::new("Does the model still work? Damage against bits per weight")
        .axes("bits per weight (scales included)", "1 - mean cosine vs f32 (lower is better)")
        .log_y();
    let mut families: Vec<&str> = Vec::new();
    for r in reports {
        if !families.contains(&family(&r.name)) {
            families.push(family(&r.name));
        }
    }
    for fam in families {
        let mut pts: Vec<(f64, f64)> = reports
            .iter()
            .filter(|r| family(&r.name) == fam)
            // A format that loses nothing (f32 itself) has no place on a log axis: floor it.
            .map(|r| (r.bits_per_weight, (1.0 - r.mean_cosine).max(1e-9)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart = chart.series(fam, pts);
    }
    chart.draw()
}

/// The model lesson's sensitivity plot: `1 - mean cosine` when one linear
/// layer alone is quantized, grouped by the kind of layer (query, key, ...,
/// output), one bar per encoder layer (log scale).
#[cfg(feature = "model")]
pub fn layer_sensitivity(title: &str, rows: &[crate::model::LayerSensitivity]) -> Result<Figure> {
    let kinds = crate::model::LINEAR_NAMES;
    let layers = rows.iter().map(|r| r.layer + 1).max().unwrap_or(0);
    let mut chart = BarChart::new(title)
        .axes("linear layer (quantized alone)", "1 - mean cosine vs f32")
        .groups(["query", "key", "value", "attention out", "intermediate", "output"])
        .log_y();
    for l in 0..layers {
        let values = kinds
            .iter()
            .map(|k| rows.iter().find(|r| r.layer == l && r.kind == *k).map_or(f64::NAN, |r| r.damage.max(1e-9)));
        chart = chart.series(format!("layer {l}"), values.collect::<Vec<_>>());
    }
    chart.draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</text>")).map(|(s, _)| s.trim()))
            .collect()
    }

    #[test]
    fn float_formats_draw_every_bit_with_a_legend() {
        let fig = float_formats().unwrap();
        let svg = fig.svg();
        assert!(svg.starts_with("<svg"));
        let t = texts(svg);
        for want in ["float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "sign", "exponent", "mantissa"] {
            assert!(t.contains(&want), "missing {want} in {t:?}");
        }
        assert!(t.iter().any(|s| s.starts_with("Floating-point formats")));
        assert!(t.contains(&"bit (most significant first)") && t.contains(&"format"));
        // Field widths written in the fields: fp32's 23 mantissa bits, bf16's 7, e4m3's 3.
        for width in ["23", "10", "7", "3", "2"] {
            assert!(t.contains(&width), "{width}");
        }
        // 32 + 16 + 16 + 8 + 8 bit cells, 3 legend swatches, background and legend box.
        assert!(count(svg, "<rect") >= 80 + 3, "{}", count(svg, "<rect"));
    }

    #[test]
    fn narrow_float_formats_draw_every_narrow_type() {
        let fig = narrow_float_formats().unwrap();
        let svg = fig.svg();
        let t = texts(svg);
        for d in NARROW_FLOAT_FORMATS {
            assert!(t.contains(&d.name()), "missing {} in {t:?}", d.name());
        }
        for want in ["sign", "exponent", "mantissa", "bit (most significant first)"] {
            assert!(t.contains(&want), "missing {want}");
        }
        // One bit cell per bit: eight float8 rows, two float6, one float4.
        let bits: u32 = NARROW_FLOAT_FORMATS.iter().map(|d| d.bits()).sum();
        assert_eq!(bits, 8 * 8 + 2 * 6 + 4);
        assert!(count(svg, "<rect") >= bits as usize + 3, "{}", count(svg, "<rect"));
        // Field widths: e8m0's 8 exponent bits, e2m1's 1 mantissa bit; e8m0's empty
        // sign and mantissa fields get no "0" label (the only "0" is the axis tick).
        for width in ["8", "5", "4", "3", "2", "1"] {
            assert!(t.contains(&width), "{width}");
        }
        assert_eq!(t.iter().filter(|s| **s == "0").count(), 1, "{t:?}");
    }

    #[test]
    fn heatmaps_annotate_every_cell() {
        let x = array![[191.6, -13.5, 728.6], [92.14, 295.5, -184.0], [0.0, 684.6, 245.5]];
        let q = {
            use quantlab::{QuantParams, QuantizeExt};
            x.quantize_with(DType::Int8, &QuantParams::per_tensor(3.5, -70)).unwrap()
        };
        let fig = quantization_heatmaps(&x, &q).unwrap();
        let t = texts(fig.svg());
        for want in ["original", "quantized codes", "dequantized", "absolute error", "column", "row"] {
            assert!(t.contains(&want), "missing {want}");
        }
        // The golden values of the lesson's example (PyTorch): codes and dequantized values.
        for want in ["191.6", "92.14", "-15", "-123", "127", "689.5", "-185.5", "39.1"] {
            assert!(t.contains(&want), "missing {want} in {t:?}");
        }
        assert!(fig.title().starts_with("int8 per-tensor quantization: MSE 170.875"), "{}", fig.title());
        assert!(count(fig.svg(), "<rect") >= 36);
        let bad = array![[f64::NAN]];
        assert!(matches!(heatmaps("x", &[("nan", bad.view())]), Err(Error::Quantlab(Core::NonFinite { .. }))));
        assert!(matches!(heatmaps("x", &[]), Err(Error::Quantlab(Core::Empty { .. }))));
    }

    #[test]
    fn bar_chart_has_a_bar_per_value_and_a_legend() {
        let chart = BarChart::new("Memory")
            .axes("model", "GiB")
            .groups(["7B", "70B"])
            .series("float32", [25.1, 257.0])
            .series("int4", [3.3, 32.5])
            .series("int8", [6.5, 64.0])
            .log_y()
            .reference("16 GiB", 16.0);
        let fig = chart.draw().unwrap();
        let t = texts(fig.svg());
        for want in ["Memory", "model", "GiB", "7B", "70B", "float32", "int4", "int8", "16 GiB", "25.1", "257", "3.3"] {
            assert!(t.contains(&want), "missing {want} in {t:?}");
        }
        let bad = BarChart::new("b").groups(["a", "b"]).series("s", [1.0]).draw().unwrap_err();
        assert!(matches!(bad, Error::Quantlab(Core::ShapeMismatch { .. })), "{bad}");
        let bad = BarChart::new("b").groups(["a"]).series("s", [0.0]).log_y().draw().unwrap_err();
        assert!(bad.to_string().contains("log scale needs positive values"), "{bad}");
        assert!(BarChart::new("b").draw().is_err());
    }

    #[test]
    fn line_chart_names_its_series() {
        let fig = LineChart::new("Error against bits")
            .axes("bits per value", "MSE")
            .series("per-tensor", [(2.0, 0.5), (4.0, 0.01), (8.0, 1e-4)])
            .series("per-group", [(2.0, 0.2), (4.0, 0.004), (8.0, 2e-5)])
            .log_y()
            .draw()
            .unwrap();
        let t = texts(fig.svg());
        for want in ["Error against bits", "bits per value", "MSE", "per-tensor", "per-group"] {
            assert!(t.contains(&want), "missing {want}");
        }
        assert_eq!(count(fig.svg(), "<circle"), 6);
        assert!(LineChart::new("e").draw().is_err());
    }

    #[test]
    fn short_labels() {
        for (v, want) in [
            (728.6, "728.6"),
            (92.14, "92.1"),
            (3.0, "3"),
            (0.01234, "0.0123"),
            (1.5e-5, "1.50e-5"),
            (1e-4, "1e-4"),
            (-14.0, "-14"),
        ] {
            assert_eq!(short(v), want, "{v}");
        }
    }

    #[test]
    fn figure_displays_as_html_for_evcxr() {
        let fig = float_formats().unwrap();
        assert!(format!("{fig:?}").starts_with("Figure { title: \"Floating-point formats"));
    }
    #[test]
    #[cfg(feature = "model")]
    fn model_lesson_plots_name_their_series() {
        use crate::model::{FormatReport, LayerSensitivity};
        let report = |name: &str, bits: f64, cos: f64| FormatReport {
            name: name.into(),
            bits_per_weight: bits,
            weight_bytes: 0,
            mean_cosine: cos,
            min_cosine: cos,
            nearest_changed: 0.0,
            forward_ms: 1.0,
        };
        let fig = quality_against_bits(&[
            report("int8", 8.1, 0.9999),
            report("int4", 5.0, 0.99),
            report("bf16", 16.0, 0.99999),
            report("mxfp4", 4.25, 0.98),
            report("f32", 32.0, 1.0),
        ])
        .unwrap();
        let t = texts(fig.svg());
        for want in
            ["integer grids (int8, int4, int2)", "float casts (bf16, fp8, ...)", "block formats (MX, NF4, ggml)"]
        {
            assert!(t.contains(&want), "missing {want} in {t:?}");
        }
        assert_eq!(count(fig.svg(), "<circle"), 5);
        let rows: Vec<LayerSensitivity> = (0..12)
            .map(|i| LayerSensitivity {
                name: format!("encoder.layer.{}.{}", i / 6, crate::model::LINEAR_NAMES[i % 6]),
                layer: i / 6,
                kind: crate::model::LINEAR_NAMES[i % 6],
                damage: 1e-4 * (i + 1) as f64,
            })
            .collect();
        let fig = layer_sensitivity("Alone", &rows).unwrap();
        let t = texts(fig.svg());
        for want in ["Alone", "layer 0", "layer 1", "query", "attention out", "intermediate", "output"] {
            assert!(t.contains(&want), "missing {want} in {t:?}");
        }
        assert!(!t.contains(&"layer 2"));
        assert!(quality_against_bits(&[]).is_err());
    }
}
