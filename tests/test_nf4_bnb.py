"""bitsandbytes reads the NF4 safetensors `quantlab quantize --format nf4` writes.

`QuantState.from_dict` (what `Params4bit.from_prequantized` and transformers' loader call) takes quantlab's
tensors for each weight, and `dequantize_4bit` of them gives the values bitsandbytes gets from its own
`quantize_4bit` of the same input, for blocksizes 64 and 256, with and without double quantization.
Needs torch and bitsandbytes 0.50 (tests/fixtures/requirements.txt, e.g. /opt/pyref) and cargo (or QUANTLAB_BIN
pointing at a built `quantlab`); skipped with a message without them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch", reason="needs torch (tests/fixtures/requirements.txt)")
bnb = pytest.importorskip("bitsandbytes", reason="needs bitsandbytes 0.50 (tests/fixtures/requirements.txt)")
st = pytest.importorskip("safetensors.torch")
import bitsandbytes.functional as bnbf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("blocksize,dq", [(64, False), (64, True), (256, False), (256, True)])
def test_bitsandbytes_loads_quantlab_nf4(quantlab, tmp_path, blocksize, dq):
    rng = np.random.default_rng(blocksize + dq)
    weights = {"layer.weight": (rng.standard_t(4, size=(48, 384)) * 0.03).astype(np.float32),
               "odd.weight": rng.standard_normal((7, 9)).astype(np.float32)}
    src = tmp_path / "in.safetensors"
    st.save_file({k: torch.from_numpy(v) for k, v in weights.items()}, src)
    out = tmp_path / "nf4.safetensors"
    flags = ["--block-size", str(blocksize)] + (["--double-quant"] if dq else [])
    r = subprocess.run([str(quantlab), "quantize", str(src), "-o", str(out), "--format", "nf4", *flags],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    state = st.load_file(out)
    for name, w in weights.items():
        items = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        qs = bnbf.QuantState.from_dict(items, device="cpu")
        assert (qs.blocksize, qs.nested, qs.quant_type, tuple(qs.shape)) == (blocksize, dq, "nf4", w.shape)
        got = bnbf.dequantize_4bit(state[name], qs)
        ref_packed, ref_qs = bnbf.quantize_4bit(torch.from_numpy(w), blocksize=blocksize, compress_statistics=dq,
                                                quant_type="nf4")
        assert torch.equal(state[name], ref_packed)
        assert torch.equal(got, bnbf.dequantize_4bit(ref_packed, ref_qs))
