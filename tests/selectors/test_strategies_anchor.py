"""agentopt_arm_elimination follows the published rule, flaw included."""

from __future__ import annotations

import numpy as np

from agentopt.selectors.base import Problem
from agentopt.selectors.replay import ReplayData, run_replay
from agentopt.selectors.strategies import AgentOptArmEliminationStrategy


def _data(score: np.ndarray) -> ReplayData:
    k, n = score.shape
    return ReplayData(
        score=score.astype(float),
        cost=np.full((k, n), 0.001),
        latency=np.ones((k, n)),
        present=np.ones((k, n), dtype=bool),
        missing="skip",
    )


def _in_order(k: int, n: int) -> Problem:
    return Problem(n_arms=k, n_datapoints=n, order=np.arange(n))


def test_batches_start_at_ten_percent_and_double() -> None:
    score = np.full((3, 100), 0.5)
    score[:, ::2] = 1.0  # identical arms: nobody is ever eliminated
    s = AgentOptArmEliminationStrategy()
    s.start(_in_order(3, 100))
    sizes = []
    while pairs := s.ask():
        sizes.append(len(pairs) // 3)
        for a, d in pairs:
            s.tell(a, d, score[a, d], 0.001, 1.0)
    assert sizes == [10, 20, 40, 30]  # 10 %, doubling, the last one cut at N


def test_bounds_are_mean_plus_minus_one_standard_error_with_std_half_below_two() -> None:
    s = AgentOptArmEliminationStrategy()
    s.start(_in_order(2, 20))
    s.tell(0, 0, 1.0)
    for d, v in enumerate([1.0, 0.0, 1.0, 0.0]):
        s.tell(1, d, v)
    lo, hi = s.intervals()
    assert (lo[0], hi[0]) == (0.5, 1.5)  # n = 1: std 0.5, SE 0.5
    se = np.std([1, 0, 1, 0], ddof=1) / 2
    np.testing.assert_allclose([lo[1], hi[1]], [0.5 - se, 0.5 + se])


def test_the_pick_may_be_an_eliminated_arm_whose_mean_is_best() -> None:
    """Arm 0 is eliminated after the first batch (5/10 against two perfect arms);
    the two survivors then fail every later datapoint, so at the end arm 0's
    frozen mean (0.5) is the best mean over all arms, and the published rule picks it."""
    n = 100
    score = np.zeros((3, n))
    score[0, :10:2] = 1.0
    score[1, :10] = 1.0
    score[2, :10] = 1.0
    s = AgentOptArmEliminationStrategy()
    state = run_replay(s, _data(score), _in_order(3, n))
    assert 0 in s.eliminated() and s.eliminated()[0] == 1
    assert state.best == 0


def test_no_correction_for_multiple_comparisons() -> None:
    """c = 1 whatever the number of arms: a 1-SE separation eliminates."""
    n = 100
    score = np.zeros((20, n))
    score[0, :10] = 1.0  # perfect on the first batch: SE 0
    for i in range(1, 20):
        score[i, :10:2] = 1.0  # 0.5 ± 0.167: upper bound 0.67 < 1.0
    s = AgentOptArmEliminationStrategy()
    run_replay(s, _data(score), _in_order(20, n))
    assert s.alive() == [0]
    assert len(s.eliminated()) == 19
