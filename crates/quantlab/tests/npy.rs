//! Every bad `.npy` is one line: the header mutated byte by byte and the file
//! cut at every length give either a tensor or an error without a newline,
//! a control character or a panic.

use std::path::{Path, PathBuf};

use quantlab::io::Input;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// Bytes that mean something to the header's parser, or to nobody.
const REPLACEMENTS: [u8; 10] = [0, b'\n', b' ', b'{', b'(', b')', b'\'', b',', b'9', 0xff];

/// Opens `bytes` as a file and reads its tensors; the error's text, if any.
fn read(dir: &Path, bytes: &[u8]) -> Option<String> {
    let path = dir.join("m.npy");
    std::fs::write(&path, bytes).unwrap();
    let input = Input::open(&path).unwrap();
    input.tensors().err().map(|e| e.to_string())
}

fn assert_one_line(what: &str, e: &str) {
    assert!(!e.contains('\n') && !e.chars().any(char::is_control), "{what}: not one printable line: {e:?}");
    assert!(e.len() < 400, "{what}: {} characters: {e}", e.len());
    assert!(e.contains("m.npy: "), "{what}: the file is not named: {e}");
}

#[test]
fn mutated_and_truncated_headers_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut failures, mut multi_line_before) = (0, 0);
    for name in ["vector.npy", "odd.npy", "big.npy"] {
        let good = std::fs::read(fixture(name)).unwrap();
        assert_eq!(read(dir.path(), &good), None, "{name} itself reads");
        let header_len = 10 + u16::from_le_bytes([good[8], good[9]]) as usize;
        for len in 6..good.len() {
            if let Some(e) = read(dir.path(), &good[..len]) {
                assert_one_line(&format!("{name} cut to {len} bytes"), &e);
                failures += 1;
            }
        }
        for at in 6..header_len {
            for &b in &REPLACEMENTS {
                let mut bad = good.clone();
                if bad[at] == b {
                    continue;
                }
                bad[at] = b;
                if let Some(e) = read(dir.path(), &bad) {
                    assert_one_line(&format!("{name} byte {at} = {b:#04x}"), &e);
                    failures += 1;
                    // ndarray-npy's own message, which quantlab used to print as it was.
                    multi_line_before += usize::from(
                        ndarray_npy::ReadNpyExt::read_npy(&bad[..])
                            .map(|_: ndarray::ArrayD<f32>| ())
                            .is_err_and(|e: ndarray_npy::ReadNpyError| e.to_string().contains('\n')),
                    );
                }
            }
        }
    }
    // The loop did meet bad files, and some of them are the multi-line kind.
    assert!(failures > 500, "only {failures} bad files");
    assert!(multi_line_before > 0, "no mutation gave ndarray-npy a multi-line message");
}
