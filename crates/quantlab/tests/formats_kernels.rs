//! Every SIMD kernel of the block formats gives the scalar reference's bytes
//! (which tests/formats.rs ties to gguf-py and torchao) and, dequantizing, its
//! f32 bits: every table this CPU can run, on every block count 0 to 9 from
//! unaligned starts, on random data and on blocks that probe the edges
//! (rounding ties of each format, tiny blocks whose `1 / d` overflows,
//! subnormals, zeros and signed zeros, huge values, maxima next to powers of
//! two), and dequantizing every byte value (NaN and infinite scales included).

use quantlab::formats::{FormatKernels, QuantizeMx, ScaleRule, format_kernels};

fn lcg(n: usize, seed: u32, spread: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            ((s >> 8) as f32 / (1 << 24) as f32 - 0.5) * spread
        })
        .collect()
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 24) as u8
        })
        .collect()
}

/// A block of 32 from a pattern of `k`.
fn block(f: impl Fn(usize) -> f32) -> Vec<f32> {
    (0..32).map(f).collect()
}

/// Blocks that probe the edges of every format here.
fn special() -> Vec<f32> {
    let sign = |k: usize| if k.is_multiple_of(2) { 1.0 } else { -1.0 };
    let mut v = Vec::new();
    // Q8_0 ties at d = 1, and negative ones.
    v.extend(block(|k| if k == 0 { 127.0 } else { k as f32 - 15.5 }));
    v.extend(block(|k| (-(k as f32) - 0.5).max(-127.0)));
    // Q4_0: d = -1 (max -8 first), so v / d + 8.5 lands on integers and halves.
    v.extend(block(|k| if k == 3 { -8.0 } else { (k as f32 - 16.0) / 2.0 }));
    v.extend(block(|k| if k == 0 { 8.0 } else { -(k as f32 % 16.0) / 2.0 }));
    // Equal magnitudes of both signs: the first decides the scale's sign.
    v.extend(block(|k| 3.0 * sign(k)));
    v.extend(block(|k| -3.0 * sign(k)));
    // e2m1 ties (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5) and the values beside them, max 6.
    let ties = [0.25f32, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0];
    v.extend(block(|k| ties[k % 8] * sign(k / 8)));
    v.extend(block(|k| {
        let t = ties[k % 8];
        if k < 16 { f32::from_bits(t.to_bits() + 1) } else { -f32::from_bits(t.to_bits() - 1) }
    }));
    // e4m3fn ties (halfway between codes, normal and subnormal) at a block scale of 1 (amax 256..511 under FLOOR).
    v.extend(block(|k| {
        let t = [257.0f32, 272.0, 1.0 + 1.0 / 16.0, 0.5 + 1.0 / 32.0, 3.0 / 1024.0, 1.0 / 1024.0, 460.0, 300.0];
        t[k % 8] * sign(k / 8)
    }));
    // e5m2 ties (normal, subnormal, the smallest normal's, toward zero) and a saturating value, at a
    // block scale of 1 (amax 32768..65535 under FLOOR).
    v.extend(block(|k| {
        let s = 2f32.powi(-16);
        let t =
            [36864.0f32, 45056.0, 1.125, 1.375, 1.5 * s, 2.5 * s, 0.5 * s, 60000.0, 57344.0, 2f32.powi(-14) - s / 2.0];
        t[k % 10] * sign(k / 10)
    }));
    // GGUF MXFP4: amax 8 gives d = 1, so halves between doubled e2m1 values are ties.
    v.extend(block(|k| if k == 0 { 8.0 } else { [0.5f32, 1.5, 2.5, 3.5, 5.0, 7.0, 10.0, 12.0][k % 8] * sign(k) }));
    // Subnormal blocks, and normal ones whose 1 / d overflows.
    v.extend(block(|k| f32::from_bits(k as u32 * 4 + 1) * sign(k)));
    v.extend(block(|k| f32::from_bits(0x0080_0000 + k as u32) * 127.0 * sign(k)));
    v.extend(block(|k| f32::from_bits(0x0000_0001 + k as u32)));
    // Zeros, negative zeros, mixed.
    v.extend([0.0f32; 32]);
    v.extend([-0.0f32; 32]);
    v.extend(block(|k| if k % 3 == 0 { -0.0 } else { 0.0 }));
    // One outlier, huge values, the largest float.
    v.extend(block(|k| if k == 7 { 1e30 } else { k as f32 * 1e-3 }));
    v.extend(block(|k| if k == 31 { f32::MAX } else { -3.0e38 * (k as f32 / 32.0) }));
    // Maxima just below, at and above powers of two (the e8m0 exponents).
    for (i, e) in [-127i32, -126, -125, -124, -123, -100, -3, 0, 1, 2, 3, 10, 126, 127].into_iter().enumerate() {
        let p = 2f32.powi(e);
        let below = f32::from_bits(p.to_bits() - 1 - i as u32 * 0x800);
        v.extend(block(|k| [below, p, f32::from_bits(p.to_bits() + 1), p * 0.7][k % 4] * sign(k / 4)));
    }
    v.extend(block(|k| 1.0 + k as f32 * f32::EPSILON));
    // Every e2m1 rounding boundary at many block scales: the 24 quarter-binade
    // starts from 0.125 to 7 (the ties among them), with 1 ulp below and above,
    // in blocks of maximum 6 * 2^s (so the scaled values are those).
    let starts: Vec<f32> = (0..24).map(|k| 2f32.powi(k / 4 - 3) * (1.0 + (k % 4) as f32 / 4.0)).collect();
    for s in [-123, -120, -77, -9, -2, -1, 0, 1, 2, 30, 100, 124, 125] {
        let p = 2f32.powi(s);
        for shift in [0i32, -1, 1] {
            v.extend(block(|k| {
                let t = if k < 24 { starts[k] } else { [0.25f32, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0][k - 24] };
                let t = if k == 31 { t } else { f32::from_bits((t.to_bits() as i32 + shift) as u32) };
                t * p * sign(k / 3)
            }));
        }
    }
    v
}

fn inputs() -> Vec<Vec<f32>> {
    let mut inputs = vec![special()];
    for seed in 0..4 {
        inputs.push(lcg(32 * 9 + 3, seed, [8.0, 1e-3, 300.0, 1e-38][seed as usize]));
    }
    // Blocks of very different magnitudes side by side, 37 of them.
    let mut mixed = lcg(32 * 37 + 3, 9, 2.0);
    for (i, v) in mixed.iter_mut().enumerate() {
        *v *= 2f32.powi((i / 32 * 29 % 260) as i32 - 140);
    }
    inputs.push(mixed);
    inputs
}

/// The tables, checking that the CPU's best path is among them.
fn tables() -> Vec<&'static FormatKernels> {
    let t = format_kernels();
    assert_eq!(t.last().unwrap().name, "scalar");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512dq") {
        assert!(t.iter().any(|p| p.name == "avx512"), "avx512 detected but not offered");
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c") {
        assert!(t.iter().any(|p| p.name == "avx2"), "avx2 detected but not offered");
    }
    #[cfg(target_arch = "aarch64")]
    assert!(t.iter().any(|p| p.name == "neon"), "neon not offered");
    t
}

/// Every slice of whole blocks (0 to 9) of every input, from offsets 0 to 2.
fn for_each_slice(block_len: usize, mut f: impl FnMut(&[f32], usize, usize)) {
    for x in inputs() {
        for start in 0..3 {
            for blocks in 0..=((x.len() - start) / block_len).min(9) {
                f(&x[start..start + block_len * blocks], blocks, start);
            }
        }
        // Every whole block of the input in one call (more than the 16 blocks
        // some kernels take at a time, with a remainder), from each offset.
        for start in 0..3 {
            let blocks = (x.len() - start) / block_len;
            f(&x[start..start + block_len * blocks], blocks, start);
        }
        // Rotated by whole blocks, so each block also sits among the first 16 of a call.
        let n = x.len() / block_len;
        for r in (0..n).step_by(7) {
            let mut y = x[..n * block_len].to_vec();
            y.rotate_left(r * block_len);
            f(&y, n, 2000 + r);
        }
        // The special blocks one by one too, so each is also the first of a call.
        for (i, b) in x.chunks_exact(block_len).enumerate() {
            f(b, 1, 1000 + i);
        }
    }
}

fn check_blocks(what: &str, bytes: usize, pick: impl Fn(&FormatKernels) -> fn(&[f32], &mut [u8])) {
    let tables = tables();
    let scalar = pick(tables.last().unwrap());
    for_each_slice(32, |s, blocks, start| {
        let mut want = vec![0u8; bytes * blocks];
        scalar(s, &mut want);
        for t in &tables[..tables.len() - 1] {
            let mut got = vec![0xAAu8; bytes * blocks];
            pick(t)(s, &mut got);
            assert_eq!(got, want, "{what} {}: {blocks} blocks from offset {start}: {s:?}", t.name);
        }
    });
}

#[test]
fn q8_0_quantize_kernels_match_the_scalar_reference() {
    check_blocks("q8_0", 34, |t| t.quantize_q8_0);
}

#[test]
fn q4_0_quantize_kernels_match_the_scalar_reference() {
    check_blocks("q4_0", 18, |t| t.quantize_q4_0);
}

#[test]
fn gguf_mxfp4_quantize_kernels_match_the_scalar_reference() {
    check_blocks("gguf_mxfp4", 17, |t| t.quantize_gguf_mxfp4);
}

#[test]
fn mxfp4_quantize_kernels_match_the_scalar_reference() {
    check_mx("mxfp4", 16, |t| t.quantize_mxfp4);
}

#[test]
fn mxfp8_e4m3_quantize_kernels_match_the_scalar_reference() {
    check_mx("mxfp8_e4m3", 32, |t| t.quantize_mxfp8_e4m3);
}

#[test]
fn mxfp8_e5m2_quantize_kernels_match_the_scalar_reference() {
    check_mx("mxfp8_e5m2", 32, |t| t.quantize_mxfp8_e5m2);
}

fn check_mx(what: &str, bytes: usize, pick: impl Fn(&FormatKernels) -> QuantizeMx) {
    let tables = tables();
    let scalar = pick(tables.last().unwrap());
    for rule in [ScaleRule::Floor, ScaleRule::Ceil, ScaleRule::Even, ScaleRule::Rceil] {
        for_each_slice(32, |s, blocks, start| {
            let (mut want_s, mut want_c) = (vec![0u8; blocks], vec![0u8; bytes * blocks]);
            assert!(scalar(s, rule, &mut want_s, &mut want_c), "{what} scalar: finite input reported non-finite");
            for t in &tables[..tables.len() - 1] {
                let (mut got_s, mut got_c) = (vec![0xAAu8; blocks], vec![0xAAu8; bytes * blocks]);
                let finite = pick(t)(s, rule, &mut got_s, &mut got_c);
                let at = format!("{what} {} {rule:?}: {blocks} blocks from offset {start}: {s:?}", t.name);
                assert!(finite, "finite input reported non-finite by {at}");
                assert_eq!(got_s, want_s, "scales of {at}");
                assert_eq!(got_c, want_c, "codes of {at}");
            }
        });
    }
}

/// The MX kernels report a NaN or infinity wherever it is: in the first
/// 16-block groups some kernels take at a time, in the blocks after them,
/// and past the last whole block; every NaN form (quiet, signalling,
/// negative) and both infinities, among finite blocks of every magnitude.
#[test]
fn mx_kernels_report_non_finite_values() {
    let specials = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffbf_ffff),
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let base = lcg(32 * 37 + 5, 3, 2.0);
    for t in tables() {
        for (what, pick) in
            [("mxfp4", t.quantize_mxfp4), ("mxfp8_e4m3", t.quantize_mxfp8_e4m3), ("mxfp8_e5m2", t.quantize_mxfp8_e5m2)]
        {
            for rule in [ScaleRule::Floor, ScaleRule::Ceil, ScaleRule::Even, ScaleRule::Rceil] {
                for at in [0, 1, 31, 32, 511, 512, 700, 1023, 1024, 1100, 32 * 37 - 1, 32 * 37 + 2] {
                    for (i, &bad) in specials.iter().enumerate() {
                        let mut x = base.clone();
                        // Blocks of very different magnitudes, so every block-scale path is taken.
                        for (j, v) in x.iter_mut().enumerate() {
                            *v *= 2f32.powi((j / 32 * 37 % 250) as i32 - 125 + i as i32);
                        }
                        x[at] = bad;
                        let (mut s, mut c) = (vec![0u8; 37], vec![0u8; 32 * 37]);
                        assert!(
                            !pick(&x, rule, &mut s, &mut c),
                            "{what} {} {rule:?}: {bad} at {at} not reported",
                            t.name
                        );
                    }
                }
            }
        }
    }
}

/// f32 results compared bit for bit.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// Packed blocks of random bytes, then every byte value in every position of a block.
fn packed(bytes: usize) -> Vec<u8> {
    let mut q = bytes_for(bytes);
    for b in 0..=255u8 {
        q.extend(std::iter::repeat_n(b, bytes));
    }
    q
}

fn bytes_for(block: usize) -> Vec<u8> {
    bytes(block * 64, 7)
}

fn check_dequantize(what: &str, bytes: usize, pick: impl Fn(&FormatKernels) -> fn(&[u8], &mut [f32])) {
    let tables = tables();
    let scalar = pick(tables.last().unwrap());
    let q = packed(bytes);
    for blocks in [0, 1, 2, 3, 5, 9, q.len() / bytes] {
        for start in [0, 1] {
            let Some(s) = q.get(start * bytes..(start + blocks) * bytes) else { continue };
            let mut want = vec![0f32; 32 * blocks];
            scalar(s, &mut want);
            for t in &tables[..tables.len() - 1] {
                let mut got = vec![f32::from_bits(0x7fc0_dead); 32 * blocks];
                pick(t)(s, &mut got);
                assert_eq!(bits(&got), bits(&want), "{what} {}: {blocks} blocks from block {start}", t.name);
            }
        }
    }
}

#[test]
fn q8_0_dequantize_kernels_match_the_scalar_reference() {
    check_dequantize("q8_0", 34, |t| t.dequantize_q8_0);
}

#[test]
fn q4_0_dequantize_kernels_match_the_scalar_reference() {
    check_dequantize("q4_0", 18, |t| t.dequantize_q4_0);
}

#[test]
fn gguf_mxfp4_dequantize_kernels_match_the_scalar_reference() {
    check_dequantize("gguf_mxfp4", 17, |t| t.dequantize_gguf_mxfp4);
}

#[test]
fn mxfp4_dequantize_kernels_match_the_scalar_reference() {
    let tables = tables();
    let scalar = tables.last().unwrap().dequantize_mxfp4;
    let codes = packed(16);
    let blocks = codes.len() / 16;
    // Every scale byte (0xFF is NaN) against the codes.
    let scales: Vec<u8> = (0..blocks).map(|i| (i * 37 % 256) as u8).collect();
    for n in [0, 1, 2, 7, blocks] {
        let mut want = vec![0f32; 32 * n];
        scalar(&scales[..n], &codes[..16 * n], &mut want);
        for t in &tables[..tables.len() - 1] {
            let mut got = vec![0f32; 32 * n];
            (t.dequantize_mxfp4)(&scales[..n], &codes[..16 * n], &mut got);
            assert_eq!(bits(&got), bits(&want), "mxfp4 {}: {n} blocks", t.name);
        }
    }
}

/// MXFP8 dequantize of every code byte under every scale byte (0 is
/// 2^-127, a subnormal, and 0xFF NaN, so NaN codes meet NaN scales and
/// products overflow, round and go subnormal), then random blocks with
/// scales stepping through every byte, at several block counts and from
/// block offsets 0 and 1.
fn check_mxfp8_dequantize(what: &str, pick: impl Fn(&FormatKernels) -> fn(&[u8], &[u8], &mut [f32])) {
    let tables = tables();
    let scalar = pick(tables.last().unwrap());
    // Block k of a scale holds codes 32k..32k+32: 8 blocks of every code, for each of the 256 scales.
    let mut scales: Vec<u8> = (0..=255u8).flat_map(|s| [s; 8]).collect();
    let mut codes: Vec<u8> = (0..256).flat_map(|_| 0..=255u8).collect();
    let random = packed(32);
    scales.extend((0..random.len() / 32).map(|i| (i * 37 % 256) as u8));
    codes.extend(random);
    let blocks = scales.len();
    assert_eq!(codes.len(), 32 * blocks);
    for n in [0, 1, 2, 3, 7, 9, 17, blocks - 1] {
        for start in [0, 1] {
            let (s, c) = (&scales[start..start + n], &codes[32 * start..32 * (start + n)]);
            let mut want = vec![0f32; 32 * n];
            scalar(s, c, &mut want);
            for t in &tables[..tables.len() - 1] {
                let mut got = vec![f32::from_bits(0x7fc0_dead); 32 * n];
                pick(t)(s, c, &mut got);
                // The first lane that differs, with its scale and code (not all 70000 values).
                let bad = bits(&got).iter().zip(bits(&want)).position(|(g, w)| *g != w);
                if let Some(i) = bad {
                    panic!(
                        "{what} {}: {n} blocks from block {start}: value {i} (scale {:#04x}, code {:#04x}) is {:#010x}, not {:#010x}",
                        t.name,
                        s[i / 32],
                        c[i],
                        got[i].to_bits(),
                        want[i].to_bits()
                    );
                }
            }
        }
    }
    // Output or codes shorter than the other: the kernels stop at the shorter, writing nothing past it.
    for t in &tables {
        let mut got = vec![1f32; 32 * 3 + 5];
        pick(t)(&scales[..5], &codes[..32 * 3 + 7], &mut got);
        assert!(got[32 * 3..].iter().all(|&v| v == 1.0), "{what} {}: wrote past the whole blocks", t.name);
        let mut got = vec![1f32; 32 * 4];
        pick(t)(&scales[..2], &codes[..32 * 4], &mut got);
        assert!(got[64..].iter().all(|&v| v == 1.0), "{what} {}: wrote past the scales", t.name);
    }
}

#[test]
fn mxfp8_e4m3_dequantize_kernels_match_the_scalar_reference() {
    check_mxfp8_dequantize("mxfp8_e4m3", |t| t.dequantize_mxfp8_e4m3);
}

#[test]
fn mxfp8_e5m2_dequantize_kernels_match_the_scalar_reference() {
    check_mxfp8_dequantize("mxfp8_e5m2", |t| t.dequantize_mxfp8_e5m2);
}

#[test]
fn the_inputs_reach_the_edges_they_are_meant_to() {
    // The ties above are ties: at d = 1 (amax 127), 15.5 is half way.
    let s = special();
    assert_eq!(s.len() % 32, 0);
    // More blocks than the 16 the AVX-512 MXFP4 kernel takes at a time, not a multiple of 16.
    assert!(s.len() / 32 > 16 && !(s.len() / 32).is_multiple_of(16), "{} blocks", s.len() / 32);
    assert!(s.iter().all(|v| v.is_finite()));
    assert!(s.iter().any(|v| v.is_subnormal()));
    assert!(s.iter().any(|&v| v == 0.0 && v.is_sign_negative()));
    // The GGUF MXFP4 kernels' fast exponent path meets mantissas on both sides of its limit.
    let mantissas: Vec<u32> = s.iter().map(|v| v.to_bits() & 0x7f_ffff).collect();
    assert!(mantissas.iter().any(|&m| (0x7f_f000..0x7f_f800).contains(&m)));
    assert!(mantissas.iter().any(|&m| (0x7f_e800..0x7f_f000).contains(&m)));
}

#[test]
fn nf4_quantize_kernels_match_the_scalar_reference() {
    let tables = tables();
    let scalar = tables.last().unwrap().quantize_nf4;
    for block in [32, 64, 128, 4096] {
        let mut xs = inputs();
        // Values on the code boundaries (midpoints of the NF4 code) and just beside them, in blocks of absmax 1.
        let code = quantlab::formats::NF4_CODE;
        let mut on: Vec<f32> = (0..15).map(|i| (code[i] + code[i + 1]) / 2.0).collect();
        on.extend(on.clone().iter().flat_map(|&m| [f32::from_bits(m.to_bits() + 1), f32::from_bits(m.to_bits() - 1)]));
        on.push(1.0);
        xs.push(on.iter().cycle().take(4096 * 2).copied().collect());
        for x in &xs {
            for blocks in 0..=(x.len() / block).min(3) {
                let s = &x[..block * blocks];
                let (mut want_a, mut want_p) = (vec![0f32; blocks], vec![0u8; block / 2 * blocks]);
                scalar(s, block, &mut want_a, &mut want_p);
                for t in &tables[..tables.len() - 1] {
                    let (mut got_a, mut got_p) = (vec![-1f32; blocks], vec![0xAAu8; block / 2 * blocks]);
                    (t.quantize_nf4)(s, block, &mut got_a, &mut got_p);
                    assert_eq!(bits(&got_a), bits(&want_a), "nf4 {} absmax, block {block}, {blocks} blocks", t.name);
                    assert_eq!(got_p, want_p, "nf4 {} codes, block {block}, {blocks} blocks", t.name);
                }
            }
        }
    }
}

#[test]
fn nf4_dequantize_kernels_match_the_scalar_reference() {
    let tables = tables();
    let scalar = tables.last().unwrap().dequantize_nf4;
    let packed = packed(32);
    for block in [32, 64, 128, 4096] {
        let blocks = packed.len() * 2 / block;
        let absmax: Vec<f32> = (0..blocks)
            .map(|i| [1.0, 0.0, -0.0, 1e-38, f32::MAX, 3.5, f32::INFINITY, f32::NAN][i % 8] * (1.0 + i as f32))
            .collect();
        let mut want = vec![0f32; block * blocks];
        scalar(&packed[..block / 2 * blocks], &absmax, block, &mut want);
        for t in &tables[..tables.len() - 1] {
            let mut got = vec![0f32; block * blocks];
            (t.dequantize_nf4)(&packed[..block / 2 * blocks], &absmax, block, &mut got);
            assert_eq!(bits(&got), bits(&want), "nf4 {}: block {block}", t.name);
        }
    }
}

/// NVFP4 tensor scales: none, the usual amax / 2688 of the inputs, and tiny
/// ones (whose reciprocal overflows, or nearly) and huge ones.
const TENSOR_SCALES: [Option<f32>; 6] =
    [None, Some(8.0 / 2688.0), Some(1e-3 / 2688.0), Some(1e-39), Some(3e-38), Some(1e30)];

#[test]
fn nvfp4_quantize_kernels_match_the_scalar_reference() {
    let tables = tables();
    let scalar = tables.last().unwrap().quantize_nvfp4;
    for t in TENSOR_SCALES {
        for_each_slice(16, |s, blocks, start| {
            let (mut want_s, mut want_c) = (vec![0u8; blocks], vec![0u8; 8 * blocks]);
            scalar(s, t, &mut want_s, &mut want_c);
            for k in &tables[..tables.len() - 1] {
                let (mut got_s, mut got_c) = (vec![0xAAu8; blocks], vec![0xAAu8; 8 * blocks]);
                (k.quantize_nvfp4)(s, t, &mut got_s, &mut got_c);
                let at = format!("nvfp4 {} {t:?}: {blocks} blocks from offset {start}: {s:?}", k.name);
                assert_eq!(got_s, want_s, "scales of {at}");
                assert_eq!(got_c, want_c, "codes of {at}");
            }
        });
    }
}

#[test]
fn nvfp4_dequantize_kernels_match_the_scalar_reference() {
    let tables = tables();
    let scalar = tables.last().unwrap().dequantize_nvfp4;
    let codes = packed(8);
    let blocks = codes.len() / 8;
    // Every e4m3fn scale byte (0x7F and 0xFF are NaN) against the codes.
    let scales: Vec<u8> = (0..blocks).map(|i| (i * 37 % 256) as u8).collect();
    for t in TENSOR_SCALES {
        for n in [0, 1, 2, 7, blocks] {
            let mut want = vec![0f32; 16 * n];
            scalar(&scales[..n], t, &codes[..8 * n], &mut want);
            for k in &tables[..tables.len() - 1] {
                let mut got = vec![0f32; 16 * n];
                (k.dequantize_nvfp4)(&scales[..n], t, &codes[..8 * n], &mut got);
                assert_eq!(bits(&got), bits(&want), "nvfp4 {} {t:?}: {n} blocks", k.name);
            }
        }
    }
}
