"""Per-arm running statistics and the selection state the stopping rules read.

:class:`ArmStats` keeps numpy arrays (count, sums, sums of squares, cost,
latency) plus the ``(n_arms, n_datapoints)`` matrix of objective values, which
paired comparisons need. Strategies own one; the selection loop owns another in
:class:`SelectionState`, so what was spent is counted by the loop, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from agentopt.records import Observation

if TYPE_CHECKING:
    from agentopt.selectors.base import Problem

__all__ = ["ArmStats", "SelectionState"]


class ArmStats:
    """Sums per arm over the evaluations told so far; a pair is counted once.

    ``values[i, j]`` is arm i's objective value on datapoint j (NaN: not seen);
    ``scores[i, j]`` the raw score. Cost and latency sums skip NaN (unknown) values
    and keep their own counts.
    """

    def __init__(self, n_arms: int, n_datapoints: int) -> None:
        self.n_arms = n_arms
        self.n_datapoints = n_datapoints
        self.n = np.zeros(n_arms, dtype=np.int64)
        self.value_sum = np.zeros(n_arms)
        self.value_sumsq = np.zeros(n_arms)
        self.score_sum = np.zeros(n_arms)
        self.cost_sum = np.zeros(n_arms)
        self.cost_n = np.zeros(n_arms, dtype=np.int64)
        self.latency_sum = np.zeros(n_arms)
        self.latency_n = np.zeros(n_arms, dtype=np.int64)
        self.failures = np.zeros(n_arms, dtype=np.int64)
        self.values = np.full((n_arms, n_datapoints), np.nan)
        self.scores = np.full((n_arms, n_datapoints), np.nan)

    # ------------------------------------------------------------------ updates
    def add(
        self,
        arm: int,
        datapoint: int,
        score: float,
        value: float,
        cost_usd: float,
        latency_s: float,
        failed: bool = False,
    ) -> bool:
        """Record one evaluation; False (and nothing counted) if the pair was seen."""
        if not math.isnan(self.scores[arm, datapoint]):
            return False
        self.scores[arm, datapoint] = score
        self.values[arm, datapoint] = value
        self.n[arm] += 1
        self.value_sum[arm] += value
        self.value_sumsq[arm] += value * value
        self.score_sum[arm] += score
        if not math.isnan(cost_usd):
            self.cost_sum[arm] += cost_usd
            self.cost_n[arm] += 1
        if not math.isnan(latency_s):
            self.latency_sum[arm] += latency_s
            self.latency_n[arm] += 1
        if failed:
            self.failures[arm] += 1
        return True

    def add_many(
        self,
        arms: np.ndarray,
        datapoints: np.ndarray,
        scores: np.ndarray,
        values: np.ndarray,
        costs: np.ndarray,
        latencies: np.ndarray,
    ) -> np.ndarray:
        """Vectorised :meth:`add` for distinct pairs; returns the mask of pairs counted."""
        arms = np.asarray(arms, dtype=np.int64)
        datapoints = np.asarray(datapoints, dtype=np.int64)
        new = np.isnan(self.scores[arms, datapoints])
        if not new.all():
            arms, datapoints = arms[new], datapoints[new]
            scores, values, costs, latencies = scores[new], values[new], costs[new], latencies[new]
        self.scores[arms, datapoints] = scores
        self.values[arms, datapoints] = values
        k = self.n_arms
        self.n += np.bincount(arms, minlength=k)
        self.value_sum += np.bincount(arms, weights=values, minlength=k)
        self.value_sumsq += np.bincount(arms, weights=values * values, minlength=k)
        self.score_sum += np.bincount(arms, weights=scores, minlength=k)
        c_ok = ~np.isnan(costs)
        self.cost_sum += np.bincount(arms[c_ok], weights=costs[c_ok], minlength=k)
        self.cost_n += np.bincount(arms[c_ok], minlength=k)
        l_ok = ~np.isnan(latencies)
        self.latency_sum += np.bincount(arms[l_ok], weights=latencies[l_ok], minlength=k)
        self.latency_n += np.bincount(arms[l_ok], minlength=k)
        return new

    # ------------------------------------------------------------------ summaries
    def mean(self) -> np.ndarray:
        """Mean objective value per arm (NaN where nothing was seen)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.value_sum / np.maximum(self.n, 1), np.nan)

    def score_mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n > 0, self.score_sum / np.maximum(self.n, 1), np.nan)

    def std(self) -> np.ndarray:
        """Sample standard deviation of the objective value (NaN when n < 2)."""
        n = self.n.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.value_sumsq - self.value_sum**2 / n) / (n - 1)
        return np.where(self.n >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)

    def mean_cost(self) -> np.ndarray:
        """Mean $ per evaluated item (NaN where no cost is known)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.cost_n > 0, self.cost_sum / np.maximum(self.cost_n, 1), np.nan)

    def mean_latency(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.latency_n > 0, self.latency_sum / np.maximum(self.latency_n, 1), np.nan
            )

    @property
    def evaluations(self) -> int:
        return int(self.n.sum())


@dataclass
class SelectionState:
    """Everything the loop knows: what was evaluated and spent, and the strategy's view.

    ``stats`` counts every evaluation the loop performed, once. ``observations``
    holds the Observation objects of the live path (the replay fast path keeps
    only arrays). ``asked[i]`` is how many datapoints of the shuffled order arm i
    has been asked on (a missing replay cell is asked but not evaluated).
    The strategy's view (``alive``, ``best``, ``lower``/``upper``, ``gap_upper``)
    is refreshed after every batch.
    """

    problem: Problem
    stats: ArmStats
    observations: list[Observation] = field(default_factory=list)
    evaluations: int = 0
    spent_usd: float = 0.0
    rounds: int = 0
    asked: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    alive: list[int] = field(default_factory=list)
    eliminated: dict[int, int] = field(default_factory=dict)
    best: int | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    gap_upper: float = math.inf
    strategy_finished: bool = False
    stop_reason: str | None = None

    @classmethod
    def empty(cls, problem: Problem) -> SelectionState:
        return cls(
            problem=problem,
            stats=ArmStats(problem.n_arms, problem.n_datapoints),
            asked=np.zeros(problem.n_arms, dtype=np.int64),
            alive=list(range(problem.n_arms)),
        )

    @property
    def data_exhausted(self) -> bool:
        """Every alive arm has been asked on every datapoint."""
        if not self.alive:
            return True
        return bool((self.asked[self.alive] >= self.problem.n_datapoints).all())
