//! The quantlab lesson: a `:dep` notebook graded through the kernel, `validate`, and the
//! generated release of `course/quantization.ipynb` kept up to date.

use crate::support::*;

#[test]
fn a_quantlab_notebook_grades_through_its_dep() {
    if !kernel_available("a_quantlab_notebook_grades_through_its_dep") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = data("quantlab_source.ipynb");
    let mut nb = release_of(&source, dir.path());
    // A right answer to the output question, a wrong one to the value question.
    set(&mut nb, "int16_info", "// TODO: Information of `16-bit (signed) integer`\niinfo(DType::Int16)?.to_string()");
    set(&mut nb, "int8_bits", "let bits: u32 = 16;");
    let sub = dir.path().join("learner.ipynb");
    write(&nb, &sub);
    let (r, _) = grade(&source, &sub, &[]);
    assert_eq!(question(&r, "q_int16_info"), ("passed", 1.0, "all tests passed"), "{r:#}");
    assert_eq!(question(&r, "q_int8_bits").0, "failed");
    assert_eq!(r["total"].as_f64(), Some(1.0));
}

#[test]
fn validate_says_which_questions_look_done() {
    if !kernel_available("validate_says_which_questions_look_done") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nb = release_of(&data("plain_source.ipynb"), dir.path());
    set(&mut nb, "answer", "let answer: i32 = base + 2;");
    set(&mut nb, "lesson2", "let offset: i32 = 5;");
    let sub = dir.path().join("learner.ipynb");
    write(&nb, &sub);
    let out = run_ok(bin().arg("validate").arg(&sub));
    let text = String::from_utf8(out.stdout).unwrap();
    let line =
        |id: &str| text.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} in {text}")).to_string();
    assert!(line("q_answer").contains("passed") && line("q_answer").contains("looks done"), "{text}");
    assert!(line("q_i16_max").contains("shows nothing yet"), "{text}");
    assert!(line("q_double").contains("tampered") && line("q_double").contains("lesson2"), "{text}");
}

/// `notebooks/quantization.ipynb` must be exactly what `release` makes of the source today.
#[test]
fn the_learners_release_is_not_stale() {
    assert_release_fresh("course/quantization.ipynb", "notebooks/quantization.ipynb");
}

/// The real lesson: its source scores full marks and its release scores 0 on every question,
/// with feedback, in one run of `grade` over both (about 5 minutes: two kernels, one `:dep`
/// each and every lesson cell).
#[test]
fn the_lesson_solution_scores_full_marks_and_its_release_zero() {
    if !kernel_available("the_lesson_solution_scores_full_marks_and_its_release_zero") {
        return;
    }
    grade_solution_and_release(&workspace_root().join("course/quantization.ipynb"));
}
