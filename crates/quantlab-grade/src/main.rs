//! The `quantlab-grade` command. Exit codes: 0 when every submission was graded (whatever
//! the score), 1 when something could not be graded or written, 2 for bad arguments.

mod args;
mod batch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use args::{Args, Cmd};
use quantlab_grade::grade::Options;
use quantlab_grade::kernel::spec;
use quantlab_grade::notebook::Notebook;
use quantlab_grade::{pool, release, validate};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quantlab-grade: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn options(timeout: f64) -> Result<Options> {
    if !(timeout.is_finite() && timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds, got {timeout}");
    }
    let timeout = Duration::from_secs_f64(timeout);
    let defaults = Options::default();
    let lesson_timeout = defaults.lesson_timeout.max(timeout);
    Ok(Options { timeout, lesson_timeout, ..defaults })
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Cmd::Release { source, output } => {
            let nb = Notebook::load(&source)?;
            let rel = release::release(&nb).with_context(|| format!("cannot release {}", source.display()))?;
            rel.save(&output)?;
            println!("wrote {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Grade { submissions, source, json, executed, feedback, csv, jobs, build_dir, timeout, kernel } => {
            let batch = batch::Batch {
                opts: options(timeout)?,
                kernel,
                sources: source,
                submissions,
                jobs: jobs as usize,
                build_root: build_dir.unwrap_or_else(pool::default_root),
                out: batch::Outputs { json, executed, feedback, csv },
            };
            let failures = batch.run()?;
            Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Cmd::Validate { submission, timeout, kernel } => {
            let slot = pool::take(&pool::default_root()).ok();
            let opts = Options { build_dir: slot.as_ref().map(|s| s.dir().to_path_buf()), ..options(timeout)? };
            let nb = Notebook::load(&submission)?;
            let spec = spec::find(&kernel)?;
            let report = validate::validate(&spec, &nb, &parent_dir(&submission), &opts)?;
            println!("visible tests only; the hidden tests decide the grade");
            print!("{}", report.table());
            Ok(ExitCode::SUCCESS)
        }
    }
}
