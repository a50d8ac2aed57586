//! The command line, as clap's derive describes it.
//!
//! Data types are parsed by [`quantlab::DType`]'s own parser, so the command
//! line accepts every spelling the library does (`bf16`, `torch.float16`, ...).

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use quantlab::DType;
use quantlab::formats::{BlockFormat, ScaleRule};

/// Cast, quantize and measure checkpoints (.safetensors and .npy).
#[derive(Debug, Parser)]
#[command(name = "quantlab", version, about, max_term_width = 100)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the limits of a data type, as torch.iinfo / torch.finfo print them, or what a .gguf file holds.
    Info(InfoArgs),
    /// Cast floating-point tensors (2-D and up, unless --all) to another float type.
    Cast(CastArgs),
    /// Quantize floating-point tensors (2-D and up, unless --all) linearly to a small integer type.
    Quantize(QuantizeArgs),
    /// Restore float32 tensors from the output of `quantlab quantize`, a bitsandbytes NF4 checkpoint or a .gguf file.
    Dequantize(DequantizeArgs),
    /// Memory and error of a checkpoint (.safetensors, .npy or .gguf) in several data types.
    Footprint(FootprintArgs),
    /// Single-thread throughput of the library's kernels on this machine.
    Bench(BenchArgs),
}

/// `quantlab info`.
#[derive(Debug, ClapArgs)]
pub struct InfoArgs {
    /// A data type (int8, bfloat16, float8_e4m3fn), or a .gguf file to describe
    /// (version, metadata, every tensor's shape, ggml type, bytes and bits per weight).
    #[arg(value_name = "DTYPE|FILE.gguf", value_parser = parse_info_subject, required_unless_present = "all")]
    pub subject: Option<InfoSubject>,
    /// A table of every data type: bits, bytes, range, eps and platform support.
    #[arg(long, conflicts_with = "subject")]
    pub all: bool,
}

/// What `quantlab info` describes.
#[derive(Debug, Clone)]
pub enum InfoSubject {
    /// A data type's limits.
    DType(DType),
    /// A GGUF file.
    Gguf(PathBuf),
}

/// A path ending in `.gguf` is a file; anything else a data type.
fn parse_info_subject(s: &str) -> Result<InfoSubject, String> {
    let path = PathBuf::from(s);
    if quantlab::io::gguf::is_gguf_path(&path) {
        return Ok(InfoSubject::Gguf(path));
    }
    if path.extension().is_some_and(|e| e == "safetensors" || e == "npy") {
        return Err(format!("`info` describes data types and .gguf files: for {s}, use `quantlab footprint {s}`"));
    }
    parse_dtype(s).map(InfoSubject::DType).map_err(|e| e.to_string())
}

/// `quantlab cast`.
#[derive(Debug, ClapArgs)]
pub struct CastArgs {
    /// A .safetensors or .npy file.
    pub input: PathBuf,
    /// Where to write the .safetensors result.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The target float type: float64, float32, float16, bfloat16, float8_e4m3fn, float8_e5m2, or any
    /// narrower float (float8_e4m3fnuz … float4_e2m1fn; see `quantlab info --all`).
    #[arg(long, value_parser = parse_float_dtype)]
    pub to: DType,
    /// Clamp values the target cannot hold to its largest finite value
    /// (float8_e4m3fn has no infinity: without this, such a value is an error).
    #[arg(long)]
    pub saturate: bool,
    /// What to do with values the target cannot hold, by name: error (the default), saturate,
    /// nan (ml_dtypes' rule) or pytorch (PyTorch's rule for each type).
    #[arg(long, value_parser = parse_overflow, conflicts_with = "saturate")]
    pub overflow: Option<quantlab::Overflow>,
    /// Which tensors to cast.
    #[command(flatten)]
    pub select: SelectArgs,
}

/// Which tensors to convert: by default every float tensor with two or more
/// dimensions; 1-D ones (norms, biases) are kept as they are.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct SelectArgs {
    /// Convert every float tensor, 1-D ones included.
    #[arg(long)]
    pub all: bool,
    /// Only tensors whose name matches GLOB are candidates (repeatable), e.g. `--include '*.weight'`.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Keep tensors whose name matches GLOB as they are (repeatable), e.g. `--exclude '*embeddings*'`.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

/// `quantlab quantize`.
#[derive(Debug, ClapArgs)]
pub struct QuantizeArgs {
    /// A .safetensors or .npy file.
    pub input: PathBuf,
    /// Where to write the .safetensors result (codes, scales, zero points).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The integer type of the codes (linear quantization; or give --format).
    #[arg(long, value_enum, required_unless_present = "format")]
    pub dtype: Option<QuantDType>,
    /// Symmetric scheme (zero point 0, signed types only); asymmetric otherwise.
    #[arg(long)]
    pub symmetric: bool,
    /// One scale and zero point per index along this axis.
    #[arg(long, conflicts_with = "group_size")]
    pub axis: Option<usize>,
    /// One scale and zero point per G consecutive elements (row-major order).
    #[arg(long, value_name = "G")]
    pub group_size: Option<usize>,
    /// Which tensors to quantize.
    #[command(flatten)]
    pub select: SelectArgs,
    /// A block format instead of linear quantization: mxfp8_e4m3, mxfp8_e5m2, mxfp6_e2m3, mxfp6_e3m2, mxfp4,
    /// mxint8, nvfp4, nf4, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k. Write OUT.gguf for the ggml types and
    /// mxfp4 (stored as ggml's MXFP4).
    #[arg(long, value_name = "F", value_parser = parse_format, conflicts_with_all = ["dtype", "symmetric", "axis", "group_size"])]
    pub format: Option<BlockFormat>,
    /// MX only: how a block's shared exponent is chosen (floor is the OCP spec's).
    #[arg(long, value_name = "RULE", value_parser = parse_scale_rule, requires = "format")]
    pub scale_rule: Option<ScaleRule>,
    /// NF4 only: values per absmax, a power of two from 32 to 4096 (default 64).
    #[arg(long, value_name = "B", requires = "format")]
    pub block_size: Option<usize>,
    /// NF4 only: quantize the absmaxes too (bitsandbytes' compress_statistics).
    #[arg(long, requires = "format")]
    pub double_quant: bool,
    /// NVFP4 only: no per-tensor f32 scale (block scales alone).
    #[arg(long, requires = "format")]
    pub no_tensor_scale: bool,
}

/// `quantlab dequantize`.
#[derive(Debug, ClapArgs)]
pub struct DequantizeArgs {
    /// A .safetensors file written by `quantlab quantize` or holding bitsandbytes NF4 weights, or any .gguf file.
    pub input: PathBuf,
    /// Where to write the float32 .safetensors result.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// `quantlab footprint`.
#[derive(Debug, ClapArgs)]
pub struct FootprintArgs {
    /// A .safetensors, .npy or .gguf file (a GGUF file's tensors are measured
    /// from their dequantized values, and counted as stored in their ggml types).
    pub input: PathBuf,
    /// Data types to measure (float types are cast, integer types quantized):
    /// `--dtype f16 int4`, `--dtype f16,int4` or `--dtype f16 --dtype int4`.
    /// Default: float32, float16, bfloat16, int8, int4.
    /// Block formats too (`--dtype mxfp4,nvfp4,nf4,q4_k,q8_0`): true bits per weight, scales counted.
    #[arg(long = "dtype", value_name = "D", value_parser = parse_measure, value_delimiter = ',', num_args = 1..)]
    pub dtypes: Vec<Measure>,
    /// Quantize with one scale and zero point per G elements instead of per tensor.
    #[arg(long, value_name = "G")]
    pub group_size: Option<usize>,
    /// Quantize with the symmetric scheme (signed types only).
    #[arg(long)]
    pub symmetric: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Which tensors to measure converted (the others count as they are stored).
    #[command(flatten)]
    pub select: SelectArgs,
}

/// `quantlab bench`.
#[derive(Debug, ClapArgs)]
pub struct BenchArgs {
    /// Number of elements (default: 2^24, and 2^16 too in the table).
    #[arg(long)]
    pub n: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Cast into one preallocated output (`cast_into`, as numpy.copyto and
    /// Tensor.copy_ do) instead of a new array each time (as astype and .to
    /// do), leaving out the operating system zeroing fresh pages.
    #[arg(long)]
    pub reuse_output: bool,
    /// The matrix-vector rows' weight is SIZE x SIZE (a multiple of 128);
    /// 0 leaves them out.
    #[arg(long, default_value_t = 4096, value_name = "SIZE")]
    pub gemv_size: usize,
}

/// The integer types linear quantization targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuantDType {
    /// Signed 8-bit.
    Int8,
    /// Unsigned 8-bit.
    Uint8,
    /// Signed 4-bit, packed two to a byte.
    Int4,
    /// Unsigned 4-bit, packed two to a byte.
    Uint4,
    /// Signed 2-bit, packed four to a byte.
    Int2,
    /// Unsigned 2-bit, packed four to a byte.
    Uint2,
}

impl From<QuantDType> for DType {
    fn from(d: QuantDType) -> DType {
        match d {
            QuantDType::Int8 => DType::Int8,
            QuantDType::Uint8 => DType::UInt8,
            QuantDType::Int4 => DType::Int4,
            QuantDType::Uint4 => DType::UInt4,
            QuantDType::Int2 => DType::Int2,
            QuantDType::Uint2 => DType::UInt2,
        }
    }
}

/// What `footprint --dtype` measures: a data type, or a block format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// A float type (cast) or an integer type (linear quantization).
    DType(DType),
    /// A block format of [`quantlab::formats`].
    Format(BlockFormat),
}

impl PartialEq<DType> for Measure {
    fn eq(&self, d: &DType) -> bool {
        *self == Measure::DType(*d)
    }
}

/// A data type if the library knows the name as one, else a block format.
fn parse_measure(s: &str) -> Result<Measure, quantlab::Error> {
    match parse_dtype(s) {
        Ok(d) => Ok(Measure::DType(d)),
        Err(e) => BlockFormat::parse(s).map(Measure::Format).map_err(|_| e),
    }
}

/// A block format, by the library's parser.
fn parse_format(s: &str) -> Result<BlockFormat, quantlab::Error> {
    BlockFormat::parse(s)
}

/// An MX scale rule.
fn parse_scale_rule(s: &str) -> Result<ScaleRule, String> {
    ScaleRule::parse(&s.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown scale rule `{s}`: use floor, ceil, even or rceil"))
}

/// Any data type quantlab knows, by the library's parser.
fn parse_dtype(s: &str) -> Result<DType, quantlab::Error> {
    s.parse()
}

/// An overflow policy by name.
fn parse_overflow(s: &str) -> Result<quantlab::Overflow, String> {
    quantlab::Overflow::from_name(s)
        .ok_or_else(|| format!("unknown overflow policy `{s}`: use error, saturate, nan (ml_dtypes) or pytorch"))
}

/// A float type that a safetensors file can hold.
fn parse_float_dtype(s: &str) -> Result<DType, String> {
    let dtype = parse_dtype(s).map_err(|e| e.to_string())?;
    if dtype.is_float() {
        Ok(dtype)
    } else {
        Err(format!(
            "{dtype} is not a float type: cast to float64, float32, float16, bfloat16, a float8, float6 or \
             float4 type (see `quantlab info --all`; use `quantlab quantize` for integer types)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn dtypes_parse_with_the_librarys_spellings() {
        let a = Args::try_parse_from(["quantlab", "cast", "in.npy", "-o", "o.safetensors", "--to", "bf16"]).unwrap();
        let Command::Cast(c) = a.command else { panic!("not cast") };
        assert_eq!(c.to, DType::BFloat16);
        let a =
            Args::try_parse_from(["quantlab", "footprint", "m.safetensors", "--dtype", "f16,int4", "--dtype", "int8"])
                .unwrap();
        let Command::Footprint(f) = a.command else { panic!("not footprint") };
        assert_eq!(f.dtypes, [DType::Float16, DType::Int4, DType::Int8]);
        assert!(Args::try_parse_from(["quantlab", "cast", "i", "-o", "o", "--to", "int8"]).is_err());
        assert!(Args::try_parse_from(["quantlab", "info"]).is_err());
    }
}
