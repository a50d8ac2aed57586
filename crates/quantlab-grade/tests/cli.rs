//! The command line: release, the two ends of the score range, many submissions, errors.

use crate::support::*;

#[test]
fn release_strips_solutions_and_hidden_tests_and_records_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let rel = release_of(&data("plain_source.ipynb"), dir.path());
    let src = |id: &str| {
        rel["cells"][cell_index(&rel, id)]["source"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect::<String>()
    };
    assert_eq!(src("answer"), "let answer: i32 =\n    todo!(\"your code here\")\n;");
    assert_eq!(src("i16_max"), "// TODO: show the largest 16-bit signed integer");
    assert_eq!(src("q_answer"), "::std::assert!(answer > 0);");
    assert_eq!(src("q_i16_max"), "");
    let text = serde_json::to_string(&rel).unwrap();
    assert!(!text.contains("HIDDEN") && !text.contains("SOLUTION") && !text.contains("base + 2"));
    let sums = rel["metadata"]["quantlab"]["locked_checksums"].as_object().unwrap();
    let mut ids: Vec<&str> = sums.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(ids, ["lesson2", "q_answer", "q_double", "q_i16_max", "setup"]);
}

#[test]
fn grade_without_a_readable_source_fails_with_a_message() {
    let out = bin().args(["grade", "nope.ipynb", "--source", "missing.ipynb"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read notebook missing.ipynb"));
    let out = bin()
        .args(["grade", "x.ipynb", "--source"])
        .arg(data("plain_source.ipynb"))
        .args(["--timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_solution_scores_full_marks_and_the_release_zero_in_one_run() {
    if !kernel_available("the_solution_scores_full_marks_and_the_release_zero_in_one_run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = data("plain_source.ipynb");
    let subs = dir.path().join("subs");
    std::fs::create_dir(&subs).unwrap();
    std::fs::copy(&source, subs.join("a_solution.ipynb")).unwrap();
    write(&release_of(&source, dir.path()), &subs.join("b_release.ipynb"));
    let reports = dir.path().join("reports");
    let out = run_ok(
        bin()
            .arg("grade")
            .arg(subs.join("a_solution.ipynb"))
            .arg(subs.join("b_release.ipynb"))
            .arg("--source")
            .arg(&source)
            .arg("--json")
            .arg(&reports),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("a_solution.ipynb") && stdout.contains("b_release.ipynb"), "{stdout}");
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(reports.join(n)).unwrap()).unwrap()
    };
    let sol = read("a_solution.json");
    assert_eq!((sol["total"].as_f64(), sol["max_total"].as_f64()), (Some(4.0), Some(4.0)), "{sol:#}");
    let rel = read("b_release.json");
    assert_eq!(rel["total"].as_f64(), Some(0.0));
    for q in rel["questions"].as_array().unwrap() {
        assert_ne!(q["status"], "passed");
        assert!(!q["feedback"].as_str().unwrap().is_empty());
    }
    assert_eq!(question(&rel, "q_answer").0, "panic");
    assert!(question(&rel, "q_answer").2.contains("not answered yet"));
    assert_eq!(question(&rel, "q_i16_max"), ("failed", 0.0, "the answer cell shows nothing"));
    // Executed copies go beside the reports, with the hidden tests' pass line in them.
    assert!(reports.join("a_solution.executed.ipynb").is_file());
}

#[test]
fn bad_course_arguments_are_refused_before_any_kernel_runs() {
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("twin");
    std::fs::create_dir(&twin).unwrap();
    std::fs::copy(data("plain_source.ipynb"), twin.join("plain_source.ipynb")).unwrap();
    let sub = dir.path().join("al.ipynb");
    std::fs::copy(data("plain_source.ipynb"), &sub).unwrap();
    let stderr = |args: &[&std::ffi::OsStr]| {
        let out = bin().arg("grade").args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = stderr(&[
        sub.as_os_str(),
        "--source".as_ref(),
        data("plain_source.ipynb").as_os_str(),
        "--source".as_ref(),
        twin.join("plain_source.ipynb").as_os_str(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("two --source notebooks are named `plain_source.ipynb`"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, err) = stderr(&[empty.as_os_str(), "--source".as_ref(), data("plain_source.ipynb").as_os_str()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("holds no .ipynb notebooks to grade"), "{err}");
    let (code, _) = stderr(&[
        sub.as_os_str(),
        "--source".as_ref(),
        data("plain_source.ipynb").as_os_str(),
        "--jobs".as_ref(),
        "0".as_ref(),
    ]);
    assert_eq!(code, Some(2), "--jobs 0 is a usage error");
}
