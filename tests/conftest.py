"""Shared test configuration: keep litellm offline and quiet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "agentopt-bench"


@pytest.fixture(scope="session")
def bench_data() -> Path:
    """The in-repo copy of the recorded agentopt-bench tables."""
    return DATA
