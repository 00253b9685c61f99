from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentopt.sim import SimServer


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s
