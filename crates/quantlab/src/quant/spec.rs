//! What to quantize to: the target type, the scheme and the granularity.

use std::fmt;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// How the scale and zero point are chosen from the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Map `[min(x, 0), max(x, 0)]` onto `[qmin, qmax]`, with a zero point.
    #[default]
    Asymmetric,
    /// Map `[-max|x|, max|x|]` onto `[-qmax, qmax]`, zero point 0 (signed types only).
    Symmetric,
}

/// Which elements share one scale and zero point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One pair for the whole tensor.
    #[default]
    PerTensor,
    /// One pair per index along `axis`, like `torch.quantize_per_channel`.
    PerChannel {
        /// The axis whose indices each get their own pair.
        axis: usize,
    },
    /// One pair per `size` consecutive elements in row-major order.
    PerGroup {
        /// Elements per group; must divide the element count.
        size: usize,
    },
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granularity::PerTensor => f.write_str("per-tensor"),
            Granularity::PerChannel { axis } => write!(f, "per-channel (axis {axis})"),
            Granularity::PerGroup { size } => write!(f, "per-group (G={size})"),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Asymmetric => "asymmetric",
            Scheme::Symmetric => "symmetric",
        })
    }
}

/// A complete description of a linear quantization.
///
/// ```
/// use quantlab::{DType, Granularity, QuantSpec, Scheme};
/// let spec = QuantSpec::new(DType::Int4).symmetric().per_group(128);
/// assert_eq!(spec.scheme, Scheme::Symmetric);
/// assert_eq!(spec.granularity, Granularity::PerGroup { size: 128 });
/// assert_eq!(spec.to_string(), "int4 symmetric per-group (G=128)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantSpec {
    /// The integer type of the codes.
    pub dtype: DType,
    /// How parameters are chosen.
    pub scheme: Scheme,
    /// Which elements share parameters.
    pub granularity: Granularity,
}

impl QuantSpec {
    /// Asymmetric, per-tensor quantization to `dtype`.
    pub fn new(dtype: DType) -> Self {
        QuantSpec { dtype, scheme: Scheme::Asymmetric, granularity: Granularity::PerTensor }
    }

    /// The same, with the symmetric scheme.
    pub fn symmetric(mut self) -> Self {
        self.scheme = Scheme::Symmetric;
        self
    }

    /// The same, with the asymmetric scheme.
    pub fn asymmetric(mut self) -> Self {
        self.scheme = Scheme::Asymmetric;
        self
    }

    /// The same, with one scale per index along `axis`.
    pub fn per_channel(mut self, axis: usize) -> Self {
        self.granularity = Granularity::PerChannel { axis };
        self
    }

    /// The same, with one scale per `size` consecutive elements.
    pub fn per_group(mut self, size: usize) -> Self {
        self.granularity = Granularity::PerGroup { size };
        self
    }

    /// The same, with one scale for the whole tensor.
    pub fn per_tensor(mut self) -> Self {
        self.granularity = Granularity::PerTensor;
        self
    }

    /// Checks that the type can be a quantization target and suits the scheme.
    pub fn check(&self) -> Result<()> {
        check_target(self.dtype)?;
        if self.scheme == Scheme::Symmetric && !self.dtype.is_signed() {
            return Err(Error::SymmetricUnsigned {
                dtype: self.dtype,
                signed: self.dtype.signed_twin().expect("quantized types are integers"),
            });
        }
        Ok(())
    }
}

impl fmt::Display for QuantSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.dtype, self.scheme, self.granularity)
    }
}

/// Checks that `dtype` is one of the integer types linear quantization targets.
pub(crate) fn check_target(dtype: DType) -> Result<()> {
    if DType::QUANTIZED.contains(&dtype) {
        Ok(())
    } else {
        Err(Error::WrongDType {
            what: "linear quantization",
            dtype,
            hint: "quantize to int8, uint8, int4, uint4, int2 or uint2 (use cast for float types)",
        })
    }
}

/// `(qmin, qmax)` of a quantization target.
pub(crate) fn qrange(dtype: DType) -> (i32, i32) {
    let (lo, hi) = dtype.int_range().expect("quantization targets are integers");
    (lo as i32, hi as i32)
}
