//! `quantlab-grade validate`: what a learner runs before handing in.
//!
//! Runs the notebook as it is with its visible tests, checks the locked cells against the
//! checksums the release recorded, and says which questions look done. Hidden tests are not
//! there, so "looks done" is a hint, not a grade.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::grade::{Options, cell_failure, run_cells, shown};
use crate::kernel::{Kernel, spec::KernelSpec};
use crate::lesson;
use crate::markers;
use crate::notebook::{self, Notebook};
use crate::plan::{Kind, plan};
use crate::release::META_KEY;
use crate::report::{QuestionReport, Report, Status};

/// Locked cells whose checksum no longer matches the release's record, per question index.
pub fn checksum_problems(nb: &Notebook) -> Result<Vec<Vec<String>>> {
    let questions = lesson::questions(nb)?;
    let mut out = vec![Vec::new(); questions.len()];
    let Some(sums) = nb.json["metadata"][META_KEY]["locked_checksums"].as_object() else {
        return Ok(out);
    };
    for (id, want) in sums {
        let found =
            nb.cells().iter().enumerate().find(|(_, c)| notebook::nbgrader(c).is_some_and(|m| &m.grade_id == id));
        let (problem, at) = match found {
            None => (format!("locked cell `{id}` was deleted"), None),
            Some((i, c)) => {
                let m = notebook::nbgrader(c).expect("found by its metadata");
                let ok = Some(markers::checksum(id, m.points, &notebook::source(c)).as_str()) == want.as_str();
                if ok {
                    continue;
                } else {
                    (format!("locked cell `{id}` was changed"), Some(i))
                }
            }
        };
        let owner = match at {
            Some(i) => lesson::owner_question(&questions, i),
            None => questions.iter().find(|q| &q.id == id).or(questions.last()),
        };
        if let Some(q) = owner.and_then(|q| questions.iter().position(|x| x.id == q.id)) {
            out[q].push(problem);
        }
    }
    Ok(out)
}

/// Runs the submission's visible tests and reports per question.
pub fn validate(spec: &KernelSpec, submission: &Notebook, cwd: &Path, opts: &Options) -> Result<Report> {
    let plan = plan(submission, submission)?;
    let problems = checksum_problems(submission)?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let ids: Vec<String> = plan.questions.iter().map(|q| q.id.clone()).collect();
    let mut notes = Vec::new();
    let mut kernel = Kernel::start_in(spec.clone(), cwd, opts.build_dir.as_deref())?;
    kernel.output_cap = opts.output_cap;
    let runs = run_cells(&mut kernel, &plan.cells, opts, &nonce, &ids, |_, _| false, &mut notes)?;
    let mut reports = Vec::new();
    for (qi, q) in plan.questions.iter().enumerate() {
        let sol =
            q.solution_id.as_ref().and_then(|id| plan.cells.iter().position(|c| c.kind == Kind::Solution(id.clone())));
        let sol_run = sol.and_then(|i| runs[i].as_ref());
        let test_at = plan.cells.iter().position(|c| c.kind == Kind::Test(qi));
        let test_run = test_at.and_then(|i| runs[i].as_ref());
        let (status, feedback) = if !problems[qi].is_empty() {
            (Status::Tampered, format!("{}: restore it from the release before handing in", problems[qi].join("; ")))
        } else if let Some(f) = sol_run.and_then(|r| cell_failure(r, opts.output_cap)) {
            f
        } else if sol_run.is_some_and(|r| shown(r).is_empty() && r.outputs.is_empty())
            && test_at.is_some_and(|i| code_lines(&plan.cells[i].cell) == 0)
        {
            (Status::Failed, "the answer cell shows nothing yet".into())
        } else if let Some(f) = test_run.and_then(|r| cell_failure(r, opts.output_cap)) {
            if f.1.contains("todo!") {
                (Status::Failed, "not answered yet: the tests reached todo!(\"your code here\")".into())
            } else {
                (Status::Failed, format!("visible tests: {}", f.1))
            }
        } else if test_run.is_some_and(|r| r.watch_seen) {
            let shows =
                sol_run.map(shown).filter(|s| !s.is_empty()).map(|s| format!("; it shows `{s}`")).unwrap_or_default();
            (Status::Passed, format!("looks done: the visible tests pass{shows}; hidden tests decide the grade"))
        } else {
            (Status::Failed, "the visible tests did not run to the end".into())
        };
        let points = if status == Status::Passed { q.points } else { 0.0 };
        reports.push(QuestionReport { id: q.id.clone(), points, max_points: q.points, status, feedback });
    }
    Ok(Report::new(reports, notes))
}

fn code_lines(cell: &Value) -> usize {
    notebook::source(cell).lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//")).count()
}
