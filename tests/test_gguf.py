"""gguf-py reads the GGUF files `quantlab quantize --format F -o OUT.gguf` writes.

For every block type gguf-py 0.19 can quantize (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4), each tensor's bytes equal
`gguf.quants.quantize`'s; for the K-quants (which gguf-py only dequantizes) gguf-py's dequantization of our blocks
equals `quantlab dequantize`'s. Tensors a block format cannot take are F32. Needs gguf (requirements-dev.txt) and
cargo (or QUANTLAB_BIN pointing at a built `quantlab`).
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
gguf = pytest.importorskip("gguf")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(7)
    w = (rng.standard_t(3, size=(4, 512)) * 0.02).astype(np.float32)
    w[1, 3] = 1.5  # an outlier
    w[2, 32:64] = 0.0  # an all-zero block
    path = tmp_path_factory.mktemp("in") / "w.npy"
    np.save(path, w)
    return path, w


def run(quantlab: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(quantlab), *map(str, args)], capture_output=True, text=True)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] == "F32", name
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(info["shape"])
    return out


@pytest.mark.parametrize("fmt,qtype", [("q8_0", "Q8_0"), ("q4_0", "Q4_0"), ("q4_1", "Q4_1"), ("q5_0", "Q5_0"),
                                       ("q5_1", "Q5_1"), ("mxfp4", "MXFP4")])
def test_block_bytes_equal_gguf_py_quantize(quantlab, weights, tmp_path, fmt, qtype):
    src, w = weights
    out = tmp_path / "w.gguf"
    r = run(quantlab, "quantize", src, "-o", out, "--format", fmt)
    assert r.returncode == 0, r.stderr
    reader = gguf.GGUFReader(str(out))
    (t,) = reader.tensors
    assert t.name == "w"
    assert t.tensor_type == getattr(gguf.GGMLQuantizationType, qtype)
    assert [int(d) for d in reversed(t.shape)] == [4, 512]
    want = gguf.quants.quantize(w, t.tensor_type)
    assert np.array_equal(np.asarray(t.data).view(np.uint8).reshape(-1), want.reshape(-1))
    assert int(reader.fields["general.alignment"].parts[-1][0]) == 32


@pytest.mark.parametrize("fmt,qtype", [("q4_k", "Q4_K"), ("q6_k", "Q6_K")])
def test_k_quants_decode_in_gguf_py_to_quantlabs_values(quantlab, weights, tmp_path, fmt, qtype):
    src, w = weights
    out = tmp_path / "w.gguf"
    assert run(quantlab, "quantize", src, "-o", out, "--format", fmt).returncode == 0
    (t,) = gguf.GGUFReader(str(out)).tensors
    assert t.tensor_type == getattr(gguf.GGMLQuantizationType, qtype)
    theirs = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(4, 512)
    back = tmp_path / "back.safetensors"
    r = run(quantlab, "dequantize", out, "-o", back)
    assert r.returncode == 0, r.stderr
    ours = read_safetensors(back)["w"]
    assert np.array_equal(theirs.view(np.uint32), ours.view(np.uint32))
    # and it is a quantization of w, not noise
    assert np.abs(ours - w).max() < 0.1 * np.abs(w).max()


def test_tensors_a_block_cannot_take_are_f32(quantlab, tmp_path):
    # A 1-D tensor is kept by the default selection (norms, biases), a 2-D one whose rows are not
    # whole blocks because the format cannot take it; both go into the GGUF as F32, as llama.cpp's
    # converter stores them, and the CLI says why.
    for name, x, said in [
        ("bias", np.linspace(-1, 1, 7, dtype=np.float32), "fewer than 2 dimensions"),
        ("odd", np.linspace(-1, 1, 21, dtype=np.float32).reshape(3, 7), "rows are not whole blocks"),
    ]:
        src = tmp_path / f"{name}.npy"
        np.save(src, x)
        out = tmp_path / f"{name}.gguf"
        r = run(quantlab, "quantize", src, "-o", out, "--format", "q8_0")
        assert r.returncode == 0, r.stderr
        assert said in r.stdout and name in r.stdout, r.stdout
        if x.ndim == 2:
            assert "stored as F32" in r.stderr and name in r.stderr, r.stderr
        (t,) = gguf.GGUFReader(str(out)).tensors
        assert t.tensor_type == gguf.GGMLQuantizationType.F32
        assert np.array_equal(np.asarray(t.data).reshape(-1), x.reshape(-1))


def test_bad_input_is_one_line_exit_2_and_no_output(quantlab, tmp_path):
    src = tmp_path / "nan.npy"
    x = np.ones((2, 64), dtype=np.float32)
    x[1, 5] = np.nan
    np.save(src, x)
    out = tmp_path / "nan.gguf"
    r = run(quantlab, "quantize", src, "-o", out, "--format", "q4_0")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "NaN" in r.stderr, r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    r = run(quantlab, "quantize", src, "-o", out, "--format", "q3_xs")
    assert r.returncode == 2 and "q3_xs" in r.stderr and len(r.stderr.strip().splitlines()) == 1
