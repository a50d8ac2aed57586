//! A linear layer, `y = x · Wᵀ + b`, whose weight `W` may stay quantized:
//! the course's `W8A16LinearLayer`, in Rust.
//!
//! With an int8 (one scale per output row) or int4 (one scale per group of
//! input columns, two codes to a byte) weight, each product reads the codes
//! and dequantizes them in registers (`w = q · s`, the number
//! [`crate::Quantized::dequantize`] gives): the f32 matrix is never built, so
//! a matrix-vector product reads 4 or 8 times fewer bytes than with f32, which
//! on a CPU is what bounds it. Activations stay f32.
//!
//! A weight in a block format ([`Linear::block`]) is kept as its blocks: ggml
//! Q8_0 and Q4_0 byte for byte as a GGUF file holds them, the kernels
//! decoding each block's f16 scale and codes in registers; MXFP4, NVFP4 and
//! NF4 as their packed 4-bit codes, each block's scale decoded to f32 once
//! (one f32 per 16 to 64 values) and each code's weight looked up in the
//! block's 16 possible values; Q4_K and Q6_K byte for byte too, their
//! super-blocks' packed scales and codes decoded in registers by AVX-512,
//! AVX2 and NEON (the scalar reference takes the generic path below). Every other format
//! (Q4_1, Q5_0, Q5_1, GGUF MXFP4, MXFP8, MXFP6, MXINT8) goes through a
//! generic block path:
//! one block (a 256-value super-block for the K-quants) at a time is decoded
//! by the format's own dequantization into a buffer on the stack, and its dot
//! with `x` taken at once. Either way the numbers multiplied are those
//! [`BlockQuantized::dequantize`] gives (gguf-py's, ggml's, torchao's,
//! bitsandbytes').
//!
//! The summation order is fixed (16 partial sums, lane `j % 16`, fused
//! multiply-adds, then a tree; see the `arch::gemv` module), so every SIMD
//! path gives the scalar reference's bits. An f32 weight goes through
//! ndarray's matrix product (matrixmultiply) instead.
//!
//! # int8 activations (W8A8)
//! [`Linear::with_activations`]`(`[`Activations::Q8_0`]`)` makes an int8 or
//! Q8_0 layer quantize each input vector too, as PyTorch's dynamic quantized
//! `Linear` (fbgemm) and llama.cpp (`vec_dot_q8_0_q8_0`) do: `x` becomes ggml
//! Q8_0 blocks of 32 (gguf-py's quantizer: `d = amax / 127` as f16, codes
//! `round(x / d)`), each block's dot with the weight codes is taken in exact
//! integer arithmetic (VNNI `vpdpbusd`, AVX2 `vpmaddwd`, NEON `sdot`), and
//! the block results are combined in a fixed f32 order (see `arch::gemv`),
//! so every path gives the same bits. The accuracy cost: each activation is
//! rounded to one of 255 levels of its block's range, an error of up to
//! `amax / 254` per value (about 0.4 % of the block's largest magnitude,
//! plus the f16 rounding of `d`); on random data the result's relative error
//! grows from the weight quantization's alone by about 40 % (5.3e-3 to 7.4e-3 in
//! `tests/linear_a8.rs`). Needs rows of a multiple of 32 and finite inputs
//! (an input block larger than about 8.3e6 in magnitude gives an infinite f16
//! scale, as it does in gguf-py).
//!
//! ```
//! use quantlab::linear::{Activations, Linear};
//! use quantlab::ndarray::Array2;
//! let w = Array2::from_shape_fn((3, 64), |(i, j)| ((i * 64 + j) % 7) as f32 - 3.0);
//! let layer = Linear::int8_per_channel(w.view(), None)?;
//! let w8a8 = layer.clone().with_activations(Activations::Q8_0)?;
//! let x: Vec<f32> = (0..64).map(|j| (j as f32 * 0.37).sin()).collect();
//! let (mut a, mut b) = ([0f32; 3], [0f32; 3]);
//! layer.matvec_into(&x, &mut a)?;
//! w8a8.matvec_into(&x, &mut b)?;
//! assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 0.05 * (1.0 + a.abs())));
//! # Ok::<(), quantlab::Error>(())
//! ```
//!
//! ```
//! use quantlab::linear::Linear;
//! use quantlab::ndarray::array;
//! let w = array![[0.5f32, -1.0, 0.25, 2.0], [1.0, 0.0, -0.5, 0.125]];
//! let f32_layer = Linear::new(w.clone(), Some(array![0.0, 1.0]))?;
//! let int8 = Linear::int8_per_channel(w.view(), Some(array![0.0, 1.0]))?;
//! let x = array![1.0f32, 2.0, 3.0, 4.0];
//! let (a, b) = (f32_layer.forward_vec(x.view())?, int8.forward_vec(x.view())?);
//! assert!((a[0] - b[0]).abs() < 0.05 && (a[1] - b[1]).abs() < 0.05);
//! assert_eq!(int8.weight_bytes(), 8 + 2 * 4); // codes + one f32 scale per row
//! # Ok::<(), quantlab::Error>(())
//! ```

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::arch::gemv::{LANES, MAX_BLOCK, QK, gemv_kernels, i4_value};
use crate::arch::gemv_a8::{Q8Activations, a8_kernels};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::lut4::{Lut4, lut4};
use crate::formats::{BlockFormat, BlockQuantized, GgmlBlock, Scales, mx};
use crate::quant::{Codes, QuantSpec, QuantizeExt};

/// How a layer holds its weight `W` (`out_features` rows of `in_features`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Weight {
    /// Plain f32.
    F32(Array2<f32>),
    /// int8 codes, row-major, and one scale per row (symmetric, zero point 0).
    Int8 {
        /// `out * in` codes.
        codes: Vec<i8>,
        /// One per output row.
        scales: Vec<f32>,
    },
    /// int4 codes, row-major, two to a byte (the first in the low nibble),
    /// and one scale per `group` consecutive codes of a row (symmetric).
    Int4 {
        /// `out * in / 2` bytes.
        packed: Vec<u8>,
        /// `out * in / group` scales, row by row.
        scales: Vec<f32>,
        /// Codes per scale: a multiple of 16 that divides `in_features`.
        group: usize,
    },
    /// A block format's bytes, one row of `in_features` values per output:
    /// a format [`Linear::computes_on`].
    Block(BlockQuantized),
}

/// What a layer multiplies its weight by (see the module's "int8 activations").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Activations {
    /// The input as given (the default).
    #[default]
    F32,
    /// The input quantized to ggml Q8_0 (int8 codes, one f16 scale per 32
    /// values) and multiplied in integers: int8 and Q8_0 weights, rows of a
    /// multiple of 32.
    Q8_0,
}

/// `y = x · Wᵀ + b` with `W` held as [`Weight`] says.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    out_features: usize,
    in_features: usize,
    weight: Weight,
    bias: Option<Array1<f32>>,
    /// MXFP4, NVFP4 and NF4 weights' value table and f32 block scales.
    lut4: Option<Lut4>,
    /// How inputs are multiplied.
    activations: Activations,
}

fn bad(reason: String) -> Error {
    Error::BadLayer { reason }
}

impl Linear {
    /// A layer with an f32 weight of shape `[out_features, in_features]`
    /// (PyTorch's `nn.Linear` layout) and an optional bias of `out_features`.
    pub fn new(weight: Array2<f32>, bias: Option<Array1<f32>>) -> Result<Self> {
        let (out_features, in_features) = weight.dim();
        Self::checked(out_features, in_features, Weight::F32(weight), bias)
    }

    /// `weight` quantized to int8, symmetric, one scale per output row (axis
    /// 0): the codes and scales of `quantize(QuantSpec::new(Int8).symmetric().per_channel(0))`.
    pub fn int8_per_channel(weight: ArrayView2<f32>, bias: Option<Array1<f32>>) -> Result<Self> {
        let (out_features, in_features) = weight.dim();
        let q = weight.quantize(QuantSpec::new(DType::Int8).symmetric().per_channel(0))?;
        let (_, codes, params) = q.into_parts();
        let Codes::Signed(codes) = codes else {
            return Err(Error::BadLayer { reason: "int8 quantization gave unsigned codes".into() });
        };
        let codes = codes.as_standard_layout().iter().copied().collect();
        Self::checked(out_features, in_features, Weight::Int8 { codes, scales: params.scale.to_vec() }, bias)
    }

    /// `weight` quantized to int4, symmetric, one scale per `group`
    /// consecutive elements of a row: the packed codes and scales of
    /// `quantize_packed(QuantSpec::new(Int4).symmetric().per_group(group))`.
    /// `group` must be a multiple of 16 that divides `in_features` (so that
    /// no group spans two rows and each 16-lane step has one scale).
    pub fn int4_per_group(weight: ArrayView2<f32>, group: usize, bias: Option<Array1<f32>>) -> Result<Self> {
        let (out_features, in_features) = weight.dim();
        check_group(in_features, group)?;
        let (packed, params) = weight.quantize_packed(QuantSpec::new(DType::Int4).symmetric().per_group(group))?;
        let w = Weight::Int4 { packed, scales: params.scale.to_vec(), group };
        Self::checked(out_features, in_features, w, bias)
    }

    /// Whether a layer computes on this block format's blocks: every
    /// [`BlockFormat`] does. `q8_0`, `q4_0`, `q4_k`, `q6_k`, `mxfp4`, `nvfp4`
    /// and `nf4` have kernels of their own (the K-quants on AVX-512, AVX2 and
    /// NEON; the scalar reference decodes a 256-value super-block at a time); the others (`q4_1`, `q5_0`, `q5_1`, `gguf_mxfp4`, `mxfp8_*`,
    /// `mxfp6_*`, `mxint8`) go through the generic block path, which decodes
    /// one block at a time with the format's own dequantization.
    pub fn computes_on(format: &BlockFormat) -> bool {
        match format {
            BlockFormat::Ggml(_) | BlockFormat::Mx { .. } | BlockFormat::Nvfp4 { .. } | BlockFormat::Nf4 { .. } => true,
        }
    }

    /// `weight` quantized to a block format: the bytes and scales of
    /// `format.quantize(weight, in_features)` (gguf-py's, ggml's, torchao's,
    /// bitsandbytes'). Rows must be whole blocks (32 values for the ggml
    /// 32-blocks and MX, 256 for Q4_K and Q6_K, 16 for NVFP4); NF4 blocks the
    /// flat tensor, as bitsandbytes does, and needs rows of a multiple of 16.
    /// Errors for rows that do not fit and for NaN or infinite weights.
    pub fn block(weight: ArrayView2<f32>, format: BlockFormat, bias: Option<Array1<f32>>) -> Result<Self> {
        let (out_features, in_features) = weight.dim();
        if matches!(format, BlockFormat::Nf4 { .. }) && !in_features.is_multiple_of(LANES) {
            return Err(bad(format!("NF4 rows of {in_features} values: the layer needs a multiple of {LANES}")));
        }
        let w = weight.as_standard_layout();
        let q = format.quantize(w.as_slice().expect("standard layout"), in_features)?;
        Self::checked(out_features, in_features, Weight::Block(q), bias)
    }

    /// A layer from a weight already held in some [`Weight`] form, of shape
    /// `[out_features, in_features]`; checks that every buffer has its size.
    pub fn from_parts(
        out_features: usize,
        in_features: usize,
        weight: Weight,
        bias: Option<Array1<f32>>,
    ) -> Result<Self> {
        Self::checked(out_features, in_features, weight, bias)
    }

    fn checked(out_features: usize, in_features: usize, weight: Weight, bias: Option<Array1<f32>>) -> Result<Self> {
        let numel = out_features * in_features;
        if numel == 0 {
            return Err(Error::Empty { what: "a linear layer" });
        }
        match &weight {
            Weight::F32(w) if w.dim() != (out_features, in_features) => {
                return Err(bad(format!(
                    "an f32 weight of shape {:?} is not [{out_features}, {in_features}]",
                    w.shape()
                )));
            }
            Weight::Int8 { codes, scales } if codes.len() != numel || scales.len() != out_features => {
                return Err(bad(format!(
                    "int8 needs {numel} codes and {out_features} scales for [{out_features}, {in_features}], got {} and {}",
                    codes.len(),
                    scales.len()
                )));
            }
            Weight::Int4 { packed, scales, group } => {
                check_group(in_features, *group)?;
                if packed.len() != numel / 2 || scales.len() != numel / group {
                    return Err(bad(format!(
                        "int4 with groups of {group} needs {} bytes and {} scales for [{out_features}, {in_features}], got {} and {}",
                        numel / 2,
                        numel / group,
                        packed.len(),
                        scales.len()
                    )));
                }
            }
            Weight::Block(q) => {
                if (q.rows, q.cols) != (out_features, in_features) {
                    return Err(bad(format!(
                        "{} blocks of [{}, {}] for a layer of [{out_features}, {in_features}]",
                        q.format.name(),
                        q.rows,
                        q.cols
                    )));
                }
                if matches!(q.format, BlockFormat::Ggml(_)) != (q.scales == Scales::InBlocks) {
                    return Err(bad(format!("{} does not keep its scales that way", q.format.name())));
                }
                if !in_features.is_multiple_of(LANES) {
                    return Err(bad(format!(
                        "{} rows of {in_features} values: the layer needs a multiple of {LANES}",
                        q.format.name()
                    )));
                }
                q.validate()?;
            }
            _ => {}
        }
        if let Some(b) = &bias
            && b.len() != out_features
        {
            return Err(bad(format!("a bias of {} values for {out_features} outputs", b.len())));
        }
        let lut4 = match &weight {
            Weight::Block(q) => lut4(q),
            _ => None,
        };
        Ok(Linear { out_features, in_features, weight, bias, lut4, activations: Activations::F32 })
    }

    /// This layer with its inputs multiplied as `activations` says. Errors
    /// ([`Error::BadLayer`]) for [`Activations::Q8_0`] unless the weight is
    /// int8 ([`Weight::Int8`]) or ggml Q8_0 blocks and `in_features` is a
    /// multiple of 32.
    pub fn with_activations(mut self, activations: Activations) -> Result<Self> {
        if activations == Activations::Q8_0 {
            let fits = match &self.weight {
                Weight::Int8 { .. } => true,
                Weight::Block(q) => q.format == BlockFormat::Ggml(GgmlBlock::Q8_0),
                _ => false,
            };
            if !fits {
                return Err(bad(format!(
                    "int8 (Q8_0) activations need an int8 or Q8_0 weight, not {}",
                    self.weight_name()
                )));
            }
            if !self.in_features.is_multiple_of(QK) {
                return Err(bad(format!(
                    "int8 (Q8_0) activations come in blocks of {QK}: rows of {} values do not fit",
                    self.in_features
                )));
            }
        }
        self.activations = activations;
        Ok(self)
    }

    /// How this layer multiplies its inputs.
    pub fn activations(&self) -> Activations {
        self.activations
    }

    fn weight_name(&self) -> &'static str {
        match &self.weight {
            Weight::F32(_) => "f32",
            Weight::Int8 { .. } => "int8",
            Weight::Int4 { .. } => "int4",
            Weight::Block(q) => q.format.name(),
        }
    }

    /// Inputs per row of `x`.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Outputs per row of `y`.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The weight, as it is held.
    pub fn weight(&self) -> &Weight {
        &self.weight
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Array1<f32>> {
        self.bias.as_ref()
    }

    /// The weight as f32 (for a quantized weight, `q · s`: the values the
    /// kernels multiply by). Builds the matrix the forward pass never does.
    pub fn dequantized_weight(&self) -> Array2<f32> {
        let (rows, cols) = (self.out_features, self.in_features);
        match &self.weight {
            Weight::F32(w) => w.clone(),
            Weight::Int8 { codes, scales } => {
                Array2::from_shape_fn((rows, cols), |(i, j)| f32::from(codes[i * cols + j]) * scales[i])
            }
            Weight::Int4 { packed, scales, group } => Array2::from_shape_fn((rows, cols), |(i, j)| {
                let k = i * cols + j;
                f32::from(i4_value(packed[k / 2] >> (4 * (k % 2)))) * scales[k / group]
            }),
            Weight::Block(q) => {
                // Validated when the layer was made, so this cannot fail.
                let values = q.dequantize().expect("a layer's blocks are validated when it is made");
                Array2::from_shape_vec((rows, cols), values).expect("rows x cols values")
            }
        }
    }

    /// Bytes the weight takes: 4 per f32 value; int8 one per code plus 4 per
    /// scale; int4 one per two codes plus 4 per scale; a block format the
    /// bytes it stores ([`BlockQuantized::nbytes`]: Q8_0 34 per 32 values,
    /// Q4_0 18, MXFP4 17, NVFP4 9 per 16, NF4 4.5 bits a value), not the f32
    /// block scales MXFP4, NVFP4 and NF4 are decoded into. The bias is not counted.
    pub fn weight_bytes(&self) -> u64 {
        match &self.weight {
            Weight::F32(w) => 4 * w.len() as u64,
            Weight::Int8 { codes, scales } => (codes.len() + 4 * scales.len()) as u64,
            Weight::Int4 { packed, scales, .. } => (packed.len() + 4 * scales.len()) as u64,
            Weight::Block(q) => q.nbytes() as u64,
        }
    }

    /// `y = W x + b` for one vector, into `y` (`out_features` values).
    /// Each `y[i]` is the kernel's sum (see the module) plus `b[i]`.
    pub fn matvec_into(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        if x.len() != self.in_features || y.len() != self.out_features {
            return Err(Error::ShapeMismatch {
                what: "a linear layer's matrix-vector product ([in_features] -> [out_features])",
                left: vec![x.len(), y.len()],
                right: vec![self.in_features, self.out_features],
            });
        }
        if self.activations == Activations::Q8_0 {
            return self.matvec_q8_activations(x, y);
        }
        let k = gemv_kernels();
        match &self.weight {
            Weight::F32(w) => {
                ndarray::linalg::general_mat_vec_mul(
                    1.0,
                    w,
                    &ArrayView1::from(x),
                    0.0,
                    &mut ndarray::ArrayViewMut1::from(&mut *y),
                );
            }
            Weight::Int8 { codes, scales } => (k.gemv_i8)(codes, scales, x, y),
            Weight::Int4 { packed, scales, group } => (k.gemv_i4)(packed, scales, *group, x, y),
            Weight::Block(q) => match (q.format, &self.lut4) {
                (BlockFormat::Ggml(GgmlBlock::Q8_0), _) => (k.gemv_q8_0)(&q.data, x, y),
                (BlockFormat::Ggml(GgmlBlock::Q4_0), _) => (k.gemv_q4_0)(&q.data, x, y),
                (BlockFormat::Ggml(GgmlBlock::Q4K), _) => (k.gemv_q4_k)(&q.data, x, y),
                (BlockFormat::Ggml(GgmlBlock::Q6K), _) => (k.gemv_q6_k)(&q.data, x, y),
                (_, Some(t)) => (k.gemv_lut4)(&q.data, &t.scales, t.block, &t.table, t.high_first, x, y),
                // The generic path decodes `per` blocks of the format at a time
                // (up to 256 values): the same numbers and order, fewer calls.
                (BlockFormat::Ggml(g), None) => {
                    let per = blocks_per_decode(g.block_size(), self.in_features);
                    let size = per * g.type_size();
                    let decode =
                        |b: usize, out: &mut [f32]| g.dequantize_blocks(&q.data[b * size..(b + 1) * size], out);
                    (k.gemv_decoded)(&decode, per * g.block_size(), x, y)
                }
                (BlockFormat::Mx { element, .. }, None) => {
                    let Scales::E8m0(scales) = &q.scales else { return Err(unsupported(q.format)) };
                    let (size, values) = (element.packed_len(32), mx::element_values(element));
                    let per = blocks_per_decode(32, self.in_features);
                    let decode = |b: usize, out: &mut [f32]| {
                        for (i, out) in out.chunks_exact_mut(32).enumerate() {
                            let b = b * per + i;
                            mx::dequantize_block(element, &values, scales[b], &q.data[b * size..(b + 1) * size], out)
                        }
                    };
                    (k.gemv_decoded)(&decode, per * 32, x, y)
                }
                // `checked` gives NVFP4 and NF4 their tables.
                (other, None) => return Err(unsupported(other)),
            },
        }
        if let Some(b) = &self.bias {
            y.iter_mut().zip(b).for_each(|(y, b)| *y += b);
        }
        Ok(())
    }

    /// [`Linear::matvec_into`] with `x` quantized to Q8_0 (sizes checked there).
    fn matvec_q8_activations(&self, x: &[f32], y: &mut [f32]) -> Result<()> {
        // gguf-py's quantizer would turn a NaN into a finite code: refuse it.
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: "int8 (Q8_0) activations", value: x[index].to_string(), index });
        }
        // `with_activations` checked that rows are whole blocks (and there is one).
        let xa =
            Q8Activations::quantize(x).ok_or_else(|| bad(format!("int8 (Q8_0) activations of {} values", x.len())))?;
        let k = a8_kernels();
        match &self.weight {
            Weight::Int8 { codes, scales } => (k.gemv_i8)(codes, scales, &xa, y),
            Weight::Block(q) if q.format == BlockFormat::Ggml(GgmlBlock::Q8_0) => (k.gemv_q8_0)(&q.data, &xa, y),
            _ => return Err(bad(format!("int8 (Q8_0) activations on a {} weight", self.weight_name()))),
        }
        if let Some(b) = &self.bias {
            y.iter_mut().zip(b).for_each(|(y, b)| *y += b);
        }
        Ok(())
    }

    /// `y = W x + b` for one vector.
    pub fn forward_vec(&self, x: ArrayView1<f32>) -> Result<Array1<f32>> {
        let x = x.as_standard_layout();
        let mut y = Array1::zeros(self.out_features);
        self.matvec_into(x.as_slice().expect("standard layout"), y.as_slice_mut().expect("fresh array"))?;
        Ok(y)
    }

    /// `y = x · Wᵀ + b` for a batch: `x` is `[n, in_features]`, `y` `[n, out_features]`.
    /// A quantized weight runs one matrix-vector product per row of `x`
    /// (each row's numbers are those of [`Linear::forward_vec`]).
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        if x.ncols() != self.in_features {
            return Err(Error::ShapeMismatch {
                what: "a linear layer's input ([n, in_features])",
                left: x.shape().to_vec(),
                right: vec![x.nrows(), self.in_features],
            });
        }
        if let Weight::F32(w) = &self.weight {
            let mut y = x.dot(&w.t());
            if let Some(b) = &self.bias {
                y += b;
            }
            return Ok(y);
        }
        let x = x.as_standard_layout();
        let mut y = Array2::zeros((x.nrows(), self.out_features));
        for (xr, mut yr) in x.axis_iter(Axis(0)).zip(y.axis_iter_mut(Axis(0))) {
            self.matvec_into(xr.as_slice().expect("standard layout"), yr.as_slice_mut().expect("fresh array"))?;
        }
        Ok(y)
    }
}

fn check_group(in_features: usize, group: usize) -> Result<()> {
    if group == 0 || !group.is_multiple_of(LANES) || !in_features.is_multiple_of(group) {
        return Err(bad(format!(
            "int4 groups of {group} do not fit rows of {in_features}: use a multiple of {LANES} that divides {in_features} (e.g. 32 or 128)"
        )));
    }
    Ok(())
}

/// How many blocks of `block` values the generic path decodes at a time for
/// rows of `n`: the most, a power of two, that fit [`MAX_BLOCK`] values and
/// divide a row (`block` divides `n`, so at least 1).
fn blocks_per_decode(block: usize, n: usize) -> usize {
    let mut per = 1;
    while block * per * 2 <= MAX_BLOCK && n.is_multiple_of(block * per * 2) {
        per *= 2;
    }
    per
}

fn unsupported(format: BlockFormat) -> Error {
    bad(format!("{} blocks whose scales the layer has no table for", format.name()))
}
