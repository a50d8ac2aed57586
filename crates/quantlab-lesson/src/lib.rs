//! # quantlab-lesson
//!
//! What the lesson notebooks need beyond the [`quantlab`] library, starting
//! with a real pretrained [`model`]: sentence-transformers' all-MiniLM-L6-v2,
//! run in Rust with any of quantlab's weight formats.
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod model;
