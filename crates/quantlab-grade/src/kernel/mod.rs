//! Driving a Jupyter kernel (evcxr's `rust`) over the messaging protocol.

mod client;
pub mod spec;
pub mod wire;

pub use client::{CellRun, Kernel, Outcome, StreamText};
