"""The published package's ``lambda_cost`` / ``lambda_latency`` with its min–max normalisation.

Its combined objective, per datapoint, is::

    combined = score − λ_cost · norm(cost) − λ_latency · norm(latency)

where ``norm`` min–max scales to [0, 1] over *all* samples of the run. Because
``norm(c) = (c − min) / (max − min)`` is affine, a combination's mean combined
objective is ``mean score − (λ_cost / range_cost) · mean $ − (λ_latency /
range_latency) · mean s + a constant shared by every combination``: ranking by
it is ranking by our :class:`~agentopt.selectors.objective.Objective` with
``cost_weight = λ_cost / range_cost`` and ``latency_weight = λ_latency /
range_latency``. So:

- :class:`NormalisedObjectiveStrategy` wraps any strategy; as observations
  arrive it keeps the running ranges and re-expresses the inner strategy's
  objective with those weights (re-deriving every stored value when a range
  widens), as the published selectors steer on the running normaliser;
- :func:`combined_objectives` computes the documented per-combination values
  with the full-run normaliser, for ``ModelResult.combined_objective`` and the
  final ranking.

Unpriced evaluations (unknown cost) count 0 in the weighted sum, as in Objective.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.records import Observation
from agentopt.selectors.base import Pair, Problem, Strategy
from agentopt.selectors.objective import Objective

__all__ = ["NormalisedObjectiveStrategy", "check_lambdas", "combined_objectives", "minmax"]


def check_lambdas(lambda_cost: float, lambda_latency: float) -> None:
    for name, v in (("lambda_cost", lambda_cost), ("lambda_latency", lambda_latency)):
        if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{name} must be a finite number ≥ 0, not {v!r}")


def minmax(values: Iterable[float]) -> tuple[float, float]:
    """(min, max) of the known values; (0, 0) when none is known."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    return (min(xs), max(xs)) if xs else (0.0, 0.0)


def _norm(v: float | None, lo: float, hi: float) -> float:
    if v is None or math.isnan(v) or hi <= lo:
        return 0.0
    return (v - lo) / (hi - lo)


def combined_objectives(
    observations: Iterable[tuple[int, Observation]],
    n_arms: int,
    lambda_cost: float,
    lambda_latency: float,
) -> list[float | None]:
    """Per arm: the mean over its observations of the documented combined value,
    normalised with the min and max over every observation of the run (None for
    an arm never observed)."""
    obs = list(observations)
    c_lo, c_hi = minmax(o.cost_usd for _, o in obs if o.cost_usd is not None)
    l_lo, l_hi = minmax(o.latency_seconds for _, o in obs if o.latency_seconds is not None)
    sums = [0.0] * n_arms
    counts = [0] * n_arms
    for arm, o in obs:
        v = o.score
        v -= lambda_cost * _norm(o.cost_usd, c_lo, c_hi)
        v -= lambda_latency * _norm(o.latency_seconds, l_lo, l_hi)
        sums[arm] += v
        counts[arm] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


class NormalisedObjectiveStrategy(Strategy):
    """``inner`` steered by the published combined objective (see the module).

    Every Strategy method is the inner strategy's; ``tell`` also tracks the running
    ranges of cost and latency, and when one widens the inner strategy's problem
    gets the new natural-unit weights and its stored values are re-derived from
    the raw scores, costs and latencies. Statistics an inner strategy keeps on
    the side (e.g. the betting wealth of ``auto``) were built under the weights
    of their time: its guarantee then holds for that sequence of objectives.
    """

    name: ClassVar[str] = "normalised"

    def __init__(self, inner: Strategy, *, lambda_cost: float, lambda_latency: float) -> None:
        check_lambdas(lambda_cost, lambda_latency)
        super().__init__()
        self.inner = inner
        self.lambda_cost = float(lambda_cost)
        self.lambda_latency = float(lambda_latency)

    # ------------------------------------------------------------------ lifecycle
    def start(self, problem: Problem) -> None:
        self.outer_problem = problem
        self._cost = np.full((problem.n_arms, problem.n_datapoints), np.nan)
        self._lat = np.full((problem.n_arms, problem.n_datapoints), np.nan)
        self._ranges = (0.0, 0.0)
        self.inner.start(dataclasses.replace(problem, objective=self._objective(0.0, 0.0)))
        self.problem = self.inner.problem
        self._started = True

    def _objective(self, cost_range: float, latency_range: float) -> Objective:
        base = self.outer_problem.objective
        return dataclasses.replace(
            base,
            cost_weight=base.cost_weight + (self.lambda_cost / cost_range if cost_range else 0.0),
            latency_weight=base.latency_weight
            + (self.lambda_latency / latency_range if latency_range else 0.0),
        )

    def _reweigh(self) -> None:
        c_lo, c_hi = minmax(self._cost[~np.isnan(self._cost)].tolist())
        l_lo, l_hi = minmax(self._lat[~np.isnan(self._lat)].tolist())
        ranges = (c_hi - c_lo, l_hi - l_lo)
        if ranges == self._ranges:
            return
        self._ranges = ranges
        objective = self._objective(*ranges)
        inner = self.inner
        inner.problem = dataclasses.replace(inner.problem, objective=objective)
        self.problem = inner.problem
        st = inner.stats
        seen = ~np.isnan(st.scores)
        values = objective.values(st.scores, self._cost, self._lat)
        st.values = np.where(seen, values, np.nan)
        st.value_sum = np.where(seen, values, 0.0).sum(axis=1)
        st.value_sumsq = np.where(seen, values**2, 0.0).sum(axis=1)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> list[Pair]:
        return self.inner.ask()

    def tell(
        self,
        arm: int,
        datapoint: int,
        score: float,
        cost_usd: float = math.nan,
        latency_s: float = math.nan,
        *,
        failed: bool = False,
    ) -> None:
        if np.isnan(self.inner.stats.scores[arm, datapoint]):
            self._cost[arm, datapoint] = cost_usd
            self._lat[arm, datapoint] = latency_s
        self.inner.tell(arm, datapoint, score, cost_usd, latency_s, failed=failed)
        self._reweigh()

    def tell_many(
        self,
        arms: np.ndarray,
        datapoints: np.ndarray,
        scores: np.ndarray,
        costs: np.ndarray,
        latencies: np.ndarray,
    ) -> None:
        for a, d, s, c, lat in zip(arms, datapoints, scores, costs, latencies, strict=True):
            self.tell(int(a), int(d), float(s), float(c), float(lat))

    def update(self) -> None:
        self.inner.update()

    # ------------------------------------------------------------------ views
    def __getattr__(self, name: str) -> Any:
        # stats, pos, round, … : the inner strategy's (only reached for names not set here)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def finished(self) -> bool:
        return self.inner.finished()

    def alive(self) -> list[int]:
        return self.inner.alive()

    def eliminated(self) -> dict[int, int]:
        return self.inner.eliminated()

    def exhausted(self) -> np.ndarray:
        return self.inner.exhausted()

    def best(self) -> int:
        return self.inner.best()

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.intervals()

    def gap_bound(self) -> float:
        return self.inner.gap_bound()
