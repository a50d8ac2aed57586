//! Integration tests of the `quantlab-grade` command (one test binary, see Cargo.toml).

mod support;

mod cli;
mod course;
mod failures;
mod formats_lesson;
mod lesson;
mod model_lesson;
