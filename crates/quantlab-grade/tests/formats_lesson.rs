//! The block formats lesson (`course/formats.ipynb`): its release is up to date, its
//! solution scores full marks and its bare release 0 on every question.

use crate::support::*;

const SOURCE: &str = "course/formats.ipynb";
const RELEASE: &str = "notebooks/formats.ipynb";

/// `notebooks/formats.ipynb` must be exactly what `release` makes of the source today.
#[test]
fn the_formats_release_is_not_stale() {
    let root = workspace_root();
    let source = quantlab_grade::notebook::Notebook::load(&root.join(SOURCE)).unwrap();
    let fresh = quantlab_grade::release::release(&source).unwrap();
    let current = std::fs::read_to_string(root.join(RELEASE)).unwrap_or_default();
    assert!(
        current == fresh.to_text(),
        "{RELEASE} is stale: run `cargo run -p quantlab-grade -- release {SOURCE} -o {RELEASE}`"
    );
}

/// Three questions (2 + 2 + 1 points): the solution gets 5, the release 0, with feedback.
#[test]
fn the_formats_solution_scores_full_marks_and_its_release_zero() {
    if !kernel_available("the_formats_solution_scores_full_marks_and_its_release_zero") {
        return;
    }
    let source = workspace_root().join(SOURCE);
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    std::fs::copy(&source, subs.join("solution.ipynb")).unwrap();
    write(&release_of(&source, dir.path()), &subs.join("release.ipynb"));
    let reports = dir.path().join("reports");
    run_ok(
        bin()
            .arg("grade")
            .arg(subs.join("solution.ipynb"))
            .arg(subs.join("release.ipynb"))
            .arg("--source")
            .arg(&source)
            .arg("--json")
            .arg(&reports),
    );
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(reports.join(n)).unwrap()).unwrap()
    };
    let sol = read("solution.json");
    assert_eq!(sol["max_total"].as_f64(), Some(5.0), "{sol:#}");
    assert_eq!(sol["total"].as_f64(), Some(5.0), "{sol:#}");
    let rel = read("release.json");
    assert_eq!(rel["total"].as_f64(), Some(0.0), "{rel:#}");
    let questions = rel["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 3, "{rel:#}");
    for q in questions {
        assert_ne!(q["status"], "passed", "{rel:#}");
        assert!(!q["feedback"].as_str().unwrap().is_empty());
    }
}
