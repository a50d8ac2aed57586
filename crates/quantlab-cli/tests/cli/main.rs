//! Integration tests of the `quantlab` binary, built into one test binary.
//!
//! Golden values come from PyTorch (`tests/fixtures/generate.py`); the
//! binary's outputs are read back with the `safetensors` crate.

mod bnb;
mod common;
mod errors;
mod formats;
mod gguf;
mod golden;
mod info_bench;
mod narrow;
mod round_trip;
mod select;
