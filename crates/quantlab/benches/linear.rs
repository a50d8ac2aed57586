//! A 4096 x 4096 weight times one f32 vector, single thread: f32 through
//! ndarray (`Array2::dot(&Array1)`, and the same as a 4096 x 1 matrix product
//! through matrixmultiply) beside the quantized linear layer with int8 (one
//! scale per row), int4 (groups of 32 and 128), ggml Q8_0 and Q4_0 block
//! weights (for every kernel path this CPU can run) and MXFP4, NVFP4 and NF4
//! (through the chosen path), in one run.
//!
//! `cargo bench -p quantlab --bench linear`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quantlab::formats::{BlockFormat, GgmlBlock};
use quantlab::linear::{Linear, Weight};
use quantlab::ndarray::{Array1, Array2, Axis};
use quantlab::{GemvKernels, gemv_tables};

mod common;
use common::seeded;

const N: usize = 4096;

fn gemv(c: &mut Criterion) {
    let w = Array2::from_shape_vec((N, N), seeded(N * N, 1, 0.1)).unwrap();
    let x = Array1::from(seeded(N, 2, 0.1));
    let mut y = vec![0f32; N];
    let mut g = c.benchmark_group("gemv_4096x4096");
    g.throughput(Throughput::Elements((N * N) as u64));
    g.sample_size(20);
    g.bench_function("f32/ndarray_dot", |b| b.iter(|| black_box(&w).dot(black_box(&x))));
    let x_col = x.clone().insert_axis(Axis(1));
    g.bench_function("f32/matrixmultiply", |b| b.iter(|| black_box(&w).dot(black_box(&x_col))));
    let int8 = Linear::int8_per_channel(w.view(), None).unwrap();
    let int4_32 = Linear::int4_per_group(w.view(), 32, None).unwrap();
    let int4_128 = Linear::int4_per_group(w.view(), 128, None).unwrap();
    let q8_0 = Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q8_0), None).unwrap();
    let q4_0 = Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q4_0), None).unwrap();
    let q4_k = Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q4K), None).unwrap();
    let q6_k = Linear::block(w.view(), BlockFormat::Ggml(GgmlBlock::Q6K), None).unwrap();
    let nf4 = Linear::block(w.view(), BlockFormat::parse("nf4").unwrap(), None).unwrap();
    let mxfp4 = Linear::block(w.view(), BlockFormat::parse("mxfp4").unwrap(), None).unwrap();
    let nvfp4 = Linear::block(w.view(), BlockFormat::parse("nvfp4").unwrap(), None).unwrap();
    drop(w);
    let x = x.to_vec();
    g.bench_function("int8/linear", |b| b.iter(|| int8.matvec_into(black_box(&x), &mut y)));
    g.bench_function("int4_g32/linear", |b| b.iter(|| int4_32.matvec_into(black_box(&x), &mut y)));
    g.bench_function("int4_g128/linear", |b| b.iter(|| int4_128.matvec_into(black_box(&x), &mut y)));
    g.bench_function("q8_0/linear", |b| b.iter(|| q8_0.matvec_into(black_box(&x), &mut y)));
    g.bench_function("q4_0/linear", |b| b.iter(|| q4_0.matvec_into(black_box(&x), &mut y)));
    g.bench_function("q4_k/linear", |b| b.iter(|| q4_k.matvec_into(black_box(&x), &mut y)));
    g.bench_function("q6_k/linear", |b| b.iter(|| q6_k.matvec_into(black_box(&x), &mut y)));
    g.bench_function("mxfp4/linear", |b| b.iter(|| mxfp4.matvec_into(black_box(&x), &mut y)));
    g.bench_function("nvfp4/linear", |b| b.iter(|| nvfp4.matvec_into(black_box(&x), &mut y)));
    g.bench_function("nf4/linear", |b| b.iter(|| nf4.matvec_into(black_box(&x), &mut y)));
    for k in gemv_tables() {
        bench_path(&mut g, k, &int8, &[&int4_32, &int4_128], &x, &mut y);
        let blocks = [
            ("q8_0", &q8_0, k.gemv_q8_0),
            ("q4_0", &q4_0, k.gemv_q4_0),
            ("q4_k", &q4_k, k.gemv_q4_k),
            ("q6_k", &q6_k, k.gemv_q6_k),
        ];
        for (name, layer, kernel) in blocks {
            if let Weight::Block(q) = layer.weight() {
                g.bench_function(format!("{name}/{}", k.name), |b| b.iter(|| kernel(&q.data, black_box(&x), &mut y)));
            }
        }
    }
    g.finish();
}

fn bench_path(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    k: &GemvKernels,
    int8: &Linear,
    int4: &[&Linear],
    x: &[f32],
    y: &mut [f32],
) {
    if let Weight::Int8 { codes, scales } = int8.weight() {
        g.bench_function(format!("int8/{}", k.name), |b| b.iter(|| (k.gemv_i8)(codes, scales, black_box(x), y)));
    }
    for l in int4 {
        if let Weight::Int4 { packed, scales, group } = l.weight() {
            g.bench_function(format!("int4_g{group}/{}", k.name), |b| {
                b.iter(|| (k.gemv_i4)(packed, scales, *group, black_box(x), y))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = gemv
}
criterion_main!(benches);
