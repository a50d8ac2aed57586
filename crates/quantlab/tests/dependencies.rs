//! The library practitioners depend on carries no lesson baggage: plotting and
//! random numbers live in `quantlab-lesson`. Asked of cargo itself, so a
//! dependency that comes in transitively counts too.

use std::process::Command;

/// Crates that belong to the lesson, never to the library's normal dependencies.
const LESSON_ONLY: [&str; 4] = ["plotters", "rand", "rand_distr", "rand_core"];

/// Crates of the file formats (feature `io`), which the lesson's notebooks never use.
const FORMATS_ONLY: [&str; 4] = ["safetensors", "ndarray-npy", "memmap2", "pest"];

/// The names in `cargo tree -p PACKAGE -e normal EXTRA...`.
fn tree_with(package: &str, extra: &[&str]) -> (String, Vec<String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}", "--offline"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).expect("cargo prints UTF-8");
    let names = tree.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    (tree, names)
}

#[test]
fn the_library_depends_on_no_plotting_and_no_randomness() {
    let (tree, names) = tree_with("quantlab", &[]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // The tree is real: the library itself and what it does need are in it.
    for needed in ["quantlab", "half", "ndarray", "float8", "thiserror"] {
        assert!(names.contains(&needed), "{needed} missing from the tree:\n{tree}");
    }
    for banned in LESSON_ONLY {
        assert!(!names.contains(&banned), "quantlab depends on {banned}:\n{tree}");
    }
}

#[test]
fn the_lesson_crate_builds_no_file_formats() {
    // The quantization lesson's cold `:dep quantlab-lesson = { ..., default-features = false }`
    // compiles this tree: plotting yes, formats and the tokenizer no.
    let (tree, names) = tree_with("quantlab-lesson", &["--no-default-features"]);
    assert!(names.iter().any(|n| n == "plotters") && names.iter().any(|n| n == "quantlab"), "{tree}");
    for banned in FORMATS_ONLY.iter().chain(&["tokenizers"]) {
        assert!(!names.iter().any(|n| n == banned), "quantlab-lesson depends on {banned}:\n{tree}");
    }
    // The model lesson's default features bring the model's weights and tokenizer.
    let (tree, names) = tree_with("quantlab-lesson", &[]);
    for needed in ["safetensors", "tokenizers"] {
        assert!(names.iter().any(|n| n == needed), "the model feature lacks {needed}:\n{tree}");
    }
}
