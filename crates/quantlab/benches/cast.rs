//! f32 <-> bf16, f16, float8_e4m3fn and float8_e5m2 casts, for every kernel
//! path this CPU can run (a group per path), next to `half`'s own slice
//! conversions (which use F16C for f16), the public `cast`, and the float8
//! model one value at a time (the scalar path the float8 kernels replace).
//!
//! `cargo bench -p quantlab --bench cast`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::slice::HalfFloatSliceExt;
use quantlab::kernel_tables;
use quantlab::prelude::*;

mod common;
use common::un;

const SIZES: [usize; 2] = [1 << 16, 1 << 24];

fn data(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.618_034).sin() * 1000.0).collect()
}

fn kernels(c: &mut Criterion) {
    for k in kernel_tables() {
        let mut g = c.benchmark_group(format!("casts/{}", k.name));
        for n in SIZES {
            if n > 1 << 16 {
                g.sample_size(10);
            }
            let x = data(n);
            let mut b16 = vec![bf16::ZERO; n];
            let mut h16 = vec![f16::ZERO; n];
            let mut y = vec![0f32; n];
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new("f32_to_bf16", n), &x, |b, x| {
                b.iter(|| (k.f32_to_bf16)(black_box(x), un(&mut b16)))
            });
            g.bench_with_input(BenchmarkId::new("f32_to_f16", n), &x, |b, x| {
                b.iter(|| (k.f32_to_f16)(black_box(x), un(&mut h16)))
            });
            let (bs, hs) = (b16.clone(), h16.clone());
            g.bench_with_input(BenchmarkId::new("bf16_to_f32", n), &bs, |b, s| {
                b.iter(|| (k.bf16_to_f32)(black_box(s), un(&mut y)))
            });
            g.bench_with_input(BenchmarkId::new("f16_to_f32", n), &hs, |b, s| {
                b.iter(|| (k.f16_to_f32)(black_box(s), un(&mut y)))
            });
            // float8: data within e4m3fn's range, so the kernels never stop.
            let mut codes = vec![0u8; n];
            let small: Vec<f32> = x.iter().map(|v| v * 0.4).collect();
            g.bench_with_input(BenchmarkId::new("f32_to_e4m3fn", n), &small, |b, x| {
                b.iter(|| (k.f32_to_e4m3fn)(black_box(x), un(&mut codes)))
            });
            g.bench_with_input(BenchmarkId::new("f32_to_e5m2", n), &small, |b, x| {
                b.iter(|| (k.f32_to_e5m2)(black_box(x), un(&mut codes)))
            });
            let cs = codes.clone();
            g.bench_with_input(BenchmarkId::new("e4m3fn_to_f32", n), &cs, |b, s| {
                b.iter(|| (k.e4m3fn_to_f32)(black_box(s), un(&mut y)))
            });
            g.bench_with_input(BenchmarkId::new("e5m2_to_f32", n), &cs, |b, s| {
                b.iter(|| (k.e5m2_to_f32)(black_box(s), un(&mut y)))
            });
        }
        g.finish();
    }
}

/// `half`'s slice conversions, the baseline the f16 kernels were measured against.
fn half_slices(c: &mut Criterion) {
    let mut g = c.benchmark_group("casts/half-slices");
    for n in SIZES {
        if n > 1 << 16 {
            g.sample_size(10);
        }
        let x = data(n);
        let mut b16 = vec![bf16::ZERO; n];
        let mut h16 = vec![f16::ZERO; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("f32_to_bf16", n), &x, |b, x| {
            b.iter(|| b16.convert_from_f32_slice(black_box(x)))
        });
        g.bench_with_input(BenchmarkId::new("f32_to_f16", n), &x, |b, x| {
            b.iter(|| h16.convert_from_f32_slice(black_box(x)))
        });
    }
    g.finish();
}

/// The public `cast` (allocates its output) and `cast_into` (reuses one), on
/// the path `QUANTLAB_KERNEL` picks.
fn public_api(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("api/{}", quantlab::kernel()));
    for n in SIZES {
        if n > 1 << 16 {
            g.sample_size(10);
        }
        let x = Array1::from(data(n));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("cast bf16", n), &x, |b, x| b.iter(|| x.cast::<bf16>().unwrap()));
        g.bench_with_input(BenchmarkId::new("cast f16", n), &x, |b, x| b.iter(|| x.cast::<f16>().unwrap()));
        let small = x.mapv(|v| v * 0.4); // within float8_e4m3fn's range
        g.bench_with_input(BenchmarkId::new("cast e4m3fn", n), &small, |b, x| b.iter(|| x.cast::<F8E4M3>().unwrap()));
        g.bench_with_input(BenchmarkId::new("cast e5m2", n), &small, |b, x| b.iter(|| x.cast::<F8E5M2>().unwrap()));
        let m = DType::Float8E4M3Fn.minifloat().expect("a float8 type");
        g.bench_with_input(BenchmarkId::new("model e4m3fn", n), &small, |b, x| {
            b.iter(|| x.iter().map(|&v| m.encode_f32(v, Overflow::Error).unwrap() as u8).collect::<Vec<u8>>())
        });
        let mut out = Array1::from_elem(n, bf16::ZERO);
        g.bench_with_input(BenchmarkId::new("cast_into bf16", n), &x, |b, x| {
            b.iter(|| x.cast_into(&mut out, CastOptions::default()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, half_slices, public_api);
criterion_main!(benches);
