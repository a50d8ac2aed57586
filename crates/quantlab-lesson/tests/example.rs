//! The `minilm` example as a user runs it: its JSON lines against
//! sentence-transformers' embeddings on quantize + dequantize round-trip
//! weights (tests/fixtures/minilm_embeddings.json). `cargo test` builds the
//! example beside this test; the model is found as tests/minilm.rs finds it.

use std::path::PathBuf;
use std::process::Command;

use quantlab_lesson::model::{cosine, find_model_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    sentences: Vec<String>,
    int8: Vec<Vec<f32>>,
    int4: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct Line {
    sentence: String,
    embedding: Vec<f32>,
}

fn example() -> PathBuf {
    // target/<profile>/deps/example-<hash> -> target/<profile>/examples/minilm
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join(format!("minilm{}", std::env::consts::EXE_SUFFIX))
}

fn required() -> bool {
    ["QUANTLAB_REQUIRE_MODEL", "QUANTLAB_REQUIRE_KERNEL"].iter().any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

#[test]
fn example_prints_sentence_transformers_embeddings_of_quantized_weights() {
    let dir = match find_model_dir() {
        Ok(d) => d,
        Err(e) if required() => panic!("QUANTLAB_REQUIRE_MODEL/KERNEL is set, but {e}"),
        Err(e) => return eprintln!("SKIPPED (model not installed): {e}"),
    };
    let bin = example();
    assert!(bin.is_file(), "{} is missing: run `cargo test -p quantlab-lesson` (which builds examples)", bin.display());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/minilm_embeddings.json");
    let fx: Fixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let picks = [0usize, 4, 5];
    for (format, want) in [("int8", &fx.int8), ("int4", &fx.int4)] {
        let out = Command::new(&bin)
            .arg("--model")
            .arg(&dir)
            .args(["--format", format])
            .args(picks.iter().map(|&i| &fx.sentences[i]))
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<Line> =
            String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), picks.len());
        for (line, &i) in lines.iter().zip(&picks) {
            assert_eq!(line.sentence, fx.sentences[i]);
            assert_eq!(line.embedding.len(), 384);
            let c = cosine(&line.embedding, &want[i]);
            assert!(c >= 0.9999, "{format} sentence {i}: cosine {c}");
        }
    }
    // A format it does not know: one line on stderr, exit 2, nothing on stdout.
    let out = Command::new(&bin).args(["--model"]).arg(&dir).args(["--format", "int5", "hi"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown weight format `int5`"));
}
