//! Which cells a grading run executes, in which order, and which were tampered with.
//!
//! The source notebook is authoritative: cells run in the source's order; locked cells and
//! test cells run as the source has them (test cells with their hidden tests back); solution
//! cells and free cells run as the learner wrote them. Cells the learner added run after the
//! known cell they follow in the submission.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use serde_json::Value;

use crate::lesson::{self, Question};
use crate::markers;
use crate::notebook::{self, Notebook, Role};

/// What a planned cell is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A markdown or raw cell: copied, not run.
    Text,
    /// A locked lesson cell, run from the source.
    Lesson,
    /// The learner's answer (`grade_id` of the solution cell).
    Solution(String),
    /// A question's test cell, with hidden tests; index into the question list.
    Test(usize),
    /// A cell the learner may edit or added.
    Free,
}

/// One cell of the run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// What it is.
    pub kind: Kind,
    /// The code to execute (for `Test`, without the grader's pass line).
    pub code: String,
    /// The cell as it goes into the executed copy (outputs filled in later).
    pub cell: Value,
}

/// The matching key of a cell: its `grade_id`, else its nbformat `id`.
fn key(cell: &Value) -> Option<String> {
    if let Some(m) = notebook::nbgrader(cell) {
        return Some(m.grade_id);
    }
    cell.get("id").and_then(Value::as_str).map(|id| format!("cell:{id}"))
}

/// The plan for one submission: cells to run, and tampering found per question.
#[derive(Debug)]
pub struct Plan {
    /// The questions of the source.
    pub questions: Vec<Question>,
    /// Cells in run order.
    pub cells: Vec<Planned>,
    /// For each question, what was tampered with (empty if nothing).
    pub tampered: Vec<Vec<String>>,
    /// Solution ids present in the submission.
    pub present_solutions: Vec<String>,
}

/// Builds the plan from the source and a submission.
pub fn plan(source: &Notebook, submission: &Notebook) -> Result<Plan> {
    let questions = lesson::questions(source)?;
    let mut tampered = vec![Vec::new(); questions.len()];
    let sub_cells = submission.cells();
    let mut by_key: HashMap<String, &Value> = HashMap::new();
    // Learner-added cells, grouped by the key of the known cell before them (None: at the top).
    let mut extras: HashMap<Option<String>, Vec<&Value>> = HashMap::new();
    let source_keys: std::collections::HashSet<String> = source.cells().iter().filter_map(key).collect();
    let mut anchor: Option<String> = None;
    for cell in sub_cells {
        match key(cell).filter(|k| source_keys.contains(k)) {
            Some(k) if !by_key.contains_key(&k) => {
                by_key.insert(k.clone(), cell);
                anchor = Some(k);
            }
            // The source's text cells are copied from the source; the learner's own notes
            // do not affect grading and are left out of the executed copy.
            _ if !notebook::is_code(cell) => {}
            _ => extras.entry(anchor.clone()).or_default().push(cell),
        }
    }

    let mut cells = Vec::new();
    let mut present_solutions = Vec::new();
    let push_extras = |cells: &mut Vec<Planned>, at: &Option<String>| {
        for c in extras.get(at).into_iter().flatten() {
            cells.push(Planned { kind: Kind::Free, code: notebook::source(c), cell: (*c).clone() });
        }
    };
    push_extras(&mut cells, &None);
    for (i, cell) in source.cells().iter().enumerate() {
        let k = key(cell);
        let sub = k.as_ref().and_then(|k| by_key.get(k).copied());
        let meta = notebook::nbgrader(cell);
        let role = meta.as_ref().map_or(Role::Free, |m| m.role());
        let locked = meta.as_ref().is_some_and(|m| m.locked);
        let src = notebook::source(cell);
        let err = |e: markers::MarkerError| anyhow!("source cell {i}: {e}");

        if locked {
            // What the learner was given must come back unchanged.
            let given = if role == Role::Test { markers::strip_hidden(&src).map_err(err)? } else { src.clone() };
            let id = k.clone().unwrap_or_default();
            let problem = match sub {
                None => Some(format!("cell `{id}` was deleted")),
                // The release's text, or the source's own (grading the solution notebook).
                Some(s)
                    if ![&given, &src]
                        .iter()
                        .any(|t| markers::normalize(&notebook::source(s)) == markers::normalize(t)) =>
                {
                    Some(format!("cell `{id}` was changed"))
                }
                Some(s)
                    if notebook::nbgrader(s).map(|m| (m.role(), m.points))
                        != meta.as_ref().map(|m| (m.role(), m.points)) =>
                {
                    Some(format!("the grading metadata of cell `{id}` was changed"))
                }
                _ => None,
            };
            if let Some(p) = problem {
                let owner = if role == Role::Test {
                    questions.iter().position(|q| q.test_cell == i)
                } else {
                    lesson::owner_question(&questions, i)
                        .map(|q| questions.iter().position(|x| x.id == q.id).unwrap_or(0))
                };
                if let Some(o) = owner {
                    tampered[o].push(p);
                }
            }
        }

        if !notebook::is_code(cell) {
            cells.push(Planned { kind: Kind::Text, code: String::new(), cell: cell.clone() });
        } else {
            match role {
                Role::Test => {
                    let q = questions.iter().position(|q| q.test_cell == i).expect("every test cell is a question");
                    let code = markers::unmark_hidden(&src).map_err(err)?;
                    let mut c = cell.clone();
                    notebook::set_source(&mut c, &code);
                    cells.push(Planned { kind: Kind::Test(q), code, cell: c });
                }
                Role::Solution => {
                    if let Some(s) = sub {
                        let id = meta.as_ref().map(|m| m.grade_id.clone()).unwrap_or_default();
                        present_solutions.push(id.clone());
                        cells.push(Planned { kind: Kind::Solution(id), code: notebook::source(s), cell: s.clone() });
                    }
                }
                Role::Locked => cells.push(Planned { kind: Kind::Lesson, code: src, cell: cell.clone() }),
                Role::Free => {
                    if let Some(s) = sub {
                        cells.push(Planned { kind: Kind::Free, code: notebook::source(s), cell: s.clone() });
                    }
                }
            }
        }
        if let Some(k) = &k
            && by_key.contains_key(k)
        {
            push_extras(&mut cells, &Some(k.clone()));
        }
    }
    Ok(Plan { questions, cells, tampered, present_solutions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::release;
    use serde_json::json;

    fn cell(id: &str, s: bool, g: bool, l: bool, pts: f64, src: &str) -> Value {
        json!({"cell_type": "code", "source": src, "outputs": [], "execution_count": null,
            "metadata": {"nbgrader": {"schema_version": 3, "grade_id": id, "points": pts,
            "solution": s, "grade": g, "locked": l}}})
    }

    fn source() -> Notebook {
        Notebook {
            json: json!({"cells": [
                cell("setup", false, false, true, 0.0, "let a = 1;"),
                {"cell_type": "markdown", "metadata": {}, "source": "## Q1"},
                cell("q1_answer", true, false, false, 0.0, "let b: i32 =\n// BEGIN SOLUTION\n2\n// END SOLUTION\n;"),
                cell("q1", false, true, true, 1.0, "::std::assert!(b > 0);\n// BEGIN HIDDEN TESTS\n::std::assert_eq!(b, 2);\n// END HIDDEN TESTS"),
                cell("lesson2", false, false, true, 0.0, "let c = 3;"),
                cell("q2", false, true, true, 2.0, "::std::assert_eq!(c, 3);"),
            ]}),
        }
    }

    #[test]
    fn the_release_plans_every_cell_with_hidden_tests_back() {
        let src = source();
        let p = plan(&src, &release(&src).unwrap()).unwrap();
        let kinds: Vec<_> = p.cells.iter().map(|c| c.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Lesson,
                Kind::Text,
                Kind::Solution("q1_answer".into()),
                Kind::Test(0),
                Kind::Lesson,
                Kind::Test(1)
            ]
        );
        assert!(p.cells[2].code.contains("todo!"));
        assert_eq!(p.cells[3].code, "::std::assert!(b > 0);\n::std::assert_eq!(b, 2);");
        assert_eq!(p.tampered, vec![Vec::<String>::new(), vec![]]);
    }

    #[test]
    fn edits_and_deletions_of_locked_cells_cost_their_question() {
        let src = source();
        let mut sub = release(&src).unwrap();
        notebook::set_source(&mut sub.cells_mut()[3], "// nothing to see");
        sub.cells_mut().remove(4); // lesson2, in q2's section
        let p = plan(&src, &sub).unwrap();
        assert_eq!(p.tampered[0], vec!["cell `q1` was changed".to_string()]);
        assert_eq!(p.tampered[1], vec!["cell `lesson2` was deleted".to_string()]);
        // The deleted lesson cell still runs, from the source.
        assert!(p.cells.iter().any(|c| c.code == "let c = 3;"));
    }

    #[test]
    fn learner_cells_run_after_the_cell_they_follow() {
        let src = source();
        let mut sub = release(&src).unwrap();
        sub.cells_mut().insert(3, json!({"cell_type": "code", "metadata": {}, "source": "println!(\"scratch\");"}));
        let p = plan(&src, &sub).unwrap();
        assert_eq!(p.cells[3].kind, Kind::Free);
        assert_eq!(p.cells[3].code, "println!(\"scratch\");");
        assert_eq!(p.cells[4].kind, Kind::Test(0));
    }

    #[test]
    fn a_deleted_answer_is_missing_not_tampered() {
        let src = source();
        let mut sub = release(&src).unwrap();
        sub.cells_mut().remove(2);
        let p = plan(&src, &sub).unwrap();
        assert!(p.present_solutions.is_empty());
        assert!(p.tampered.iter().all(Vec::is_empty));
    }
}
