//! Block formats: quantize and dequantize 2^20 f32 (2^24 with
//! `QUANTLAB_BENCH_BIG=1`) on one thread, for every format, with the scalar
//! references (no SIMD path yet), and int8 per-tensor beside them as the
//! yardstick the issue names.
//!
//! `cargo bench -p quantlab --bench formats`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantlab::formats::{BlockFormat, FORMAT_NAMES};
use quantlab::prelude::*;

/// Normal-ish weights, deterministic (as benches/quantize.rs).
fn weights(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect()
}

fn formats(c: &mut Criterion) {
    let n = if std::env::var_os("QUANTLAB_BENCH_BIG").is_some() { 1 << 24 } else { 1 << 20 };
    let x = weights(n);
    let cols = 4096;
    let mut g = c.benchmark_group("formats");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    for name in FORMAT_NAMES {
        let f = BlockFormat::parse(name).unwrap();
        g.bench_with_input(BenchmarkId::new("quantize", name), &x, |b, x| {
            b.iter(|| f.quantize(black_box(x), cols).unwrap())
        });
        let q = f.quantize(&x, cols).unwrap();
        g.bench_with_input(BenchmarkId::new("dequantize", name), &q, |b, q| b.iter(|| q.dequantize().unwrap()));
    }
    let w = Array1::from(x.clone());
    let spec = QuantSpec::new(DType::Int8).symmetric();
    g.bench_function(BenchmarkId::new("quantize", "int8_per_tensor"), |b| {
        b.iter(|| black_box(&w).quantize(spec).unwrap())
    });
    g.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);
