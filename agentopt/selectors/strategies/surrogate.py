"""Strategies that predict the combination × datapoint matrix with a surrogate model.

Every (combination, datapoint) outcome is a cell of a matrix. Datapoints differ
in difficulty for every combination alike, so the matrix is far from noise:
a surrogate fitted on the observed cells predicts the unobserved ones, and an
arm's mean over the *whole* dataset (a finite population) is estimated as
``(sum of its observed cells + sum of its predicted cells) / N``. That estimate
has variance ``σ² · m/N² · (1 + m/n)`` for ``n`` observed and ``m = N − n``
unobserved cells (σ²: the surrogate's residual variance), so an arm that has
seen every datapoint is known exactly.

:class:`SurrogateStrategy` is the shared loop: every arm sees a few paired
datapoints first; then each round refits the surrogate, eliminates arms whose
upper bound is below the leader's lower bound, stops once the leader's lower
bound clears every other arm's upper bound (minus ε), and otherwise advances the
arms its acquisition rule picks (the leader and its strongest challengers) by
a few datapoints along the shared order.

The bounds are Gaussian approximations around a fitted model, split over arms:
unlike ``auto`` they carry no anytime guarantee; the benchmark reports how they
fare on recorded data.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy, rank_key
from agentopt.selectors.confidence import z_value

__all__ = ["SurrogateStrategy", "additive_fit", "node_features"]

# smallest residual variance a bound is built from: keeps a lucky run of identical
# scores from claiming certainty
_SIGMA2_FLOOR = 0.01


def additive_fit(
    values: np.ndarray, iterations: int = 8, shrink: float = 1.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit ``y[a, d] ≈ α_a + β_d`` on the observed (non-NaN) cells.

    Returns ``(alpha, beta, sigma2)``: arm effects (NaN for an unobserved arm),
    datapoint effects shrunk toward 0 (``shrink`` pseudo-observations; 0 for a
    datapoint nobody saw), and the residual variance with its degrees of freedom.
    """
    seen = ~np.isnan(values)
    y = np.where(seen, values, 0.0)
    n_arm = seen.sum(axis=1)
    n_dp = seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(n_arm > 0, y.sum(axis=1) / np.maximum(n_arm, 1), np.nan)
    beta = np.zeros(values.shape[1])
    a0 = np.nan_to_num(alpha)
    for _ in range(iterations):
        beta = ((y - a0[:, None]) * seen).sum(axis=0) / (n_dp + shrink)
        a0 = ((y - beta[None, :]) * seen).sum(axis=1) / np.maximum(n_arm, 1)
    alpha = np.where(n_arm > 0, a0, np.nan)
    resid = np.where(seen, y - a0[:, None] - beta[None, :], 0.0)
    dof = int(seen.sum()) - int((n_arm > 0).sum()) - int((n_dp > 0).sum())
    sigma2 = float((resid**2).sum() / dof) if dof > 0 else math.inf
    return alpha, beta, sigma2


def node_features(arms: tuple[dict[str, str], ...] | None, n_arms: int) -> np.ndarray:
    """One-hot node-model features, ``(n_arms, p)``: a column per (node, model), plus
    an intercept. Without labels: the intercept only (arms share a common mean)."""
    cols: list[np.ndarray] = [np.ones(n_arms)]
    if arms:
        for node in arms[0]:
            models = list(dict.fromkeys(a.get(node, "") for a in arms))
            if len(models) > 1:
                cols.extend(np.array([a.get(node, "") == m for a in arms], float) for m in models)
    return np.column_stack(cols)


class SurrogateStrategy(Strategy):
    """The shared loop of the surrogate strategies (see the module docstring).

    ``initial``: paired datapoints every arm sees first (default 2 % of N, at
    least 2). ``step``: datapoints a picked arm advances per round (default 1 % of
    N, at least 1). ``challengers``: arms picked besides the leader per round
    (default ``ceil(K / 10)``).
    """

    name: ClassVar[str] = "surrogate"

    def __init__(
        self,
        *,
        initial: int | None = None,
        step: int | None = None,
        challengers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for opt, v in (("initial", initial), ("step", step), ("challengers", challengers)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"{self.name}: {opt} must be an integer ≥ 1, not {v!r}")
        self.initial = initial
        self.step = step
        self.challengers = challengers

    def _on_start(self) -> None:
        n, k = self.problem.n_datapoints, self.problem.n_arms
        self._initial = self.initial or max(2, math.ceil(0.02 * n))
        self._step = self.step or max(1, math.ceil(0.01 * n))
        self._challengers = self.challengers or max(1, math.ceil(k / 10))
        self._z = float(z_value((1.0 - self.confidence_) / k))
        self._init_done = False
        self._mu = np.full(k, np.nan)
        self._sd = np.full(k, np.inf)
        self._told_at_fit = -1

    # ------------------------------------------------------------------ the model
    @abstractmethod
    def _predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (mean objective, sd of that mean) over the whole dataset, per arm."""

    def _population_mean(
        self, cell_pred: np.ndarray, sigma2: float, extra_var: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Full-dataset means from observed cells plus ``cell_pred`` for the others,
        with sd ``sqrt(σ² m/N² (1 + m/n) + (m/N)² extra_var)``."""
        values = self.stats.values
        seen = ~np.isnan(values)
        n_total = self.problem.n_datapoints
        total = np.where(seen, values, cell_pred).sum(axis=1)
        n = seen.sum(axis=1).astype(float)
        m = n_total - n
        s2 = max(sigma2, _SIGMA2_FLOOR) if math.isfinite(sigma2) else 0.25
        with np.errstate(divide="ignore", invalid="ignore"):
            var = s2 * m / n_total**2 * (1.0 + np.where(n > 0, m / n, np.inf))
        var = np.where(m == 0, 0.0, var)
        if extra_var is not None:
            var = var + (m / n_total) ** 2 * extra_var
        return total / n_total, np.sqrt(var)

    def _refit(self) -> None:
        told = int(self.stats.n.sum())
        if told != self._told_at_fit:
            k = self.problem.n_arms
            self._mu, self._sd = (
                self._predict() if told else (np.full(k, np.nan), np.full(k, np.inf))
            )
            self._told_at_fit = told

    # ------------------------------------------------------------------ the loop
    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        self._refit()
        mu = np.where(np.isnan(self._mu), -np.inf, self._mu)
        lo = np.where(np.isfinite(self._sd), mu - self._z * self._sd, -np.inf)
        hi = np.where(np.isfinite(self._sd), mu + self._z * self._sd, np.inf)
        return lo, hi

    def best(self) -> int:
        self._require_started()
        self._refit()
        alive = self.alive() or list(range(self.problem.n_arms))
        if np.all(np.isnan(self._mu[alive])):
            return super().best()
        return rank_key(self._mu, self.stats.mean_cost(), self.stats.mean_latency(), alive)

    def update(self) -> None:
        if not self._init_done or self._finished:
            return
        lo, hi = self.intervals()
        alive = self.alive()
        h = self.best()
        for j in alive:
            if j != h and hi[j] < lo[h]:
                self._eliminate(j)

    def _acquire(self, alive: list[int], leader: int) -> list[int]:
        """Arms to advance this round, most wanted first (default: the leader, then
        the highest upper bounds)."""
        _, hi = self.intervals()
        others = sorted((j for j in alive if j != leader), key=lambda j: -hi[j])
        return [leader, *others[: self._challengers]]

    def ask(self) -> list[Pair]:
        self._require_started()
        if self._finished:
            return []
        n = self.problem.n_datapoints
        if not self._init_done:
            self._init_done = True
            self.round += 1
            first = self._next_prefix_pairs(range(self.problem.n_arms), self._initial)
            if first:
                return first
        self.update()
        alive = self.alive()
        h = self.best()
        lo, hi = self.intervals()
        rivals = [j for j in alive if j != h]
        if not rivals or lo[h] >= max(hi[j] for j in rivals) - self.epsilon_:
            self._finished = True
            return []
        pairs: list[Pair] = []
        for a in self._acquire(alive, h):
            if self.pos[a] < n:
                pairs.extend(self._next_prefix_pairs([a], int(self.pos[a]) + self._step))
        if not pairs:  # the picked arms are exhausted: advance any arm that is not
            rest = [j for j in alive if self.pos[j] < n]
            if not rest:
                self._finished = True
                return []
            pairs = self._next_prefix_pairs(rest, int(self.pos[rest[0]]) + self._step)
        self.round += 1
        return pairs
