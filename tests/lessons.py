"""What the lesson notebooks' tests share: reading cells and their outputs, finding the
Rust kernel, executing a notebook headless and collecting what it should not show.

Every lesson test (tests/test_notebook.py, test_formats_notebook.py, test_model_notebook.py)
checks its notebook the same way; only the golden values differ.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cells_by_id(nb):
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


def shown_text(cell, squashed=True):
    """What a cell shows as text: printed lines and plain-text results (white space folded
    unless `squashed=False`)."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream" and out["name"] == "stdout":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
    text = "\n".join(parts)
    return squash(text) if squashed else text


def html_of(cell):
    return "".join(
        o["data"].get("text/html", "")
        for o in cell.get("outputs", [])
        if o["output_type"] in ("execute_result", "display_data")
    )


def nbformat_or_skip():
    """nbformat, or the whole test module skipped without it (an error when the kernel tests
    are required: CI must not skip them)."""
    try:
        import nbformat
    except ImportError:  # pragma: no cover - depends on the environment
        if required():
            raise
        pytest.skip("nbformat is not installed (pip install -r requirements-dev.txt)", allow_module_level=True)
    return nbformat


def required(*variables):
    """Whether the environment asks for the kernel tests to run (CI sets QUANTLAB_REQUIRE_KERNEL=1)."""
    return any(os.environ.get(v) == "1" for v in ("QUANTLAB_REQUIRE_KERNEL", *variables))


def missing_kernel():
    """Why the `rust` kernel cannot run here, or None when it can."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            KernelSpecManager().get_kernel_spec("rust")
        except NoSuchKernel:
            return "the `rust` kernelspec is not installed (run `evcxr_jupyter --install`)"
        import nbclient  # noqa: F401
    except ImportError as e:
        return f"Jupyter is not installed ({e})"
    if shutil.which("evcxr_jupyter") is None:
        return "evcxr_jupyter is not on PATH"
    return None


def skip_or_fail(missing, *variables):
    """Skips the test for `missing`, or fails it when the environment requires the kernel."""
    if missing:
        if required(*variables):
            pytest.fail(f"{' or '.join(('QUANTLAB_REQUIRE_KERNEL', *variables))} is set but {missing}")
        pytest.skip(missing)


def rust_kernel_or_skip():
    skip_or_fail(missing_kernel())


def execute(path, timeout):
    """The notebook at `path`, executed in memory on the `rust` kernel from its own folder
    (so its `:dep ... path = "../crates/..."` resolves); the file is not touched."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="rust", timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


def problems(nb):
    """Every error output and every write to stderr: evcxr reports a panicking cell, or a
    `?` that returned an error, as a success and only writes to stderr."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                detail = out.get("evalue") or "\n".join(out.get("traceback", []))
                found.append(f"cell {i} ({grade_id(cell)}): error {out.get('ename')!r}: {detail[:1000]}")
            elif out["output_type"] == "stream" and out["name"] == "stderr":
                kind = "panicked" if "panicked at" in out["text"] else "wrote to stderr"
                found.append(f"cell {i} ({grade_id(cell)}) {kind}: {out['text'][:1000]}")
    return found
