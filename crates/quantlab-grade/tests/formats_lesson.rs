//! The block formats lesson (`course/formats.ipynb`): its release is up to date, its
//! solution scores full marks and its bare release 0 on every question.

use crate::support::*;

const SOURCE: &str = "course/formats.ipynb";
const RELEASE: &str = "notebooks/formats.ipynb";

/// `notebooks/formats.ipynb` must be exactly what `release` makes of the source today.
#[test]
fn the_formats_release_is_not_stale() {
    assert_release_fresh(SOURCE, RELEASE);
}

/// Three questions (2 + 2 + 1 points): the solution gets 5, the release 0, with feedback.
#[test]
fn the_formats_solution_scores_full_marks_and_its_release_zero() {
    if !kernel_available("the_formats_solution_scores_full_marks_and_its_release_zero") {
        return;
    }
    let (sol, rel) = grade_solution_and_release(&workspace_root().join(SOURCE));
    assert_eq!(sol["max_total"].as_f64(), Some(5.0), "{sol:#}");
    assert_eq!(rel["questions"].as_array().unwrap().len(), 3, "{rel:#}");
}
