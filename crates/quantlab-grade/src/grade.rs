//! `quantlab-grade grade`: run a submission with the hidden tests back and score it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::kernel::{CellRun, Kernel, Outcome, spec::KernelSpec};
use crate::notebook::{self, Notebook};
use crate::plan::{Kind, Plan, Planned, plan};
use crate::report::{QuestionReport, Report, Status};

/// Limits for one grading run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limit for the learner's cells (answers and cells they added): `--timeout`.
    pub timeout: Duration,
    /// Limit for the lesson's own cells and the test cells, which the instructor vouches for;
    /// generous, since the first cell binding a variable takes seconds on a busy machine.
    pub lesson_timeout: Duration,
    /// Limit for cells that fetch and build a crate (`:dep`), never below `timeout`.
    pub dep_timeout: Duration,
    /// Bytes of each output stream kept per cell; a learner cell printing more fails.
    pub output_cap: usize,
    /// The kernel's build directory (see [`crate::pool`]); `None`: a private temporary one.
    pub build_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            lesson_timeout: Duration::from_secs(60),
            dep_timeout: Duration::from_secs(180),
            output_cap: 256 * 1024,
            build_dir: None,
        }
    }
}

impl Options {
    /// The time limit of a cell: `:dep` cells get `dep_timeout`, learner cells `timeout`,
    /// lesson and test cells `lesson_timeout`.
    fn limit(&self, cell: &Planned) -> Duration {
        let base = match cell.kind {
            Kind::Solution(_) | Kind::Free => self.timeout,
            Kind::Lesson | Kind::Test(_) | Kind::Text => self.lesson_timeout,
        };
        if cell.code.lines().any(|l| l.trim_start().starts_with(":dep")) { self.dep_timeout.max(base) } else { base }
    }
}

/// The line a test cell prints when every assertion before it held. The nonce is new for
/// every grading run and only ever appears in code the grader appends after the tests, so
/// learner code that runs earlier cannot print it.
pub fn pass_line(nonce: &str, question: &str) -> String {
    format!("{nonce} {question} ok")
}

/// The test cell as run: first the default panic hook is restored (learner code could have
/// installed a silent one, hiding failed assertions; this line also keeps the cell from
/// starting with `:`, which evcxr would read as a command), then the tests, then the pass line.
fn with_pass_line(code: &str, line: &str) -> String {
    format!("{RESET_PANIC_HOOK}\n{}\n::std::println!(\"{{}}\", {line:?});\n", code.trim_end())
}

const RESET_PANIC_HOOK: &str = "let _ = ::std::panic::take_hook();";

/// Whether evcxr lost the cell's state: kernel gone, time-out, or its runner process exited.
fn state_lost(run: &CellRun) -> bool {
    run.outcome != Outcome::Completed || run.error.as_deref().is_some_and(|e| e.contains("Subprocess terminated"))
}

/// Runs the plan's code cells in order; `skip` may leave a cell out given earlier results.
///
/// Restart rule: when a cell times out, kills the kernel, or ends evcxr's runner process
/// (`std::process::exit`), the kernel is restarted and every earlier non-test code cell that
/// ran cleanly is replayed (outputs discarded), so later questions see the state they would
/// have had; the failing cell itself is not replayed.
pub fn run_cells(
    kernel: &mut Kernel,
    cells: &[Planned],
    opts: &Options,
    nonce: &str,
    question_ids: &[String],
    mut skip: impl FnMut(usize, &[Option<CellRun>]) -> bool,
    notes: &mut Vec<String>,
) -> Result<Vec<Option<CellRun>>> {
    let mut runs: Vec<Option<CellRun>> = vec![None; cells.len()];
    let mut replayable: Vec<usize> = Vec::new();
    for i in 0..cells.len() {
        let c = &cells[i];
        if c.kind == Kind::Text || skip(i, &runs) {
            continue;
        }
        let (code, watch) = match &c.kind {
            Kind::Test(q) => {
                let line = pass_line(nonce, &question_ids[*q]);
                (with_pass_line(&c.code, &line), Some(line))
            }
            _ => (c.code.clone(), None),
        };
        let run = kernel.execute(&code, opts.limit(c), watch.as_deref())?;
        if state_lost(&run) {
            kernel.restart()?;
            for &j in &replayable {
                let r = kernel.execute(&cells[j].code, opts.limit(&cells[j]), None)?;
                if !r.clean() {
                    notes.push(format!("cell {j} failed when replayed after a kernel restart"));
                }
            }
        } else if run.clean() && !matches!(c.kind, Kind::Test(_)) {
            replayable.push(i);
        }
        runs[i] = Some(run);
    }
    Ok(runs)
}

/// `s` without ANSI colour and cursor sequences (evcxr colours its errors).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn first_lines(s: &str, n: usize) -> String {
    let clean = strip_ansi(s);
    let lines: Vec<&str> = clean.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).take(n).collect();
    lines.join(" | ")
}

/// The message of a panic: the lines after `thread '…' panicked at …`, before the backtrace.
fn panic_message(excerpt: &str) -> String {
    let clean = strip_ansi(excerpt);
    let lines: Vec<&str> = clean
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .skip(1)
        .take_while(|l| !l.starts_with("stack backtrace:") && !l.starts_with("note:"))
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .take(4)
        .collect();
    if lines.is_empty() { first_lines(&clean, 1) } else { lines.join(" | ") }
}

/// Why a learner's cell did not run cleanly, if it did not.
pub fn cell_failure(run: &CellRun, cap: usize) -> Option<(Status, String)> {
    Some(match run.outcome {
        Outcome::TimedOut => {
            (Status::Timeout, "the cell did not finish within the time limit; the kernel was restarted".into())
        }
        Outcome::KernelDied => (Status::Failed, "the kernel process died while running the cell".into()),
        Outcome::Completed => {
            if let Some(e) = &run.error {
                if e.contains("Subprocess terminated") {
                    (
                        Status::Failed,
                        format!("the cell ended the process ({}); is there a std::process::exit?", first_lines(e, 1)),
                    )
                } else {
                    (Status::CompileError, format!("does not compile: {}", first_lines(e, 2)))
                }
            } else if let Some(p) = &run.panic {
                if p.contains("your code here") || p.contains("not yet implemented") {
                    (Status::Panic, "not answered yet: the cell still holds todo!(\"your code here\")".into())
                } else {
                    (Status::Panic, format!("panicked: {}", panic_message(p)))
                }
            } else if run.stdout.dropped + run.stderr.dropped > 0 {
                let n = run.stdout.text.len() + run.stdout.dropped + run.stderr.text.len() + run.stderr.dropped;
                (Status::Failed, format!("printed {n} bytes, more than the {cap}-byte limit per stream"))
            } else if run.reply_status != "ok" {
                (Status::Failed, format!("the kernel answered `{}`", run.reply_status))
            } else {
                return None;
            }
        }
    })
}

/// What a solution cell shows: its value's `text/plain`, else what it printed, trimmed.
pub fn shown(run: &CellRun) -> String {
    run.result.clone().unwrap_or_else(|| run.stdout.text.clone()).trim().to_string()
}

/// Scores each question from the runs.
fn score(plan: &Plan, runs: &[Option<CellRun>], cap: usize) -> Vec<QuestionReport> {
    let mut out = Vec::new();
    for (qi, q) in plan.questions.iter().enumerate() {
        let report = |status: Status, feedback: String| QuestionReport {
            id: q.id.clone(),
            points: if status == Status::Passed { q.points } else { 0.0 },
            max_points: q.points,
            status,
            feedback,
        };
        if !plan.tampered[qi].is_empty() {
            out.push(report(Status::Tampered, format!("{}; this question scores 0", plan.tampered[qi].join("; "))));
            continue;
        }
        let sol_at =
            q.solution_id.as_ref().and_then(|id| plan.cells.iter().position(|c| c.kind == Kind::Solution(id.clone())));
        if q.solution_id.is_some() && sol_at.is_none() {
            out.push(report(Status::Missing, "the answer cell was deleted from the notebook".into()));
            continue;
        }
        let sol_run = sol_at.and_then(|i| runs[i].as_ref());
        if let Some((status, why)) = sol_run.and_then(|r| cell_failure(r, cap)) {
            out.push(report(status, why));
            continue;
        }
        if let (Some(expected), Some(run)) = (&q.expect_output, sol_run)
            && shown(run) != *expected
        {
            let got = shown(run);
            let why = if got.is_empty() {
                "the answer cell shows nothing".to_string()
            } else {
                format!("the answer cell shows `{got}`, which is not the expected line")
            };
            out.push(report(Status::Failed, why));
            continue;
        }
        let test_at = plan.cells.iter().position(|c| c.kind == Kind::Test(qi));
        let Some(test) = test_at.and_then(|i| runs[i].as_ref()) else {
            out.push(report(Status::Failed, "the tests did not run".into()));
            continue;
        };
        let (status, why) = match test.outcome {
            Outcome::TimedOut => (Status::Timeout, "the tests did not finish within the time limit".to_string()),
            Outcome::KernelDied => (Status::Failed, "the kernel died while running the tests".to_string()),
            Outcome::Completed if test.error.as_deref().is_some_and(|e| e.contains("Subprocess terminated")) => {
                (Status::Failed, "the process ended while running the tests".to_string())
            }
            Outcome::Completed if test.error.is_some() => (
                Status::Failed,
                format!(
                    "the tests do not compile against this answer: {}",
                    first_lines(test.error.as_deref().unwrap_or(""), 2)
                ),
            ),
            Outcome::Completed if test.panic.as_deref().is_some_and(|p| p.contains("your code here")) => {
                (Status::Failed, "not answered yet: the tests reached todo!(\"your code here\")".to_string())
            }
            Outcome::Completed if test.panic.is_some() => {
                (Status::Failed, format!("a test failed: {}", panic_message(test.panic.as_deref().unwrap_or(""))))
            }
            Outcome::Completed if test.watch_seen => (Status::Passed, "all tests passed".to_string()),
            Outcome::Completed => (Status::Failed, "the tests did not confirm the answer".to_string()),
        };
        out.push(report(status, why));
    }
    out
}

/// Grades `submission` against `source` with a fresh kernel started in `cwd`.
/// Returns the report and an executed copy of the graded notebook.
pub fn grade(
    spec: &KernelSpec,
    source: &Notebook,
    submission: &Notebook,
    cwd: &Path,
    opts: &Options,
) -> Result<(Report, Notebook)> {
    let plan = plan(source, submission)?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = plan.questions.iter().map(|q| q.id.clone()).collect();
    let mut notes = Vec::new();
    let mut kernel = Kernel::start_in(spec.clone(), cwd, opts.build_dir.as_deref())?;
    kernel.output_cap = opts.output_cap;
    // Tests of a tampered question, or of a question whose answer already failed, are not run.
    let solution_of: Vec<Option<usize>> = plan
        .questions
        .iter()
        .map(|q| {
            q.solution_id.as_ref().and_then(|id| plan.cells.iter().position(|c| c.kind == Kind::Solution(id.clone())))
        })
        .collect();
    let runs = run_cells(
        &mut kernel,
        &plan.cells,
        opts,
        &nonce,
        &ids,
        |i, runs| match plan.cells[i].kind {
            Kind::Test(q) => {
                !plan.tampered[q].is_empty()
                    || solution_of[q]
                        .and_then(|s| runs[s].as_ref())
                        .is_some_and(|r| cell_failure(r, opts.output_cap).is_some())
            }
            _ => false,
        },
        &mut notes,
    )?;
    for (i, (c, r)) in plan.cells.iter().zip(&runs).enumerate() {
        if c.kind == Kind::Free
            && let Some(r) = r
            && let Some((status, why)) = cell_failure(r, opts.output_cap)
            && matches!(status, Status::Timeout | Status::Failed)
        {
            notes.push(format!("extra cell {i}: {why}"));
        }
    }
    let report = Report::new(score(&plan, &runs, opts.output_cap), notes);
    Ok((report, executed_copy(submission, &plan, &runs)))
}

/// The graded notebook with outputs, keeping the submission's notebook metadata.
pub fn executed_copy(submission: &Notebook, plan: &Plan, runs: &[Option<CellRun>]) -> Notebook {
    let mut nb = submission.clone();
    let cells: Vec<Value> = plan
        .cells
        .iter()
        .zip(runs)
        .map(|(p, r)| {
            let mut cell = p.cell.clone();
            if notebook::is_code(&cell) {
                notebook::clear_outputs(&mut cell);
                if let Some(r) = r {
                    cell["outputs"] = json!(r.outputs);
                    cell["execution_count"] = json!(r.execution_count);
                }
            }
            cell
        })
        .collect();
    nb.json["cells"] = Value::Array(cells);
    nb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> CellRun {
        CellRun { reply_status: "ok".into(), ..CellRun::default() }
    }

    #[test]
    fn failures_are_classified_with_reasons() {
        assert_eq!(cell_failure(&run(), 10), None);
        let mut r = run();
        r.error = Some("Error: mismatched types\n\u{1b}[31m[E0308] Error:\u{1b}[0m mismatched types".into());
        assert_eq!(
            cell_failure(&r, 10).unwrap(),
            (
                Status::CompileError,
                "does not compile: Error: mismatched types | [E0308] Error: mismatched types".into()
            )
        );
        let mut r = run();
        r.panic = Some("thread '<unnamed>' panicked at src/lib.rs:1:1:\nnot yet implemented: your code here\n".into());
        assert_eq!(cell_failure(&r, 10).unwrap().0, Status::Panic);
        assert!(cell_failure(&r, 10).unwrap().1.contains("not answered yet"));
        let mut r = run();
        r.error = Some("Error: Subprocess terminated with status: exit status: 3".into());
        assert!(cell_failure(&r, 10).unwrap().1.contains("process::exit"));
        let mut r = run();
        r.stdout.dropped = 5;
        r.stdout.text = "0123456789".into();
        assert_eq!(
            cell_failure(&r, 10).unwrap(),
            (Status::Failed, "printed 15 bytes, more than the 10-byte limit per stream".into())
        );
        let mut r = run();
        r.outcome = Outcome::TimedOut;
        assert_eq!(cell_failure(&r, 10).unwrap().0, Status::Timeout);
    }

    #[test]
    fn the_pass_line_is_appended_as_a_quoted_literal() {
        let line = pass_line("abc", "q\"1");
        assert_eq!(
            with_pass_line("x;\n\n", &line),
            "let _ = ::std::panic::take_hook();\nx;\n::std::println!(\"{}\", \"abc q\\\"1 ok\");\n"
        );
    }

    #[test]
    fn panic_messages_skip_the_thread_line_and_the_backtrace() {
        let p = "thread '<unnamed>' (7) panicked at src/lib.rs:9:1:\nassertion `left == right` failed\n  left: 41\n right: 42\nstack backtrace:\n   0: x\n";
        assert_eq!(panic_message(p), "assertion `left == right` failed |   left: 41 |  right: 42");
    }

    #[test]
    fn shown_prefers_the_value_then_prints() {
        let mut r = run();
        r.stdout.text = " printed \n".into();
        assert_eq!(shown(&r), "printed");
        r.result = Some("value".into());
        assert_eq!(shown(&r), "value");
    }
}
