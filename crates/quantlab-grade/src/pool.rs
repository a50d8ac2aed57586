//! Warm build directories for grading kernels, one per kernel running at a time.
//!
//! evcxr compiles a notebook's `:dep` crates into its build directory (`EVCXR_TMPDIR`). A
//! fresh directory per learner would rebuild the lesson's crate for every submission; one
//! directory shared by kernels running side by side breaks (they overwrite each other's
//! build). So the grader keeps numbered directories `slot-0`, `slot-1`, ... under one root,
//! and each kernel takes one that no other grading kernel holds, by an exclusive lock on its
//! `.grader.lock` file held for as long as the slot is in use (also across grader
//! processes). `--jobs N` grading thus warms N directories once and reuses them.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The most slots under one root; more kernels than this at once is a mistake.
const MAX_SLOTS: usize = 64;

/// A build directory held for one kernel at a time; released when dropped.
#[derive(Debug)]
pub struct Slot {
    dir: PathBuf,
    _lock: File,
}

impl Slot {
    /// The directory to build in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The default root: `$XDG_CACHE_HOME/quantlab-grade`, else `~/.cache/quantlab-grade`.
pub fn default_root() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    match (var("XDG_CACHE_HOME"), var("HOME")) {
        (Some(c), _) => c.join("quantlab-grade"),
        (None, Some(h)) => h.join(".cache/quantlab-grade"),
        (None, None) => std::env::temp_dir().join("quantlab-grade"),
    }
}

/// Takes the lowest-numbered free slot under `root`, creating it if needed.
pub fn take(root: &Path) -> Result<Slot> {
    for i in 0..MAX_SLOTS {
        let dir = root.join(format!("slot-{i}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the build directory {}", dir.display()))?;
        let lock_path = dir.join(".grader.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => return Ok(Slot { dir, _lock: lock }),
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
    }
    bail!("all {MAX_SLOTS} build directories under {} are in use", root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_and_reused_once_released() {
        let tmp = tempfile::tempdir().unwrap();
        let a = take(tmp.path()).unwrap();
        let b = take(tmp.path()).unwrap();
        assert_eq!(a.dir(), tmp.path().join("slot-0"));
        assert_eq!(b.dir(), tmp.path().join("slot-1"));
        drop(a);
        let c = take(tmp.path()).unwrap();
        assert_eq!(c.dir(), tmp.path().join("slot-0"), "a released slot, warm, is taken first");
    }
}
