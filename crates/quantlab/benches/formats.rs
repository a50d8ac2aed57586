//! Block formats: quantize and dequantize 2^20 f32 (2^24 with
//! `QUANTLAB_BENCH_BIG=1`) on one thread, for every format through the
//! public API (so on the kernel path `quantlab::kernel()` names: the SIMD
//! kernels of `arch/formats_kernels.rs` for Q8_0, Q4_0, GGUF MXFP4, MXFP4,
//! MXFP8 e4m3, NVFP4 and NF4 where the CPU has them, the scalar references
//! otherwise; `QUANTLAB_KERNEL=scalar` times those), and int8 per-tensor
//! beside them as the yardstick the issue names. Then each kernel table's
//! Q8_0, Q4_0 and MXFP4 quantize alone, a group per path. bench/compare.py
//! puts the same operations beside gguf-py, bitsandbytes and torchao.
//!
//! `cargo bench -p quantlab --bench formats`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantlab::formats::{BlockFormat, FORMAT_NAMES, ScaleRule};
use quantlab::prelude::*;

mod common;
use common::seeded;

fn formats(c: &mut Criterion) {
    let n = if std::env::var_os("QUANTLAB_BENCH_BIG").is_some() { 1 << 24 } else { 1 << 20 };
    let x = seeded(n, 0, 4.0);
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
    let mut g = c.benchmark_group("format_kernels");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    let mut out = vec![0u8; n / 32 * 34];
    let mut scales = vec![0u8; n / 32];
    for t in quantlab::formats::format_kernels() {
        g.bench_function(BenchmarkId::new("quantize_q8_0", t.name), |b| {
            b.iter(|| (t.quantize_q8_0)(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("quantize_q4_0", t.name), |b| {
            b.iter(|| (t.quantize_q4_0)(black_box(&x), &mut out))
        });
        g.bench_function(BenchmarkId::new("quantize_mxfp4", t.name), |b| {
            b.iter(|| (t.quantize_mxfp4)(black_box(&x), ScaleRule::Floor, &mut scales, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);
