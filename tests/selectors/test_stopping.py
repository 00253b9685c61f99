"""Stopping rules, their composition, and budgets that stop exactly."""

from __future__ import annotations

import numpy as np
import pytest

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Problem
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import ReplayData, run_replay
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import (
    AnyOf,
    BudgetUSD,
    ConfidenceReached,
    DataExhausted,
    EpsilonReached,
    MaxEvaluations,
    default_stopping,
)


def _data(k: int = 4, n: int = 50, seed: int = 0) -> ReplayData:
    rng = np.random.default_rng(seed)
    return ReplayData(
        score=(rng.random((k, n)) < np.linspace(0.8, 0.5, k)[:, None]).astype(float),
        cost=rng.uniform(0.001, 0.01, (k, n)),
        latency=np.ones((k, n)),
        present=np.ones((k, n), dtype=bool),
        missing="skip",
    )


def _state(**kw: object) -> SelectionState:
    st = SelectionState.empty(Problem.create(3, 10, seed=0))
    for k, v in kw.items():
        setattr(st, k, v)
    return st


def test_max_evaluations_stops_at_exactly_n() -> None:
    data = _data()
    for n in (1, 7, 33, 150):
        state = run_replay(
            get_strategy("brute_force"), data, Problem.create(4, 50, seed=1), MaxEvaluations(n)
        )
        assert state.evaluations == n
        assert state.stats.evaluations == n


def test_budget_usd_is_never_overrun_and_the_next_cell_would_overrun_it() -> None:
    data = _data()
    budget = 0.37
    problem = Problem.create(4, 50, seed=2)
    state = run_replay(get_strategy("brute_force"), data, problem, BudgetUSD(budget))
    assert state.spent_usd <= budget
    assert state.stop_reason is not None
    done = ~np.isnan(state.stats.scores)
    assert abs(state.spent_usd - float(np.nansum(np.where(done, data.cost, 0)))) < 1e-12


def test_budget_stop_keeps_the_batch_prefix_that_fits() -> None:
    data = _data()
    problem = Problem.create(4, 50, seed=2)
    state = run_replay(get_strategy("brute_force"), data, problem, BudgetUSD(0.05))
    # brute force's first batch, in paired order: datapoint by datapoint, every arm
    batch = [(a, int(d)) for d in problem.order[:5] for a in range(4)]
    spend = np.cumsum([data.cost[a, d] for a, d in batch])
    fits = int((spend <= 0.05).sum())
    assert 0 < fits < len(batch)
    assert state.evaluations == fits
    assert state.spent_usd <= 0.05 < state.spent_usd + data.cost[batch[fits]]


def test_data_exhausted_and_strategy_end() -> None:
    data = _data(k=2, n=10)
    state = run_replay(
        get_strategy("brute_force"), data, Problem.create(2, 10, seed=0), DataExhausted()
    )
    assert state.evaluations == 20
    assert state.stop_reason == "data exhausted"


def test_confidence_and_epsilon_rules_read_the_strategy_view() -> None:
    assert ConfidenceReached().should_stop(_state(alive=[0])) is not None
    assert ConfidenceReached().should_stop(_state(alive=[0, 1], gap_upper=0.1)) is None
    assert ConfidenceReached().should_stop(_state(alive=[0, 1], gap_upper=-0.01)) is not None
    assert EpsilonReached(0.05).should_stop(_state(alive=[0, 1], gap_upper=0.04)) is not None
    assert EpsilonReached(0.05).should_stop(_state(alive=[0, 1], gap_upper=0.06)) is None


def test_any_of_composes_and_takes_the_tightest_allowance() -> None:
    rule = MaxEvaluations(10) | BudgetUSD(2.0) | MaxEvaluations(4)
    assert isinstance(rule, AnyOf) and len(rule.rules) == 3
    st = _state(evaluations=1, spent_usd=0.5)
    assert rule.allowance(st) == (3, 1.5)
    assert rule.should_stop(_state(evaluations=4)) == "4 evaluations done"
    assert rule.should_stop(st) is None


def test_default_stopping_adds_what_was_asked() -> None:
    r = default_stopping(epsilon=0.01, budget_usd=1.0, max_evaluations=5)
    kinds = {type(x) for x in r.rules}
    assert kinds == {DataExhausted, EpsilonReached, BudgetUSD, MaxEvaluations}
    assert {type(x) for x in default_stopping().rules} == {DataExhausted}


def test_epsilon_rule_stops_a_replay_early() -> None:
    data = _data(k=3, n=400, seed=5)
    problem = Problem.create(3, 400, seed=0)
    full = run_replay(get_strategy("brute_force"), data, problem)
    early = run_replay(get_strategy("brute_force"), data, problem, EpsilonReached(0.3))
    assert early.evaluations < full.evaluations


@pytest.mark.parametrize(
    "bad", [lambda: BudgetUSD(-1), lambda: MaxEvaluations(-2), lambda: EpsilonReached(float("nan"))]
)
def test_bad_rule_arguments_raise_config_error(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        bad()
