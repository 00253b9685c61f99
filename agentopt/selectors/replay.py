"""Selection on a recorded :class:`ReplayTable`: an Evaluator, and an array fast path.

- :class:`ReplayEvaluator` answers the async :class:`Evaluator` protocol from the
  table (Observations), so :func:`run_selection` can replay a recording exactly
  as it runs a live agent.
- :func:`run_replay` is the synchronous fast path the benchmark uses: no
  Observation objects, only numpy lookups, one vectorised ``tell_many`` per batch.

Missing cells (a run that failed and was not scored): ``missing="skip"`` (the
default, as published) gives the strategy no observation for that pair, and it is
not an evaluation; ``missing="zero"`` scores it 0 at cost 0 (an evaluation).

Example::

    table = ReplayTable.from_csv("data/agentopt-bench/gpqa.csv")
    data = ReplayData.from_table(table)
    problem = Problem.create(table.n_arms, table.n_datapoints, seed=0)
    state = run_replay(get_strategy("auto"), data, problem)
    table.labels[state.best], state.evaluations, state.spent_usd
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.records import Observation
from agentopt.replay.table import ReplayTable
from agentopt.selectors.base import Pair, Problem, Strategy
from agentopt.selectors.run.loop import interleave, refresh_view, truncate_batch
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import StoppingRule

__all__ = ["MISSING_ERROR", "ReplayData", "ReplayEvaluator", "run_replay"]

#: The ``error`` of an Observation made for a missing cell under ``missing="zero"``.
MISSING_ERROR = "missing cell (scored 0)"


@dataclass(frozen=True, eq=False)
class ReplayData:
    """A table's arrays prepared for one missing-cell policy.

    ``present[i, j]``: the pair is an evaluation; ``score``/``cost``/``latency``
    hold its outcome (0 score and cost for a missing cell under ``zero``).
    """

    score: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    present: np.ndarray
    missing: str

    @classmethod
    def from_table(cls, table: ReplayTable, missing: str = "skip") -> ReplayData:
        if missing not in ("skip", "zero"):
            raise ConfigError(f"missing must be 'skip' or 'zero', not {missing!r}")
        pres = table.present
        if missing == "zero":
            return cls(
                score=np.where(pres, table.score, 0.0),
                cost=np.where(pres, np.nan_to_num(table.cost_usd, nan=0.0), 0.0),
                latency=np.where(pres, table.latency_s, np.nan),
                present=np.ones_like(pres),
                missing=missing,
            )
        return cls(
            score=table.score,
            cost=table.cost_usd,
            latency=table.latency_s,
            present=pres.copy(),
            missing=missing,
        )

    @property
    def n_arms(self) -> int:
        return int(self.score.shape[0])

    @property
    def n_datapoints(self) -> int:
        return int(self.score.shape[1])


class ReplayEvaluator:
    """The :class:`Evaluator` of a recorded table (``missing``: ``skip`` or ``zero``)."""

    def __init__(self, table: ReplayTable, missing: str = "skip") -> None:
        if missing not in ("skip", "zero"):
            raise ConfigError(f"missing must be 'skip' or 'zero', not {missing!r}")
        self.table = table
        self.missing = missing

    async def evaluate(self, pairs: list[Pair]) -> Sequence[Observation | None]:
        out: list[Observation | None] = []
        for arm, dp in pairs:
            obs = self.table.cell(arm, dp)
            if obs is None and self.missing == "zero":
                obs = Observation(
                    combo=dict(self.table.combos[arm]),
                    datapoint=self.table.datapoints[dp],
                    score=0.0,
                    cost_usd=0.0,
                    latency_seconds=None,
                    error=MISSING_ERROR,
                )
            out.append(obs)
        return out


def run_replay(
    strategy: Strategy,
    data: ReplayData | ReplayTable,
    problem: Problem,
    stopping: StoppingRule | None = None,
    *,
    missing: str = "skip",
    track_stats: bool = True,
) -> SelectionState:
    """Run ``strategy`` against recorded outcomes, synchronously, on arrays.

    ``stopping`` None: the strategy alone decides when to stop. With
    ``track_stats=False`` the state keeps only counts and spend (the benchmark's
    setting: fastest).
    """
    if isinstance(data, ReplayTable):
        data = ReplayData.from_table(data, missing)
    if (data.n_arms, data.n_datapoints) != (problem.n_arms, problem.n_datapoints):
        raise ConfigError(
            f"the problem is {problem.n_arms}×{problem.n_datapoints} but the table is "
            f"{data.n_arms}×{data.n_datapoints}"
        )
    strategy.start(problem)
    state = SelectionState.empty(problem)
    bounds = stopping is not None and stopping.needs_bounds
    if stopping is not None:
        refresh_view(state, strategy, bounds)
    objective = problem.objective
    reason: str | None = None
    while True:
        if stopping is not None:
            reason = stopping.should_stop(state)
            if reason is not None:
                break
        pairs = strategy.ask()
        if not pairs:
            reason = "selection finished"
            break
        cut = False
        if stopping is not None:
            pairs = interleave(pairs)
            n_allow, usd_allow = stopping.allowance(state)
            costs = None
            if usd_allow is not None:
                arr = np.asarray(pairs, dtype=np.int64)
                costs = np.where(
                    data.present[arr[:, 0], arr[:, 1]],
                    np.nan_to_num(data.cost[arr[:, 0], arr[:, 1]], nan=0.0),
                    0.0,
                )
            pairs, cut = truncate_batch(pairs, n_allow, usd_allow, costs)
        if pairs:
            arr = np.asarray(pairs, dtype=np.int64)
            a, d = arr[:, 0], arr[:, 1]
            state.asked += np.bincount(a, minlength=problem.n_arms)
            pres = data.present[a, d]
            if not pres.all():
                a, d = a[pres], d[pres]
            s, c, lat = data.score[a, d], data.cost[a, d], data.latency[a, d]
            strategy.tell_many(a, d, s, c, lat)
            if track_stats:
                new = state.stats.add_many(a, d, s, objective.values(s, c, lat), c, lat)
                if not new.all():
                    c = c[new]
            state.evaluations += int(c.shape[0])
            state.spent_usd += float(np.nansum(c))
            strategy.update()
            state.rounds += 1
            if stopping is not None:
                refresh_view(state, strategy, bounds)
        if cut:
            reason = (stopping.should_stop(state) if stopping else None) or "budget reached"
            break
    refresh_view(state, strategy, track_stats)
    state.stop_reason = reason
    return state
