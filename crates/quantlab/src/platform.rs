//! Lesson objective 1: which data types PyTorch, TensorFlow Lite and Arm support.
//!
//! The table is knowledge, not detection: it records what each platform's
//! documentation says (PyTorch 2.5+, LiteRT/TensorFlow Lite 2.16+, Armv8/Armv9
//! A-profile). For what *this* CPU has, see [`crate::cpu_features`].

use std::fmt;

use crate::dtype::DType;

/// How well a platform supports a data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// A first-class type: tensors, arithmetic and kernels.
    Yes,
    /// Usable with limits, which the note says.
    Partial(&'static str),
    /// Not supported.
    No,
}

impl Support {
    /// A short mark for tables: `yes`, `partial` or `-`.
    pub fn mark(self) -> &'static str {
        match self {
            Support::Yes => "yes",
            Support::Partial(_) => "partial",
            Support::No => "-",
        }
    }
}

/// One row of the support table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformSupport {
    /// The data type.
    pub dtype: DType,
    /// PyTorch (CPU and CUDA builds).
    pub pytorch: Support,
    /// TensorFlow Lite / LiteRT.
    pub tflite: Support,
    /// Arm A-profile CPUs (NEON/SVE and their extensions).
    pub arm: Support,
}

use Support::{No, Partial, Yes};

/// The support table, one row per data type in [`DType::ALL`] order.
pub const PLATFORM_SUPPORT: [PlatformSupport; 37] = [
    row(DType::UInt8, Yes, Partial("legacy uint8 quantization; int8 preferred"), Yes),
    row(DType::Int8, Yes, Yes, Partial("SDOT/UDOT with FEAT_DotProd, SMMLA with FEAT_I8MM")),
    row(DType::Int16, Yes, Partial("16x8 quantization: int16 activations, int8 weights"), Yes),
    row(DType::Int32, Yes, Yes, Yes),
    row(DType::Int64, Yes, Partial("indices and shapes only"), Yes),
    row(DType::UInt16, Partial("limited ops since 2.3"), Partial("a few ops"), Yes),
    row(DType::UInt32, Partial("limited ops since 2.3"), Partial("a few ops"), Yes),
    row(DType::UInt64, Partial("limited ops since 2.3"), Partial("a few ops"), Yes),
    row(DType::Float64, Yes, Partial("a few ops"), Yes),
    row(DType::Float32, Yes, Yes, Yes),
    row(
        DType::Float16,
        Yes,
        Partial("float16 weight quantization; GPU delegate"),
        Partial("arithmetic with FEAT_FP16; conversion always"),
    ),
    row(
        DType::BFloat16,
        Yes,
        Partial("storage type; few kernels"),
        Partial("BFDOT/BFMMLA and conversion with FEAT_BF16"),
    ),
    row(
        DType::Float8E4M3Fn,
        Partial("storage and scaled matmul (torch._scaled_mm)"),
        No,
        Partial("FEAT_FP8 (Armv9.5-A) only"),
    ),
    row(
        DType::Float8E5M2,
        Partial("storage and scaled matmul (torch._scaled_mm)"),
        No,
        Partial("FEAT_FP8 (Armv9.5-A) only"),
    ),
    row(
        DType::Int4,
        Partial("torch.int4 shell dtype; kernels via torchao"),
        Partial("int4 weights for some ops"),
        Partial("no lanes: unpack to int8, then SDOT"),
    ),
    row(
        DType::UInt4,
        Partial("torch.uint4 shell dtype; kernels via torchao"),
        No,
        Partial("no lanes: unpack to int8, then UDOT"),
    ),
    row(DType::Int2, Partial("torch.int2 shell dtype only"), No, No),
    row(DType::UInt2, Partial("torch.uint2 shell dtype only"), No, No),
    row(DType::Float8E4M3Fnuz, Partial("storage and scaled matmul on AMD MI300 (ROCm)"), No, No),
    row(DType::Float8E5M2Fnuz, Partial("storage and scaled matmul on AMD MI300 (ROCm)"), No, No),
    row(DType::Float8E4M3, No, No, No),
    row(DType::Float8E3M4, No, No, No),
    row(DType::Float8E4M3B11Fnuz, No, No, No),
    row(DType::Float8E8M0Fnu, Partial("storage type: the MX block scale (torchao MXFP8/6/4)"), No, No),
    row(DType::Float6E2M3Fn, No, No, No),
    row(DType::Float6E3M2Fn, No, No, No),
    row(DType::Float4E2M1Fn, Partial("storage only, as float4_e2m1fn_x2 (MXFP4/NVFP4 via torchao)"), No, No),
    row(DType::Int1, Partial("torch.int1 shell dtype only"), No, No),
    row(DType::UInt1, Partial("torch.uint1 shell dtype only"), No, No),
    row(DType::Int3, Partial("torch.int3 shell dtype only"), No, No),
    row(DType::Int5, Partial("torch.int5 shell dtype only"), No, No),
    row(DType::Int6, Partial("torch.int6 shell dtype only"), No, No),
    row(DType::Int7, Partial("torch.int7 shell dtype only"), No, No),
    row(DType::UInt3, Partial("torch.uint3 shell dtype; torchao uintx kernels"), No, No),
    row(DType::UInt5, Partial("torch.uint5 shell dtype; torchao uintx kernels"), No, No),
    row(DType::UInt6, Partial("torch.uint6 shell dtype; torchao uintx kernels"), No, No),
    row(DType::UInt7, Partial("torch.uint7 shell dtype; torchao uintx kernels"), No, No),
];

const fn row(dtype: DType, pytorch: Support, tflite: Support, arm: Support) -> PlatformSupport {
    PlatformSupport { dtype, pytorch, tflite, arm }
}

/// The support row of one data type.
pub fn platform_support(dtype: DType) -> PlatformSupport {
    PLATFORM_SUPPORT[DType::ALL.iter().position(|&d| d == dtype).expect("every type has a row")]
}

/// The whole table, printable: one line per type, then the notes.
///
/// ```
/// let table = quantlab::support_table().to_string();
/// assert!(table.contains("bfloat16"));
/// assert!(table.lines().next().unwrap().starts_with("dtype"));
/// ```
pub fn support_table() -> SupportTable {
    SupportTable
}

/// The printable support table (see [`support_table`]).
#[derive(Debug, Clone, Copy)]
pub struct SupportTable;

impl fmt::Display for SupportTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:>4}  {:<8} {:<8} {:<8}", "dtype", "bits", "PyTorch", "TFLite", "Arm")?;
        let mut notes = Vec::new();
        for r in PLATFORM_SUPPORT {
            writeln!(
                f,
                "{:<18} {:>4}  {:<8} {:<8} {:<8}",
                r.dtype.name(),
                r.dtype.bits(),
                r.pytorch.mark(),
                r.tflite.mark(),
                r.arm.mark()
            )?;
            for (who, s) in [("PyTorch", r.pytorch), ("TFLite", r.tflite), ("Arm", r.arm)] {
                if let Partial(note) = s {
                    notes.push(format!("{} on {who}: {note}", r.dtype));
                }
            }
        }
        writeln!(f, "\nnotes:")?;
        for n in notes {
            writeln!(f, "  {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_dtype_order() {
        for (r, d) in PLATFORM_SUPPORT.iter().zip(DType::ALL) {
            assert_eq!(r.dtype, d);
        }
        assert_eq!(platform_support(DType::Float32).tflite, Yes);
        assert_eq!(platform_support(DType::Float8E5M2).tflite, No);
        assert!(matches!(platform_support(DType::Float8E8M0Fnu).pytorch, Partial(n) if n.contains("MX")));
        let table = support_table().to_string();
        for d in DType::ALL {
            assert!(table.lines().any(|l| l.split_whitespace().next() == Some(d.name())), "{d} missing");
        }
    }
}
