"""Fixtures the pytest suites share."""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def quantlab() -> Path:
    """The `quantlab` binary: $QUANTLAB_BIN, else a debug build of this checkout."""
    if os.environ.get("QUANTLAB_BIN"):
        return Path(os.environ["QUANTLAB_BIN"])
    subprocess.run(["cargo", "build", "-q", "-p", "quantlab-cli"], cwd=REPO, check=True)
    meta = json.loads(subprocess.run(["cargo", "metadata", "-q", "--format-version", "1", "--no-deps"], cwd=REPO,
                                     check=True, capture_output=True, text=True).stdout)
    return Path(meta["target_directory"]) / "debug" / "quantlab"
