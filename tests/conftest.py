"""Shared test configuration: keep litellm offline and quiet."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "agentopt-bench"


@pytest.fixture(scope="session")
def bench_data() -> Path:
    """The in-repo copy of the recorded agentopt-bench tables."""
    return DATA


@pytest.fixture(autouse=True)
def _collect_abandoned_streams() -> Iterator[None]:
    """Finalise what a test abandoned (an unconsumed SDK stream) when it ends.

    An abandoned openai ``Stream`` closes its response when garbage-collected.
    If that collection happens to run inside httpcore's connection-pool lock
    (a later test's request on the same pooled client, e.g. litellm's cached
    client), closing re-enters that lock and the process deadlocks: seen once in a
    full run. Collecting between tests keeps one test's leftovers out of the next.
    Code that abandons streams in a long-lived process has the same hazard: close
    or consume SDK streams.
    """
    yield
    gc.collect()
