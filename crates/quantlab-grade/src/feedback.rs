//! The learner's feedback page: one self-contained HTML file per submission, as nbgrader's
//! `generate_feedback` makes.
//!
//! For each question: points, status and the grader's message, next to the learner's own
//! answer cell as graded (its source and its outputs). Everything from the notebook or the
//! report is escaped (maud escapes every interpolated value), so a learner's `<script>`
//! shows as text. No scripts, fonts or stylesheets are fetched: the page reads offline.
//! Hidden tests never appear: only answer cells are shown.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use crate::lesson::Question;
use crate::notebook::{self, Notebook};
use crate::report::{QuestionReport, Report};

/// Who and what the page is about.
#[derive(Debug, Clone)]
pub struct Heading<'a> {
    /// The assignment.
    pub assignment: &'a str,
    /// The learner.
    pub student_id: &'a str,
    /// The notebook's name.
    pub notebook: &'a str,
    /// When it was handed in.
    pub timestamp: &'a str,
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-bottom: .3rem; } h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
td.points { white-space: nowrap; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; white-space: pre-wrap; border-radius: 4px; margin: .3rem 0; }
pre.stderr, pre.error { background: #fdf0f0; }
section { border-left: 4px solid #bbb; padding-left: 1rem; margin: 1.5rem 0; }
.passed { border-color: #2e7d32; } .status-passed { color: #2e7d32; }
section.failed, section.compile_error, section.panic, section.timeout, section.tampered, section.missing { border-color: #c62828; }
.status { font-weight: 600; } .total { font-size: 1.1rem; font-weight: 700; }
";

fn pts(p: f64, of: f64) -> String {
    format!("{p}/{of}")
}

/// Whether `s` is plain base64 (so it can sit in a `data:` URL as it is).
fn is_base64(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r'))
}

/// nbformat keeps multi-line strings as either a string or a list of lines.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn output(o: &Value) -> Markup {
    match o["output_type"].as_str().unwrap_or("") {
        "stream" => {
            let name = if o["name"] == "stderr" { "stderr" } else { "stdout" };
            html! { pre class=(name) { (crate::grade::strip_ansi(&text_of(&o["text"]))) } }
        }
        "execute_result" | "display_data" => {
            let data = &o["data"];
            let png = text_of(&data["image/png"]);
            if is_base64(&png) {
                let src = format!("data:image/png;base64,{}", png.replace(['\n', '\r'], ""));
                html! { img alt="image output" src=(src); }
            } else if let Some(t) = data.get("text/plain") {
                html! { pre class="result" { (crate::grade::strip_ansi(&text_of(t))) } }
            } else {
                let kinds: Vec<&str> =
                    data.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
                html! { p { "(an output of type " (kinds.join(", ")) " is not shown here)" } }
            }
        }
        "error" => {
            let mut text =
                format!("{}: {}", o["ename"].as_str().unwrap_or("Error"), o["evalue"].as_str().unwrap_or(""));
            for line in o["traceback"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                text.push('\n');
                text.push_str(line);
            }
            html! { pre class="error" { (crate::grade::strip_ansi(&text)) } }
        }
        _ => html! {},
    }
}

fn answer(cell: Option<&Value>) -> Markup {
    let Some(cell) = cell else {
        return html! { p { "No answer cell for this question in the graded notebook." } };
    };
    let outputs = cell["outputs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    html! {
        h3 { "Your answer" }
        pre class="source" { (notebook::source(cell)) }
        h3 { "Its output" }
        @if outputs.is_empty() {
            p { "(no output)" }
        } @else {
            div class="outputs" { @for o in outputs { (output(o)) } }
        }
    }
}

fn question(q: &QuestionReport, cell: Option<&Value>) -> Markup {
    let status = q.status.as_str();
    html! {
        section id={ "q-" (q.id) } class=(status) {
            h2 { (q.id) " — " (pts(q.points, q.max_points)) " — " span class={ "status status-" (status) } { (status) } }
            p class="message" { (q.feedback) }
            (answer(cell))
        }
    }
}

/// The feedback page for one graded submission. `questions` are the source's (for the
/// answer cell of each), `executed` the graded copy the report was made from.
pub fn page(head: &Heading<'_>, questions: &[Question], report: &Report, executed: &Notebook) -> String {
    let cell_of = |q: &QuestionReport| {
        let sol = questions.iter().find(|x| x.id == q.id)?.solution_id.as_ref()?;
        executed.cells().iter().find(|c| notebook::nbgrader(c).is_some_and(|m| &m.grade_id == sol))
    };
    let total = pts(report.total, report.max_total);
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Feedback: " (head.assignment) " — " (head.student_id) " — " (total) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Feedback: " (head.assignment) }
                p {
                    "Learner " b { (head.student_id) } ", notebook " code { (head.notebook) ".ipynb" }
                    ", handed in " (head.timestamp) "."
                }
                p class="total" id="total" { "Score: " (total) }
                table {
                    thead { tr { th { "Question" } th { "Points" } th { "Status" } th { "Feedback" } } }
                    tbody {
                        @for q in &report.questions {
                            tr {
                                td { a href={ "#q-" (q.id) } { (q.id) } }
                                td class="points" { (pts(q.points, q.max_points)) }
                                td class={ "status status-" (q.status.as_str()) } { (q.status.as_str()) }
                                td { (q.feedback) }
                            }
                        }
                    }
                }
                @if !report.notes.is_empty() {
                    h2 { "Notes" }
                    ul { @for n in &report.notes { li { (n) } } }
                }
                @for q in &report.questions { (question(q, cell_of(q))) }
                p { small { "Graded by quantlab-grade " (env!("CARGO_PKG_VERSION")) "." } }
            }
        }
    };
    doc.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;
    use serde_json::json;

    fn setup() -> (Vec<Question>, Report, Notebook) {
        let questions = vec![
            Question {
                id: "q1".into(),
                points: 1.0,
                test_cell: 1,
                solution_id: Some("a1".into()),
                expect_output: None,
            },
            Question {
                id: "q2".into(),
                points: 2.0,
                test_cell: 3,
                solution_id: Some("a2".into()),
                expect_output: None,
            },
        ];
        let report = Report::new(
            vec![
                QuestionReport {
                    id: "q1".into(),
                    points: 1.0,
                    max_points: 1.0,
                    status: Status::Passed,
                    feedback: "all tests passed".into(),
                },
                QuestionReport {
                    id: "q2".into(),
                    points: 0.0,
                    max_points: 2.0,
                    status: Status::Panic,
                    feedback: "panicked: <b>boom</b> & more".into(),
                },
            ],
            vec!["extra cell 4: <i>hung</i>".into()],
        );
        let meta = |id: &str| json!({"nbgrader": {"grade_id": id, "solution": true}});
        let nb = Notebook {
            json: json!({"cells": [
                {"cell_type": "code", "metadata": meta("a1"), "source": "let x = 1 < 2;",
                 "outputs": [{"output_type": "execute_result", "data": {"text/plain": "true"}, "metadata": {}}]},
                {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "q1", "grade": true}},
                 "source": "assert!(SECRET_HIDDEN_TEST);", "outputs": []},
                {"cell_type": "code", "metadata": meta("a2"), "source": "println!(\"</pre><script>alert(1)</script>\");",
                 "outputs": [{"output_type": "stream", "name": "stderr", "text": ["\u{1b}[31mthread panicked\u{1b}[0m\n"]},
                             {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=\n"}, "metadata": {}},
                             {"output_type": "display_data", "data": {"text/html": "<script>x</script>"}, "metadata": {}}]},
            ]}),
        };
        (questions, report, nb)
    }

    #[test]
    fn the_page_shows_scores_answers_and_escapes_everything() {
        let (questions, report, nb) = setup();
        let head =
            Heading { assignment: "plain", student_id: "o<b>", notebook: "plain", timestamp: "2026-11-30T17:02:11Z" };
        let page = page(&head, &questions, &report, &nb);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(r#"<p class="total" id="total">Score: 1/3</p>"#), "{page}");
        assert!(page.contains(r#"<td class="points">0/2</td><td class="status status-panic">panic</td>"#), "{page}");
        assert!(page.contains("panicked: &lt;b&gt;boom&lt;/b&gt; &amp; more"));
        assert!(page.contains("<b>o&lt;b&gt;</b>"));
        assert!(page.contains("extra cell 4: &lt;i&gt;hung&lt;/i&gt;"));
        assert!(page.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(r#"<pre class="stderr">thread panicked"#), "ANSI colours are stripped: {page}");
        assert!(page.contains(r#"<img alt="image output" src="data:image/png;base64,iVBORw0KGgo=">"#), "{page}");
        assert!(page.contains("(an output of type text/html is not shown here)"));
        assert!(page.contains(r#"<pre class="result">true</pre>"#));
        assert!(!page.contains("<script") && !page.contains("SECRET_HIDDEN_TEST"), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://"), "nothing is fetched");
    }

    #[test]
    fn a_question_without_its_answer_cell_says_so() {
        let (questions, report, _) = setup();
        let head = Heading { assignment: "a", student_id: "s", notebook: "n", timestamp: "t" };
        let page = page(&head, &questions, &report, &Notebook { json: json!({"cells": []}) });
        assert_eq!(page.matches("No answer cell for this question").count(), 2);
    }
}
