//! The grading report: JSON for machines, a table for people.

use serde::{Deserialize, Serialize};

/// How a question ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The hidden tests confirmed the answer.
    Passed,
    /// The answer ran but is wrong (or ended the process, or flooded the output).
    Failed,
    /// The answer does not compile.
    CompileError,
    /// The answer panicked (evcxr reports this as success; we read stderr).
    Panic,
    /// The answer ran past the time limit.
    Timeout,
    /// A locked cell or visible test of this question was changed or deleted.
    Tampered,
    /// The answer cell is not in the submission.
    Missing,
}

impl Status {
    /// The name used in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::CompileError => "compile_error",
            Status::Panic => "panic",
            Status::Timeout => "timeout",
            Status::Tampered => "tampered",
            Status::Missing => "missing",
        }
    }
}

/// The result of one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionReport {
    /// The test cell's `grade_id`.
    pub id: String,
    /// Points earned.
    pub points: f64,
    /// Points possible.
    pub max_points: f64,
    /// How it ended.
    pub status: Status,
    /// Why, in a sentence or two.
    pub feedback: String,
}

/// The whole report for one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Points earned.
    pub total: f64,
    /// Points possible.
    pub max_total: f64,
    /// One entry per question, in notebook order.
    pub questions: Vec<QuestionReport>,
    /// Things that happened outside any question (a learner's extra cell that hung, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// Adds up the questions.
    pub fn new(questions: Vec<QuestionReport>, notes: Vec<String>) -> Self {
        let total = questions.iter().map(|q| q.points).sum();
        let max_total = questions.iter().map(|q| q.max_points).sum();
        Self { total, max_total, questions, notes }
    }

    /// A plain-text table, one line per question, then the total.
    pub fn table(&self) -> String {
        let w = self.questions.iter().map(|q| q.id.len()).max().unwrap_or(8).max(8);
        let mut out = format!("{:<w$}  {:>11}  {:<13}  feedback\n", "question", "points", "status");
        for q in &self.questions {
            let feedback = q.feedback.lines().next().unwrap_or("");
            let pts = format!("{}/{}", q.points, q.max_points);
            out += &format!("{:<w$}  {:>11}  {:<13}  {feedback}\n", q.id, pts, q.status.as_str());
        }
        out += &format!("{:<w$}  {:>11}\n", "total", format!("{}/{}", self.total, self.max_total));
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, p: f64, m: f64, s: Status) -> QuestionReport {
        QuestionReport { id: id.into(), points: p, max_points: m, status: s, feedback: "why\nmore".into() }
    }

    #[test]
    fn json_uses_the_contract_names() {
        let r = Report::new(vec![q("a", 1.0, 1.0, Status::Passed), q("b", 0.0, 2.5, Status::CompileError)], vec![]);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["total"], 1.0);
        assert_eq!(v["max_total"], 3.5);
        assert_eq!(v["questions"][1]["status"], "compile_error");
        assert_eq!(v["questions"][1]["max_points"], 2.5);
        assert!(v.get("notes").is_none());
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn table_lists_each_question_and_the_total() {
        let r = Report::new(vec![q("int16_info", 0.0, 1.0, Status::Timeout)], vec!["n".into()]);
        let t = r.table();
        assert!(t.contains("int16_info          0/1  timeout        why\n"), "{t}");
        assert!(t.contains("total               0/1\n"), "{t}");
        assert!(t.ends_with("note: n\n"));
    }
}
