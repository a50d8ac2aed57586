//! The library practitioners depend on carries no lesson baggage: plotting and
//! random numbers live in `quantlab-lesson`. Asked of cargo itself, so a
//! dependency that comes in transitively counts too.

use std::process::Command;

/// Crates that belong to the lesson, never to the library's normal dependencies.
const LESSON_ONLY: [&str; 4] = ["plotters", "rand", "rand_distr", "rand_core"];

#[test]
fn the_library_depends_on_no_plotting_and_no_randomness() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "quantlab", "-e", "normal", "--prefix", "none", "--format", "{p}", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).expect("cargo prints UTF-8");
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // The tree is real: the library itself and what it does need are in it.
    for needed in ["quantlab", "half", "ndarray", "float8", "thiserror"] {
        assert!(names.contains(&needed), "{needed} missing from the tree:\n{tree}");
    }
    for banned in LESSON_ONLY {
        assert!(!names.contains(&banned), "quantlab depends on {banned}:\n{tree}");
    }
}
