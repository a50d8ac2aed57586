//! Shared helpers: the binary, the test notebooks, and submissions made from the release.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quantlab-grade"))
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether the `rust` kernel is installed. Without it the kernel tests skip with a message,
/// unless `QUANTLAB_REQUIRE_KERNEL=1`, which makes them fail.
pub fn kernel_available(test: &str) -> bool {
    if quantlab_grade::kernel::spec::find("rust").is_ok() {
        return true;
    }
    if std::env::var("QUANTLAB_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!(
            "{test}: QUANTLAB_REQUIRE_KERNEL=1 but no `rust` Jupyter kernel is installed (run `evcxr_jupyter --install`)"
        );
    }
    eprintln!("{test}: skipped, no `rust` Jupyter kernel (run `evcxr_jupyter --install`)");
    false
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The release of `source`, as JSON.
pub fn release_of(source: &Path, dir: &Path) -> Value {
    let out = dir.join("release.ipynb");
    run_ok(bin().arg("release").arg(source).arg("-o").arg(&out));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

pub fn cell_index(nb: &Value, grade_id: &str) -> usize {
    nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["metadata"]["nbgrader"]["grade_id"] == grade_id)
        .unwrap_or_else(|| panic!("no cell {grade_id}"))
}

/// Sets the source of the cell with `grade_id`.
pub fn set(nb: &mut Value, grade_id: &str, src: &str) {
    let i = cell_index(nb, grade_id);
    nb["cells"][i]["source"] = Value::String(src.to_string());
}

pub fn write(nb: &Value, path: &Path) {
    std::fs::write(path, serde_json::to_string_pretty(nb).unwrap()).unwrap();
}

/// Grades one submission against `source`; returns the JSON report and the stdout table.
pub fn grade(source: &Path, submission: &Path, extra: &[&str]) -> (Value, String) {
    let report = submission.with_extension("report.json");
    let out =
        run_ok(bin().arg("grade").arg(submission).arg("--source").arg(source).arg("--json").arg(&report).args(extra));
    let json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (json, String::from_utf8(out.stdout).unwrap())
}

/// `(status, points)` of question `id`.
pub fn question<'a>(report: &'a Value, id: &str) -> (&'a str, f64, &'a str) {
    let q = report["questions"].as_array().unwrap().iter().find(|q| q["id"] == id).unwrap();
    (q["status"].as_str().unwrap(), q["points"].as_f64().unwrap(), q["feedback"].as_str().unwrap())
}

/// The plain test lesson: release, with answers set, graded; returns the report.
pub fn grade_plain(answers: &[(&str, &str)], extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let source = data("plain_source.ipynb");
    let mut nb = release_of(&source, dir.path());
    for (id, src) in answers {
        set(&mut nb, id, src);
    }
    let sub = dir.path().join("submission.ipynb");
    write(&nb, &sub);
    let before = std::fs::read(&sub).unwrap();
    let out = grade(&source, &sub, extra);
    assert_eq!(std::fs::read(&sub).unwrap(), before, "the submission must never be modified");
    out
}

/// Correct answers for the plain lesson, to combine with one wrong one.
pub const GOOD: [(&str, &str); 3] = [
    ("answer", "let answer: i32 = base + 2;"),
    ("i16_max", "// TODO: show the largest 16-bit signed integer\ni16::MAX"),
    ("double", "fn double(x: i32) -> i32 { x + x }"),
];

pub fn with(replace: (&'static str, &'static str)) -> Vec<(&'static str, &'static str)> {
    GOOD.iter().map(|&(id, s)| if id == replace.0 { replace } else { (id, s) }).collect()
}

/// Fails unless `release` (relative to the workspace) is exactly what
/// `quantlab-grade release` makes of `source` today.
pub fn assert_release_fresh(source: &str, release: &str) {
    let root = workspace_root();
    let fresh =
        quantlab_grade::release::release(&quantlab_grade::notebook::Notebook::load(&root.join(source)).unwrap())
            .unwrap();
    let current = std::fs::read_to_string(root.join(release)).unwrap_or_default();
    assert!(
        current == fresh.to_text(),
        "{release} is stale: run `cargo run -p quantlab-grade -- release {source} -o {release}`"
    );
}

/// Grades a lesson's source (its solution) and its release in one run of
/// `grade`, and returns their JSON reports: (solution, release). Checks what
/// holds for every lesson: the solution scores full marks, the release 0
/// with feedback on every question.
pub fn grade_solution_and_release(source: &Path) -> (Value, Value) {
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    std::fs::copy(source, subs.join("solution.ipynb")).unwrap();
    write(&release_of(source, dir.path()), &subs.join("release.ipynb"));
    let reports = dir.path().join("reports");
    run_ok(
        bin()
            .arg("grade")
            .arg(subs.join("solution.ipynb"))
            .arg(subs.join("release.ipynb"))
            .arg("--source")
            .arg(source)
            .arg("--json")
            .arg(&reports),
    );
    let read = |n: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(reports.join(n)).unwrap()).unwrap() };
    let (sol, rel) = (read("solution.json"), read("release.json"));
    assert!(sol["max_total"].as_f64().unwrap() > 0.0, "{sol:#}");
    assert_eq!(sol["total"], sol["max_total"], "{sol:#}");
    assert_eq!(rel["total"].as_f64(), Some(0.0), "{rel:#}");
    for q in rel["questions"].as_array().unwrap() {
        assert_ne!(q["status"], "passed", "{rel:#}");
        assert!(!q["feedback"].as_str().unwrap().is_empty(), "{rel:#}");
    }
    (sol, rel)
}
