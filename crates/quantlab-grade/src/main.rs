//! The `quantlab-grade` command. Exit codes: 0 when every submission was graded (whatever
//! the score), 1 when something could not be graded or written, 2 for bad arguments.

mod args;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use args::{Args, Cmd};
use quantlab_grade::grade::{self, Options};
use quantlab_grade::kernel::spec;
use quantlab_grade::notebook::Notebook;
use quantlab_grade::{release, validate};

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

fn stem(p: &Path) -> String {
    p.file_stem().map_or_else(|| "submission".into(), |s| s.to_string_lossy().into_owned())
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
        Cmd::Grade { submissions, source, json, executed, timeout, kernel } => {
            let opts = options(timeout)?;
            let src = Notebook::load(&source)?;
            let spec = spec::find(&kernel)?;
            // The locked `:dep` cell comes from the source, so its relative paths hold from there.
            let cwd = parent_dir(&source);
            let many = submissions.len() > 1;
            for dir in [&json, &executed].into_iter().flatten().filter(|_| many) {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let mut failures = 0;
            for sub in &submissions {
                if many {
                    println!("== {}", sub.display());
                }
                let out = Notebook::load(sub).and_then(|nb| grade::grade(&spec, &src, &nb, &cwd, &opts));
                let (report, copy) = match out {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("quantlab-grade: cannot grade {}: {e:#}", sub.display());
                        failures += 1;
                        continue;
                    }
                };
                print!("{}", report.table());
                let json_path =
                    json.as_ref().map(|j| if many { j.join(format!("{}.json", stem(sub))) } else { j.clone() });
                if let Some(p) = &json_path {
                    let text = serde_json::to_string_pretty(&report)? + "\n";
                    std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
                }
                let copy_path = match (&executed, &json_path) {
                    (Some(e), _) if many => Some(e.join(format!("{}.executed.ipynb", stem(sub)))),
                    (Some(e), _) => Some(e.clone()),
                    (None, Some(j)) => Some(j.with_extension("executed.ipynb")),
                    (None, None) => None,
                };
                if let Some(p) = copy_path {
                    if p.canonicalize().ok() == sub.canonicalize().ok() {
                        bail!("refusing to overwrite the submission {} with the executed copy", sub.display());
                    }
                    copy.save(&p)?;
                }
            }
            Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Cmd::Validate { submission, timeout, kernel } => {
            let opts = options(timeout)?;
            let nb = Notebook::load(&submission)?;
            let spec = spec::find(&kernel)?;
            let report = validate::validate(&spec, &nb, &parent_dir(&submission), &opts)?;
            println!("visible tests only; the hidden tests decide the grade");
            print!("{}", report.table());
            Ok(ExitCode::SUCCESS)
        }
    }
}
