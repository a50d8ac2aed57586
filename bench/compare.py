#!/usr/bin/env python3
"""quantlab against PyTorch, numpy and ml_dtypes, side by side, in one run.

    /opt/pyref/bin/python bench/compare.py            # N = 2^24 and 2^16
    /opt/pyref/bin/python bench/compare.py --n 65536  # one size
    /opt/pyref/bin/python bench/compare.py --runs 5   # five rounds, then medians and spread
    /opt/pyref/bin/python bench/compare.py --exe old/quantlab  # another build, not rebuilt

Our side is `quantlab bench --json --n N` (release build, built first); the
peers run the same operations here, single-threaded, timed the same way:
best of at least 5 runs, repeated until half a second has passed. Prints a
table of elements per second with the ratios, and checks the targets of the
performance issue: at 2^16 (in cache) and 2^24 (out of cache). Speed only
means something on an otherwise idle machine; with `--runs R` every round
runs both sides again (interleaved), and the summary gives each ratio's
median and range over the rounds, the targets judged on the median.

The block formats are compared with the references quantlab matches byte
for byte: gguf-py's numpy `gguf.quants.quantize` / `dequantize` (Q8_0, Q4_0,
MXFP4), bitsandbytes' CPU `quantize_4bit` / `dequantize_4bit` (NF4, blocks of
64), torchao's `to_mx` / `to_dtype` (MXFP4, MXFP8) and `nvfp4_quantize` (with
its per-tensor scale, amax included, as quantlab's default computes it), all
on rows of 128 values; and MXFP4's quantize time against int8 per-tensor's.

Casts are compared twice. As the issue states them, every side returns a new
array (`astype`, `.to`, `cast`), so every side also pays the operating system
for zeroing a fresh output's pages. Then like for like without that cost:
every side writes into one preallocated output (`np.copyto`, `Tensor.copy_`,
`quantlab bench --reuse-output`, which uses `cast_into`). The difference
between each side's two numbers is that page cost, printed for both.

Then the matrix-vector product (`--gemv-size`, 4096 by default, repeatable;
`--gemv-only` skips everything else): the same SIZE x SIZE weight as
`quantlab bench` (its seeded values, regenerated here) times one vector, in
PyTorch's dynamic quantized Linear (`torch.ao.nn.quantized.dynamic.Linear`,
qint8 weights per output channel, fbgemm, activations quantized to uint8 per
tensor inside each call) against quantlab's int8 weight x int8 activations
(x quantized to Q8_0 inside each call) and int8 weight x f32; and f32
`torch.mv` against quantlab's f32 rows. Times in ms, ratios peer / ours.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# One thread for every peer: torch.set_num_threads(1) does not reach the
# OpenMP loops of bitsandbytes' CPU kernels (its dequantize_4bit ran on both
# cores here without this).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import ml_dtypes
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MIN_REPS, MIN_TIME = 5, 0.5


def best(f):
    """Shortest time of at least MIN_REPS calls, going on until MIN_TIME passed."""
    start, best_t, reps = time.perf_counter(), float("inf"), 0
    while reps < MIN_REPS or (time.perf_counter() - start < MIN_TIME and reps < 10_000):
        t = time.perf_counter()
        f()
        best_t = min(best_t, time.perf_counter() - t)
        reps += 1
    return best_t


def data(n):
    """Near-normal values, like `quantlab bench` uses (sum of three uniforms)."""
    rng = np.random.default_rng(0)
    return (rng.uniform(-1, 1, n) + rng.uniform(-1, 1, n) + rng.uniform(-1, 1, n)).astype(np.float32)


def peers(n):
    """Elements per second of each peer operation on N f32 values."""
    torch.set_num_threads(1)
    x = data(n)
    t = torch.from_numpy(x)
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (hi - lo) / 255.0
    zero_point = int(round(-128 - lo / scale))
    q = torch.quantize_per_tensor(t, scale, zero_point, torch.qint8)
    dst = np.empty_like(x)
    bf, hf = np.empty(n, ml_dtypes.bfloat16), np.empty(n, np.float16)
    tbf, thf = torch.empty(n, dtype=torch.bfloat16), torch.empty(n, dtype=torch.float16)
    ops = {
        "numpy copy": lambda: np.copyto(dst, x),
        "torch quantize_per_tensor": lambda: torch.quantize_per_tensor(t, scale, zero_point, torch.qint8),
        "torch dequantize": lambda: q.dequantize(),
        "torch .to(bfloat16)": lambda: t.to(torch.bfloat16),
        "ml_dtypes astype(bfloat16)": lambda: x.astype(ml_dtypes.bfloat16),
        "torch .to(float16)": lambda: t.to(torch.float16),
        "numpy astype(float16)": lambda: x.astype(np.float16),
        "torch bf16 .copy_": lambda: tbf.copy_(t),
        "ml_dtypes copyto(bfloat16)": lambda: np.copyto(bf, x, casting="unsafe"),
        "torch f16 .copy_": lambda: thf.copy_(t),
        "numpy copyto(float16)": lambda: np.copyto(hf, x, casting="unsafe"),
        "torch .to(float8_e4m3fn)": lambda: t.to(torch.float8_e4m3fn),
        "ml_dtypes astype(e4m3fn)": lambda: x.astype(ml_dtypes.float8_e4m3fn),
    }
    return {name: n / best(f) for name, f in ops.items()}


def format_peers(n):
    """Elements per second of the block-format references on N f32 values."""
    import bitsandbytes.functional as bnbf
    import gguf
    from gguf import GGMLQuantizationType as T
    from torchao.prototype.mx_formats.mx_tensor import to_dtype, to_mx
    from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize, per_tensor_amax_to_scale

    torch.set_num_threads(1)
    x = data(n).reshape(-1, 128)
    t = torch.from_numpy(x)
    ops = {}
    for name in ["Q8_0", "Q4_0", "MXFP4"]:
        kind = getattr(T, name)
        q = gguf.quants.quantize(x, kind)
        ops[f"gguf-py quantize {name}"] = lambda kind=kind: gguf.quants.quantize(x, kind)
        ops[f"gguf-py dequantize {name}"] = lambda q=q, kind=kind: gguf.quants.dequantize(q, kind)
    flat = t.reshape(-1)
    packed, state = bnbf.quantize_4bit(flat, blocksize=64, quant_type="nf4")
    ops["bitsandbytes quantize_4bit nf4"] = lambda: bnbf.quantize_4bit(flat, blocksize=64, quant_type="nf4")
    ops["bitsandbytes dequantize_4bit nf4"] = lambda: bnbf.dequantize_4bit(packed, state, quant_type="nf4")
    for name, elem in [("mxfp4", torch.float4_e2m1fn_x2), ("mxfp8_e4m3", torch.float8_e4m3fn)]:
        scale, codes = to_mx(t, elem, 32)
        ops[f"torchao to_mx {name}"] = lambda elem=elem: to_mx(t, elem, 32)
        ops[f"torchao to_dtype {name}"] = lambda s=scale, c=codes, elem=elem: to_dtype(c, s, elem, 32, torch.float32)
    ops["torchao nvfp4_quantize"] = lambda: nvfp4_quantize(t, 16, per_tensor_amax_to_scale(t.abs().max()))
    return {name: n / best(f) for name, f in ops.items()}


# Block formats: (our op, peer op, target ratio by N); ratios are ours / peer.
FORMAT_ROWS = [
    ("quantize_q8_0", "gguf-py quantize Q8_0", {1 << 24: 20.0}),
    ("quantize_q4_0", "gguf-py quantize Q4_0", {1 << 24: 20.0}),
    ("quantize_gguf_mxfp4", "gguf-py quantize MXFP4", {1 << 24: 20.0}),
    ("quantize_nf4", "bitsandbytes quantize_4bit nf4", {1 << 24: 3.0}),
    ("quantize_mxfp4", "torchao to_mx mxfp4", {1 << 24: 5.0}),
    ("quantize_mxfp8_e4m3", "torchao to_mx mxfp8_e4m3", {1 << 24: 5.0}),
    ("quantize_nvfp4", "torchao nvfp4_quantize", {}),
    ("dequantize_q8_0", "gguf-py dequantize Q8_0", {}),
    ("dequantize_q4_0", "gguf-py dequantize Q4_0", {}),
    ("dequantize_gguf_mxfp4", "gguf-py dequantize MXFP4", {}),
    ("dequantize_nf4", "bitsandbytes dequantize_4bit nf4", {}),
    ("dequantize_mxfp4", "torchao to_dtype mxfp4", {}),
    ("dequantize_mxfp8_e4m3", "torchao to_dtype mxfp8_e4m3", {}),
]


EXE = None  # set by main: the quantlab binary to run


def ours(n, *flags):
    """`quantlab bench --json` for N, from a release build (or `--exe`)."""
    global EXE
    if EXE is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "quantlab-cli"], cwd=ROOT, check=True)
        EXE = ROOT / "target" / "release" / "quantlab"
    cmd = [str(EXE), "bench", "--json", "--n", str(n), *flags]
    return json.loads(subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout)


# Casts into a preallocated output, like for like: (our op, peer op, target).
REUSED_ROWS = [
    ("cast_bf16", "torch bf16 .copy_", {}),
    ("cast_bf16", "ml_dtypes copyto(bfloat16)", {1 << 24: 2.0}),
    ("cast_f16", "torch f16 .copy_", {}),
    ("cast_f16", "numpy copyto(float16)", {1 << 24: 5.0}),
]

# (our op, peer op, target ratio or None); ratios are ours / peer.
ROWS = [
    ("quantize_int8", "torch quantize_per_tensor", {1 << 24: 1.2, 1 << 16: 1.5}),
    ("dequantize_int8", "torch dequantize", {1 << 24: 4.0, 1 << 16: 2.0}),
    ("cast_bf16", "torch .to(bfloat16)", {1 << 24: 1.2}),
    ("cast_bf16", "ml_dtypes astype(bfloat16)", {1 << 24: 2.0}),
    ("cast_f16", "torch .to(float16)", {1 << 24: 1.5, 1 << 16: 1.5}),
    ("cast_f16", "numpy astype(float16)", {1 << 24: 5.0}),
    ("cast_e4m3fn", "torch .to(float8_e4m3fn)", {}),
    ("cast_e4m3fn", "ml_dtypes astype(e4m3fn)", {}),
]


def table(n, rows, ops, p, failures, label="", ratios=None):
    """Prints one comparison table; appends missed targets to `failures` and
    (when given) each row's (key, ratio, target) to `ratios`."""
    print(f"{'operation':<22} {'quantlab G/s':>12}  {'peer':<33} {'peer G/s':>9} {'ratio':>7} {'target':>7}")
    for op, peer, targets in rows:
        ratio = ops[op] / p[peer]
        target = targets.get(n)
        if ratios is not None:
            ratios.append((f"2^{n.bit_length() - 1} {op}{label} vs {peer}", ratio, target, ">="))
            ratios.append((f"2^{n.bit_length() - 1} {op}{label} G/s", ops[op] / 1e9, None, ">="))
            ratios.append((f"2^{n.bit_length() - 1} {peer} G/s", p[peer] / 1e9, None, ">="))
        mark = "" if target is None else (f">={target:g}" + (" ok" if ratio >= target else " MISS"))
        if target is not None and ratio < target:
            failures.append(f"{op}{label} vs {peer}: {ratio:.2f}x < {target}x")
        print(f"{op:<22} {ops[op] / 1e9:>12.3f}  {peer:<33} {p[peer] / 1e9:>9.3f} {ratio:>6.2f}x {mark:>7}")


def report(n, ratios):
    q = ours(n)
    reused = ours(n, "--reuse-output")["ops"]
    p = peers(n)
    ops = q["ops"]
    print(f"\nN = 2^{n.bit_length() - 1} ({n}) f32, one thread, {'in' if n <= 1 << 16 else 'out of'} cache; "
          f"quantlab kernel: {q.get('kernel_detail', q['kernel'])}")
    if "cpu" in q:
        c = q["cpu"]
        print(f"CPU: {c['model']} ({c['vendor']}); features: {' '.join(c['features'])}")
    failures = []
    table(n, ROWS, ops, p, failures, ratios=ratios)
    # The copy bound: copy moves 8 bytes per element, quantize 5 (4 read, 1 written).
    bound = ops["copy"] * 8 / 5
    frac = ops["quantize_int8"] / bound
    print(f"{'copy (Rust)':<18} {ops['copy'] / 1e9:>12.3f}  {'numpy copy':<28} {p['numpy copy'] / 1e9:>9.3f}")
    ratios.append((f"2^{n.bit_length() - 1} quantize_int8 / copy bound", frac, 0.9 if n == 1 << 24 else None, ">="))
    for op in ["quantize_int8", "dequantize_int8", "cast_bf16", "cast_f16"]:
        # Elements per second against copy's, both in the same run: how near
        # each kernel runs to this machine's memory (or, in cache, L2) limit.
        ratios.append((f"2^{n.bit_length() - 1} {op} / copy (elements/s)", ops[op] / ops["copy"], None, ">="))
    g = ops["quantize_int4_g128"] / ops["quantize_int8"]
    ratios.append((f"2^{n.bit_length() - 1} int4 g128 time / int8 time", 1 / g, 1.5 if n == 1 << 24 else None, "<="))
    if n == 1 << 24:
        ok = frac >= 0.9
        print(f"quantize_int8 is {frac:.2f} of the copy-bandwidth bound for 5 B/element (target >=0.9{' ok' if ok else ' MISS'})")
        if not ok:
            failures.append(f"quantize_int8 at {frac:.2f} of the copy bound")
        ok = g >= 1 / 1.5
        print(f"int4 per-group G=128 with packing: {ops['quantize_int4_g128'] / 1e9:.3f} G/s, "
              f"{1 / g:.2f}x the time of per-tensor int8 (target <=1.5{' ok' if ok else ' MISS'})")
        if not ok:
            failures.append(f"int4 g128 at {1 / g:.2f}x int8's time")
    print("\nblock formats (a new output each run on both sides):")
    fp = format_peers(n)
    table(n, FORMAT_ROWS, ops, fp, failures, ratios=ratios)
    m = ops["quantize_int8"] / ops["quantize_mxfp4"]
    ratios.append((f"2^{n.bit_length() - 1} mxfp4 quantize time / int8 time", m, 1.5 if n == 1 << 24 else None, "<="))
    if n == 1 << 24:
        ok = m <= 1.5
        print(f"mxfp4 quantize: {ops['quantize_mxfp4'] / 1e9:.3f} G/s, {m:.2f}x the time of per-tensor int8 "
              f"(target <=1.5{' ok' if ok else ' MISS'})")
        if not ok:
            failures.append(f"mxfp4 quantize at {m:.2f}x int8's time")
    print("\ncasts into one preallocated output (no fresh pages on either side):")
    table(n, REUSED_ROWS, reused, p, failures, " (reused output)", ratios)
    if n == 1 << 24:
        # What a fresh 2-byte output costs each side beyond the cast itself:
        # the OS zeroing its pages on first touch (both ask for huge pages).
        theirs = n / p["ml_dtypes astype(bfloat16)"] - n / p["ml_dtypes copyto(bfloat16)"]
        mine = n / ops["cast_bf16"] - n / reused["cast_bf16"]
        print(f"a fresh {2 * n >> 20} MiB output costs {theirs * 1e3:.2f} ms of page zeroing for ml_dtypes "
              f"(astype - copyto), {mine * 1e3:.2f} ms for quantlab (cast - cast_into)")
    return failures


def summary(ratios, runs):
    """Median and range of every ratio over the rounds; the targets judged on
    the median. Returns the missed targets."""
    by_key = {}
    for key, ratio, target, sense in ratios:
        by_key.setdefault(key, ([], target, sense))[0].append(ratio)
    print(f"\nsummary over {runs} rounds (median, min-max of each ratio):")
    failures = []
    for key, (rs, target, sense) in by_key.items():
        med = statistics.median(rs)
        mark = ""
        if target is not None:
            ok = med >= target if sense == ">=" else med <= target
            mark = f"{sense}{target:g} " + ("ok" if ok else "MISS")
            if not ok:
                failures.append(f"{key}: median {med:.2f}x, target {sense}{target:g}")
        print(f"  {key:<62} {med:6.2f}x  ({min(rs):.2f}-{max(rs):.2f})  {mark}")
    return failures


def seeded(n):
    """`quantlab bench`'s seeded values (bench.rs `seeded`: splitmix64, three
    uniforms in [-1, 1) summed in f32), bit for bit, in chunks."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    out = np.empty(n, dtype=np.float32)
    chunk = 1 << 22
    with np.errstate(over="ignore"):
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            # Call c (0-based) sees state = golden * (c + 2): it starts at golden, then adds.
            calls = np.arange(3 * start + 2, 3 * (start + m) + 2, dtype=np.uint64)
            z = calls * golden
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z ^= z >> np.uint64(31)
            u = ((z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24) * np.float32(2.0) - np.float32(1.0))
            u = u.reshape(m, 3)
            out[start:start + m] = (u[:, 0] + u[:, 1]) + u[:, 2]
    return out


# (our row, peer row): ratio = peer time / our time.
GEMV_ROWS = [
    ("int8 x int8 act", "torch dynamic qint8 Linear (fbgemm)"),
    ("int8 per row", "torch dynamic qint8 Linear (fbgemm)"),
    ("q8_0 x q8_0 act", "torch dynamic qint8 Linear (fbgemm)"),
    ("f32 ndarray dot", "torch.mv f32"),
    ("f32 matrixmultiply", "torch.mv f32"),
]


def gemv_peers(size):
    """Seconds (best of) of PyTorch's one-vector products on the bench's weight, one thread."""
    torch.set_num_threads(1)
    torch.backends.quantized.engine = "fbgemm"
    w = torch.from_numpy(seeded(size * size).reshape(size, size))
    x = torch.from_numpy(seeded(size)[::-1].copy())
    lin = torch.nn.Linear(size, size, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    qconfig = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
    qlin = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), qconfig, dtype=torch.qint8)[0]
    assert isinstance(qlin, torch.ao.nn.quantized.dynamic.Linear), type(qlin)
    x1 = x.reshape(1, size)
    with torch.inference_mode():
        return {
            "torch dynamic qint8 Linear (fbgemm)": best(lambda: qlin(x1)),
            "torch.mv f32": best(lambda: torch.mv(w, x)),
        }


def gemv_report(size, ratios):
    q = ours(1 << 16, "--gemv-size", str(size))
    g = {k: v["seconds"] for k, v in q["gemv"].items()}
    p = gemv_peers(size)
    print(f"\nmatrix-vector product, {size} x {size} weight, one vector, one thread "
          f"(quantlab gemv kernel: {q['kernel']}; ratio = peer time / quantlab time):")
    print(f"{'quantlab':<22} {'ms':>9}  {'peer':<37} {'ms':>9} {'ratio':>7}")
    for ours_row, peer in GEMV_ROWS:
        if ours_row not in g:
            continue
        r = p[peer] / g[ours_row]
        ratios.append((f"gemv {size} {ours_row} vs {peer}", r, None, ">="))
        ratios.append((f"gemv {size} {ours_row} ms", g[ours_row] * 1e3, None, ">="))
        ratios.append((f"gemv {size} {peer} ms", p[peer] * 1e3, None, ">="))
        print(f"{ours_row:<22} {g[ours_row] * 1e3:>9.3f}  {peer:<37} {p[peer] * 1e3:>9.3f} {r:>6.2f}x")
    return []


def main():
    global EXE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="element count (repeatable); default 2^24 and 2^16")
    ap.add_argument("--runs", type=int, default=1, help="rounds of the whole comparison (medians when > 1)")
    ap.add_argument("--ratios-json", type=Path, help="also write every round's ratios (and G/s) to this file")
    ap.add_argument("--gemv-size", type=int, action="append",
                    help="matrix-vector weight size (repeatable); default 4096, 0 for none")
    ap.add_argument("--gemv-only", action="store_true", help="only the matrix-vector comparison")
    ap.add_argument("--exe", type=Path, help="the quantlab binary to run (default: build target/release/quantlab)")
    args = ap.parse_args()
    if args.exe:
        EXE = args.exe.resolve()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.machine()}; torch {torch.__version__}, "
          f"numpy {np.__version__}, ml_dtypes {ml_dtypes.__version__}")
    failures, ratios = [], []
    for r in range(args.runs):
        if args.runs > 1:
            print(f"\n=== round {r + 1} of {args.runs}")
        if not args.gemv_only:
            for n in args.n or [1 << 24, 1 << 16]:
                failures += report(n, ratios)
        for size in args.gemv_size or [4096]:
            if size > 0:
                failures += gemv_report(size, ratios)
    if args.ratios_json:
        args.ratios_json.write_text(json.dumps(ratios))
    if args.runs > 1:
        failures = summary(ratios, args.runs)
    print("\nall targets met" if not failures else "\ntargets missed:\n  " + "\n  ".join(failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
