//! `.npy` files (NumPy's one-array format), read with `ndarray-npy`.
//!
//! A tensor is viewed in place when it is row-major, native-endian and
//! aligned, and read into memory otherwise. Every problem becomes one
//! [`Error::BadFile`] line: ndarray-npy's own messages quote the header they
//! could not parse, newlines and control characters included, so they are
//! flattened and shortened here.

use std::borrow::Cow;
use std::fmt::Display;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD};
use ndarray_npy::{ReadNpyExt, ViewNpyError, ViewNpyExt};
use safetensors::tensor::Dtype;

use super::Tensor;
use crate::error::{Error, Result};

/// The first bytes of every `.npy` file.
pub const MAGIC: &[u8] = b"\x93NUMPY";

/// The longest detail kept from a parser's message: enough to recognise the
/// problem, short enough for one terminal line.
const DETAIL_MAX: usize = 160;

/// A parser's message as one short printable line: whitespace runs become one
/// space, control characters are escaped, and the tail is cut.
fn one_line(e: impl Display) -> String {
    let text = e.to_string();
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    if out.chars().count() > DETAIL_MAX {
        out = out.chars().take(DETAIL_MAX).collect::<String>() + "...";
    }
    out
}

fn corrupt(path: &Path, e: impl Display) -> Error {
    Error::BadFile {
        path: path.display().to_string(),
        reason: format!("not a valid .npy file (truncated or corrupt?): {}", one_line(e)),
    }
}

/// Little-endian bytes of the element types a `.npy` file can hold.
trait NpyBytes: Copy {
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! npy_bytes {
    ($($t:ty),*) => {$(
        impl NpyBytes for $t {
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
npy_bytes!(f32, f64, i8, u8, i16, u16, i32, u32, i64, u64);

impl NpyBytes for bool {
    fn extend_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
}

/// The one tensor of the `.npy` file `buf` (read from `path`), named `name`.
pub(super) fn tensor<'a>(path: &Path, name: String, buf: &'a [u8]) -> Result<Tensor<'a>> {
    fn owned<T: NpyBytes>(name: String, dtype: Dtype, a: ArrayViewD<'_, T>) -> Tensor<'static> {
        let mut data = Vec::with_capacity(a.len() * size_of::<T>());
        a.iter().for_each(|v| v.extend_le(&mut data));
        Tensor { name, dtype, shape: a.shape().to_vec(), data: Cow::Owned(data), stored_as: None }
    }
    let mut descriptor: Option<String> = None;
    macro_rules! try_type {
        ($t:ty, $dtype:expr) => {
            match ArrayViewD::<$t>::view_npy(buf) {
                Ok(view) if view.is_standard_layout() => {
                    // `view_npy` checked that the data are the last bytes of the file.
                    let nbytes = view.len() * size_of::<$t>();
                    let data = Cow::Borrowed(&buf[buf.len() - nbytes..]);
                    return Ok(Tensor { name, dtype: $dtype, shape: view.shape().to_vec(), data, stored_as: None });
                }
                Ok(view) => return Ok(owned(name, $dtype, view)),
                Err(ViewNpyError::WrongDescriptor(d)) => {
                    descriptor.get_or_insert_with(|| d.to_string());
                }
                Err(ViewNpyError::NonNativeEndian | ViewNpyError::MisalignedData) => {
                    let a = ArrayD::<$t>::read_npy(buf).map_err(|e| corrupt(path, e))?;
                    return Ok(owned(name, $dtype, a.view()));
                }
                Err(e) => return Err(corrupt(path, e)),
            }
        };
    }
    try_type!(f32, Dtype::F32);
    try_type!(f64, Dtype::F64);
    try_type!(i8, Dtype::I8);
    try_type!(u8, Dtype::U8);
    try_type!(i16, Dtype::I16);
    try_type!(u16, Dtype::U16);
    try_type!(i32, Dtype::I32);
    try_type!(u32, Dtype::U32);
    try_type!(i64, Dtype::I64);
    try_type!(u64, Dtype::U64);
    try_type!(bool, Dtype::BOOL);
    let descriptor = one_line(descriptor.unwrap_or_default());
    Err(Error::BadFile {
        path: path.display().to_string(),
        reason: format!(
            "a .npy file of element type {descriptor} is not supported: save it as float32 or float64 \
             (numpy's float16 and ml_dtypes' bfloat16 are not readable by ndarray-npy; use .safetensors for those)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_one_short_printable_line() {
        assert_eq!(one_line("bad header:\n  {'descr': '<f4',\r\n}"), "bad header: {'descr': '<f4', }");
        assert_eq!(one_line("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        let long = one_line("x".repeat(500));
        assert_eq!(long.chars().count(), DETAIL_MAX + 3);
        assert!(long.ends_with("..."));
    }
}
