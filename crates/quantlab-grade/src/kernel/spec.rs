//! Finding a kernel by name the way `jupyter kernelspec list` does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// A kernel's `kernel.json`: how to start it.
#[derive(Debug, Clone, Deserialize)]
pub struct KernelSpec {
    /// Command line; `{connection_file}` is replaced by the connection file's path.
    pub argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: std::collections::HashMap<String, String>,
}

/// The `kernels` folders Jupyter searches, in its order of precedence.
pub fn kernel_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = var("JUPYTER_PATH") {
        dirs.extend(std::env::split_paths(&p).map(|d| d.join("kernels")));
    }
    if let Some(p) = var("JUPYTER_DATA_DIR") {
        dirs.push(PathBuf::from(p).join("kernels"));
    } else if let Some(p) = var("XDG_DATA_HOME") {
        dirs.push(PathBuf::from(p).join("jupyter/kernels"));
    } else if let Some(home) = var("HOME") {
        dirs.push(PathBuf::from(home).join(".local/share/jupyter/kernels"));
    }
    for prefix in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = var(prefix) {
            dirs.push(PathBuf::from(p).join("share/jupyter/kernels"));
        }
    }
    dirs.push("/usr/local/share/jupyter/kernels".into());
    dirs.push("/usr/share/jupyter/kernels".into());
    dirs
}

/// Finds kernel `name` (e.g. `rust`) in the Jupyter search path.
pub fn find(name: &str) -> Result<KernelSpec> {
    let dirs = kernel_dirs();
    for dir in &dirs {
        let file = dir.join(name).join("kernel.json");
        if file.is_file() {
            return load(&file);
        }
    }
    bail!(
        "no `{name}` Jupyter kernel found (looked in {}); for Rust run `evcxr_jupyter --install`",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}

fn load(file: &Path) -> Result<KernelSpec> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let spec: KernelSpec =
        serde_json::from_str(&text).with_context(|| format!("{} is not a kernel spec", file.display()))?;
    if spec.argv.is_empty() {
        bail!("{}: empty argv", file.display());
    }
    Ok(spec)
}
