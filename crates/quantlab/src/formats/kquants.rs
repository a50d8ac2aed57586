//! llama.cpp's K-quants Q4_K and Q6_K: super-blocks of 256 values whose
//! sub-block scales are themselves quantized against one f16 scale.
//!
//! The quantizers are ports of ggml's reference quantizers
//! `quantize_row_q4_K_ref` and `quantize_row_q6_K_ref` (with their helpers
//! `make_qkx2_quants`, `make_qx_quants` and `nearest_int`) as ggml-python
//! 0.0.45 builds them: f32 arithmetic in C's evaluation order, no fused
//! multiply-add (its `libggml-base` has none), so the bytes are the same. The
//! dequantizers are gguf-py 0.19's `Q4_K` / `Q6_K.dequantize_blocks` (= ggml's
//! `dequantize_row_q*_K`).

use half::f16;

/// Values in one super-block (`QK_K`).
pub const QK_K: usize = 256;
/// Bytes of one Q4_K super-block.
pub const Q4_K_BYTES: usize = 144;
/// Bytes of one Q6_K super-block.
pub const Q6_K_BYTES: usize = 210;

/// ggml's `GROUP_MAX_EPS`.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round half to even through the float adder (exact
/// for |v| < 2^22; the same bits as ggml's for any other input, NaN included).
#[inline]
fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12582912.0).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qkx2_quants`: an asymmetric `nmax`-level fit of one sub-block
/// (scale, and the min returned as `-min`), searching `nstep + 1` scales.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    x: &[f32],
    nmax: i32,
    weights: &[f32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no weights (so w = x²): a
/// symmetric `nmax`-level fit of one sub-block, returning its scale.
fn make_qx_quants(x: &[f32], nmax: i32, l_out: &mut [i8]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (i, &v) in x.iter().enumerate() {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        l_out[i] = (l + nmax) as i8;
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            let lf = l as f32;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &v) in x.iter().enumerate() {
                let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
                l_out[i] = (nmax + l) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Sub-block `j`'s 6-bit scale and min from Q4_K's 12 packed bytes (`get_scale_min_k4`).
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Q4_K, 144 bytes a super-block: f16 d, f16 dmin, 12 bytes of eight 6-bit
/// scales and mins, 128 bytes of nibbles. Matches ggml's
/// `quantize_row_q4_K_ref` (ggml-python 0.0.45) byte for byte.
pub(crate) fn quantize_q4_k(x: &[f32], out: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q4_K_BYTES)) {
        let mut l = [0u8; QK_K];
        let mut scales = [0f32; 8];
        let mut mins = [0f32; 8];
        let mut weights = [0f32; 32];
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..8 {
            let xs = &x[32 * j..32 * j + 32];
            let mut sum_x2 = 0f32;
            for &v in xs {
                sum_x2 += v * v;
            }
            let av_x = (sum_x2 / 32.0).sqrt();
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = av_x + v.abs();
            }
            let (s, m) = make_qkx2_quants(xs, 15, &weights, &mut l[32 * j..32 * j + 32], -1.0, 0.1, 20);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let sc = &mut y[4..16];
        sc.iter_mut().for_each(|b| *b = 0);
        for j in 0..8 {
            // C stores nearest_int's int into a uint8_t (wrapping), then caps at 63.
            let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
            if j < 4 {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
                sc[j - 4] |= (ls >> 4) << 6;
                sc[j] |= (lm >> 4) << 6;
            }
        }
        let d = f16::from_f32(max_scale / 63.0);
        let dmin = f16::from_f32(max_min / 63.0);
        y[..2].copy_from_slice(&d.to_le_bytes());
        y[2..4].copy_from_slice(&dmin.to_le_bytes());
        for j in 0..8 {
            let (s, m) = scale_min_k4(j, &y[4..16]);
            let d = d.to_f32() * f32::from(s);
            if d == 0.0 {
                continue;
            }
            let dm = dmin.to_f32() * f32::from(m);
            for ii in 0..32 {
                l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, 15) as u8;
            }
        }
        let q = &mut y[16..];
        for (c, chunk) in q.chunks_exact_mut(32).enumerate() {
            let j = 64 * c;
            for i in 0..32 {
                chunk[i] = l[j + i] | (l[j + i + 32] << 4);
            }
        }
    }
}

/// Q4_K back to f32: `d * sc * q - dmin * m`. Matches gguf-py 0.19 `Q4_K.dequantize_blocks`.
pub(crate) fn dequantize_q4_k(q: &[u8], out: &mut [f32]) {
    for (b, y) in q.chunks_exact(Q4_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let dmin = f16::from_le_bytes([b[2], b[3]]).to_f32();
        for j in 0..8 {
            let (s, m) = scale_min_k4(j, &b[4..16]);
            let (dl, ml) = (d * f32::from(s), dmin * f32::from(m));
            // Sub-blocks 2c and 2c + 1 share the 32 bytes of chunk c: low and high nibbles.
            let chunk = &b[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            for i in 0..32 {
                y[32 * j + i] = dl * f32::from((chunk[i] >> shift) & 15) - ml;
            }
        }
    }
}

/// Q6_K, 210 bytes a super-block: 128 bytes of low nibbles, 64 of high 2-bit
/// pairs, 16 × i8 scales, f16 d. Matches ggml's `quantize_row_q6_K_ref`
/// (ggml-python 0.0.45) byte for byte.
pub(crate) fn quantize_q6_k(x: &[f32], out: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q6_K_BYTES)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
        for ib in 0..16 {
            let s = make_qx_quants(&x[16 * ib..16 * ib + 16], 32, &mut l[16 * ib..16 * ib + 16]);
            scales[ib] = s;
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = s;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            y.iter_mut().for_each(|b| *b = 0);
            continue;
        }
        let iscale = -128.0 / max_scale;
        let d = f16::from_f32(1.0 / iscale);
        y[208..210].copy_from_slice(&d.to_le_bytes());
        for ib in 0..16 {
            // C: MIN(127, nearest_int(..)) stored into an int8_t.
            y[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
        }
        for j in 0..16 {
            let d = d.to_f32() * f32::from(y[192 + j] as i8);
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        let (ql, rest) = y.split_at_mut(128);
        let qh = &mut rest[..64];
        for half in 0..2 {
            let j = 128 * half;
            let (ql, qh) = (&mut ql[64 * half..64 * half + 64], &mut qh[32 * half..32 * half + 32]);
            for i in 0..32 {
                let lv = |k: usize| l[j + i + k] as u8;
                ql[i] = (lv(0) & 0xF) | ((lv(64) & 0xF) << 4);
                ql[i + 32] = (lv(32) & 0xF) | ((lv(96) & 0xF) << 4);
                qh[i] = (lv(0) >> 4) | ((lv(32) >> 4) << 2) | ((lv(64) >> 4) << 4) | ((lv(96) >> 4) << 6);
            }
        }
    }
}

/// Q6_K back to f32: `(d * scale) * (q - 32)`. Matches gguf-py 0.19 `Q6_K.dequantize_blocks`.
pub(crate) fn dequantize_q6_k(q: &[u8], out: &mut [f32]) {
    for (b, y) in q.chunks_exact(Q6_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let d = f16::from_le_bytes([b[208], b[209]]).to_f32();
        let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
        for half in 0..2 {
            let (ql, qh) = (&ql[64 * half..64 * half + 64], &qh[32 * half..32 * half + 32]);
            for i in 0..32 {
                let codes = [
                    (ql[i] & 0xF) | ((qh[i] & 3) << 4),
                    (ql[i + 32] & 0xF) | (((qh[i] >> 2) & 3) << 4),
                    (ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4),
                    (ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4),
                ];
                for (k, &c) in codes.iter().enumerate() {
                    let at = 128 * half + 32 * k + i;
                    let s = f32::from(sc[at / 16] as i8);
                    y[at] = (d * s) * f32::from(c as i8 - 32);
                }
            }
        }
    }
}

/// What one Q4_K super-block's 144 bytes hold, unpacked: value `32 j + i` is
/// `d * scales[j] * code - dmin * mins[j]` (`code` the 4-bit nibble).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q4KParts {
    /// Bytes 0..2: the f16 super-scale of the sub-block scales.
    pub d: f32,
    /// Bytes 2..4: the f16 super-scale of the sub-block minimums.
    pub dmin: f32,
    /// Bytes 4..16 (with `mins`): eight 6-bit sub-block scales.
    pub scales: [u8; 8],
    /// Eight 6-bit sub-block minimums.
    pub mins: [u8; 8],
    /// Bytes 16..144: the 256 4-bit codes, one per byte, in value order.
    pub codes: [u8; QK_K],
}

/// Unpacks one Q4_K super-block (exactly [`Q4_K_BYTES`] bytes).
pub fn q4_k_parts(block: &[u8]) -> crate::error::Result<Q4KParts> {
    if block.len() != Q4_K_BYTES {
        return Err(crate::error::Error::WrongByteLength {
            what: "one Q4_K super-block".into(),
            expected: Q4_K_BYTES,
            got: block.len(),
        });
    }
    let mut parts = Q4KParts {
        d: f16::from_le_bytes([block[0], block[1]]).to_f32(),
        dmin: f16::from_le_bytes([block[2], block[3]]).to_f32(),
        scales: [0; 8],
        mins: [0; 8],
        codes: [0; QK_K],
    };
    for j in 0..8 {
        (parts.scales[j], parts.mins[j]) = scale_min_k4(j, &block[4..16]);
        let chunk = &block[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
        for (code, &byte) in parts.codes[32 * j..32 * j + 32].iter_mut().zip(chunk) {
            *code = (byte >> (4 * (j % 2))) & 15;
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod parts_tests {
    use super::*;

    #[test]
    fn parts_rebuild_what_dequantize_gives() {
        let x: Vec<f32> = (0..2 * QK_K).map(|i| ((i * 37 % 101) as f32 - 40.0) * 0.013).collect();
        let mut q = vec![0u8; 2 * Q4_K_BYTES];
        quantize_q4_k(&x, &mut q);
        let mut y = vec![0f32; 2 * QK_K];
        dequantize_q4_k(&q, &mut y);
        for (b, want) in q.chunks_exact(Q4_K_BYTES).zip(y.chunks_exact(QK_K)) {
            let p = q4_k_parts(b).unwrap();
            assert!(p.scales.iter().chain(&p.mins).all(|&s| s < 64));
            for (k, &w) in want.iter().enumerate() {
                let j = k / 32;
                let v = p.d * f32::from(p.scales[j]) * f32::from(p.codes[k]) - p.dmin * f32::from(p.mins[j]);
                assert_eq!(v.to_bits(), w.to_bits(), "value {k}");
            }
        }
        assert!(q4_k_parts(&q[..143]).unwrap_err().to_string().contains("143"));
    }
}
