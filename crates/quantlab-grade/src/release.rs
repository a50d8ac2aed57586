//! `quantlab-grade release`: the learners' notebook made from the instructor's source.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::lesson;
use crate::markers;
use crate::notebook::{self, Notebook, Role};

/// Key under the notebook metadata that holds our own data.
pub const META_KEY: &str = "quantlab";

/// Builds the release: solutions become stubs (or just their TODO comment), hidden tests
/// disappear, graded cells lose their outputs, and every locked cell's checksum is recorded
/// in `metadata.quantlab.locked_checksums`, keyed by `grade_id`.
pub fn release(source: &Notebook) -> Result<Notebook> {
    lesson::questions(source)?; // validates ids, points and markers up front
    let mut out = source.clone();
    let mut checksums = Map::new();
    for (i, cell) in out.cells_mut().iter_mut().enumerate() {
        let src = notebook::source(cell);
        let where_ = |e: markers::MarkerError| anyhow!("cell {i}: {e}");
        let Some(meta) = notebook::nbgrader(cell) else {
            if markers::has_any_marker(&src) {
                bail!("cell {i} has grading markers but no nbgrader metadata; mark it as a solution or test cell");
            }
            continue;
        };
        let role = meta.role();
        let new_src = match role {
            Role::Solution => markers::strip_solution(&src).map_err(where_)?,
            Role::Test => markers::strip_hidden(&src).map_err(where_)?,
            Role::Locked | Role::Free => src.clone(),
        };
        if markers::has_any_marker(&new_src) {
            bail!(
                "cell {i} (`{}`): markers left after release (a {role:?} cell may only hold its own kind)",
                meta.grade_id
            );
        }
        if new_src != src {
            notebook::set_source(cell, &new_src);
        }
        if matches!(role, Role::Solution | Role::Test) {
            notebook::clear_outputs(cell);
        }
        // Checksums go in the notebook metadata only: nbgrader's own `checksum` field follows
        // nbgrader's MD5 recipe, and a different value there would make `nbgrader validate`
        // report every locked cell as changed.
        if meta.locked {
            let sum = markers::checksum(&meta.grade_id, meta.points, &new_src);
            checksums.insert(meta.grade_id.clone(), json!(sum));
        }
    }
    out.metadata_mut().insert(
        META_KEY.into(),
        json!({"generated_by": "quantlab-grade release", "locked_checksums": Value::Object(checksums)}),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: &str, s: bool, g: bool, l: bool, pts: f64, src: &str) -> Value {
        json!({"cell_type": "code", "source": src, "execution_count": 3,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}],
            "metadata": {"nbgrader": {"schema_version": 3, "grade_id": id, "points": pts,
            "solution": s, "grade": g, "locked": l}}})
    }

    #[test]
    fn release_strips_solutions_hidden_tests_and_outputs() {
        let src = Notebook {
            json: json!({"metadata": {}, "cells": [
                cell("lesson", false, false, true, 0.0, "let a = 1;"),
                cell("int16", true, false, false, 0.0, "// TODO: int16\n// BEGIN SOLUTION\niinfo(I16)\n// END SOLUTION"),
                cell("sol", true, false, false, 0.0, "let q: u8 =\n    // BEGIN SOLUTION\n    3\n    // END SOLUTION\n;"),
                cell("t", false, true, true, 2.0, "::std::assert!(q > 0);\n// BEGIN HIDDEN TESTS\n::std::assert_eq!(q, 3);\n// END HIDDEN TESTS\n"),
            ]}),
        };
        let rel = release(&src).unwrap();
        let c = rel.cells();
        assert_eq!(notebook::source(&c[1]), "// TODO: int16");
        assert!(notebook::source(&c[2]).contains("todo!(\"your code here\")"));
        assert_eq!(notebook::source(&c[3]), "::std::assert!(q > 0);\n");
        // Lesson cells keep their outputs; graded cells lose theirs.
        assert_eq!(c[0]["outputs"].as_array().unwrap().len(), 1);
        for cell in &c[1..4] {
            assert_eq!(cell["outputs"], json!([]));
            assert_eq!(cell["execution_count"], Value::Null);
        }
        let sums = &rel.json["metadata"]["quantlab"]["locked_checksums"];
        assert_eq!(sums["t"], json!(markers::checksum("t", 2.0, "::std::assert!(q > 0);\n")));
        assert_eq!(sums["lesson"], json!(markers::checksum("lesson", 0.0, "let a = 1;")));
        assert!(c[0]["metadata"]["nbgrader"].get("checksum").is_none());
        assert!(sums.get("sol").is_none());
        // The source itself is untouched.
        assert!(notebook::source(&src.cells()[2]).contains("BEGIN SOLUTION"));
    }

    #[test]
    fn release_is_deterministic() {
        let src = Notebook { json: json!({"cells": [cell("t", false, true, true, 1.0, "::std::assert!(true);")]}) };
        assert_eq!(release(&src).unwrap().to_text(), release(&src).unwrap().to_text());
    }

    #[test]
    fn markers_in_unmarked_cells_are_refused() {
        let src = Notebook {
            json: json!({"cells": [{"cell_type": "code", "metadata": {}, "source": "// BEGIN SOLUTION\n1\n// END SOLUTION"}]}),
        };
        assert!(release(&src).unwrap_err().to_string().contains("no nbgrader metadata"));
    }
}
