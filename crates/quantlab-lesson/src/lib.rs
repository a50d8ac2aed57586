//! # quantlab-lesson
//!
//! What the *Quantization* lesson's notebooks need beyond the [`quantlab`]
//! library: inline [`plot`]s, the [`lesson`]'s tables and comparisons, and
//! seeded sample [`data`], and a real pretrained [`model`]
//! (sentence-transformers' all-MiniLM-L6-v2) run in Rust with any of
//! quantlab's weight formats. The library stays free of plotting and randomness;
//! a notebook `:dep`s this crate and gets both.
//!
//! Everything at quantlab's root is re-exported here, so a cell (or a hidden
//! test) can name `quantlab_lesson::DType` as well as `quantlab_lesson::plot`,
//! and [`prelude`] is quantlab's prelude plus the lesson's items:
//!
//! ```
//! use quantlab_lesson::prelude::*;
//! let w = data::weights(4, 8, 7);
//! let q = w.quantize(QuantSpec::new(DType::Int8).symmetric())?;
//! assert!(q.error_stats(&w)?.max_abs <= f64::from(q.scale()[0]) / 2.0);
//! # Ok::<(), quantlab_lesson::Error>(())
//! ```
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod error;

pub mod blocks;
pub mod data;
pub mod lesson;
#[cfg(feature = "model")]
pub mod model;
pub mod plot;
pub mod prelude;

pub use error::{Error, Result};
pub use quantlab::*;

/// The crates a notebook cell needs, re-exported: a cell can only name crates
/// it `:dep`s, so one `:dep quantlab-lesson` brings them all (`half`,
/// `float8` and `ndarray` come with quantlab's root).
pub use plotters;
