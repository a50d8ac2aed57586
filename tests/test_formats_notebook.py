"""The block formats lesson (course/formats.ipynb), checked as tests/test_notebook.py checks
the first one: committed outputs, grading marks, release, and a headless run on the kernel.

Golden lines are the library's own values (quantlab::formats is byte-exact with torchao,
bitsandbytes, gguf-py and ggml in crates/quantlab/tests); the NF4 code table is
bitsandbytes' own. QUANTLAB_REQUIRE_KERNEL=1 makes the kernel test fail instead of skip.
"""

import re


import lessons
from lessons import ROOT, cells_by_id, execute, grade_id, html_of, problems, rust_kernel_or_skip, shown_text, squash

nbformat = lessons.nbformat_or_skip()

COURSE = ROOT / "course" / "formats.ipynb"
RELEASE = ROOT / "notebooks" / "formats.ipynb"

GOLDEN = {
    "why_blocks": [
        "int4 per-tensor MSE of each block of 32: [0.764, 0.911, 0.771, 0.519, 1.284, 0.964, 0.721, 0.844]",
        "int4 per-group (G=32) MSE of each block of 32: [0.007, 0.911, 0.007, 0.004, 0.012, 0.013, 0.004, 0.009]",
    ],
    "mx_one_block": [
        "amax 0.09704: floor(log2 amax) = -4",
        "E8M0 byte 121 -> scale 2^-6 = 1.562500e-2",
        "amax / scale = 6.210 (e2m1 holds at most 6)",
    ],
    "scale_rules": [
        "mxfp4: EVEN 2.0572e-5 vs FLOOR 2.1739e-5, 5.4% lower",
        "mxfp6_e2m3: EVEN 1.2930e-6 vs FLOOR 1.3183e-6, 1.9% lower",
        "mxfp8_e4m3: EVEN 1.0815e-6 vs FLOOR 1.4005e-6, 22.8% lower",
    ],
    "nvfp4_scales": [
        "tensor scale: amax / (448 * 6) = 6.7915e-5",
        "block 0: e4m3 scale 128 x tensor scale = 8.6931e-3",
        "block 0 without a tensor scale: e4m3 scale 1.5625e-2",
        "nvfp4: MSE 1.1048e-5",
        "nvfp4 (no tensor scale): MSE 1.4190e-5",
    ],
    "nf4_table": [
        "NF4 codes: [-1.0000, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0000, "
        "0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0000]",
        "share of N(0, 0.541) each code takes (%)",
    ],
    "q4_k_block": [
        "144 bytes for 256 weights: 4.5 bits each",
        "weight 0: 0.001180 by hand, 0.001180 dequantized, 0.003111 original",
    ],
    "formats_table": [
        "nf4 (block 64, double quant) 4.1270 1.5910e-5 19.14",
        "mxfp4 (floor) 4.2500 2.1739e-5 17.78",
        "nvfp4 4.5000 1.1048e-5 20.72",
        "q4_k 4.5000 9.6265e-6 21.32",
        "q6_k 6.5625 6.4962e-7 33.03",
        "q8_0 8.5000 6.5770e-8 42.97",
    ],
}

FIGURES = {
    "nf4_figure": ["NF4 codes on the normal density", "NF4 code values", "normal density, sigma = 0.541", "density"],
    "formats_figure": [
        "Error against bits per weight",
        "bits per weight (scales counted)",
        "OCP MX (floor)",
        "NVFP4",
        "NF4",
        "GGUF legacy blocks",
        "GGUF K-quants",
    ],
}

QUESTIONS = {"mx_exponent_test": 2, "e2m1_pack_test": 2, "e2m1_decode_test": 1}


def failures_of(nb):
    cells = cells_by_id(nb)
    out = []
    for gid, lines in GOLDEN.items():
        text = shown_text(cells[gid]) if gid in cells else ""
        out += [f"{gid}: missing {w!r} in {text[:300]!r}" for w in lines if squash(w) not in text]
    for gid, words in FIGURES.items():
        svg = html_of(cells[gid]) if gid in cells else ""
        out += [f"{gid}: figure lacks {w!r}" for w in words if w not in svg]
    # The lesson's claim, checked on what it printed: EVEN has a lower error than FLOOR.
    for m in re.finditer(r"(\S+): EVEN (\S+) vs FLOOR (\S+),", shown_text(cells["scale_rules"])):
        if not float(m.group(2)) < float(m.group(3)):
            out.append(f"EVEN is not below FLOOR for {m.group(1)}")
    return out


def test_formats_course_is_marked_for_grading():
    nb = nbformat.read(COURSE, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "rust"
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert ':dep quantlab-lesson = { path = "../crates/quantlab-lesson", default-features = false }' in first.source
    ids = [grade_id(c) for c in nb.cells if c.cell_type == "code"]
    assert None not in ids and len(ids) == len(set(ids))
    tests = {grade_id(c): c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert {g: t.metadata["nbgrader"]["points"] for g, t in tests.items()} == QUESTIONS
    assert len(solutions) == len(QUESTIONS)
    for t in tests.values():
        assert t.metadata["nbgrader"]["locked"]
        hidden = t.source.split("// BEGIN HIDDEN TESTS")[1].split("// END HIDDEN TESTS")[0]
        assert "::std::assert" in hidden and "::quantlab_lesson::" in hidden
    for s in solutions:
        assert "// BEGIN SOLUTION" in s.source and "TODO" not in s.source


def test_committed_formats_notebooks_show_the_librarys_values():
    course = nbformat.read(COURSE, as_version=4)
    errors = [o for c in course.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr")]
    assert not errors
    assert not failures_of(course), "\n".join(failures_of(course))
    release = nbformat.read(RELEASE, as_version=4)
    assert not failures_of(release), "\n".join(failures_of(release))
    for c in release.cells:
        meta = c.metadata.get("nbgrader", {})
        assert "BEGIN SOLUTION" not in c.source and "BEGIN HIDDEN" not in c.source
        if meta.get("solution"):
            assert 'todo!("your code here")' in c.source and not c.outputs


def test_formats_notebook_runs_on_the_kernel():
    rust_kernel_or_skip()
    nb = execute(COURSE, timeout=1200)
    found = problems(nb)
    assert not found, "\n".join(found)
    failures = failures_of(nb)
    assert not failures, "\n".join(failures)
