"""ε > 0 never costs more than ε = 0 on the same seed, and its pick is within ε."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

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
            if loose < exact:  # stopped by the ε certificate (at 0.95; these seeds all hold)
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


def _near_ties(k: int, n: int, mu: np.ndarray, seed: int) -> ReplayData:
    rng = np.random.default_rng(seed)
    hard = rng.normal(size=n)  # a datapoint is hard or easy for every arm
    noise = rng.normal(size=(k, n))
    score = (0.8 * hard[None, :] + 0.6 * noise < norm.ppf(mu)[:, None]).astype(float)
    return ReplayData(
        score=score,
        cost=np.full((k, n), 0.001),
        latency=np.ones((k, n)),
        present=np.ones((k, n), dtype=bool),
        missing="skip",
    )


def test_epsilon_certificate_stops_earlier_on_near_ties_and_stays_epsilon_good() -> None:
    """Many near-ties: ε = 0.02 evaluates no more than ε = 0 on every seed, clearly
    less in total, some runs are stopped by the re-read bets (the worst-case bound
    alone would not have stopped them), and every pick is within ε."""
    mu = np.array([0.80, 0.798, 0.795, 0.79, 0.785, 0.78, 0.70, 0.6])
    data = _near_ties(len(mu), 400, mu, seed=1)
    means = data.score.mean(axis=1)
    k, n = data.score.shape
    total_exact = total_loose = statistical = 0
    for seed in range(20):
        p = Problem.create(k, n, seed=seed)
        exact = run_replay(get_strategy("auto"), data, p)
        s = get_strategy("auto", epsilon=0.02)
        loose = run_replay(s, data, p)
        assert loose.evaluations <= exact.evaluations, seed
        assert means[int(loose.best or 0)] >= means.max() - 0.02 - 1e-12, seed
        total_exact += exact.evaluations
        total_loose += loose.evaluations
        # stopped with several arms alive while the worst case still allowed a gap > ε
        statistical += len(s.alive()) > 1 and s.gap_bound() > 0.02
    assert total_loose < 0.98 * total_exact
    assert statistical >= 3


def test_epsilon_certificate_keeps_its_confidence_when_one_arm_is_clearly_better() -> None:
    """The best arm is 3 points ahead of a near-tied pack, ε = 1 point: a pick from
    the pack would be wrong; at confidence 0.95 at most 5 % of seeds may end there."""
    mu = np.array([0.83, 0.80, 0.80, 0.799, 0.798, 0.79])
    data = _near_ties(len(mu), 300, mu, seed=3)
    means = data.score.mean(axis=1)
    k, n = data.score.shape
    wrong = 0
    for seed in range(40):
        p = Problem.create(k, n, seed=seed)
        st = run_replay(get_strategy("auto", epsilon=0.01), data, p)
        wrong += means[int(st.best or 0)] < means.max() - 0.01 - 1e-12
    assert wrong <= 2
