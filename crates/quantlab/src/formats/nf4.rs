//! NF4, bitsandbytes' 4-bit NormalFloat (QLoRA), with its double quantization.
//!
//! A tensor is taken flat, in row-major order, in blocks of `B` values (64 by
//! default; a power of two from 32 to 4096; the last block may be short). Each
//! block keeps its largest magnitude (absmax, f32) and each value the index of
//! the nearest of 16 code values (equal areas under N(0, 1), scaled to [-1, 1]),
//! two to a byte with the **first value in the high nibble**. Double
//! quantization (`compress_statistics`) stores the absmaxes minus their mean as
//! bytes of bitsandbytes' signed dynamic 8-bit code, in blocks of 256 with their
//! own f32 absmax.
//!
//! Everything here matches bitsandbytes 0.50's `quantize_4bit` /
//! `dequantize_4bit` on CPU byte for byte: the absmax reciprocal times the
//! value for whole blocks and a division for the short last one, code
//! boundaries at f32 midpoints with values on a midpoint going down, the mean
//! as torch's f32 cascade sum divided by the count, and the C kernel's
//! 65536-entry table from normalized values to dynamic codes.

/// The 16 NF4 code values (bitsandbytes 0.50 `get_4bit_type("nf4")`, as f32).
pub const NF4_CODE: [f32; 16] = [
    f32::from_bits(0xbf800000),
    f32::from_bits(0xbf3239b1),
    f32::from_bits(0xbf066b30),
    f32::from_bits(0xbeca32a0),
    f32::from_bits(0xbe91a24d),
    f32::from_bits(0xbe3d353f),
    f32::from_bits(0xbdba7871),
    f32::from_bits(0x00000000),
    f32::from_bits(0x3da2faff),
    f32::from_bits(0x3e24cae3),
    f32::from_bits(0x3e7c04dd),
    f32::from_bits(0x3ead033a),
    f32::from_bits(0x3ee1a4b8),
    f32::from_bits(0x3f1007ab),
    f32::from_bits(0x3f3913b3),
    f32::from_bits(0x3f800000),
];

/// bitsandbytes' signed dynamic 8-bit code (`create_dynamic_map(signed=True)`,
/// 256 sorted f32 values from -0.99297 to 1), the code of double quantization.
pub const DYNAMIC_CODE: [f32; 256] = {
    const BITS: [u32; 256] = [
        0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000, 0xbf616666,
        0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333, 0xbf44999a, 0xbf410000,
        0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666, 0xbf27cccd, 0xbf243334, 0xbf20999a,
        0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a, 0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333,
        0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a, 0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a,
        0xbeb86666, 0xbeb13333, 0xbeaa0000, 0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999,
        0xbe6f3333, 0xbe60cccd, 0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000,
        0xbddb3334, 0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
        0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d, 0xbd5b851f,
        0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148, 0xbcfeb852, 0xbce7ae15,
        0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148, 0xbc1f3b64, 0xbc160418, 0xbc0ccccd,
        0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4, 0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a,
        0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d, 0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01,
        0xb9c7e283, 0xb98ce705, 0xb923d70b, 0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94,
        0xb513a3b7, 0x00000000, 0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b,
        0x3923d70b, 0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
        0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4, 0x3bcfdf3b,
        0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148, 0x3c68f5c3, 0x3c8b851f,
        0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148, 0x3d166667, 0x3d21eb85, 0x3d2d70a3,
        0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d, 0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d,
        0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a, 0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667,
        0x3dc428f7, 0x3dc9eb85, 0x3ddb3334, 0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000,
        0x3e526666, 0x3e60cccd, 0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc,
        0x3eaa0000, 0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
        0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a, 0x3f123334,
        0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666, 0x3f2f0000, 0x3f32999a,
        0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333, 0x3f4bcccd, 0x3f4f6666, 0x3f530000,
        0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000, 0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666,
        0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
    ];
    let mut out = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = f32::from_bits(BITS[i]);
        i += 1;
    }
    out
};

/// torch's `1e-38` floor under an absmax before its reciprocal (bitsandbytes' `clamp(min=1e-38)`).
const TINY: f32 = 1e-38;

/// Blocks of the dynamic code for the absmaxes (`quantize_blockwise(..., blocksize=256)`).
pub const DOUBLE_QUANT_BLOCK: usize = 256;

/// An NF4 tensor's blocks: packed codes and, per block, its absmax.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Nf4Blocks {
    pub packed: Vec<u8>,
    pub absmax: Vec<f32>,
}

/// The 15 boundaries between NF4 codes: f32 midpoints, as bitsandbytes' `(code[:-1] + code[1:]) / 2`.
fn boundaries() -> [f32; 15] {
    let mut b = [0f32; 15];
    for (i, m) in b.iter_mut().enumerate() {
        *m = (NF4_CODE[i] + NF4_CODE[i + 1]) / 2.0;
    }
    b
}

/// torch.bucketize (right = false): the number of boundaries strictly below `v`.
#[inline]
fn bucket(v: f32, bounds: &[f32; 15]) -> u8 {
    bounds.iter().filter(|&&b| b < v).count() as u8
}

/// The 15 boundaries, for the SIMD kernels.
pub(crate) fn code_boundaries() -> [f32; 15] {
    boundaries()
}

/// `1 / max(absmax, TINY)`: what a whole block's values are multiplied by.
#[inline]
pub(crate) fn reciprocal(absmax: f32) -> f32 {
    1.0 / absmax.max(TINY)
}

/// NF4 of the whole blocks of `x` (`x.len() / block` of them): each block's
/// absmax into `absmax`, its codes packed two to a byte, the first in the
/// high nibble, into `packed` (`block / 2` bytes a block). The scalar
/// reference of the SIMD kernels.
pub(crate) fn quantize_blocks(x: &[f32], block: usize, absmax: &mut [f32], packed: &mut [u8]) {
    let bounds = boundaries();
    let block = block.max(2);
    for ((b, a), p) in x.chunks_exact(block).zip(absmax.iter_mut()).zip(packed.chunks_exact_mut(block / 2)) {
        let am = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        *a = am;
        let r = reciprocal(am);
        for (o, v) in p.iter_mut().zip(b.chunks_exact(2)) {
            let c = |v: f32| bucket((v * r).clamp(-1.0, 1.0), &bounds);
            *o = c(v[0]) << 4 | c(v[1]);
        }
    }
}

/// `code[q] * absmax` for whole blocks: `absmax.len()` blocks of `block`
/// values from `block / 2` bytes each. The scalar reference of the SIMD kernels.
pub(crate) fn dequantize_blocks(packed: &[u8], absmax: &[f32], block: usize, out: &mut [f32]) {
    let block = block.max(2);
    for ((o, p), &a) in out.chunks_exact_mut(block).zip(packed.chunks_exact(block / 2)).zip(absmax) {
        for (y, &byte) in o.chunks_exact_mut(2).zip(p) {
            y[0] = NF4_CODE[usize::from(byte >> 4)] * a;
            y[1] = NF4_CODE[usize::from(byte & 15)] * a;
        }
    }
}

/// NF4 codes of flat `x` in blocks of `block`: bitsandbytes 0.50's CPU
/// `quantize_4bit` (the "default" torch kernel), byte for byte, absmaxes as
/// f32. The whole blocks go to `whole` ([`quantize_blocks`] or a SIMD kernel
/// giving its bytes); a short last block divides rather than multiplying by
/// the reciprocal, as bitsandbytes' does.
pub(crate) fn quantize(x: &[f32], block: usize, whole: super::QuantizeNf4) -> Nf4Blocks {
    let bounds = boundaries();
    let n = x.len();
    let full = n - n % block;
    let mut absmax = vec![0f32; n.div_ceil(block)];
    let mut packed = crate::buffer::zeroed::<u8>(n.div_ceil(2));
    whole(&x[..full], block, &mut absmax, &mut packed[..full / 2]);
    if full < n {
        let tail = &x[full..];
        let am = tail.iter().fold(0f32, |m, v| m.max(v.abs())).max(TINY);
        absmax[full / block] = am;
        let mut codes: Vec<u8> = tail.iter().map(|&v| bucket((v / am).clamp(-1.0, 1.0), &bounds)).collect();
        if codes.len() % 2 == 1 {
            codes.push(bucket(0.0, &bounds));
        }
        for (o, p) in packed[full / 2..].iter_mut().zip(codes.chunks_exact(2)) {
            *o = p[0] << 4 | p[1];
        }
    }
    Nf4Blocks { packed, absmax }
}

/// `code[q] * absmax` for each of the `n` values: bitsandbytes 0.50's CPU
/// `dequantize_4bit`; the whole blocks by `whole` ([`dequantize_blocks`] or
/// a SIMD kernel giving its bits).
pub(crate) fn dequantize(packed: &[u8], absmax: &[f32], block: usize, out: &mut [f32], whole: super::DequantizeNf4) {
    let n = out.len();
    let full = (n - n % block).min(packed.len() * 2 / block * block);
    whole(&packed[..full / 2], &absmax[..full / block], block, &mut out[..full]);
    for (i, y) in out.iter_mut().enumerate().skip(full) {
        let byte = packed[i / 2];
        let q = if i % 2 == 0 { byte >> 4 } else { byte & 15 };
        *y = NF4_CODE[usize::from(q)] * absmax[i / block];
    }
}

/// torch 2.15's f32 `sum` of a contiguous vector on one thread, as its CPU
/// kernel adds (`cascade_sum` in `SumKernel.cpp`: 8-lane vectors, which is
/// what torch's x86-64 wheel runs even where it reports AVX-512, four
/// interleaved rows, cascade levels of 16, f32 accumulators): the order decides
/// the last bits, and bitsandbytes' absmax mean depends on them. Tested
/// against torch for lengths 1 to 32768 (`formats_numerics`); above 32768
/// values torch splits the sum across its threads.
#[allow(clippy::needless_range_loop)] // lane-parallel accumulators read best as torch writes them
pub(crate) fn torch_sum(x: &[f32]) -> f32 {
    const LANES: usize = 8;
    /// `multi_row_sum` over `rows` rows of `NROWS` items each (an item is a
    /// vector of `W` lanes, or a scalar when `W` is 1), item (r, k) at `at(r, k)`.
    fn multi_row_sum<const NROWS: usize, const W: usize>(
        rows: usize,
        at: impl Fn(usize, usize) -> [f32; W],
    ) -> [[f32; W]; NROWS] {
        const LEVELS: usize = 4;
        let ceil_log2 = if rows <= 1 { 0 } else { usize::BITS - (rows - 1).leading_zeros() } as usize;
        let level_power = 4.max(ceil_log2 / LEVELS);
        let level_step = 1usize << level_power;
        let level_mask = level_step - 1;
        let mut acc = [[[0f32; W]; NROWS]; LEVELS];
        let add = |a: &mut [f32; W], b: &[f32; W]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        let mut i = 0;
        while i + level_step <= rows {
            for _ in 0..level_step {
                for k in 0..NROWS {
                    add(&mut acc[0][k], &at(i, k));
                }
                i += 1;
            }
            for j in 1..LEVELS {
                for k in 0..NROWS {
                    let lower = acc[j - 1][k];
                    add(&mut acc[j][k], &lower);
                    acc[j - 1][k] = [0f32; W];
                }
                if i & (level_mask << (j * level_power)) != 0 {
                    break;
                }
            }
        }
        while i < rows {
            for k in 0..NROWS {
                add(&mut acc[0][k], &at(i, k));
            }
            i += 1;
        }
        for j in 1..LEVELS {
            for k in 0..NROWS {
                let upper = acc[j][k];
                add(&mut acc[0][k], &upper);
            }
        }
        acc[0]
    }
    /// `row_sum`: four interleaved rows of items, the leftover items into row 0, then the rows summed.
    fn row_sum<const W: usize>(size: usize, item: impl Fn(usize) -> [f32; W]) -> [f32; W] {
        let size_ilp = size / 4;
        let mut partial = multi_row_sum::<4, W>(size_ilp, |r, k| item(4 * r + k));
        for i in size_ilp * 4..size {
            let v = item(i);
            partial[0].iter_mut().zip(&v).for_each(|(a, b)| *a += b);
        }
        for k in 1..4 {
            let p = partial[k];
            partial[0].iter_mut().zip(&p).for_each(|(a, b)| *a += b);
        }
        partial[0]
    }
    let n = x.len();
    let total = if n >= LANES {
        // vectorized_inner_sum: whole vectors by row_sum, the tail one by one, then the lanes.
        let vecs = n / LANES;
        let lanes = row_sum::<LANES>(vecs, |v| {
            let mut a = [0f32; LANES];
            a.copy_from_slice(&x[v * LANES..v * LANES + LANES]);
            a
        });
        let mut acc = 0f32;
        for &v in &x[vecs * LANES..] {
            acc += v;
        }
        for l in lanes {
            acc += l;
        }
        acc
    } else {
        row_sum::<1>(n, |i| [x[i]])[0]
    };
    // The output starts at 0 and the result is added to it.
    0.0 + total
}

/// An NF4 tensor's absmaxes, double-quantized: codes of the dynamic map, an
/// f32 absmax per 256 of them, and the mean that was taken off.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DoubleQuant {
    pub codes: Vec<u8>,
    pub absmax2: Vec<f32>,
    pub offset: f32,
}

/// Entries of bitsandbytes' table from normalized values to dynamic-code indices.
const LUT_SIZE: usize = 65536;

/// bitsandbytes 0.50's `build_quantize_lut` (`csrc/cpu_ops.cpp`): [-1, 1] cut
/// into 65536 points `-1 + 2i / 65535` (f32), each mapped to the first code
/// whose upper midpoint `0.5 * (code[j] + code[j + 1])` is not below it.
fn dynamic_lut() -> &'static [u8] {
    static LUT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    LUT.get_or_init(|| {
        let mid: Vec<f32> = DYNAMIC_CODE.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        let mut lut = Vec::with_capacity(LUT_SIZE);
        let mut j = 0;
        for i in 0..LUT_SIZE {
            let val = -1.0f32 + (2.0 * i as f32) / (LUT_SIZE - 1) as f32;
            while j < mid.len() && mid[j] < val {
                j += 1;
            }
            lut.push(j as u8);
        }
        lut
    })
}

/// The dynamic-code index bitsandbytes 0.50's CPU `quantize_blockwise` gives
/// the normalized value `v`: clamped to [-1, 1], then the table entry at
/// `(v + 1) * 0.5 * 65535 + 0.5`, truncated (not always the nearest code: the
/// table's points are 2/65535 apart).
fn dynamic_index(v: f32) -> u8 {
    let v = v.clamp(-1.0, 1.0);
    let at = ((v + 1.0) * 0.5 * (LUT_SIZE - 1) as f32 + 0.5) as usize;
    dynamic_lut()[at.min(LUT_SIZE - 1)]
}

/// bitsandbytes 0.50's `compress_statistics`: offset = `absmax.mean()`, then
/// `quantize_blockwise(absmax - offset, blocksize=256)` by its CPU kernel.
pub(crate) fn double_quantize(absmax: &[f32]) -> DoubleQuant {
    let offset = if absmax.is_empty() { 0.0 } else { torch_sum(absmax) / absmax.len() as f32 };
    let centered: Vec<f32> = absmax.iter().map(|&a| a - offset).collect();
    let mut codes = Vec::with_capacity(centered.len());
    let mut absmax2 = Vec::with_capacity(centered.len().div_ceil(DOUBLE_QUANT_BLOCK));
    for b in centered.chunks(DOUBLE_QUANT_BLOCK) {
        // `quantize_cpu_impl`: the block's absmax, a block of zeros coded 0, else v * (1 / absmax).
        let am = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        absmax2.push(am);
        if am == 0.0 {
            codes.extend(std::iter::repeat_n(0u8, b.len()));
            continue;
        }
        let inv = 1.0 / am;
        codes.extend(b.iter().map(|&v| dynamic_index(v * inv)));
    }
    DoubleQuant { codes, absmax2, offset }
}

/// The absmaxes back from their double quantization: `code[q] * absmax2 + offset`
/// (bitsandbytes 0.50 `dequantize_blockwise` on CPU, then `+= offset`).
pub(crate) fn double_dequantize(dq: &DoubleQuant) -> Vec<f32> {
    dq.codes
        .iter()
        .enumerate()
        .map(|(i, &q)| DYNAMIC_CODE[usize::from(q)] * dq.absmax2[i / DOUBLE_QUANT_BLOCK] + dq.offset)
        .collect()
}
