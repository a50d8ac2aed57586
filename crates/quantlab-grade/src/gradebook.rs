//! The gradebook export: one CSV row per learner and question.
//!
//! Columns `assignment,student_id,question,score,max_score,status,timestamp`, named as
//! nbgrader's `export` names them where the two overlap (nbgrader exports one row per
//! assignment; this is per question, so the score of each can be checked). Rows are sorted
//! by assignment, student and the question's place in the notebook, and the timestamp is
//! the submission's, so grading the same submissions again writes the same file.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::report::Report;
use crate::submission::Submission;

/// One row of the export.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The nbgrader assignment folder, else the source notebook's name.
    pub assignment: String,
    /// The learner.
    pub student_id: String,
    /// The question's `grade_id`, prefixed by `<notebook>/` when the notebook is not named
    /// after its assignment (an nbgrader assignment with several notebooks).
    pub question: String,
    /// Points earned.
    pub score: f64,
    /// Points possible.
    pub max_score: f64,
    /// How the question ended (`passed`, `failed`, `compile_error`, ...).
    pub status: &'static str,
    /// When the submission was handed in (see [`Submission::timestamp`]).
    pub timestamp: String,
    #[serde(skip)]
    order: usize,
}

/// The rows of one graded submission; `assignment` is the name it is filed under.
pub fn rows(sub: &Submission, assignment: &str, report: &Report) -> Vec<Row> {
    let prefix = if sub.notebook == assignment { String::new() } else { format!("{}/", sub.notebook) };
    report
        .questions
        .iter()
        .enumerate()
        .map(|(order, q)| Row {
            assignment: assignment.to_string(),
            student_id: sub.student_id.clone(),
            question: format!("{prefix}{}", q.id),
            score: q.points,
            max_score: q.max_points,
            status: q.status.as_str(),
            timestamp: sub.timestamp.clone(),
            order,
        })
        .collect()
}

/// The CSV text of `rows`, sorted.
pub fn to_csv(mut rows: Vec<Row>) -> Result<Vec<u8>> {
    rows.sort_by(|a, b| {
        (&a.assignment, &a.student_id, a.order, &a.question).cmp(&(&b.assignment, &b.student_id, b.order, &b.question))
    });
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(["assignment", "student_id", "question", "score", "max_score", "status", "timestamp"])?;
    }
    for r in &rows {
        w.serialize(r)?;
    }
    w.into_inner().context("cannot finish the CSV")
}

/// Writes `bytes` to `path` through a staged file renamed into place, so that a failure
/// never leaves half a file where a previous good one was.
pub fn write_staged(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staged = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    std::fs::write(&staged, bytes).with_context(|| format!("cannot write {}", staged.display()))?;
    std::fs::rename(&staged, path).with_context(|| {
        let _ = std::fs::remove_file(&staged);
        format!("cannot write {}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{QuestionReport, Status};

    fn report(qs: &[(&str, f64, f64, Status)]) -> Report {
        let qs = qs
            .iter()
            .map(|&(id, p, m, status)| QuestionReport {
                id: id.into(),
                points: p,
                max_points: m,
                status,
                feedback: "x".into(),
            })
            .collect();
        Report::new(qs, vec![])
    }

    fn sub(student: &str, notebook: &str) -> Submission {
        Submission {
            path: format!("{notebook}.ipynb").into(),
            student_id: student.into(),
            assignment: None,
            notebook: notebook.into(),
            timestamp: "2026-11-30T17:02:11Z".into(),
        }
    }

    #[test]
    fn rows_are_sorted_and_written_with_the_contract_columns() {
        let r = report(&[("q_z", 1.0, 1.0, Status::Passed), ("q_a", 0.0, 2.5, Status::CompileError)]);
        let mut all = rows(&sub("zoe", "quantization"), "quantization", &r);
        all.extend(rows(&sub("al", "quantization"), "quantization", &r));
        all.extend(rows(&sub("al", "extra"), "formats", &report(&[("q", 0.5, 1.0, Status::Timeout)])));
        let text = String::from_utf8(to_csv(all.clone()).unwrap()).unwrap();
        assert_eq!(
            text,
            "assignment,student_id,question,score,max_score,status,timestamp\n\
             formats,al,extra/q,0.5,1.0,timeout,2026-11-30T17:02:11Z\n\
             quantization,al,q_z,1.0,1.0,passed,2026-11-30T17:02:11Z\n\
             quantization,al,q_a,0.0,2.5,compile_error,2026-11-30T17:02:11Z\n\
             quantization,zoe,q_z,1.0,1.0,passed,2026-11-30T17:02:11Z\n\
             quantization,zoe,q_a,0.0,2.5,compile_error,2026-11-30T17:02:11Z\n"
        );
        all.reverse();
        assert_eq!(String::from_utf8(to_csv(all).unwrap()).unwrap(), text, "input order does not matter");
        assert_eq!(
            String::from_utf8(to_csv(vec![]).unwrap()).unwrap(),
            "assignment,student_id,question,score,max_score,status,timestamp\n"
        );
    }

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        let r = report(&[("q", 1.0, 1.0, Status::Passed)]);
        let text = String::from_utf8(to_csv(rows(&sub("o'neil, \"jr\"", "a"), "a", &r)).unwrap()).unwrap();
        assert!(text.contains("a,\"o'neil, \"\"jr\"\"\",q,1.0,"), "{text}");
    }

    #[test]
    fn staged_writes_replace_the_file_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("deep/grades.csv");
        write_staged(&p, b"one").unwrap();
        write_staged(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1, "no staged file left behind");
    }
}
