//! The command line's side of files: progress bars, warnings, and a macro
//! over the typed float slices of a tensor. Reading and writing the formats
//! is the library's ([`quantlab::io`]).

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use quantlab::io::{OutTensor, Tensor};

/// Below this many tensors a progress bar is more noise than help.
const PROGRESS_MIN_TENSORS: usize = 8;

/// Runs `$body` with `$x` bound to the typed slice of a
/// [`quantlab::io::Floats`], whatever its element type: a generic closure,
/// which Rust does not have.
macro_rules! with_floats {
    ($floats:expr, $x:ident => $body:expr) => {
        match $floats {
            quantlab::io::Floats::F64($x) => $body,
            quantlab::io::Floats::F32($x) => $body,
            quantlab::io::Floats::F16($x) => $body,
            quantlab::io::Floats::BF16($x) => $body,
            quantlab::io::Floats::E4M3($x) => $body,
            quantlab::io::Floats::E5M2($x) => $body,
        }
    };
}
pub(crate) use with_floats;

/// Prints the warning for a float tensor that is copied through unread.
pub fn warn_unread(file: &Path, t: &Tensor<'_>) {
    eprintln!(
        "quantlab: warning: {}: {}: {:?} is not a type quantlab reads; copied unchanged",
        file.display(),
        t.name,
        t.dtype
    );
}

/// A progress bar on stderr for files with many tensors; hidden when stderr
/// is not a terminal, so logs and pipes stay clean.
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if len < PROGRESS_MIN_TENSORS || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} tensors [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// Writes `tensors` to `path` with the library's atomic writer, with a
/// progress bar named `what`.
pub fn write(
    path: &Path,
    tensors: Vec<OutTensor<'_, anyhow::Error>>,
    metadata: std::collections::HashMap<String, String>,
    what: &str,
) -> anyhow::Result<()> {
    let bar = progress(tensors.len(), what);
    let written = quantlab::io::write_safetensors(path, tensors, metadata, &|| bar.inc(1));
    bar.finish_and_clear();
    written
}
