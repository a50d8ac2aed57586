//! Finding a kernel by name the way Jupyter does.
//!
//! The folders `jupyter kernelspec list` searches are tried first, read from the
//! environment; when the kernel is not there, Jupyter itself is asked
//! (`jupyter kernelspec list --json`): it also searches folders we cannot derive from the
//! environment, such as the `share/jupyter/kernels` of the Python environment `jupyter`
//! runs in (a venv whose `bin` alone is on PATH).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

/// A kernel's `kernel.json`: how to start it.
#[derive(Debug, Clone, Deserialize)]
pub struct KernelSpec {
    /// Command line; `{connection_file}` is replaced by the connection file's path.
    pub argv: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: std::collections::HashMap<String, String>,
}

/// The `kernels` folders Jupyter searches, in its order of precedence, from this process's
/// environment.
pub fn kernel_dirs() -> Vec<PathBuf> {
    kernel_dirs_in(&|k| std::env::var_os(k))
}

fn kernel_dirs_in(env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
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

/// Finds kernel `name` (e.g. `rust`) as Jupyter would.
pub fn find(name: &str) -> Result<KernelSpec> {
    find_in(name, &|k| std::env::var_os(k))
}

/// [`find`] with the environment given as a lookup function (for tests).
fn find_in(name: &str, env: &dyn Fn(&str) -> Option<OsString>) -> Result<KernelSpec> {
    let dirs = kernel_dirs_in(env);
    for dir in &dirs {
        let file = dir.join(name).join("kernel.json");
        if file.is_file() {
            return load(&file);
        }
    }
    let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let Some(jupyter) = on_path("jupyter", env("PATH")) else {
        bail!(
            "no `{name}` Jupyter kernel found (looked in {looked}; no `jupyter` on PATH to ask); \
             for Rust run `evcxr_jupyter --install`"
        );
    };
    match ask_jupyter(&jupyter, name)? {
        Some(spec) => Ok(spec),
        None => bail!(
            "no `{name}` Jupyter kernel found (looked in {looked}, and `{} kernelspec list --json` \
             does not list it); for Rust run `evcxr_jupyter --install`",
            jupyter.display()
        ),
    }
}

/// The first executable file `program` in the folders of `path`.
fn on_path(program: &str, path: Option<OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&path?)
        .map(|d| d.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Asks `jupyter kernelspec list --json` for kernel `name`: `Ok(None)` when Jupyter answers
/// without it, an error when Jupyter cannot be run or answers something unreadable.
fn ask_jupyter(jupyter: &Path, name: &str) -> Result<Option<KernelSpec>> {
    let out = Command::new(jupyter)
        .args(["kernelspec", "list", "--json"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{} kernelspec list --json`", jupyter.display()))?;
    if !out.status.success() {
        bail!(
            "`{} kernelspec list --json` failed ({}): {}",
            jupyter.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
    }
    let listing: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("`{} kernelspec list --json` printed no JSON", jupyter.display()))?;
    let Some(entry) = listing.get("kernelspecs").and_then(|k| k.get(name)) else {
        return Ok(None);
    };
    // The kernel.json in the resource folder is what Jupyter itself starts; the `spec`
    // copy in the listing serves when the folder cannot be read.
    if let Some(dir) = entry.get("resource_dir").and_then(Value::as_str) {
        let file = Path::new(dir).join("kernel.json");
        if file.is_file() {
            return load(&file).map(Some);
        }
    }
    let spec = entry.get("spec").cloned().unwrap_or(Value::Null);
    let spec: KernelSpec =
        serde_json::from_value(spec).with_context(|| format!("Jupyter lists kernel `{name}` without a usable spec"))?;
    if spec.argv.is_empty() {
        bail!("Jupyter lists kernel `{name}` with an empty argv");
    }
    Ok(Some(spec))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A venv as `python -m venv` lays it out, whose `jupyter` answers `kernelspec list
    /// --json` with the kernel in the venv's own share/jupyter/kernels, as the real one does.
    fn fake_venv(root: &Path) -> PathBuf {
        let venv = root.join("venv");
        let kernel = venv.join("share/jupyter/kernels/venv-only");
        std::fs::create_dir_all(&kernel).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(
            kernel.join("kernel.json"),
            r#"{"argv": ["venv-kernel", "--connection", "{connection_file}"], "env": {"A": "1"}}"#,
        )
        .unwrap();
        let listing = serde_json::json!({"kernelspecs": {"venv-only": {
            "resource_dir": kernel, "spec": {"argv": ["from-listing"], "env": {}}}}});
        let script = venv.join("bin/jupyter");
        std::fs::write(
            &script,
            format!("#!/bin/sh\n[ \"$*\" = 'kernelspec list --json' ] || exit 3\ncat <<'EOF'\n{listing}\nEOF\n"),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        venv
    }

    fn env_with(path: OsString, home: PathBuf) -> impl Fn(&str) -> Option<OsString> {
        move |k| match k {
            "PATH" => Some(path.clone()),
            "HOME" => Some(home.clone().into()),
            _ => None,
        }
    }

    #[test]
    fn a_kernel_only_jupyter_knows_is_found_by_asking_it() {
        let tmp = tempfile::tempdir().unwrap();
        let venv = fake_venv(tmp.path());
        let path = std::env::join_paths([tmp.path().join("nothing"), venv.join("bin")]).unwrap();
        let env = env_with(path, tmp.path().join("home"));
        // None of the folders read from the environment holds it...
        assert!(kernel_dirs_in(&env).iter().all(|d| !d.join("venv-only").exists()));
        // ...but Jupyter lists it, and its kernel.json is what gets started.
        let spec = find_in("venv-only", &env).unwrap();
        assert_eq!(spec.argv, ["venv-kernel", "--connection", "{connection_file}"]);
        assert_eq!(spec.env["A"], "1");
        let err = find_in("absent", &env).unwrap_err().to_string();
        assert!(err.contains("kernelspec list --json` does not list it"), "{err}");
    }

    #[test]
    fn the_listing_spec_serves_when_the_resource_dir_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let venv = fake_venv(tmp.path());
        std::fs::remove_file(venv.join("share/jupyter/kernels/venv-only/kernel.json")).unwrap();
        let env = env_with(venv.join("bin").into(), tmp.path().join("home"));
        assert_eq!(find_in("venv-only", &env).unwrap().argv, ["from-listing"]);
    }

    #[test]
    fn without_jupyter_the_error_says_where_it_looked() {
        let tmp = tempfile::tempdir().unwrap();
        let env = env_with(tmp.path().into(), tmp.path().join("home"));
        let err = find_in("rust", &env).unwrap_err().to_string();
        assert!(err.contains("no `jupyter` on PATH") && err.contains(".local/share/jupyter/kernels"), "{err}");
    }
}
