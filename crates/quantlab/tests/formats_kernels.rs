//! Every SIMD kernel of the block formats gives the scalar reference's bytes
//! (which tests/formats.rs ties to gguf-py), on every block count 0 to 9,
//! unaligned starts, rounding ties, tiny blocks whose `1 / d` overflows, zeros
//! and signed zeros.

use quantlab::formats::q8_0_kernels;

fn lcg(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            ((s >> 8) as f32 / (1 << 24) as f32 - 0.5) * 8.0
        })
        .collect()
}

/// Blocks that probe the edges: ties at d = 1, negative ties, subnormal blocks, zeros, -0, one outlier.
fn special() -> Vec<f32> {
    let mut v = Vec::new();
    v.extend([127.0f32].iter().chain((0..31).map(|k| k as f32 - 15.5).collect::<Vec<_>>().iter()));
    v.extend((0..32).map(|k| -(k as f32) - 0.5).map(|x| x.max(-127.0)));
    v.extend((0..32).map(|k| f32::from_bits(k as u32 * 4 + 1) * if k % 2 == 0 { 1.0 } else { -1.0 }));
    v.extend((0..32).map(|k| f32::from_bits(0x0080_0000 + k) * 127.0));
    v.extend([0.0f32; 32]);
    v.extend([-0.0f32; 32]);
    v.extend((0..32).map(|k| if k == 7 { 1e30 } else { k as f32 * 1e-3 }));
    v.extend((0..32).map(|k| 1.0 + k as f32 * f32::EPSILON));
    v
}

#[test]
fn q8_0_kernels_match_the_scalar_reference() {
    let paths = q8_0_kernels();
    assert_eq!(paths[0].0, "scalar");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") {
        assert!(paths.iter().any(|p| p.0 == "avx512"), "avx512 detected but not offered");
    }
    let (_, scalar) = paths[0];
    let mut inputs = vec![special()];
    for seed in 0..4 {
        inputs.push(lcg(32 * 9 + 3, seed));
    }
    for x in &inputs {
        for start in 0..3 {
            for blocks in 0..=((x.len() - start) / 32).min(9) {
                let s = &x[start..start + 32 * blocks];
                let mut want = vec![0u8; 34 * blocks];
                scalar(s, &mut want);
                for &(name, f) in &paths[1..] {
                    let mut got = vec![0xAAu8; 34 * blocks];
                    f(s, &mut got);
                    assert_eq!(got, want, "{name}: {blocks} blocks from offset {start}");
                }
            }
        }
    }
}
