//! Each way a submission can go wrong costs only its own question.

use crate::support::*;

macro_rules! kernel_test {
    ($name:ident) => {
        if !kernel_available(stringify!($name)) {
            return;
        }
    };
}

fn others_pass(report: &serde_json::Value, except: &str) {
    for q in report["questions"].as_array().unwrap() {
        if q["id"] != except {
            assert_eq!(q["status"], "passed", "{report:#}");
        }
    }
}

#[test]
fn a_wrong_answer_costs_only_its_question() {
    kernel_test!(a_wrong_answer_costs_only_its_question);
    let (r, table) = grade_plain(&with(("answer", "let answer: i32 = base + 1;")), &[]);
    let (status, points, feedback) = question(&r, "q_answer");
    assert_eq!((status, points), ("failed", 0.0));
    assert!(feedback.contains("left: 41") && feedback.contains("right: 42"), "{feedback}");
    others_pass(&r, "q_answer");
    assert_eq!(r["total"].as_f64(), Some(3.0));
    assert!(table.contains("q_answer           0/1  failed"), "{table}");
}

#[test]
fn a_compile_error_is_reported_as_such() {
    kernel_test!(a_compile_error_is_reported_as_such);
    let (r, _) = grade_plain(&with(("double", "fn double(x: i32) -> i32 { \"two\" }")), &[]);
    let (status, points, feedback) = question(&r, "q_double");
    assert_eq!((status, points), ("compile_error", 0.0));
    assert!(feedback.contains("mismatched types"), "{feedback}");
    others_pass(&r, "q_double");
}

#[test]
fn a_panic_is_caught_although_evcxr_says_ok() {
    kernel_test!(a_panic_is_caught_although_evcxr_says_ok);
    let (r, _) = grade_plain(&with(("answer", "let answer: i32 = { let v: Vec<i32> = vec![]; v[3] };")), &[]);
    let (status, _, feedback) = question(&r, "q_answer");
    assert_eq!(status, "panic");
    assert!(feedback.contains("index out of bounds"), "{feedback}");
    others_pass(&r, "q_answer");
}

#[test]
fn an_endless_loop_times_out_and_grading_goes_on() {
    kernel_test!(an_endless_loop_times_out_and_grading_goes_on);
    // The looping answer is the first question: later ones need the replayed `setup` cell.
    let (r, _) = grade_plain(&with(("answer", "let answer: i32 = loop {};")), &["--timeout", "15"]);
    let (status, _, feedback) = question(&r, "q_answer");
    assert_eq!(status, "timeout");
    assert!(feedback.contains("time limit"), "{feedback}");
    others_pass(&r, "q_answer");
}

#[test]
fn printing_megabytes_scores_zero_and_memory_stays_bounded() {
    kernel_test!(printing_megabytes_scores_zero_and_memory_stays_bounded);
    let flood = "fn double(x: i32) -> i32 { x * 2 }\nfor i in 0..40_000 { println!(\"{i:0>20}\"); }";
    let (r, _) = grade_plain(&with(("double", flood)), &[]);
    let (status, _, feedback) = question(&r, "q_double");
    assert!(status == "failed" || status == "timeout", "{r:#}");
    assert!(feedback.contains("bytes") || feedback.contains("time limit"), "{feedback}");
    others_pass(&r, "q_double");
}

#[test]
fn process_exit_scores_zero_and_the_state_is_replayed() {
    kernel_test!(process_exit_scores_zero_and_the_state_is_replayed);
    let (r, _) = grade_plain(&with(("answer", "let answer: i32 = 42;\nstd::process::exit(0);")), &[]);
    let (status, _, feedback) = question(&r, "q_answer");
    assert_eq!(status, "failed");
    assert!(feedback.contains("process::exit"), "{feedback}");
    others_pass(&r, "q_answer");
}

#[test]
fn edited_or_deleted_locked_cells_are_tampering() {
    kernel_test!(edited_or_deleted_locked_cells_are_tampering);
    let dir = tempfile::tempdir().unwrap();
    let source = data("plain_source.ipynb");
    let mut nb = release_of(&source, dir.path());
    for (id, src) in GOOD {
        set(&mut nb, id, src);
    }
    set(&mut nb, "q_answer", "// no checks here");
    let i = cell_index(&nb, "lesson2");
    nb["cells"].as_array_mut().unwrap().remove(i);
    let sub = dir.path().join("tampered.ipynb");
    write(&nb, &sub);
    let (r, _) = grade(&source, &sub, &[]);
    assert_eq!(question(&r, "q_answer"), ("tampered", 0.0, "cell `q_answer` was changed; this question scores 0"));
    // `lesson2` lies in q_double's section.
    assert_eq!(question(&r, "q_double"), ("tampered", 0.0, "cell `lesson2` was deleted; this question scores 0"));
    assert_eq!(question(&r, "q_i16_max").0, "passed");
}

#[test]
fn printing_the_expected_text_or_passed_earns_nothing() {
    kernel_test!(printing_the_expected_text_or_passed_earns_nothing);
    let dir = tempfile::tempdir().unwrap();
    let source = data("plain_source.ipynb");
    let mut nb = release_of(&source, dir.path());
    for (id, src) in GOOD {
        set(&mut nb, id, src);
    }
    // A wrong answer that prints everything a naive grader might look for.
    // A silent panic hook would hide the failing hidden assertion: the grader restores the default.
    set(
        &mut nb,
        "answer",
        "std::panic::set_hook(Box::new(|_| {}));\nlet answer: i32 = 1;\nprintln!(\"passed\\nq_answer ok\\nall tests passed\");",
    );
    // The TODO cell left empty, and its expected text printed by an extra cell instead.
    set(&mut nb, "i16_max", "// TODO: show the largest 16-bit signed integer");
    let extra = serde_json::json!({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
        "source": "println!(\"32767\"); 32767"});
    let at = cell_index(&nb, "i16_max");
    nb["cells"].as_array_mut().unwrap().insert(at + 1, extra);
    let sub = dir.path().join("forger.ipynb");
    write(&nb, &sub);
    let (r, _) = grade(&source, &sub, &[]);
    let (status, _, feedback) = question(&r, "q_answer");
    assert_eq!(status, "failed");
    assert!(feedback.contains("left: 1") && feedback.contains("right: 42"), "{feedback}");
    assert_eq!(question(&r, "q_i16_max"), ("failed", 0.0, "the answer cell shows nothing"));
    assert_eq!(question(&r, "q_double").0, "passed");
}

#[test]
fn a_deleted_answer_cell_is_missing() {
    kernel_test!(a_deleted_answer_cell_is_missing);
    let dir = tempfile::tempdir().unwrap();
    let source = data("plain_source.ipynb");
    let mut nb = release_of(&source, dir.path());
    for (id, src) in GOOD {
        set(&mut nb, id, src);
    }
    let i = cell_index(&nb, "double");
    nb["cells"].as_array_mut().unwrap().remove(i);
    let sub = dir.path().join("missing.ipynb");
    write(&nb, &sub);
    let (r, _) = grade(&source, &sub, &[]);
    assert_eq!(question(&r, "q_double").0, "missing");
    others_pass(&r, "q_double");
}
