//! What this CPU can do for low-precision arithmetic, detected at run time:
//! the portable answer to `lscpu | grep bf16`.

use std::fmt;

/// One detected feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuFeature {
    /// The feature's name as the OS and compilers spell it.
    pub name: &'static str,
    /// What it gives quantization.
    pub meaning: &'static str,
    /// Whether this CPU has it.
    pub present: bool,
}

/// The report of [`cpu_features`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuFeatures {
    /// `x86_64`, `aarch64` or another architecture name.
    pub arch: &'static str,
    /// Who made the CPU: `GenuineIntel`, `AuthenticAMD` (x86 CPUID), an Arm
    /// implementer code such as `0x41` (Linux's `/proc/cpuinfo`), or `unknown`.
    pub vendor: String,
    /// The CPU's model name (x86 CPUID brand string, or Arm's part number), or `unknown`.
    pub model: String,
    /// The features checked, with their answers.
    pub features: Vec<CpuFeature>,
    /// The kernel path quantlab uses on this CPU.
    pub kernel: &'static str,
}

impl CpuFeatures {
    /// Whether the named feature is present (false when it was not checked).
    pub fn has(&self, name: &str) -> bool {
        self.features.iter().any(|f| f.name == name && f.present)
    }

    /// True when the CPU computes with bfloat16 natively (avx512bf16, amx-bf16 or Arm's bf16).
    pub fn has_bf16(&self) -> bool {
        ["avx512bf16", "amx-bf16", "bf16"].iter().any(|n| self.has(n))
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CPU architecture: {} (quantlab kernel: {})", self.arch, self.kernel)?;
        writeln!(f, "CPU model: {} ({})", self.model, self.vendor)?;
        writeln!(f, "kernel choice: {}", crate::arch::kernel_detail())?;
        for feat in &self.features {
            writeln!(f, "  [{}] {:<11} {}", if feat.present { "x" } else { " " }, feat.name, feat.meaning)?;
        }
        write!(
            f,
            "bfloat16 arithmetic: {}",
            if self.has_bf16() {
                "yes"
            } else {
                "no (bf16 still works as a storage type, converted to f32 to compute)"
            }
        )
    }
}

/// Detects the CPU features that matter for low precision.
///
/// x86_64: f16c, avx2, avx512f, avx512bw, avx512dq, avx512bf16, avx512fp16, amx-bf16;
/// aarch64: neon, fp16, bf16, dotprod, i8mm, sve.
///
/// ```
/// let cpu = quantlab::cpu_features();
/// println!("{cpu}");
/// assert!(!cpu.features.is_empty() || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")));
/// ```
pub fn cpu_features() -> CpuFeatures {
    let (vendor, model) = identify();
    CpuFeatures { arch: std::env::consts::ARCH, vendor, model, features: detect(), kernel: crate::arch::kernel() }
}

/// The vendor and model strings CPUID reports (leaf 0 and the brand string
/// of leaves 0x8000_0002..=4).
#[cfg(target_arch = "x86_64")]
fn identify() -> (String, String) {
    use std::arch::x86_64::__cpuid;
    let text = |regs: &[u32]| {
        let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).filter(|&b| b != 0).collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    let leaf0 = __cpuid(0);
    let vendor = text(&[leaf0.ebx, leaf0.edx, leaf0.ecx]);
    let model = if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
        let regs: Vec<u32> = (0x8000_0002..=0x8000_0004u32)
            .flat_map(|leaf| {
                let r = __cpuid(leaf);
                [r.eax, r.ebx, r.ecx, r.edx]
            })
            .collect();
        text(&regs)
    } else {
        String::new()
    };
    let or_unknown = |s: String| if s.is_empty() { "unknown".to_string() } else { s };
    (or_unknown(vendor), or_unknown(model))
}

/// The implementer and part codes Linux reports in `/proc/cpuinfo` (Arm
/// CPUs have no brand string), or `unknown`.
#[cfg(not(target_arch = "x86_64"))]
fn identify() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string())
    };
    let model = match field("model name") {
        m if m != "unknown" => m,
        _ => format!("part {}", field("CPU part")),
    };
    (field("CPU implementer"), model)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Vec<CpuFeature> {
    let feat = |name, meaning, present| CpuFeature { name, meaning, present };
    vec![
        feat("f16c", "f32 <-> f16 conversion in hardware", std::arch::is_x86_feature_detected!("f16c")),
        feat("avx2", "256-bit integer and float vectors", std::arch::is_x86_feature_detected!("avx2")),
        feat("avx512f", "512-bit vectors", std::arch::is_x86_feature_detected!("avx512f")),
        feat("avx512bw", "512-bit byte and word integer vectors", std::arch::is_x86_feature_detected!("avx512bw")),
        feat(
            "avx512dq",
            "512-bit vreduceps (the int8 kernels' tie check)",
            std::arch::is_x86_feature_detected!("avx512dq"),
        ),
        feat(
            "avx512bf16",
            "bf16 dot products and f32 -> bf16 conversion",
            std::arch::is_x86_feature_detected!("avx512bf16"),
        ),
        feat("avx512fp16", "f16 arithmetic", std::arch::is_x86_feature_detected!("avx512fp16")),
        feat("amx-bf16", "bf16 matrix tiles (AMX)", amx_bf16()),
    ]
}

/// AMX-BF16 is CPUID leaf 7, EDX bit 22 (Intel SDM). std's detection of it is
/// not stable, so ask CPUID; the OS must also enable the tile state, which
/// Linux does on request, so this reports the CPU's capability.
#[cfg(target_arch = "x86_64")]
fn amx_bf16() -> bool {
    let max_leaf = std::arch::x86_64::__cpuid(0).eax;
    max_leaf >= 7 && std::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 22) != 0
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Vec<CpuFeature> {
    let feat = |name, meaning, present| CpuFeature { name, meaning, present };
    vec![
        feat("neon", "128-bit SIMD (always on AArch64)", std::arch::is_aarch64_feature_detected!("neon")),
        feat("fp16", "f16 arithmetic (FEAT_FP16)", std::arch::is_aarch64_feature_detected!("fp16")),
        feat("bf16", "bf16 dot products and conversion (FEAT_BF16)", std::arch::is_aarch64_feature_detected!("bf16")),
        feat(
            "dotprod",
            "int8 dot products SDOT/UDOT (FEAT_DotProd)",
            std::arch::is_aarch64_feature_detected!("dotprod"),
        ),
        feat("i8mm", "int8 matrix multiply SMMLA (FEAT_I8MM)", std::arch::is_aarch64_feature_detected!("i8mm")),
        feat("sve", "scalable vectors (FEAT_SVE)", std::arch::is_aarch64_feature_detected!("sve")),
    ]
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Vec<CpuFeature> {
    Vec::new()
}
