//! Reading and writing `.ipynb` files (nbformat 4) as plain JSON.
//!
//! The notebook is kept as a `serde_json::Value` so that everything we do not touch
//! (metadata of other tools, attachments, unknown keys) survives a round trip.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// The nbgrader fields of one cell (`metadata.nbgrader`, schema version 3).
#[derive(Debug, Clone, PartialEq)]
pub struct NbgraderMeta {
    /// Name of the cell; for a test cell, the question's id in reports.
    pub grade_id: String,
    /// Points the cell is worth (test cells only).
    pub points: f64,
    /// The learner writes this cell.
    pub solution: bool,
    /// The cell is a test cell that is scored.
    pub grade: bool,
    /// The learner must not change this cell.
    pub locked: bool,
}

/// What role a cell plays for grading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The learner's answer.
    Solution,
    /// Checks the closest preceding solution cell; scored.
    Test,
    /// The lesson's own code or text; must not change.
    Locked,
    /// Anything else (no nbgrader metadata, or unlocked non-solution cells).
    Free,
}

impl NbgraderMeta {
    /// The role these flags give a cell.
    pub fn role(&self) -> Role {
        if self.grade {
            Role::Test
        } else if self.solution {
            Role::Solution
        } else if self.locked {
            Role::Locked
        } else {
            Role::Free
        }
    }
}

/// One notebook, kept as JSON.
#[derive(Debug, Clone)]
pub struct Notebook {
    /// The whole document.
    pub json: Value,
}

impl Notebook {
    /// Reads and checks a notebook file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read notebook {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{} is not a usable notebook", path.display()))
    }

    /// Parses notebook JSON text.
    pub fn parse(text: &str) -> Result<Self> {
        let json: Value = serde_json::from_str(text).context("invalid JSON")?;
        if !json.get("cells").is_some_and(Value::is_array) {
            bail!("no `cells` array: not an nbformat 4 notebook");
        }
        Ok(Self { json })
    }

    /// Writes the notebook the way Jupyter does (one-space indent, trailing newline).
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_text()).with_context(|| format!("cannot write notebook {}", path.display()))
    }

    /// The notebook as JSON text, indented like Jupyter's own files.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        serde::Serialize::serialize(&self.json, &mut ser).expect("a JSON value always serialises");
        let mut s = String::from_utf8(out).expect("serde_json writes UTF-8");
        s.push('\n');
        s
    }

    /// The cells, read-only.
    pub fn cells(&self) -> &[Value] {
        self.json["cells"].as_array().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The cells, mutable.
    pub fn cells_mut(&mut self) -> &mut Vec<Value> {
        self.json["cells"].as_array_mut().expect("checked in parse")
    }

    /// The notebook-level metadata object (created if absent).
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let root = self.json.as_object_mut().expect("checked in parse");
        let meta = root.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        meta.as_object_mut().expect("just made an object")
    }
}

/// The text of a cell's `source` (a string or a list of lines in nbformat).
pub fn source(cell: &Value) -> String {
    match cell.get("source") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(lines)) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// Sets a cell's source, stored as a list of lines the way Jupyter writes it.
pub fn set_source(cell: &mut Value, text: &str) {
    let lines: Vec<Value> = text.split_inclusive('\n').map(|l| json!(l)).collect();
    cell["source"] = Value::Array(lines);
}

/// Whether the cell is a code cell.
pub fn is_code(cell: &Value) -> bool {
    cell.get("cell_type").and_then(Value::as_str) == Some("code")
}

/// The nbgrader metadata of a cell, if it has any usable.
pub fn nbgrader(cell: &Value) -> Option<NbgraderMeta> {
    let nb = cell.get("metadata")?.get("nbgrader")?;
    let flag = |k: &str| nb.get(k).and_then(Value::as_bool).unwrap_or(false);
    Some(NbgraderMeta {
        grade_id: nb.get("grade_id")?.as_str()?.to_string(),
        points: nb.get("points").and_then(Value::as_f64).unwrap_or(0.0),
        solution: flag("solution"),
        grade: flag("grade"),
        locked: flag("locked"),
    })
}

/// Empties a code cell's outputs and execution count.
pub fn clear_outputs(cell: &mut Value) {
    if is_code(cell) {
        cell["outputs"] = json!([]);
        cell["execution_count"] = Value::Null;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_joins_lines_and_round_trips() {
        let mut cell = json!({"cell_type": "code", "source": ["a\n", "b"]});
        assert_eq!(source(&cell), "a\nb");
        set_source(&mut cell, "x\ny\n");
        assert_eq!(cell["source"], json!(["x\n", "y\n"]));
        cell["source"] = json!("whole");
        assert_eq!(source(&cell), "whole");
    }

    #[test]
    fn roles_follow_nbgrader_flags() {
        let cell = |s: bool, g: bool, l: bool| {
            json!({"metadata": {"nbgrader": {"schema_version": 3, "grade_id": "q",
                "points": 2, "solution": s, "grade": g, "locked": l}}})
        };
        assert_eq!(nbgrader(&cell(true, false, false)).unwrap().role(), Role::Solution);
        assert_eq!(nbgrader(&cell(false, true, true)).unwrap().role(), Role::Test);
        assert_eq!(nbgrader(&cell(false, false, true)).unwrap().role(), Role::Locked);
        assert_eq!(nbgrader(&cell(false, false, false)).unwrap().role(), Role::Free);
        assert_eq!(nbgrader(&cell(false, true, true)).unwrap().points, 2.0);
        assert!(nbgrader(&json!({"metadata": {}})).is_none());
    }

    #[test]
    fn parse_rejects_non_notebooks() {
        assert!(Notebook::parse("{}").is_err());
        assert!(Notebook::parse("not json").is_err());
        assert!(Notebook::parse(r#"{"cells": []}"#).is_ok());
    }
}
