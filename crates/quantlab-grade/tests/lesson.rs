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
    let root = workspace_root();
    let source = root.join("course/quantization.ipynb");
    let release = root.join("notebooks/quantization.ipynb");
    if !source.exists() {
        eprintln!("the_learners_release_is_not_stale: no course/quantization.ipynb yet");
        return;
    }
    let fresh = quantlab_grade::release::release(&quantlab_grade::notebook::Notebook::load(&source).unwrap()).unwrap();
    let current = std::fs::read_to_string(&release).unwrap_or_default();
    assert!(
        current == fresh.to_text(),
        "notebooks/quantization.ipynb is stale: run `cargo run -p quantlab-grade -- release course/quantization.ipynb -o notebooks/quantization.ipynb`"
    );
}

/// The real lesson: its source scores full marks and its release scores 0 on every question,
/// with feedback, in one run of `grade` over both (about 5 minutes: two kernels, one `:dep`
/// each and every lesson cell).
#[test]
fn the_lesson_solution_scores_full_marks_and_its_release_zero() {
    let source = workspace_root().join("course/quantization.ipynb");
    if !source.exists() {
        eprintln!("the_lesson_solution_scores_full_marks_and_its_release_zero: no course/quantization.ipynb yet");
        return;
    }
    if !kernel_available("the_lesson_solution_scores_full_marks_and_its_release_zero") {
        return;
    }
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
    assert!(sol["max_total"].as_f64().unwrap() > 0.0);
    assert_eq!(sol["total"], sol["max_total"], "{sol:#}");
    let rel = read("release.json");
    assert_eq!(rel["total"].as_f64(), Some(0.0), "{rel:#}");
    for q in rel["questions"].as_array().unwrap() {
        assert_ne!(q["status"], "passed", "{rel:#}");
        assert!(!q["feedback"].as_str().unwrap().is_empty());
    }
}
