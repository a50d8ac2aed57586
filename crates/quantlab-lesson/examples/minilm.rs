//! Sentence embeddings from all-MiniLM-L6-v2, in any weight format:
//!
//! ```text
//! cargo run --release -p quantlab-lesson --example minilm -- --model DIR [--format F] [--time] SENTENCE...
//! ```
//!
//! Prints one JSON object per sentence: `{"sentence": ..., "format": ...,
//! "embedding": [384 floats]}`. `--format` takes `f32` (default), `int8`
//! (symmetric, per channel along axis 0), `int4` (symmetric, groups of 32),
//! `int4-g128`, and the command line's other types (`uint8`, `int2-g32`,
//! `bf16`, `float8_e4m3fn`, ...): see `quantlab_lesson::model::Format`. Only
//! the encoder's 2-D weight matrices change; embedding tables, biases and
//! LayerNorm stay f32. `--model` defaults to what `find_model_dir` finds.
//! `--time` adds the best of 10 forward passes (one thread) to stderr.

use std::process::ExitCode;
use std::time::Instant;

use quantlab_lesson::model::{Format, MiniLm, find_model_dir};

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut dir, mut format, mut time, mut sentences) = (None, Format::F32, false, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => dir = Some(args.next().ok_or("--model needs a folder")?),
            "--format" => {
                format = Format::parse(&args.next().ok_or("--format needs a name")?).map_err(|e| e.to_string())?
            }
            "--time" => time = true,
            "--help" | "-h" => {
                println!("usage: minilm [--model DIR] [--format F] [--time] SENTENCE...");
                return Ok(());
            }
            _ => sentences.push(a),
        }
    }
    if sentences.is_empty() {
        return Err("give at least one sentence (usage: minilm [--model DIR] [--format F] SENTENCE...)".into());
    }
    let dir = match dir {
        Some(d) => d.into(),
        None => find_model_dir().map_err(|e| e.to_string())?,
    };
    let model = MiniLm::load(&dir).map_err(|e| e.to_string())?;
    let model = model.with_format(&format).map_err(|e| e.to_string())?;
    for s in &sentences {
        let e = model.embed(s).map_err(|e| e.to_string())?;
        if time {
            // Best of 10 (a shared machine's noise only ever adds time), one thread.
            let enc = model.tokenizer().encode(s).map_err(|e| e.to_string())?;
            let mut best = f64::INFINITY;
            for _ in 0..10 {
                let t = Instant::now();
                model.embed_ids(&enc.ids, &enc.type_ids).map_err(|e| e.to_string())?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            eprintln!("{format}: {} tokens, forward pass best of 10: {:.2} ms", enc.ids.len(), best * 1e3);
        }
        let line = serde_json::json!({ "sentence": s, "format": format.to_string(), "embedding": e.to_vec() });
        println!("{line}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
