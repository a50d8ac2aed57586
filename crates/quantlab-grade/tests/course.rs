//! A whole course graded in one run: two assignments, two learners, in nbgrader's folder
//! layout; gradebook, feedback pages (read back through headless Chromium) and `--jobs 2`
//! against `--jobs 1`. The two runs are made once and shared by the tests below.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::*;

/// The course folder and the outputs of the `--jobs 2` and `--jobs 1` runs.
struct Course {
    _dir: tempfile::TempDir,
    root: PathBuf,
    jobs2: PathBuf,
    jobs1: PathBuf,
}

/// 2026-11-30T17:02:11Z, the mtime given to every submitted notebook.
fn handed_in() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_058_131)
}

/// bob's faulty plain submission: a wrong value, the wrong line shown, and an answer whose
/// tests panic with markup in the message.
const BOB_PLAIN: [(&str, &str); 3] = [
    ("answer", "let answer: i32 = base + 1;"),
    ("i16_max", "// TODO: show the largest 16-bit signed integer\ni16::MIN"),
    ("double", "fn double(x: i32) -> i32 { panic!(\"<script>document.title='pwned'</script> {x}\") }"),
];

fn submit(root: &Path, student: &str, assignment: &str, source: &Path, answers: &[(&str, &str)]) {
    let dir = root.join("submitted").join(student).join(assignment);
    std::fs::create_dir_all(&dir).unwrap();
    let mut nb = release_of(source, &dir);
    std::fs::remove_file(dir.join("release.ipynb")).unwrap();
    for (id, src) in answers {
        set(&mut nb, id, src);
    }
    let path = dir.join(format!("{assignment}.ipynb"));
    write(&nb, &path);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(handed_in()).unwrap();
}

fn grade_course(root: &Path, jobs: &str, out: &Path) {
    let source = |a: &str| root.join("source").join(a).join(format!("{a}.ipynb"));
    run_ok(
        bin()
            .arg("grade")
            .arg(root.join("submitted"))
            .arg("--source")
            .arg(source("plain"))
            .arg("--source")
            .arg(source("strings"))
            .args(["--jobs", jobs])
            .arg("--json")
            .arg(out.join("json"))
            .arg("--feedback")
            .arg(out.join("feedback"))
            .arg("--csv")
            .arg(out.join("grades.csv")),
    );
}

/// Builds the course and grades it twice; `None` when there is no kernel.
fn course() -> Option<&'static Course> {
    static COURSE: OnceLock<Option<Course>> = OnceLock::new();
    COURSE
        .get_or_init(|| {
            if !kernel_available("course tests") {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("course");
            // nbgrader's own layout: source/<assignment>/<notebook>.ipynb.
            for (a, file) in [("plain", "plain_source.ipynb"), ("strings", "strings_source.ipynb")] {
                std::fs::create_dir_all(root.join("source").join(a)).unwrap();
                std::fs::copy(data(file), root.join("source").join(a).join(format!("{a}.ipynb"))).unwrap();
            }
            let src = |a: &str| root.join("source").join(a).join(format!("{a}.ipynb"));
            submit(&root, "alice", "plain", &src("plain"), &GOOD);
            submit(
                &root,
                "alice",
                "strings",
                &src("strings"),
                &[("shout", "let shout: String = word.to_uppercase();")],
            );
            submit(&root, "bob", "plain", &src("plain"), &BOB_PLAIN);
            submit(&root, "bob", "strings", &src("strings"), &[("shout", "let shout: String = word.to_upper();")]);
            // nbgrader's collect writes the time it received a submission beside it.
            std::fs::write(root.join("submitted/alice/strings/timestamp.txt"), "2026-11-29 08:15:00.000000 UTC\n")
                .unwrap();
            let (jobs2, jobs1) = (dir.path().join("jobs2"), dir.path().join("jobs1"));
            grade_course(&root, "2", &jobs2);
            grade_course(&root, "1", &jobs1);
            Some(Course { _dir: dir, root, jobs2, jobs1 })
        })
        .as_ref()
}

#[test]
fn the_gradebook_has_one_row_per_learner_and_question() {
    let Some(c) = course() else { return };
    let csv = std::fs::read_to_string(c.jobs2.join("grades.csv")).unwrap();
    assert_eq!(
        csv,
        "assignment,student_id,question,score,max_score,status,timestamp\n\
         plain,alice,q_answer,1.0,1.0,passed,2026-11-30T17:02:11Z\n\
         plain,alice,q_i16_max,1.0,1.0,passed,2026-11-30T17:02:11Z\n\
         plain,alice,q_double,2.0,2.0,passed,2026-11-30T17:02:11Z\n\
         plain,bob,q_answer,0.0,1.0,failed,2026-11-30T17:02:11Z\n\
         plain,bob,q_i16_max,0.0,1.0,failed,2026-11-30T17:02:11Z\n\
         plain,bob,q_double,0.0,2.0,failed,2026-11-30T17:02:11Z\n\
         strings,alice,q_shout,2.0,2.0,passed,2026-11-29 08:15:00.000000 UTC\n\
         strings,bob,q_shout,0.0,2.0,compile_error,2026-11-30T17:02:11Z\n"
    );
}

#[test]
fn jobs_2_grades_exactly_as_jobs_1() {
    let Some(c) = course() else { return };
    let read = |base: &Path, rel: &str| std::fs::read(base.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(read(&c.jobs2, "grades.csv"), read(&c.jobs1, "grades.csv"));
    for student in ["alice", "bob"] {
        for a in ["plain", "strings"] {
            let json = format!("json/{student}/{a}/{a}.json");
            assert_eq!(read(&c.jobs2, &json), read(&c.jobs1, &json), "{json}");
            let html = format!("feedback/{student}/{a}/{a}.html");
            assert_eq!(read(&c.jobs2, &html), read(&c.jobs1, &html), "{html}");
        }
    }
}

#[test]
fn outputs_are_filed_as_nbgrader_files_them() {
    let Some(c) = course() else { return };
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(c.jobs1.join("json/bob/plain/plain.json")).unwrap()).unwrap();
    assert_eq!(report["total"].as_f64(), Some(0.0));
    let (status, _, feedback) = question(&report, "q_double");
    assert_eq!(status, "failed");
    assert!(feedback.contains("<script>document.title='pwned'</script> 0"), "{feedback}");
    assert!(c.jobs1.join("json/alice/strings/strings.executed.ipynb").is_file());
    // nbgrader's release_feedback needs the submission's timestamp beside the page.
    assert_eq!(
        std::fs::read_to_string(c.jobs1.join("feedback/alice/strings/timestamp.txt")).unwrap(),
        "2026-11-29 08:15:00.000000 UTC\n"
    );
    assert!(!c.jobs1.join("feedback/bob/strings/timestamp.txt").exists());
    // The submissions are where they were, untouched by the outputs.
    assert!(c.root.join("submitted/bob/strings/strings.ipynb").is_file());
    assert_eq!(std::fs::read_dir(c.root.join("submitted/bob/strings")).unwrap().count(), 1);
}

/// Chromium, installed from Debian when missing (as scripts/test-aarch64.sh installs qemu);
/// `None` (the test skips) without it and without a way to install it, unless
/// `QUANTLAB_REQUIRE_KERNEL=1`.
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|n| std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(n)).find(|p| p.is_file()))
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n");
    let sudo = if root { vec![] } else { vec!["sudo".to_string(), "-n".to_string()] };
    let apt = |args: &[&str]| {
        let mut cmd = sudo.clone();
        cmd.extend(["apt-get", "-o", "DPkg::Lock::Timeout=600"].map(String::from));
        cmd.extend(args.iter().map(|a| a.to_string()));
        eprintln!("installing chromium: {}", cmd.join(" "));
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let _ = apt(&["install", "-y", "--no-install-recommends", "chromium"])
        || (apt(&["update"]) && apt(&["install", "-y", "--no-install-recommends", "chromium"]));
    let found = find();
    if found.is_none() {
        assert!(
            std::env::var("QUANTLAB_REQUIRE_KERNEL").as_deref() != Ok("1"),
            "QUANTLAB_REQUIRE_KERNEL=1 but chromium is missing and could not be installed"
        );
        eprintln!("feedback_pages_show_the_scores_in_chromium: skipped, no chromium");
    }
    found
}

/// What Chromium shows of `page`: its rendered text (`innerText`, which leaves out what is
/// not displayed) and its title after any script ran. A probe script is appended to a copy
/// of the page; the page itself has none.
fn rendered(browser: &Path, page: &Path) -> (String, String) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(!html.contains("<script"), "the feedback page carries no script of its own");
    let probe = page.with_extension("probe.html");
    let script = "<script>document.body.setAttribute('data-shown', document.body.innerText);\
                  document.body.setAttribute('data-title', document.title);</script>";
    std::fs::write(&probe, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8(out.stdout).unwrap();
    let attr = |name: &str| {
        let start = dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {dom}")) + name.len() + 2;
        let end = start + dom[start..].find('"').unwrap();
        dom[start..end].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
    };
    (attr("data-shown"), attr("data-title"))
}

#[test]
fn feedback_pages_show_the_scores_in_chromium() {
    let Some(c) = course() else { return };
    let Some(browser) = chromium() else { return };
    let (good, title) = rendered(&browser, &c.jobs2.join("feedback/alice/plain/plain.html"));
    assert_eq!(title, "Feedback: plain — alice — 4/4");
    assert!(good.contains("Score: 4/4"), "{good}");
    assert!(good.contains("q_double\t2/2\tpassed\tall tests passed"), "{good}");
    assert!(good.contains("let answer: i32 = base + 2;"), "the learner's own cell: {good}");
    assert!(good.contains("32767"), "its output: {good}");
    assert!(!good.contains("assert_eq!(double(-3)"), "hidden tests stay hidden: {good}");

    let (faulty, title) = rendered(&browser, &c.jobs2.join("feedback/bob/plain/plain.html"));
    assert_eq!(title, "Feedback: plain — bob — 0/4", "the learner's markup did not run");
    assert!(faulty.contains("Score: 0/4"), "{faulty}");
    assert!(faulty.contains("q_answer\t0/1\tfailed\ta test failed: assertion `left == right` failed"), "{faulty}");
    assert!(faulty.contains("q_i16_max\t0/1\tfailed\tthe answer cell shows `-32768`"), "{faulty}");
    assert!(faulty.contains("<script>document.title='pwned'</script>"), "shown as text: {faulty}");

    let (strings, _) = rendered(&browser, &c.jobs2.join("feedback/bob/strings/strings.html"));
    assert!(strings.contains("q_shout\t0/2\tcompile_error\tdoes not compile"), "{strings}");
    assert!(strings.contains("handed in 2026-11-30T17:02:11Z"), "{strings}");
}
