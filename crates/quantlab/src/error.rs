//! The one error type of the library.
//!
//! Every public function that can meet bad input returns [`Result`]; none of
//! them panics on data. Each message says what was wrong and what to do.

use crate::dtype::DType;

/// What went wrong, and what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data-type name that quantlab does not know.
    #[error("unknown data type `{name}`: use one of {known}")]
    UnknownDType {
        /// The name that was given.
        name: String,
        /// The names that are accepted.
        known: String,
    },
    /// An operation asked of a data type that does not have it.
    #[error("{what} is not defined for {dtype}: {hint}")]
    WrongDType {
        /// What was asked (e.g. `iinfo`).
        what: &'static str,
        /// The data type it was asked of.
        dtype: DType,
        /// What to use instead.
        hint: &'static str,
    },
    /// The tensor has no elements.
    #[error("the tensor is empty: {what} needs at least one element")]
    Empty {
        /// The operation that needed data.
        what: &'static str,
    },
    /// NaN or an infinity in data that must be finite.
    #[error(
        "the tensor holds {value} at flat index {index}: {what} needs finite values; replace or mask non-finite values first"
    )]
    NonFinite {
        /// The operation that needed finite data.
        what: &'static str,
        /// The offending value, as printed.
        value: String,
        /// Its position in row-major order.
        index: usize,
    },
    /// An axis beyond the tensor's dimensions.
    #[error("axis {axis} is out of range for a tensor with {ndim} dimension(s): use an axis from 0 to {}", ndim.saturating_sub(1))]
    BadAxis {
        /// The axis that was asked for.
        axis: usize,
        /// The tensor's number of dimensions.
        ndim: usize,
    },
    /// A group size that does not split the tensor into whole groups.
    #[error(
        "group size {group_size} does not divide the {numel} elements of the tensor: choose a divisor of {numel} (e.g. {suggestion})"
    )]
    BadGroupSize {
        /// The group size that was asked for.
        group_size: usize,
        /// The number of elements in the tensor.
        numel: usize,
        /// A divisor that would work.
        suggestion: usize,
    },
    /// Symmetric quantization needs a signed type (its zero point is 0).
    #[error(
        "symmetric quantization needs a signed type, but {dtype} is unsigned: use {signed} or the asymmetric scheme"
    )]
    SymmetricUnsigned {
        /// The unsigned type that was asked for.
        dtype: DType,
        /// The signed type of the same width.
        signed: DType,
    },
    /// A value that does not fit the target type.
    #[error(
        "{value} at flat index {index} is out of range for {dtype} (largest magnitude {max}): scale the data down or ask to saturate"
    )]
    OutOfRange {
        /// The offending value, as printed.
        value: String,
        /// Its position in row-major order.
        index: usize,
        /// The target type.
        dtype: DType,
        /// The largest finite magnitude of the target type.
        max: String,
    },
    /// A value the target type has no code for: NaN in a type without NaN
    /// (float6, float4), zero or a negative value in float8_e8m0fnu.
    #[error("{value} at flat index {index} cannot be stored in {dtype}: {reason}; {hint}")]
    Unrepresentable {
        /// The offending value, as printed.
        value: String,
        /// Its position in row-major order.
        index: usize,
        /// The target type.
        dtype: DType,
        /// Why the type cannot hold it.
        reason: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// Quantization parameters that cannot be used.
    #[error("invalid quantization parameters: {reason}")]
    BadParams {
        /// What is wrong with them.
        reason: String,
    },
    /// Two arrays whose shapes should agree but do not.
    #[error("shape mismatch: {what} needs equal shapes, got {left:?} and {right:?}")]
    ShapeMismatch {
        /// The operation that compared them.
        what: &'static str,
        /// The first shape.
        left: Vec<usize>,
        /// The second shape.
        right: Vec<usize>,
    },
    /// A packed buffer too short for the values it should hold.
    #[error("packed buffer of {got} bytes is too short for {count} values of {bits} bits (needs {needed} bytes)")]
    ShortBuffer {
        /// Bytes given.
        got: usize,
        /// Values expected.
        count: usize,
        /// Bits per value.
        bits: u32,
        /// Bytes needed.
        needed: usize,
    },
    /// A linear layer whose weight, bias or group size do not fit together.
    #[error("cannot build the linear layer: {reason}")]
    BadLayer {
        /// What does not fit.
        reason: String,
    },
    /// A block-format name that quantlab does not know (see [`crate::formats::BlockFormat`]).
    #[error("unknown block format `{name}`: use one of {known}")]
    UnknownFormat {
        /// The name that was given.
        name: String,
        /// The names that are accepted.
        known: String,
    },
    /// Rows whose length is not a whole number of a block format's blocks.
    #[error(
        "rows of {len} values do not split into blocks of {block} for {format}: use rows whose length is a multiple of {block} (or store this tensor unquantized)"
    )]
    BlockMismatch {
        /// The format's name.
        format: String,
        /// Its block size.
        block: usize,
        /// The row length that was given.
        len: usize,
    },
    /// Packed bytes whose length does not fit the format and shape they are said to hold.
    #[error(
        "{what}: expected {expected} bytes, got {got}: the data is truncated or belongs to another format or shape"
    )]
    WrongByteLength {
        /// Which buffer (e.g. `q4_k blocks`).
        what: String,
        /// Bytes the format and shape need.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A GGUF file that cannot be read as GGUF v2/v3: truncated, or with a header that lies.
    #[error(
        "not a readable GGUF file: {reason} (at byte {offset}); re-export it, or check that the download is complete"
    )]
    BadGguf {
        /// Where in the file the problem was found.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A block format that GGUF has no type for (`io::gguf::ggml_block_of` says which have one).
    #[error(
        "{format} has no GGUF type that gguf-py and llama.cpp read: write .safetensors, or use one of q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k, mxfp4 (FLOOR)"
    )]
    NoGgufType {
        /// The format, with its options.
        format: String,
    },
    /// A file that could not be opened, read or written.
    #[error("{path}: cannot {action}: {reason}")]
    File {
        /// The file, as the caller named it.
        path: String,
        /// What was being done (`open`, `write`, ...).
        action: &'static str,
        /// The operating system's reason.
        reason: String,
    },
    /// A file whose contents are not what its format requires.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file, as the caller named it.
        path: String,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// quantlab's layout metadata of a quantized safetensors file that does not fit its tensors.
    #[error("invalid quantlab layout: {reason}")]
    BadLayout {
        /// What is wrong with it.
        reason: String,
    },
    /// A bitsandbytes 4-bit weight (`QuantState` tensors beside the packed
    /// weight) that is incomplete or does not fit its own description.
    #[error("{weight}: not a readable bitsandbytes 4-bit weight: {reason}")]
    BadQuantState {
        /// The packed weight's tensor name.
        weight: String,
        /// What is missing or does not fit.
        reason: String,
    },
    /// Quantized codes that do not fit their parameters (see [`crate::Quantized::new`]).
    #[error("inconsistent quantized tensor: {reason}")]
    BadQuantized {
        /// What does not fit.
        reason: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
