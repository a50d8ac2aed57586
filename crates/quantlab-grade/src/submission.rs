//! Who handed in what: submissions found on disk, named the way a gradebook names them.
//!
//! Two layouts are read. A flat folder of notebooks, one per learner: the student id is the
//! file stem (`submissions/alice.ipynb` is `alice`). nbgrader's layout, which `nbgrader
//! collect` and the exchange produce: `submitted/<student>/<assignment>/<notebook>.ipynb`,
//! with nbgrader's `timestamp.txt` beside the notebooks. An nbgrader course can switch
//! graders without moving a file.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::notebook::{self, Notebook};

/// The folder nbgrader collects submissions into.
pub const NBGRADER_SUBMITTED: &str = "submitted";

/// One submitted notebook and the names it is filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The notebook file (never modified).
    pub path: PathBuf,
    /// The learner: the file stem, or the student folder in nbgrader's layout.
    pub student_id: String,
    /// The assignment folder in nbgrader's layout; `None` in a flat folder (the assignment is
    /// then the source notebook it is graded against).
    pub assignment: Option<String>,
    /// The notebook's file stem.
    pub notebook: String,
    /// When it was handed in: nbgrader's `timestamp.txt` as written, else the notebook's
    /// modification time in RFC 3339 (UTC, seconds). Never the grading time, so that grading
    /// again gives the same gradebook.
    pub timestamp: String,
}

fn name(p: &Path) -> Option<String> {
    p.file_name().map(|s| s.to_string_lossy().into_owned())
}

fn stem(p: &Path) -> String {
    p.file_stem().map_or_else(|| "submission".into(), |s| s.to_string_lossy().into_owned())
}

impl Submission {
    /// Names the notebook at `path` from where it lies.
    pub fn at(path: &Path) -> Result<Self> {
        let notebook = stem(path);
        let assignment_dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let student_dir = assignment_dir.and_then(Path::parent);
        let submitted = student_dir.and_then(Path::parent).and_then(name);
        let (student_id, assignment) = match (submitted.as_deref(), assignment_dir, student_dir) {
            (Some(NBGRADER_SUBMITTED), Some(a), Some(s)) => (name(s).unwrap_or_default(), name(a)),
            _ => (notebook.clone(), None),
        };
        let stamp_file = assignment_dir.filter(|_| assignment.is_some()).map(|d| d.join("timestamp.txt"));
        let timestamp = match stamp_file.filter(|f| f.is_file()) {
            Some(f) => {
                std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?.trim().to_string()
            }
            None => {
                let mtime = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .with_context(|| format!("cannot read the modification time of {}", path.display()))?;
                humantime::format_rfc3339_seconds(mtime).to_string()
            }
        };
        Ok(Self { path: path.to_path_buf(), student_id, assignment, notebook, timestamp })
    }

    /// Whether it came from nbgrader's `submitted/<student>/<assignment>/` layout.
    pub fn in_nbgrader_layout(&self) -> bool {
        self.assignment.is_some()
    }

    /// Where this submission's outputs go inside an output folder, without extension:
    /// `<student>/<assignment>/<notebook>` in nbgrader's layout (as nbgrader's own
    /// `feedback/` folder), `<student>` in a flat one.
    pub fn output_stem(&self) -> PathBuf {
        match &self.assignment {
            Some(a) => Path::new(&self.student_id).join(a).join(&self.notebook),
            None => PathBuf::from(&self.student_id),
        }
    }
}

/// Whether `path` is a notebook to grade: `.ipynb`, and not one of the grader's own
/// executed copies or a Jupyter checkpoint.
fn is_submission(path: &Path) -> bool {
    let n = name(path).unwrap_or_default();
    n.ends_with(".ipynb")
        && !n.ends_with(".executed.ipynb")
        && !path.components().any(|c| c.as_os_str() == ".ipynb_checkpoints")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in entries {
        let p = e.with_context(|| format!("cannot list {}", dir.display()))?.path();
        if p.is_dir() {
            if name(&p).as_deref() != Some(".ipynb_checkpoints") {
                walk(&p, out)?;
            }
        } else if is_submission(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The submissions named on the command line: notebook files as given, folders searched
/// for notebooks (e.g. nbgrader's `submitted/`). Sorted by file path, so that every run
/// handles them in the same order; two submissions filed under one name are an error.
pub fn collect(args: &[PathBuf]) -> Result<Vec<Submission>> {
    let mut paths = Vec::new();
    for a in args {
        if a.is_dir() {
            let before = paths.len();
            walk(a, &mut paths)?;
            if paths.len() == before {
                bail!("{} holds no .ipynb notebooks to grade", a.display());
            }
        } else {
            paths.push(a.clone());
        }
    }
    paths.sort();
    paths.dedup();
    let subs = paths.iter().map(|p| Submission::at(p)).collect::<Result<Vec<_>>>()?;
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for s in &subs {
        if let Some(other) = seen.insert(s.output_stem(), &s.path) {
            bail!(
                "{} and {} would both be filed as `{}`; give each learner's notebook its own name",
                other.display(),
                s.path.display(),
                s.output_stem().display()
            );
        }
    }
    Ok(subs)
}

/// One instructor source notebook: an assignment.
#[derive(Debug)]
pub struct Source {
    /// Its path (the kernel runs beside it, so its relative `:dep` paths hold).
    pub path: PathBuf,
    /// Its file stem: the assignment's name when the submission does not give one.
    pub name: String,
    /// The notebook.
    pub notebook: Notebook,
    ids: HashSet<String>,
}

fn grade_ids(nb: &Notebook) -> HashSet<String> {
    nb.cells().iter().filter_map(notebook::nbgrader).map(|m| m.grade_id).collect()
}

impl Source {
    /// Reads a source notebook.
    pub fn load(path: &Path) -> Result<Self> {
        let notebook = Notebook::load(path)?;
        Ok(Self { path: path.to_path_buf(), name: stem(path), ids: grade_ids(&notebook), notebook })
    }
}

/// Which source grades `sub`: the one whose name is the submission's notebook name, else
/// (in nbgrader's layout) its assignment folder; else the only source; else the one sharing
/// the most graded cells (`grade_id`s) with the submission.
pub fn match_source(sources: &[Source], sub: &Submission, nb: &Notebook) -> Result<usize> {
    let by_name = |n: &str| sources.iter().position(|s| s.name == n);
    if (sub.in_nbgrader_layout() || sources.len() > 1)
        && let Some(i) = by_name(&sub.notebook)
    {
        return Ok(i);
    }
    if let Some(i) = sub.assignment.as_deref().and_then(by_name) {
        return Ok(i);
    }
    if sources.len() == 1 {
        return Ok(0);
    }
    let ids = grade_ids(nb);
    let mut counts: Vec<(usize, usize)> =
        sources.iter().enumerate().map(|(i, s)| (s.ids.intersection(&ids).count(), i)).collect();
    counts.sort_by(|a, b| b.cmp(a));
    match counts.as_slice() {
        [(best, i), rest @ ..] if *best > 0 && rest.first().is_none_or(|r| r.0 < *best) => Ok(*i),
        _ => bail!(
            "cannot tell which --source {} belongs to (none of {} is named `{}`, and the graded cells \
             do not single one out); name the notebook after its source",
            sub.path.display(),
            sources.iter().map(|s| format!("{}.ipynb", s.name)).collect::<Vec<_>>().join(", "),
            sub.notebook
        ),
    }
}

/// Checks that the sources can be told apart by name.
pub fn check_sources(sources: &[Source]) -> Result<()> {
    let mut names = HashSet::new();
    for s in sources {
        if !names.insert(s.name.as_str()) {
            bail!("two --source notebooks are named `{}.ipynb`; each assignment needs its own name", s.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "{\"cells\": []}").unwrap();
    }

    #[test]
    fn nbgrader_layout_names_student_assignment_and_timestamp() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("course/submitted");
        let a = root.join("alice/ps1/quantization.ipynb");
        let b = root.join("bob/ps1/quantization.ipynb");
        touch(&a);
        touch(&b);
        touch(&root.join("bob/ps1/.ipynb_checkpoints/quantization-checkpoint.ipynb"));
        std::fs::write(root.join("alice/ps1/timestamp.txt"), "2026-11-30 17:02:11.123456 UTC\n").unwrap();
        let subs = collect(std::slice::from_ref(&root)).unwrap();
        assert_eq!(subs.len(), 2, "{subs:?}");
        assert_eq!(
            subs[0],
            Submission {
                path: a,
                student_id: "alice".into(),
                assignment: Some("ps1".into()),
                notebook: "quantization".into(),
                timestamp: "2026-11-30 17:02:11.123456 UTC".into(),
            }
        );
        assert_eq!(subs[1].student_id, "bob");
        assert_eq!(subs[1].output_stem(), Path::new("bob/ps1/quantization"));
        // No timestamp.txt: the notebook's modification time, to the second, in UTC.
        let t = &subs[1].timestamp;
        assert!(t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert_eq!(
            *t,
            humantime::format_rfc3339_seconds(std::fs::metadata(&b).unwrap().modified().unwrap()).to_string()
        );
    }

    #[test]
    fn a_flat_folder_names_learners_by_file_stem() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("subs");
        for n in ["zoe.ipynb", "al.ipynb", "al.executed.ipynb", "notes.txt"] {
            touch(&d.join(n));
        }
        let subs = collect(&[d.clone(), d.join("zoe.ipynb")]).unwrap();
        let ids: Vec<_> = subs.iter().map(|s| (s.student_id.as_str(), s.assignment.clone())).collect();
        assert_eq!(ids, [("al", None), ("zoe", None)]);
        assert_eq!(subs[0].output_stem(), Path::new("al"));
    }

    #[test]
    fn two_notebooks_filed_under_one_name_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("x/al.ipynb"), tmp.path().join("y/al.ipynb"));
        touch(&a);
        touch(&b);
        assert!(collect(&[a, b]).unwrap_err().to_string().contains("both be filed as `al`"));
        assert!(collect(&[tmp.path().join("x/al.ipynb").with_file_name("empty")]).is_err());
    }

    fn source(name: &str, ids: &[&str]) -> Source {
        let cells: Vec<_> = ids
            .iter()
            .map(|id| json!({"cell_type": "code", "source": "", "metadata": {"nbgrader": {"grade_id": id}}}))
            .collect();
        let notebook = Notebook { json: json!({"cells": cells}) };
        Source { path: format!("{name}.ipynb").into(), name: name.into(), ids: grade_ids(&notebook), notebook }
    }

    fn sub(path: &str, assignment: Option<&str>) -> Submission {
        let p = PathBuf::from(path);
        Submission {
            student_id: stem(&p),
            notebook: stem(&p),
            assignment: assignment.map(str::to_string),
            path: p,
            timestamp: String::new(),
        }
    }

    #[test]
    fn submissions_are_matched_to_their_source() {
        let sources = [source("quantization", &["a", "b", "c"]), source("formats", &["c", "d"])];
        let nb = |ids: &[&str]| source("x", ids).notebook;
        // nbgrader layout: by notebook name, then by assignment folder.
        let mut s = sub("submitted/al/ps1/formats.ipynb", Some("ps1"));
        assert_eq!(match_source(&sources, &s, &nb(&[])).unwrap(), 1);
        s.notebook = "other".into();
        s.assignment = Some("quantization".into());
        assert_eq!(match_source(&sources, &s, &nb(&[])).unwrap(), 0);
        // Flat folder of learners: by the graded cells they share.
        assert_eq!(match_source(&sources, &sub("al.ipynb", None), &nb(&["c", "d"])).unwrap(), 1);
        assert_eq!(match_source(&sources, &sub("al.ipynb", None), &nb(&["a", "c"])).unwrap(), 0);
        let e = match_source(&sources, &sub("al.ipynb", None), &nb(&["c"])).unwrap_err().to_string();
        assert!(e.contains("cannot tell which --source"), "{e}");
        // One source grades everything.
        assert_eq!(match_source(&sources[1..], &sub("al.ipynb", None), &nb(&[])).unwrap(), 0);
        assert!(check_sources(&[source("a", &[]), source("a", &[])]).is_err());
    }
}
