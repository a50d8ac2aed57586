"""The lesson notebook, run headless on the real evcxr kernel.

`course/quantization.ipynb` (solutions in place) is executed with nbclient on
the `rust` kernel from the notebook's own folder, so that its
`:dep quantlab-lesson = { path = "../crates/quantlab-lesson", default-features = false }` resolves. The run fails on
any error output, on any stderr output (evcxr reports a panicking cell, or a
`?` that returned an error, as a success and only writes to stderr), and when
a value PyTorch prints is missing from the cell that should show it.

The committed notebooks are checked without a kernel: they were executed, and
what learners open (`notebooks/quantization.ipynb`) shows PyTorch's values.

Jupyter is found through the environment. Without the `rust` kernelspec the
kernel tests are skipped, unless QUANTLAB_REQUIRE_KERNEL is set (CI sets it),
in which case they fail.
"""

import math
import struct

import pytest

import lessons
from lessons import ROOT, cells_by_id, execute, grade_id, html_of, problems, rust_kernel_or_skip, shown_text, squash

COURSE = ROOT / "course" / "quantization.ipynb"
RELEASE = ROOT / "notebooks" / "quantization.ipynb"

nbformat = lessons.nbformat_or_skip()

# PyTorch's own outputs for the same cells, keyed by the cell's nbgrader grade_id.
# Whitespace is collapsed before comparing (ndarray prints a matrix over several lines).
GOLDEN = {
    "iinfo_uint8": ["iinfo(min=0, max=255, dtype=uint8)"],
    "iinfo_int8": ["iinfo(min=-128, max=127, dtype=int8)"],
    "iinfo_int16": ["iinfo(min=-32768, max=32767, dtype=int16)"],
    "iinfo_int32": ["iinfo(min=-2.14748e+09, max=2.14748e+09, dtype=int32)"],
    "iinfo_int64": ["iinfo(min=-9.22337e+18, max=9.22337e+18, dtype=int64)"],
    "finfo_float64": [
        "finfo(resolution=1e-15, min=-1.79769e+308, max=1.79769e+308, eps=2.22045e-16, "
        "smallest_normal=2.22507e-308, tiny=2.22507e-308, dtype=float64)"
    ],
    "finfo_float32": [
        "finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)"
    ],
    "finfo_float16": [
        "finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, "
        "smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)"
    ],
    "finfo_bfloat16": [
        "finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, "
        "smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)"
    ],
    "format_value": ["0.333333333333333314829616256247390992939472198486328125000000"],
    "tensors_one_third": [
        "fp64 tensor: 0.333333333333333314829616256247390992939472198486328125000000",
        "fp32 tensor: 0.333333343267440795898437500000000000000000000000000000000000",
        "fp16 tensor: 0.333251953125000000000000000000000000000000000000000000000000",
        "bf16 tensor: 0.333984375000000000000000000000000000000000000000000000000000",
    ],
    "linear_manual": [
        "[[-15, -74, 127], [-44, 14, -123], [-70, 126, 0]]",
        "[[192.5, -14, 689.5], [91, 294, -185.5], [0, 686, 245]]",
        "MSE 170.8753",
    ],
    "linear_computed": ["scale = 3.578823", "zero point = -77", "MSE 1.57"],
    "symmetric_tensor": ["MSE 2.5092"],
    "per_channel_library": [
        "axis 0: scales [5.7370, 2.3268, 5.3906]",
        "[[33, -2, 127], [40, 127, -79], [0, 127, 46]]",
        "MSE 1.8084",
        "MSE 1.0781",
    ],
}


# ---- Part 2's narrow types: golden lines from PyTorch 2.15 and ml_dtypes 0.6, read from
# tests/fixtures/ml_dtypes_casts.bin (written by tests/fixtures/ml_dtypes_casts.py; its
# docstring gives the format: sections of decoded codes, casts, ml_dtypes' finfo limits
# and str(torch.finfo(...))).
FIXTURE = ROOT / "tests" / "fixtures" / "ml_dtypes_casts.bin"


def read_casts_fixture(path=FIXTURE):
    """{(type name, section kind): payload bytes} of the casts fixture."""
    data = path.read_bytes()
    assert data[:8] == b"QLCASTS1", path
    (header,) = struct.unpack_from("<I", data, 8)
    at = 12 + header
    item = {1: 12, 2: 4, 3: 8, 4: 2, 5: 2, 6: 2, 7: 2, 9: 2, 10: 8, 11: 1}
    sections = {}
    while at < len(data):
        n = data[at]
        name = data[at + 1 : at + 1 + n].decode()
        at += 1 + n
        kind = data[at]
        (count,) = struct.unpack_from("<I", data, at + 1)
        at += 5
        size = item[kind] * count
        sections[(name, kind)] = data[at : at + size]
        at += size
    return sections


def fixture_decoded(sections, name):
    """ml_dtypes' value of every code of `name`, as f64."""
    raw = sections[(name, 1)]
    count = len(raw) // 12
    return list(struct.unpack_from(f"<{count}d", raw, 4 * count))


def rust_display(v):
    """How Rust's `{}` prints an f64: 448 for 448.0, NaN, -0 for -0.0."""
    if math.isnan(v):
        return "NaN"
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)


def narrow_golden():
    """Golden lines of the narrow-types cells, from the references' values in the fixture."""
    fx = read_casts_fixture()
    finfo_lines = []
    for name in ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3", "float8_e5m2", "float8_e5m2fnuz",
                 "float8_e8m0fnu", "float6_e3m2fn", "float4_e2m1fn"]:
        if (name, 11) in fx:  # PyTorch has a finfo for it: its exact line
            finfo_lines.append(fx[(name, 11)].decode())
        else:  # ml_dtypes' values in PyTorch's format (%g)
            top, low, eps, normal, _ = struct.unpack("<5d", fx[(name, 10)])
            finfo_lines.append(f"min={low:g}, max={top:g}, eps={eps:g}, smallest_normal={normal:g}, "
                               f"tiny={normal:g}, dtype={name})")
    float4 = fixture_decoded(fx, "float4_e2m1fn")
    # What PyTorch and ml_dtypes make of a finite f32 beyond float8_e4m3fn's overflow threshold
    # (the fixture's inputs include 896 and 1e30; 1000 lies between them).
    e4m3 = fixture_decoded(fx, "float8_e4m3fn")
    raw = fx[("float8_e4m3fn", 2)]
    inputs = struct.unpack(f"<{len(raw) // 4}f", raw)
    torch = struct.unpack(f"<{len(inputs)}H", fx[("float8_e4m3fn", 6)])
    mld = struct.unpack(f"<{len(inputs)}H", fx[("float8_e4m3fn", 4)])
    top = struct.unpack("<5d", fx[("float8_e4m3fn", 10)])[0]
    over = [i for i, x in enumerate(inputs) if math.isfinite(x) and x > top + 16]  # 464 rounds up
    assert over, "the fixture has no finite float8_e4m3fn overflow input"
    torch_values = {rust_display(e4m3[torch[i]]) for i in over}
    mld_values = {rust_display(e4m3[mld[i]]) for i in over}
    assert len(torch_values) == 1 and len(mld_values) == 1, (torch_values, mld_values)
    return {
        "narrow_finfo": finfo_lines,
        "float4_values": ["float4_e2m1fn, codes 0 to 15: [" + ", ".join(repr(v) for v in float4) + "]"],
        "overflow_policies": [
            "1000 -> float8_e4m3fn, overflow=error error:",  # quantlab's default (no reference)
            f"1000 -> float8_e4m3fn, overflow=saturate {rust_display(top)}",
            f"1000 -> float8_e4m3fn, overflow=nan {mld_values.pop()}",
            f"1000 -> float8_e4m3fn, overflow=pytorch {torch_values.pop()}",
        ],
    }


GOLDEN.update(narrow_golden())

# Figures: the cell, and words its SVG must contain (title, axis labels, legend).
FIGURES = {
    "float_formats_figure": ["Floating-point formats", "bfloat16", "float8_e5m2", "sign", "exponent", "mantissa"],
    "linear_heatmaps": ["original", "quantized codes", "dequantized", "absolute error", "689.5"],
    "compare_ways_chart": ["granularity", "mean squared error", "symmetric", "asymmetric", "per-group (G=64)"],
    "compare_bits_chart": ["bits per code", "mean squared error", "per-channel (axis 0)"],
    "memory_chart": ["Weight memory", "Llama 2 70B", "int4 g128", "16.00 GiB budget"],
    "narrow_formats_figure": ["Floating-point formats", "float8_e4m3fnuz", "float8_e8m0fnu", "float6_e2m3fn",
                              "float4_e2m1fn", "sign", "exponent", "mantissa"],
}

# Part 2's cells on today's narrow types (they must not enter Part 1).
NARROW_CELLS = ["narrow_formats_figure", "narrow_finfo", "float4_values", "overflow_policies", "float6_max",
                "float6_max_test"]

# The original lesson's headings, in order (Part 1 ends at `## Quantization`).
HEADINGS = [
    "# Quantization",
    "## Data Types and Sizes",
    "### Integer Types",
    "### Floating Point Types",
    "#### bfloat16",
    "##### bfloat16 on ARM processors",
    "## Quantization",
]


def golden_failures(nb, ids):
    failures = []
    cells = cells_by_id(nb)
    for gid in ids:
        if gid not in cells:
            failures.append(f"no cell {gid!r}")
            continue
        text = shown_text(cells[gid])
        for want in GOLDEN[gid]:
            if squash(want) not in text:
                failures.append(f"{gid}: missing {want!r} in {text[:300]!r}")
    return failures


# ------------------------------------------------------------ without a kernel


def test_notebooks_are_rust_and_keep_the_original_headings():
    for path in (COURSE, RELEASE):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "rust", path
        headings = [
            line.strip()
            for c in nb.cells
            if c.cell_type == "markdown"
            for line in c.source.splitlines()
            if line.startswith("#")
        ]
        positions = [headings.index(h) if h in headings else -1 for h in HEADINGS[:-1]]
        assert -1 not in positions and positions == sorted(positions), (path, headings)
        assert "## Quantization" in headings
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert ':dep quantlab-lesson = { path = "../crates/quantlab-lesson", default-features = false }' in first.source
        assert ":cache" in first.source


def test_course_cells_are_marked_for_grading():
    nb = nbformat.read(COURSE, as_version=4)
    ids = [grade_id(c) for c in nb.cells if c.cell_type == "code"]
    assert None not in ids and len(ids) == len(set(ids)), "every code cell needs a unique grade_id"
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    # The original's four TODO cells, graded on output, plus four code exercises.
    expect_output = [t for t in tests if "// expect-output:" in t.source]
    assert len(expect_output) == 4 and len(solutions) == 8 and len(tests) == 8
    for t in tests:
        assert t.metadata["nbgrader"]["locked"] and t.metadata["nbgrader"]["points"] > 0
        assert "// BEGIN HIDDEN TESTS" in t.source and "// END HIDDEN TESTS" in t.source
    for s in solutions:
        assert "// BEGIN SOLUTION" in s.source and "// END SOLUTION" in s.source
    code_tests = [t for t in tests if t not in expect_output]
    for t in code_tests:
        hidden = t.source.split("// BEGIN HIDDEN TESTS")[1]
        assert "::std::assert" in hidden and "::quantlab_lesson::" in hidden


def test_narrow_types_live_in_part_2():
    for path in (COURSE, RELEASE):
        nb = nbformat.read(path, as_version=4)
        part2 = next(i for i, c in enumerate(nb.cells)
                     if c.cell_type == "markdown" and c.source.strip().splitlines()[0] == "## Quantization")
        where = {grade_id(c): i for i, c in enumerate(nb.cells) if grade_id(c)}
        for gid in NARROW_CELLS:
            assert where[gid] > part2, (path, gid)
        part1 = "".join(c.source for c in nb.cells[:part2])
        assert "Float8E8M0Fnu" not in part1 and "narrow_float_formats" not in part1, path


def test_exercise_4_expects_ml_dtypes_value():
    # The hidden test's literal is ml_dtypes' finfo(float6_e2m3fn).max.
    top = struct.unpack("<5d", read_casts_fixture()[("float6_e2m3fn", 10)])[0]
    test = cells_by_id(nbformat.read(COURSE, as_version=4))["float6_max_test"]
    hidden = test.source.split("// BEGIN HIDDEN TESTS")[1]
    assert f"::std::assert_eq!(float6_e2m3fn_max(), {top:g});" in hidden, (top, hidden)


def test_committed_notebooks_were_executed():
    for path in (COURSE, RELEASE):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        shown = [c for c in code if c.get("outputs")]
        assert len(shown) >= len(code) // 2, f"{path}: only {len(shown)} of {len(code)} code cells have outputs"
        errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"{path} holds error outputs"


def test_release_notebook_shows_pytorchs_values():
    nb = nbformat.read(RELEASE, as_version=4)
    # Solution cells may be emptied by the release; the lesson's own cells may not.
    locked = {gid for gid, c in cells_by_id(nb).items() if not c.metadata["nbgrader"].get("solution")}
    failures = golden_failures(nb, [gid for gid in GOLDEN if gid in locked])
    assert not failures, "\n".join(failures)
    cells = cells_by_id(nb)
    for gid, words in FIGURES.items():
        svg = html_of(cells[gid])
        assert "<svg" in svg and all(w in svg for w in words), gid


# ------------------------------------------------------------ on the kernel


@pytest.fixture(scope="module")
def executed():
    """The course notebook, executed in memory (the committed file is not touched)."""
    rust_kernel_or_skip()
    # A cold `:dep` compiles quantlab and its dependencies: minutes on a busy 2-core machine.
    return execute(COURSE, timeout=1200)


def test_runs_without_errors_or_panics(executed):
    found = problems(executed)
    assert not found, "\n".join(found)


def test_shows_pytorchs_values(executed):
    failures = golden_failures(executed, GOLDEN)
    assert not failures, "\n".join(failures)


def test_draws_every_figure_inline(executed):
    cells = cells_by_id(executed)
    for gid, words in FIGURES.items():
        svg = html_of(cells[gid])
        assert "<svg" in svg, f"{gid} shows no SVG"
        missing = [w for w in words if w not in svg]
        assert not missing, f"{gid}: figure lacks {missing}"


def test_cpu_report_follows_lscpu(executed):
    text = shown_text(cells_by_id(executed)["cpu_features"])
    assert "CPU architecture:" in text and "bfloat16 arithmetic:" in text
