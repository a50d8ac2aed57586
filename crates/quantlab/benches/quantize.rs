//! Quantize, dequantize and the min/max reduction, for every kernel path this
//! CPU can run (a group per path), in cache (2^16 elements) and out of it
//! (2^24), plus the public per-tensor int8 and per-group int4 operations.
//!
//! `cargo bench -p quantlab --bench quantize`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantlab::prelude::*;
use quantlab::{Affine, kernel_tables};

mod common;
use common::{seeded, un};

const SIZES: [usize; 2] = [1 << 16, 1 << 24];

fn kernels(c: &mut Criterion) {
    let int8 = Affine { scale: 4.0 / 255.0, zero_point: -1, qmin: -128, qmax: 127 };
    let int4 = Affine { scale: 4.0 / 15.0, zero_point: 0, qmin: -8, qmax: 7 };
    for k in kernel_tables() {
        let mut g = c.benchmark_group(format!("kernels/{}", k.name));
        for n in SIZES {
            if n > 1 << 16 {
                g.sample_size(10);
            }
            let x = seeded(n, 0, 4.0);
            let mut q = vec![std::mem::MaybeUninit::new(0i8); n];
            let mut p = vec![0u8; n / 2];
            let mut y = vec![0f32; n];
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new("min_max", n), &x, |b, x| b.iter(|| (k.min_max)(black_box(x))));
            g.bench_with_input(BenchmarkId::new("quantize_i8", n), &x, |b, x| {
                b.iter(|| (k.quantize_i8)(black_box(x), int8, &mut q))
            });
            g.bench_with_input(BenchmarkId::new("quantize_pack4", n), &x, |b, x| {
                b.iter(|| (k.quantize_pack4)(black_box(x), int4, &mut p))
            });
            let mut scales = vec![0f32; n / 128];
            let mut packed = vec![std::mem::MaybeUninit::new(0u8); n / 2];
            g.bench_with_input(BenchmarkId::new("quantize_pack4_symmetric g128", n), &x, |b, x| {
                b.iter(|| (k.quantize_pack4_symmetric)(black_box(x), 128, int4, &mut scales, &mut packed))
            });
            // SAFETY: `q` was initialized when created.
            let codes: Vec<i8> = q.iter().map(|v| unsafe { v.assume_init() }).collect();
            g.bench_with_input(BenchmarkId::new("dequantize_i8", n), &codes, |b, q| {
                b.iter(|| (k.dequantize_i8)(black_box(q), int8.scale, int8.zero_point, un(&mut y)))
            });
        }
        g.finish();
    }
}

/// The library's public operations, on whatever path `QUANTLAB_KERNEL` picks.
fn public_api(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("api/{}", quantlab::kernel()));
    for n in SIZES {
        if n > 1 << 16 {
            g.sample_size(10);
        }
        let x = Array1::from(seeded(n, 0, 4.0));
        let params = QuantParams::per_tensor(4.0 / 255.0, -1);
        let q = x.quantize_with(DType::Int8, &params).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("quantize_with int8 per-tensor", n), &x, |b, x| {
            b.iter(|| x.quantize_with(DType::Int8, &params).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("quantize int8 per-tensor", n), &x, |b, x| {
            b.iter(|| x.quantize(QuantSpec::new(DType::Int8)).unwrap())
        });
        let spec = QuantSpec::new(DType::Int4).symmetric().per_group(128);
        g.bench_with_input(BenchmarkId::new("quantize_packed int4 per-group 128", n), &x, |b, x| {
            b.iter(|| x.quantize_packed(spec).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("quantize+packed int4 per-group 128", n), &x, |b, x| {
            b.iter(|| x.quantize(spec).unwrap().packed())
        });
        g.bench_with_input(BenchmarkId::new("dequantize int8", n), &q, |b, q| b.iter(|| q.dequantize().unwrap()));
    }
    g.finish();
}

criterion_group!(benches, kernels, public_api);
criterion_main!(benches);
