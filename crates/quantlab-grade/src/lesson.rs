//! The instructor's source notebook read as a list of questions.

use anyhow::{Result, bail};
use std::collections::HashSet;

use crate::markers;
use crate::notebook::{self, Notebook, Role};

/// One scored question: a test cell and the solution cell it checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// The test cell's `grade_id`; the question's name in reports.
    pub id: String,
    /// Points the question is worth.
    pub points: f64,
    /// Index of the test cell in the source notebook.
    pub test_cell: usize,
    /// `grade_id` of the solution cell that precedes the test cell most closely, if any.
    pub solution_id: Option<String>,
    /// For questions graded on what the solution cell shows: the exact expected text.
    pub expect_output: Option<String>,
}

/// Checks the source's nbgrader metadata and lists its questions in order.
pub fn questions(source: &Notebook) -> Result<Vec<Question>> {
    let mut seen = HashSet::new();
    let mut last_solution: Option<String> = None;
    let mut out = Vec::new();
    for (i, cell) in source.cells().iter().enumerate() {
        let Some(meta) = notebook::nbgrader(cell) else {
            continue;
        };
        if !seen.insert(meta.grade_id.clone()) {
            bail!("cell {i}: grade_id `{}` is used twice; each marked cell needs its own", meta.grade_id);
        }
        match meta.role() {
            Role::Solution => last_solution = Some(meta.grade_id.clone()),
            Role::Test => {
                if !notebook::is_code(cell) {
                    bail!("cell {i} (`{}`): a test cell must be a code cell", meta.grade_id);
                }
                if meta.points.is_nan() || meta.points <= 0.0 {
                    bail!("cell {i} (`{}`): a test cell needs points > 0", meta.grade_id);
                }
                let src = notebook::source(cell);
                out.push(Question {
                    id: meta.grade_id.clone(),
                    points: meta.points,
                    test_cell: i,
                    solution_id: last_solution.clone(),
                    expect_output: markers::expect_output(&src)
                        .map_err(|e| anyhow::anyhow!("cell {i} (`{}`): {e}", meta.grade_id))?,
                });
            }
            Role::Locked | Role::Free => {}
        }
    }
    Ok(out)
}

/// For each source cell index, the question whose section it lies in: the first question
/// whose test cell is at or after it (the last question for cells after every test).
/// A tampered locked cell costs that question.
pub fn owner_question(questions: &[Question], cell: usize) -> Option<&Question> {
    questions.iter().find(|q| q.test_cell >= cell).or(questions.last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cell(id: &str, s: bool, g: bool, l: bool, pts: f64, src: &str) -> serde_json::Value {
        json!({"cell_type": "code", "source": src, "outputs": [], "execution_count": null,
            "metadata": {"nbgrader": {"schema_version": 3, "grade_id": id, "points": pts,
            "solution": s, "grade": g, "locked": l}}})
    }

    #[test]
    fn questions_pair_tests_with_the_closest_solution() {
        let nb = Notebook {
            json: json!({"cells": [
                cell("setup", false, false, true, 0.0, "let a = 1;"),
                cell("q1_sol", true, false, false, 0.0, "// BEGIN SOLUTION\n1\n// END SOLUTION"),
                cell("q1", false, true, true, 1.0, "// BEGIN HIDDEN TESTS\n// expect-output: 1\n// END HIDDEN TESTS"),
                cell("q2", false, true, true, 2.5, "::std::assert!(true);"),
            ]}),
        };
        let qs = questions(&nb).unwrap();
        assert_eq!(qs.len(), 2);
        assert_eq!((qs[0].id.as_str(), qs[0].points, qs[0].test_cell), ("q1", 1.0, 2));
        assert_eq!(qs[0].solution_id.as_deref(), Some("q1_sol"));
        assert_eq!(qs[0].expect_output.as_deref(), Some("1"));
        assert_eq!(qs[1].solution_id.as_deref(), Some("q1_sol"));
        assert_eq!(owner_question(&qs, 0).unwrap().id, "q1");
        assert_eq!(owner_question(&qs, 3).unwrap().id, "q2");
    }

    #[test]
    fn duplicate_ids_and_pointless_tests_are_rejected() {
        let dup = Notebook {
            json: json!({"cells": [cell("a", true, false, false, 0.0, ""), cell("a", false, true, true, 1.0, "")]}),
        };
        assert!(questions(&dup).unwrap_err().to_string().contains("used twice"));
        let zero = Notebook { json: json!({"cells": [cell("t", false, true, true, 0.0, "")]}) };
        assert!(questions(&zero).unwrap_err().to_string().contains("points > 0"));
    }
}
