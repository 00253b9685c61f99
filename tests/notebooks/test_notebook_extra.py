"""The `notebook` extra brings Jupyter itself and nbconvert, not only the kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("tool", ["nbconvert", "lab"])
def test_jupyter_tools_of_the_notebook_extra_run(tool: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", tool, "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()[0].isdigit()
