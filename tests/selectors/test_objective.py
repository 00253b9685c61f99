"""The objective: weights in natural units, constraints, cheapest within ε."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Problem
from agentopt.selectors.objective import Objective
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay


def _three_arms() -> ReplayData:
    """Arm 0: best score, expensive and slow; arm 1: 2 points lower, cheap; arm 2: poor."""
    rng = np.random.default_rng(0)
    n = 400
    base = rng.random(n)
    score = np.vstack([(base < 0.80), (base < 0.78), (base < 0.50)]).astype(float)
    cost = np.vstack([np.full(n, 0.05), np.full(n, 0.001), np.full(n, 0.0005)])
    latency = np.vstack([np.full(n, 10.0), np.full(n, 1.0), np.full(n, 1.0)])
    return ReplayData(score, cost, latency, np.ones((3, n), dtype=bool), "skip")


def _pick(objective: Objective, method: str = "brute_force") -> int:
    data = _three_arms()
    problem = Problem.create(3, 400, seed=0, objective=objective)
    state = run_replay(get_strategy(method), data, problem)
    assert state.best is not None
    return state.best


def test_default_maximises_the_mean_score() -> None:
    assert Objective().value(0.7, 0.5, 3.0) == 0.7
    assert _pick(Objective()) == 0


def test_cost_weight_is_in_dollars_per_item() -> None:
    o = Objective(cost_weight=10.0)
    assert o.value(0.8, 0.05, 1.0) == pytest.approx(0.3)
    np.testing.assert_allclose(o.values(np.array([0.8]), np.array([0.05]), np.array([1.0])), [0.3])
    assert _pick(o) == 1
    assert _pick(o, "auto") == 1


def test_latency_weight_is_in_seconds_per_item() -> None:
    o = Objective(latency_weight=0.01)
    assert o.value(0.8, 0.0, 10.0) == pytest.approx(0.7)
    assert _pick(o) == 1


def test_unknown_cost_counts_as_zero_in_the_weighted_sum() -> None:
    assert Objective(cost_weight=5.0).value(0.5, math.nan, 1.0) == 0.5


def test_no_min_max_normalisation_values_do_not_depend_on_other_arms() -> None:
    o = Objective(cost_weight=2.0, latency_weight=0.1)
    alone = o.values(np.array([0.5]), np.array([0.1]), np.array([2.0]))
    with_others = o.values(np.array([0.5, 0.9]), np.array([0.1, 9.0]), np.array([2.0, 99.0]))
    assert alone[0] == with_others[0]


def test_cost_constraint_makes_expensive_arms_infeasible() -> None:
    assert _pick(Objective(max_cost_per_item=0.01), "auto") == 1


def test_latency_constraint_makes_slow_arms_infeasible() -> None:
    assert _pick(Objective(max_latency_per_item=5.0), "auto") == 1


def test_cheapest_within_epsilon_of_the_best() -> None:
    assert _pick(Objective.cheapest_within(0.05)) == 1
    assert _pick(Objective.cheapest_within(0.001)) == 0
    assert _pick(Objective.cheapest_within(0.05), "auto") == 1


def test_coerce_and_validation() -> None:
    assert Objective.coerce(None) == Objective()
    assert Objective.coerce({"cost_weight": 1.0}) == Objective(cost_weight=1.0)
    with pytest.raises(ConfigError):
        Objective.coerce({"nope": 1.0})
    with pytest.raises(ConfigError):
        Objective(cost_weight=-1.0)
    with pytest.raises(ConfigError):
        Objective(within=0.1, cost_weight=1.0)
    with pytest.raises(ConfigError):
        Objective.coerce("fast")  # type: ignore[arg-type]
