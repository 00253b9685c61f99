"""Replay: the async Evaluator and the array fast path agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentopt.replay.table import ReplayTable
from agentopt.selectors.base import Evaluator, Problem
from agentopt.selectors.registry import get_strategy
from agentopt.selectors.replay import MISSING_ERROR, ReplayData, ReplayEvaluator, run_replay
from agentopt.selectors.run.loop import run_selection
from agentopt.selectors.stopping import MaxEvaluations

GPQA = Path(__file__).resolve().parents[2] / "data" / "agentopt-bench" / "gpqa.csv"


@pytest.fixture(scope="module")
def table() -> ReplayTable:
    return ReplayTable.from_csv(GPQA)


@pytest.mark.parametrize("method", ["auto", "agentopt_arm_elimination", "lucb"])
async def test_evaluator_and_fast_path_agree(table: ReplayTable, method: str) -> None:
    problem = Problem.create(table.n_arms, table.n_datapoints, seed=3)
    ev = ReplayEvaluator(table)
    assert isinstance(ev, Evaluator)
    slow = await run_selection(get_strategy(method), ev, problem)
    fast = run_replay(get_strategy(method), table, problem)
    assert slow.best == fast.best
    assert slow.evaluations == fast.evaluations == len(slow.observations)
    assert slow.spent_usd == pytest.approx(fast.spent_usd)
    assert slow.alive == fast.alive and slow.eliminated == fast.eliminated


async def test_missing_cells_skip_and_zero(table: ReplayTable) -> None:
    holes = table.subset(range(3))
    holes.score[1, :50] = np.nan
    holes.present = ~np.isnan(holes.score)
    problem = Problem.create(3, holes.n_datapoints, seed=0)
    skip = await run_selection(get_strategy("brute_force"), ReplayEvaluator(holes, "skip"), problem)
    zero = await run_selection(get_strategy("brute_force"), ReplayEvaluator(holes, "zero"), problem)
    assert skip.evaluations == 3 * holes.n_datapoints - 50
    assert zero.evaluations == 3 * holes.n_datapoints
    assert sum(o.error == MISSING_ERROR for o in zero.observations) == 50
    assert zero.stats.score_mean()[1] < skip.stats.score_mean()[1]
    fast = run_replay(get_strategy("brute_force"), ReplayData.from_table(holes, "zero"), problem)
    assert fast.evaluations == zero.evaluations


async def test_on_batch_sees_every_batch_and_budget_stops_exactly(table: ReplayTable) -> None:
    seen: list[int] = []
    problem = Problem.create(table.n_arms, table.n_datapoints, seed=1)

    async def progress(state) -> None:  # type: ignore[no-untyped-def]
        seen.append(state.evaluations)

    state = await run_selection(
        get_strategy("brute_force"),
        ReplayEvaluator(table),
        problem,
        MaxEvaluations(100),
        on_batch=progress,
    )
    assert state.evaluations == 100
    assert seen[-1] == 100 and seen == sorted(seen)


async def test_failed_observations_are_kept_with_their_score(table: ReplayTable) -> None:
    from agentopt.records import Observation

    class Failing:
        async def evaluate(self, pairs):  # type: ignore[no-untyped-def]
            return [
                Observation(
                    combo={"agent": "x"}, datapoint=d, score=0.25, cost_usd=None, error="boom"
                )
                for _, d in pairs
            ]

    problem = Problem.create(2, 10, seed=0)
    state = await run_selection(get_strategy("brute_force"), Failing(), problem)
    assert state.evaluations == 20
    assert int(state.stats.failures.sum()) == 20
    assert np.allclose(state.stats.score_mean(), 0.25)
    assert all(o.error == "boom" for o in state.observations)
