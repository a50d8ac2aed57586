//! Running the binary and reading what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

/// Runs `quantlab` with `args`.
pub fn quantlab<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("the quantlab binary runs")
}

/// Runs `quantlab` and requires success; returns stdout.
pub fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = quantlab(args);
    assert!(
        out.status.success(),
        "quantlab {:?} failed: {}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// A file of `tests/fixtures/` at the workspace root.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// A safetensors file's bytes, kept alive for `SafeTensors` views.
pub struct Loaded(pub Vec<u8>);

impl Loaded {
    pub fn open(path: &Path) -> Loaded {
        Loaded(std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    pub fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.0).expect("a valid safetensors file")
    }

    pub fn metadata(&self) -> std::collections::HashMap<String, String> {
        let (_, meta) = SafeTensors::read_metadata(&self.0).expect("a valid safetensors file");
        meta.metadata().clone().unwrap_or_default()
    }
}

/// f32 values of an F32 tensor.
pub fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// Writes a safetensors file of `(name, dtype, shape, bytes)` tensors.
pub fn write_safetensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// The bytes of f32 values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Names of the entries of a directory (to see that nothing was left behind).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}
