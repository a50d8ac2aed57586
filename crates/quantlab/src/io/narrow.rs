//! How quantlab's narrow float types are stored in `.safetensors`, and read back.
//!
//! A type safetensors 0.8 names is stored as that type, with safetensors'
//! packing rule (F6 and F4 are bit streams, first value in the low bits, and
//! need a whole number of bytes). The others (float8_e4m3, float8_e3m4,
//! float8_e4m3b11fnuz), and F6/F4 tensors whose size is not a whole number of
//! bytes, are stored as `U8` codes, one per byte (as ml_dtypes holds them),
//! with the tensor's type named in the `quantlab.dtypes` metadata entry: a
//! JSON object from tensor name to type name, e.g. `{"w": "float8_e4m3"}`.
//! (It is not the `quantlab` entry, which holds `quantize`'s layout.)

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::Dtype;

use crate::dtype::DType;
use crate::error::{Error, Result};

/// The metadata entry naming the type of tensors stored as `U8` codes.
pub const DTYPES_KEY: &str = "quantlab.dtypes";

/// How a float tensor is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its safetensors type.
    pub dtype: Dtype,
    /// True when stored as `U8` codes, one per byte, named in [`DTYPES_KEY`].
    pub codes: bool,
}

/// How `numel` values of the float type `d` are stored; `None` for integers.
pub fn float_storage(d: DType, numel: usize) -> Option<Stored> {
    let native = |dtype| Some(Stored { dtype, codes: false });
    let whole_bytes = (numel * d.bits() as usize).is_multiple_of(8);
    match d {
        DType::Float64 => native(Dtype::F64),
        DType::Float32 => native(Dtype::F32),
        DType::Float16 => native(Dtype::F16),
        DType::BFloat16 => native(Dtype::BF16),
        DType::Float8E4M3Fn => native(Dtype::F8_E4M3),
        DType::Float8E5M2 => native(Dtype::F8_E5M2),
        DType::Float8E4M3Fnuz => native(Dtype::F8_E4M3FNUZ),
        DType::Float8E5M2Fnuz => native(Dtype::F8_E5M2FNUZ),
        DType::Float8E8M0Fnu => native(Dtype::F8_E8M0),
        DType::Float6E2M3Fn if whole_bytes => native(Dtype::F6_E2M3),
        DType::Float6E3M2Fn if whole_bytes => native(Dtype::F6_E3M2),
        DType::Float4E2M1Fn if whole_bytes => native(Dtype::F4),
        d if d.is_float() => Some(Stored { dtype: Dtype::U8, codes: true }),
        _ => None,
    }
}

/// The quantlab type of a safetensors type quantlab reads through its narrow
/// float model (the common ones, F16 … F8_E5M2, are read directly).
pub fn narrow_of(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F8_E4M3FNUZ => DType::Float8E4M3Fnuz,
        Dtype::F8_E5M2FNUZ => DType::Float8E5M2Fnuz,
        Dtype::F8_E8M0 => DType::Float8E8M0Fnu,
        Dtype::F6_E2M3 => DType::Float6E2M3Fn,
        Dtype::F6_E3M2 => DType::Float6E3M2Fn,
        Dtype::F4 => DType::Float4E2M1Fn,
        _ => return None,
    })
}

/// The values of `numel` elements of the narrow float `d` stored in `data`,
/// as `f32` (exact: every narrow value is an `f32`). `codes`: one code a byte.
pub fn decode(data: &[u8], d: DType, numel: usize, codes: bool) -> Result<Vec<f32>> {
    let model = d.minifloat().ok_or(Error::WrongDType {
        what: "decoding narrow float codes",
        dtype: d,
        hint: "use a float type narrower than float32",
    })?;
    if codes {
        if data.len() < numel {
            return Err(Error::ShortBuffer { got: data.len(), count: numel, bits: 8, needed: numel });
        }
        return Ok(data[..numel].iter().map(|&c| model.decode_f32(u16::from(c))).collect());
    }
    Ok(crate::cast::values_from_bytes(data, d, numel)?.into_iter().map(|v| v as f32).collect())
}

/// `bytes` as `cast_to_bytes` packs them, spread to one code a byte.
pub fn codes_per_byte(bytes: &[u8], d: DType, numel: usize) -> Result<Vec<u8>> {
    if d.is_sub_byte() { crate::pack::unpack_codes(bytes, d.bits(), numel) } else { Ok(bytes.to_vec()) }
}

/// The `quantlab.dtypes` entry of a file's metadata: tensor name to type.
pub fn named_dtypes(metadata: &HashMap<String, String>) -> Result<HashMap<String, DType>> {
    let Some(json) = metadata.get(DTYPES_KEY) else { return Ok(HashMap::new()) };
    let bad = |reason: String| Error::BadFile { path: format!("metadata `{DTYPES_KEY}`"), reason };
    let names: BTreeMap<String, String> = serde_json::from_str(json)
        .map_err(|e| bad(format!("not a JSON object of type names ({e}): rewrite the file with quantlab cast")))?;
    names.into_iter().map(|(tensor, dtype)| Ok((tensor, dtype.parse::<DType>()?))).collect()
}

/// The `quantlab.dtypes` entry for `named`, or `None` when there is nothing to name.
pub fn dtypes_json(named: &BTreeMap<String, DType>) -> Option<String> {
    let names: BTreeMap<&str, &str> = named.iter().map(|(t, d)| (t.as_str(), d.name())).collect();
    (!names.is_empty()).then(|| serde_json::to_string(&names).expect("a map of strings serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_follows_safetensors_where_it_can() {
        assert_eq!(float_storage(DType::Float4E2M1Fn, 4), Some(Stored { dtype: Dtype::F4, codes: false }));
        assert_eq!(float_storage(DType::Float4E2M1Fn, 3), Some(Stored { dtype: Dtype::U8, codes: true }));
        assert_eq!(float_storage(DType::Float6E3M2Fn, 8), Some(Stored { dtype: Dtype::F6_E3M2, codes: false }));
        assert_eq!(float_storage(DType::Float6E3M2Fn, 6), Some(Stored { dtype: Dtype::U8, codes: true }));
        assert_eq!(float_storage(DType::Float8E8M0Fnu, 1), Some(Stored { dtype: Dtype::F8_E8M0, codes: false }));
        assert_eq!(float_storage(DType::Float8E3M4, 1), Some(Stored { dtype: Dtype::U8, codes: true }));
        assert_eq!(float_storage(DType::Int4, 2), None);
        for d in [Dtype::F4, Dtype::F6_E2M3, Dtype::F6_E3M2, Dtype::F8_E8M0, Dtype::F8_E4M3FNUZ, Dtype::F8_E5M2FNUZ] {
            let q = narrow_of(d).unwrap();
            assert_eq!(float_storage(q, 8).unwrap().dtype, d);
        }
    }

    #[test]
    fn decode_packed_and_codes() {
        // float4 1.0, -2.0, 3.0, 0.5: low nibble first.
        assert_eq!(decode(&[0xc2, 0x15], DType::Float4E2M1Fn, 4, false).unwrap(), [1.0, -2.0, 3.0, 0.5]);
        assert_eq!(decode(&[0x2, 0xc, 0x5], DType::Float4E2M1Fn, 3, true).unwrap(), [1.0, -2.0, 3.0]);
        assert!(decode(&[0x2], DType::Float4E2M1Fn, 3, true).is_err());
        let named = BTreeMap::from([("w".to_string(), DType::Float8E4M3)]);
        let json = dtypes_json(&named).unwrap();
        assert_eq!(json, r#"{"w":"float8_e4m3"}"#);
        let back = named_dtypes(&HashMap::from([(DTYPES_KEY.to_string(), json)])).unwrap();
        assert_eq!(back["w"], DType::Float8E4M3);
        assert!(named_dtypes(&HashMap::from([(DTYPES_KEY.to_string(), "[1]".to_string())])).is_err());
    }
}
