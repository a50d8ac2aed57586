"""Run the lesson once so evcxr's build directory and cache hold its dependencies.

Called by binder/setup.sh (at Binder build time and by scripts/lesson, scripts/test).
The lesson is executed with the `rust` kernel from the notebook's own folder, with
the notebook's own `:cache`/`:dep`/`:opt` lines, so what gets compiled is exactly what
a learner's first cells ask for. The released lesson contains `todo!()` stubs that
panic; those errors are expected and only counted. An error in the set-up cells (up
to and including the `:dep quantlab-lesson` cell) fails the warm-up: the lesson would not
work either.

Several notebooks may be given (setup.sh adds the model lesson, notebooks/model.ipynb,
which compiles the model's dependencies, tokenizers included, at `:opt 2`): each is warmed
in turn with its own stamp, and the summary joins their lines with "; ".

Prints one summary line on stdout; progress and diagnostics go to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
KERNEL = "rust"
# A cold build of quantlab's dependencies takes minutes on 2 cores.
CELL_TIMEOUT_S = 1800


def dep_cell_index(nb) -> int:
    """Index of the cell that loads quantlab (`:dep quantlab-lesson = ...`)."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith(":dep") and "quantlab" in stripped:
                return i
    raise SystemExit("warm-up: the notebook has no `:dep quantlab-lesson = ...` cell to warm up")


def evcxr_commands(nb) -> list[str]:
    """The notebook's evcxr commands (`:dep`, `:opt`, `:cache`, ...)."""
    return [
        line.strip()
        for cell in nb.cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if line.strip().startswith(":")
    ]


def stamp_inputs(nb, kernel_dir: Path) -> dict[str, str]:
    """What the warm build depends on, as one digest per input: when one changes,
    warm up again (and say which)."""

    def digest(*chunks: bytes) -> str:
        h = hashlib.sha256()
        for chunk in chunks:
            h.update(chunk + b"\0")
        return h.hexdigest()

    # The notebook `:dep`s quantlab-lesson, which builds on quantlab: both count.
    files = [REPO / "Cargo.toml"]
    for crate in (REPO / "crates" / "quantlab", REPO / "crates" / "quantlab-lesson"):
        files += [crate / "Cargo.toml", *sorted((crate / "src").rglob("*"))]
    rustc = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return {
        "evcxr commands in the notebook": digest(*(c.encode() for c in evcxr_commands(nb))),
        "quantlab sources": digest(
            *(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() for f in files if f.is_file())
        ),
        "toolchain": digest(rustc.encode()),
        "kernelspec": digest((kernel_dir / "kernel.json").read_bytes()),
    }


def read_stamp(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def check_kernelspec(expected_dir: Path) -> None:
    """Fail if Jupyter would start some other `rust` kernel than the one we registered."""
    found = Path(KernelSpecManager().get_kernel_spec(KERNEL).resource_dir).resolve()
    if found != expected_dir.resolve():
        raise SystemExit(
            f"warm-up: Jupyter resolves kernel '{KERNEL}' to {found}, not to {expected_dir}; "
            "another `rust` kernelspec shadows ours (check JUPYTER_PATH and `jupyter kernelspec list`)"
        )


def cell_errors(cell) -> list[str]:
    return [
        f"{o.get('ename', 'Error')}: {o.get('evalue', '')}".strip()
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


def cell_seconds(cell) -> float | None:
    """Wall time of a cell from nbclient's timing metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.status.busy"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", type=Path, nargs="+", metavar="notebook")
    parser.add_argument("--kernel-dir", type=Path, required=True, help="where setup.sh registered the kernel")
    parser.add_argument("--build-dir", type=Path, required=True, help="the kernel's EVCXR_TMPDIR")
    parser.add_argument("--force", action="store_true", help="warm up even if nothing changed")
    args = parser.parse_args()
    lines = []
    for i, notebook in enumerate(args.notebooks):
        # The first notebook keeps the stamp name earlier versions wrote.
        stamp_name = ".quantlab-warm" if i == 0 else f".quantlab-warm-{notebook.stem}"
        status, line = warm_one(args, notebook, stamp_name)
        if status != 0:
            return status
        lines.append(line if i == 0 else f"{notebook.name}: {line}")
    print("; ".join(lines))
    return 0


def warm_one(args, notebook: Path, stamp_name: str) -> tuple[int, str]:
    """Warms one notebook: (exit status, summary line)."""
    nb = nbformat.read(notebook, as_version=4)
    dep = dep_cell_index(nb)
    check_kernelspec(args.kernel_dir)
    inputs = stamp_inputs(nb, args.kernel_dir)
    stamp = args.build_dir / stamp_name
    if not (args.build_dir / "target").is_dir():
        reason = "nothing built yet"
    elif args.force:
        reason = "forced"
    else:
        last = read_stamp(stamp)
        changed = [name for name, value in inputs.items() if last.get(name) != value]
        if not changed:
            return 0, f"up to date ({stamp})"
        reason = "changed: " + ", ".join(changed) if last else "no record of an earlier warm-up"
    print(f"warm-up: executing {notebook} with kernel '{KERNEL}' ({reason}) ...", file=sys.stderr)
    start = time.monotonic()
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,
        resources={"metadata": {"path": str(notebook.resolve().parent)}},
    )
    # The kernel's own output (cargo's "Compiling ..." lines) goes to a log, shown
    # only when the warm-up fails.
    args.build_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.build_dir / "warmup-kernel.log"
    with open(log_path, "w") as log:
        try:
            client.execute(stdout=log, stderr=log)
        except Exception:
            log.flush()
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("warm-up: kernel log (last lines):\n  " + "\n  ".join(tail), file=sys.stderr)
            raise
    elapsed = time.monotonic() - start

    for i, cell in enumerate(nb.cells[: dep + 1]):
        if cell.cell_type == "code" and (errors := cell_errors(cell)):
            print(f"warm-up: set-up cell {i} failed:\n  " + "\n  ".join(errors), file=sys.stderr)
            print(f"  cell source:\n{cell.source}", file=sys.stderr)
            return 1, ""
    code = [c for c in nb.cells if c.cell_type == "code"]
    failing = sum(1 for c in code if cell_errors(c))
    dep_s = cell_seconds(nb.cells[dep])
    stamp.write_text(json.dumps(inputs, indent=2) + "\n")
    dep_note = f", :dep cell {dep_s:.0f} s" if dep_s is not None else ""
    return 0, (
        f"ran {len(code)} cells in {elapsed:.0f} s{dep_note}; "
        f"{failing} raised errors (expected only where a learner TODO is left)"
    )


if __name__ == "__main__":
    sys.exit(main())
