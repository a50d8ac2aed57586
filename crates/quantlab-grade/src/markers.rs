//! The nbgrader comment markers in Rust cells, and the checksums of locked cells.
//!
//! Markers are whole comment lines: `// BEGIN SOLUTION` … `// END SOLUTION` around an
//! answer, `// BEGIN HIDDEN TESTS` … `// END HIDDEN TESTS` around tests the learner never
//! sees, and inside the hidden region optionally `// expect-output: <text>`.

use sha2::{Digest, Sha256};

/// The stub that replaces a solution region in expression position.
pub const STUB: &str = "todo!(\"your code here\")";

/// A marker that is opened and not closed, or closed and not opened.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {what}; every `// BEGIN {kind}` needs its own `// END {kind}` after it")]
pub struct MarkerError {
    /// 1-based line of the offending marker.
    pub line: usize,
    /// What is wrong there.
    pub what: String,
    /// `SOLUTION` or `HIDDEN TESTS`.
    pub kind: &'static str,
}

const SOLUTION: &str = "SOLUTION";
const HIDDEN: &str = "HIDDEN TESTS";

fn is_marker(line: &str, verb: &str, kind: &str) -> bool {
    let t = line.trim();
    t.starts_with("//") && t.trim_start_matches('/').trim() == format!("{verb} {kind}")
}

fn is_todo(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("//") && t.trim_start_matches('/').trim_start().starts_with("TODO")
}

/// Splits `src` into lines outside and inside `kind` regions, calling `inside` for each
/// region (with the indentation of its BEGIN line) to produce the replacement lines.
fn replace_regions(
    src: &str,
    kind: &'static str,
    mut inside: impl FnMut(&str, &[&str]) -> Vec<String>,
) -> Result<String, MarkerError> {
    let mut out: Vec<String> = Vec::new();
    let mut region: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in src.lines().enumerate() {
        if is_marker(line, "BEGIN", kind) {
            if region.is_some() {
                return Err(MarkerError { line: i + 1, what: "BEGIN inside an open region".into(), kind });
            }
            let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
            region = Some((i + 1, indent, Vec::new()));
        } else if is_marker(line, "END", kind) {
            let Some((_, indent, body)) = region.take() else {
                return Err(MarkerError { line: i + 1, what: "END without BEGIN".into(), kind });
            };
            out.extend(inside(&indent, &body));
        } else if let Some((_, _, body)) = region.as_mut() {
            body.push(line);
        } else {
            out.push(line.to_string());
        }
    }
    if let Some((line, _, _)) = region {
        return Err(MarkerError { line, what: "BEGIN never closed".into(), kind });
    }
    let mut text = out.join("\n");
    if src.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    Ok(text)
}

/// Whether the cell is one of the original lesson's TODO cells (it has a `// TODO` line).
pub fn is_todo_cell(src: &str) -> bool {
    src.lines().any(is_todo)
}

/// Whether the text holds a solution region.
pub fn has_solution(src: &str) -> bool {
    src.lines().any(|l| is_marker(l, "BEGIN", SOLUTION))
}

/// Whether the text holds any marker at all (used to check a release is clean).
pub fn has_any_marker(src: &str) -> bool {
    src.lines().any(|l| [SOLUTION, HIDDEN].iter().any(|k| is_marker(l, "BEGIN", k) || is_marker(l, "END", k)))
}

/// The learner's version of a solution cell: each solution region becomes nothing in a
/// TODO cell (its `// TODO` comments stay) and [`STUB`] elsewhere.
pub fn strip_solution(src: &str) -> Result<String, MarkerError> {
    let todo_cell = is_todo_cell(src);
    replace_regions(src, SOLUTION, |indent, body| {
        if todo_cell {
            body.iter().filter(|l| is_todo(l)).map(|l| l.to_string()).collect()
        } else {
            vec![format!("{indent}{STUB}")]
        }
    })
}

/// The solution cell with the markers removed and the answer kept (what the instructor runs).
pub fn unmark_solution(src: &str) -> Result<String, MarkerError> {
    replace_regions(src, SOLUTION, |_, body| body.iter().map(|l| l.to_string()).collect())
}

/// The test cell without its hidden tests (what learners see).
pub fn strip_hidden(src: &str) -> Result<String, MarkerError> {
    replace_regions(src, HIDDEN, |_, _| Vec::new())
}

/// The test cell with its hidden tests in place and the markers removed (what is graded).
pub fn unmark_hidden(src: &str) -> Result<String, MarkerError> {
    replace_regions(src, HIDDEN, |_, body| body.iter().map(|l| l.to_string()).collect())
}

/// The `<text>` of a `// expect-output: <text>` line inside the hidden tests, if any.
pub fn expect_output(src: &str) -> Result<Option<String>, MarkerError> {
    let mut found = None;
    replace_regions(src, HIDDEN, |_, body| {
        for line in body {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("//").map(str::trim_start)
                && let Some(text) = rest.strip_prefix("expect-output:")
            {
                found.get_or_insert_with(|| text.trim().to_string());
            }
        }
        Vec::new()
    })?;
    Ok(found)
}

/// The source as compared for tampering: trailing spaces and blank edges do not count.
pub fn normalize(src: &str) -> String {
    let lines: Vec<&str> = src.lines().map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_string()
}

/// SHA-256 (hex) of a locked cell: its id, its points and its normalised source, so that
/// moving points or swapping cells changes the checksum as much as editing code.
pub fn checksum(grade_id: &str, points: f64, src: &str) -> String {
    let mut h = Sha256::new();
    h.update(grade_id.as_bytes());
    h.update([0]);
    h.update(format!("{points}").as_bytes());
    h.update([0]);
    h.update(normalize(src).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todo_cell_keeps_only_its_comment() {
        let src = "// TODO: Information of `16-bit (signed) integer`\n// BEGIN SOLUTION\niinfo(DType::I16)\n// END SOLUTION\n";
        assert_eq!(strip_solution(src).unwrap(), "// TODO: Information of `16-bit (signed) integer`\n");
    }

    #[test]
    fn other_cells_get_an_indented_stub() {
        let src = "let q = {\n    // BEGIN SOLUTION\n    x.quantize(DType::I8)\n    // END SOLUTION\n};\nq";
        assert_eq!(strip_solution(src).unwrap(), "let q = {\n    todo!(\"your code here\")\n};\nq");
        assert_eq!(unmark_solution(src).unwrap(), "let q = {\n    x.quantize(DType::I8)\n};\nq");
    }

    #[test]
    fn hidden_tests_are_removed_and_restored() {
        let src = "::std::assert!(a);\n// BEGIN HIDDEN TESTS\n::std::assert!(b);\n// END HIDDEN TESTS\n";
        assert_eq!(strip_hidden(src).unwrap(), "::std::assert!(a);\n");
        assert_eq!(unmark_hidden(src).unwrap(), "::std::assert!(a);\n::std::assert!(b);\n");
        assert_eq!(expect_output(src).unwrap(), None);
    }

    #[test]
    fn expect_output_is_read_from_the_hidden_region_only() {
        let src = "// expect-output: no\n// BEGIN HIDDEN TESTS\n// expect-output: iinfo(min=-32768, max=32767, dtype=int16)\n// END HIDDEN TESTS";
        assert_eq!(expect_output(src).unwrap().as_deref(), Some("iinfo(min=-32768, max=32767, dtype=int16)"));
    }

    #[test]
    fn unbalanced_markers_are_errors_with_line_numbers() {
        let e = strip_solution("a\n// BEGIN SOLUTION\nb").unwrap_err();
        assert_eq!((e.line, e.kind), (2, "SOLUTION"));
        let e = strip_hidden("// END HIDDEN TESTS").unwrap_err();
        assert_eq!((e.line, e.kind), (1, "HIDDEN TESTS"));
        assert!(strip_solution("// BEGIN SOLUTION\n// BEGIN SOLUTION\n// END SOLUTION").is_err());
    }

    #[test]
    fn checksum_ignores_trailing_space_but_not_code() {
        let a = checksum("c1", 0.0, "let x = 1;\n");
        assert_eq!(a, checksum("c1", 0.0, "\nlet x = 1;   \n\n"));
        assert_ne!(a, checksum("c1", 0.0, "let x = 2;"));
        assert_ne!(a, checksum("c2", 0.0, "let x = 1;"));
        assert_ne!(a, checksum("c1", 1.0, "let x = 1;"));
        // SHA-256 of the bytes "c1", NUL, "0", NUL, "let x = 1;" (computed with sha256sum).
        assert_eq!(a, "53e84091d747df130d3f9ea6a0367ef179e83609a86c36c88fc9b5fab281af31");
    }
}
