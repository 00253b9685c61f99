"""ε > 0 never costs more than ε = 0 on the same seed, and its pick is within ε."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentopt.replay.table import ReplayTable
from agentopt.selectors.base import Problem
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay

DATA = Path(__file__).resolve().parents[2] / "data" / "agentopt-bench"


def _pair(data: ReplayData, seed: int, epsilon: float) -> tuple[int, int, int]:
    k, n = data.score.shape
    p = Problem.create(k, n, seed=seed)
    exact = run_replay(get_strategy("auto"), data, p)
    loose = run_replay(get_strategy("auto", epsilon=epsilon), data, p)
    return exact.evaluations, loose.evaluations, int(loose.best or 0)


@pytest.mark.parametrize("name", ["gpqa", "bfcl", "hotpotqa", "mathqa"])
def test_epsilon_never_evaluates_more_on_the_recorded_tables(name: str) -> None:
    data = ReplayData.from_table(ReplayTable.from_csv(DATA / f"{name}.csv"))
    for seed in (42, 43):
        for eps in (0.01, 0.05):
            exact, loose, _ = _pair(data, seed, eps)
            assert loose <= exact, (name, seed, eps)


def test_epsilon_never_evaluates_more_on_synthetic_problems() -> None:
    rng = np.random.default_rng(0)
    for trial in range(12):
        k = int(rng.integers(2, 12))
        n = int(rng.integers(30, 300))
        # near-ties, a clear winner, or strong interactions between arms' datapoints
        p = np.clip(rng.uniform(0.3, 0.9) + rng.normal(0, 0.03 * (trial % 3 + 1), k), 0, 1)
        score = (rng.random((k, n)) < p[:, None]).astype(float)
        data = ReplayData(
            score=score,
            cost=np.full((k, n), 0.001),
            latency=np.ones((k, n)),
            present=np.ones((k, n), dtype=bool),
            missing="skip",
        )
        means = score.mean(axis=1)
        for eps in (0.005, 0.02, 0.1):
            exact, loose, pick = _pair(data, trial, eps)
            assert loose <= exact, (trial, eps)
            if loose < exact:  # stopped by the ε certificate: it holds whatever the data
                assert means[pick] >= means.max() - eps - 1e-12


def test_the_epsilon_stop_fires_when_the_rest_cannot_matter() -> None:
    """Two arms tied to the last datapoint: ε = 0.1 stops once the unseen tenth cannot
    open a gap larger than ε; ε = 0 has to see everything."""
    n = 200
    score = np.tile((np.arange(n) % 2).astype(float), (2, 1))
    data = ReplayData(
        score=score,
        cost=np.full((2, n), 0.001),
        latency=np.ones((2, n)),
        present=np.ones((2, n), dtype=bool),
        missing="skip",
    )
    exact, loose, _ = _pair(data, 0, 0.1)
    assert exact == 2 * n
    assert loose < exact
