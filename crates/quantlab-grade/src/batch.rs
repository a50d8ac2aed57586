//! `quantlab-grade grade` over many submissions: each graded in its own kernel, `--jobs` at
//! a time, each kernel in a warm build directory of its own; results handled in the
//! submissions' order whatever order they finish in, so every output is the same as with
//! `--jobs 1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};

use quantlab_grade::feedback::{self, Heading};
use quantlab_grade::grade::{self, Options};
use quantlab_grade::gradebook::{self, write_staged};
use quantlab_grade::kernel::spec::{self, KernelSpec};
use quantlab_grade::lesson::{self, Question};
use quantlab_grade::notebook::Notebook;
use quantlab_grade::pool;
use quantlab_grade::report::Report;
use quantlab_grade::submission::{self, Source, Submission};

/// What to write, and where.
pub struct Outputs {
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--executed`.
    pub executed: Option<PathBuf>,
    /// `--feedback`.
    pub feedback: Option<PathBuf>,
    /// `--csv`.
    pub csv: Option<PathBuf>,
}

/// One grading run.
pub struct Batch {
    /// The kernel's name.
    pub kernel: String,
    /// The assignments' source notebooks.
    pub sources: Vec<PathBuf>,
    /// Files or folders.
    pub submissions: Vec<PathBuf>,
    /// Limits.
    pub opts: Options,
    /// Kernels at once.
    pub jobs: usize,
    /// Root of the warm build directories.
    pub build_root: PathBuf,
    /// Outputs.
    pub out: Outputs,
}

/// The files nbgrader keeps beside a submission that its `release_feedback` needs beside
/// the feedback page.
const NBGRADER_BESIDE: [&str; 2] = ["timestamp.txt", "submission_secret.txt"];

struct Graded {
    source: usize,
    report: Report,
    executed: Notebook,
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `dir/<stem><suffix>`, the suffix appended to the stem's last component as it is.
fn beside(dir: &Path, stem: &Path, suffix: &str) -> PathBuf {
    let mut p = dir.join(stem).into_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

struct Paths {
    json: Option<PathBuf>,
    executed: Option<PathBuf>,
    feedback: Option<PathBuf>,
}

fn paths(out: &Outputs, sub: &Submission, folders: bool) -> Paths {
    let stem = sub.output_stem();
    let json = out.json.as_ref().map(|j| if folders { beside(j, &stem, ".json") } else { j.clone() });
    let executed = match (&out.executed, &json) {
        (Some(e), _) if folders => Some(beside(e, &stem, ".executed.ipynb")),
        (Some(e), _) => Some(e.clone()),
        (None, Some(j)) => Some(j.with_extension("executed.ipynb")),
        (None, None) => None,
    };
    let feedback = out.feedback.as_ref().map(|f| beside(f, &stem, ".html"));
    Paths { json, executed, feedback }
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn grade_one(spec: &KernelSpec, sub: &Submission, sources: &[Source], opts: &Options) -> Result<Graded> {
    let nb = Notebook::load(&sub.path)?;
    let source = submission::match_source(sources, sub, &nb)?;
    let src = &sources[source];
    // The locked `:dep` cell comes from the source, so its relative paths hold from there.
    let (report, executed) = grade::grade(spec, &src.notebook, &nb, &parent_dir(&src.path), opts)?;
    Ok(Graded { source, report, executed })
}

impl Batch {
    /// Grades every submission; returns how many could not be graded or written.
    pub fn run(self) -> Result<usize> {
        let sources = self.sources.iter().map(|p| Source::load(p)).collect::<Result<Vec<_>>>()?;
        submission::check_sources(&sources)?;
        let questions: Vec<Vec<Question>> = sources
            .iter()
            .map(|s| lesson::questions(&s.notebook).with_context(|| format!("in {}", s.path.display())))
            .collect::<Result<_>>()?;
        let subs = submission::collect(&self.submissions)?;
        let folders = subs.len() > 1 || subs.iter().any(Submission::in_nbgrader_layout);
        let all_paths: Vec<Paths> = subs.iter().map(|s| paths(&self.out, s, folders)).collect();
        // Refuse up front, before any kernel runs, to write over a submission or a source.
        for p in all_paths.iter().flat_map(|p| [&p.json, &p.executed, &p.feedback]).flatten() {
            let inputs = subs.iter().map(|s| s.path.as_path()).chain(self.sources.iter().map(PathBuf::as_path));
            if let Some(i) = inputs.into_iter().find(|i| same_file(i, p)) {
                bail!("refusing to overwrite {} with an output", i.display());
            }
        }

        // Found after the inputs are read, so that a typo in a path is reported first.
        let spec = spec::find(&self.kernel)?;
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel::<(usize, Result<Graded>)>();
        let jobs = self.jobs.clamp(1, subs.len().max(1));
        let mut failures = 0;
        let mut rows = Vec::new();
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                let tx = tx.clone();
                let (next, subs, sources, me, spec) = (&next, &subs, &sources, &self, &spec);
                scope.spawn(move || {
                    // One build directory for the worker's whole life: warm after its first
                    // submission. Without one, kernels build in private temporary folders.
                    let slot = pool::take(&me.build_root)
                        .inspect_err(|e| {
                            eprintln!("quantlab-grade: no shared build directory ({e:#}); building privately")
                        })
                        .ok();
                    let opts = Options { build_dir: slot.as_ref().map(|s| s.dir().to_path_buf()), ..me.opts.clone() };
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(sub) = subs.get(i) else { break };
                        let r = grade_one(spec, sub, sources, &opts);
                        if tx.send((i, r)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let mut pending = BTreeMap::new();
            let mut done = 0;
            for (i, r) in rx {
                pending.insert(i, r);
                while let Some(r) = pending.remove(&done) {
                    let sub = &subs[done];
                    let outcome = r.and_then(|g| {
                        self.write(sub, &sources, &questions, &all_paths[done], &g, folders)?;
                        let src = &sources[g.source];
                        Ok(gradebook::rows(sub, sub.assignment.as_deref().unwrap_or(&src.name), &g.report))
                    });
                    match outcome {
                        Ok(r) => rows.extend(r),
                        Err(e) => {
                            eprintln!("quantlab-grade: cannot grade {}: {e:#}", sub.path.display());
                            failures += 1;
                        }
                    }
                    done += 1;
                }
            }
        });
        if let Some(csv) = &self.out.csv {
            write_staged(csv, &gradebook::to_csv(rows)?)?;
        }
        Ok(failures)
    }

    fn write(
        &self,
        sub: &Submission,
        sources: &[Source],
        questions: &[Vec<Question>],
        paths: &Paths,
        g: &Graded,
        folders: bool,
    ) -> Result<()> {
        if folders {
            println!("== {}", sub.path.display());
        }
        print!("{}", g.report.table());
        if let Some(p) = &paths.json {
            write_staged(p, (serde_json::to_string_pretty(&g.report)? + "\n").as_bytes())?;
        }
        if let Some(p) = &paths.executed {
            write_staged(p, g.executed.to_text().as_bytes())?;
        }
        if let Some(p) = &paths.feedback {
            let src = &sources[g.source];
            let head = Heading {
                assignment: sub.assignment.as_deref().unwrap_or(&src.name),
                student_id: &sub.student_id,
                notebook: &sub.notebook,
                timestamp: &sub.timestamp,
            };
            write_staged(p, feedback::page(&head, &questions[g.source], &g.report, &g.executed).as_bytes())?;
            // `nbgrader release_feedback` names each page after the submission's secret and
            // timestamp, which nbgrader's own generate_feedback copies beside the page.
            if sub.in_nbgrader_layout() {
                for name in NBGRADER_BESIDE {
                    let from = parent_dir(&sub.path).join(name);
                    if from.is_file() {
                        let bytes = std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
                        write_staged(&parent_dir(p).join(name), &bytes)?;
                    }
                }
            }
        }
        Ok(())
    }
}
