"""Paired, finite-population-aware elimination with a union bound (``auto``'s schedule,
its ``test="union"`` variant and its ε certificate).

All alive arms are evaluated on the same prefix of the shuffled order; at fixed
checkpoints ``n_1 < n_2 < … < n_R = N`` every alive arm j is compared with the
current leader b on the datapoints both have seen, through the paired differences
``d = value_b − value_j``. Arm j is eliminated when the lower confidence bound on
``μ_b − μ_j`` is above 0 (above ``within`` for the cheapest-within objective).

Why paired: arms are strongly correlated across datapoints (hard questions are
hard for every model), so the variance of the difference is far below the sum of
the two variances. Why finite population: the dataset is the population, so the
bound shrinks by ``(N − n)/(N − 1)`` and is exact once both arms saw everything.

Confidence: the best arm is lost only if one of its ``K − 1`` comparisons errs at
one of the ``R − 1`` inexact checkpoints (the last one sees everything), so each
one-sided test runs at ``δ / ((K − 1)·(R − 1))`` (union bound over arms and
rounds), ``δ = 1 − confidence``. ``correction="none"`` drops the ``K − 1`` factor:
each comparison then holds 1 − δ across rounds, but the pick does not across arms.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy
from agentopt.selectors.confidence import (
    bernstein_serfling_radius,
    hoeffding_serfling_radius,
    normal_radius,
)

__all__ = ["BoundKind", "CheckpointElimination", "PairedEliminationStrategy", "checkpoints"]

BoundKind = Literal["normal", "bernstein", "hoeffding"]


def checkpoints(n: int, first: int, growth: float) -> list[int]:
    """Increasing prefix sizes from ``first`` growing by ``growth`` (≥ +1), ending at n."""
    out: list[int] = []
    c = max(1, min(first, n))
    while c < n:
        out.append(c)
        c = max(c + 1, math.ceil(c * growth))
    out.append(n)
    return out


class CheckpointElimination(Strategy):
    """Elimination on a checkpoint schedule: every alive arm is evaluated up to the
    next checkpoint of the shuffled order, then :meth:`_check` eliminates.

    Subclasses set ``self._checkpoints`` (from :func:`checkpoints`), ``self._next
    = 0`` and ``self._pending = False`` in ``_on_start`` and implement ``_check``.
    """

    _checkpoints: list[int]
    _next: int
    _pending: bool

    def _check(self) -> None:
        raise NotImplementedError

    def update(self) -> None:
        if self._pending:
            self._pending = False
            self._check()

    def ask(self) -> list[Pair]:
        self._require_started()
        if self._finished:
            return []
        self.update()
        if self._finished:
            return []
        alive = self.alive()
        while self._next < len(self._checkpoints):
            upto = self._checkpoints[self._next]
            self._next += 1
            pairs = self._next_prefix_pairs(alive, upto)
            if pairs:
                self.round += 1
                self._pending = True
                return pairs
        self._finished = True
        return []


class PairedEliminationStrategy(CheckpointElimination):
    """Paired successive elimination against the leader (see the module docstring).

    Options: ``initial_fraction`` (first checkpoint as a share of N, at least
    ``min_initial`` datapoints), ``growth`` (checkpoint ratio), ``bound``
    (``normal`` CLT with finite-population correction, ``bernstein`` or
    ``hoeffding``: the Serfling-type finite-sample bounds), ``correction``
    (``bonferroni`` over the K − 1 comparisons, or ``none``), ``prior`` (weight
    of the max-variance pseudo-observation in the normal bound), ``against``
    (``all`` alive arms may eliminate an arm, or only the ``leader``).
    """

    name: ClassVar[str] = "paired_elimination"

    def __init__(
        self,
        *,
        initial_fraction: float = 0.1,
        min_initial: int = 10,
        growth: float = 1.5,
        bound: BoundKind = "normal",
        correction: str = "bonferroni",
        prior: float = 1.0,
        against: str = "all",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (0.0 < initial_fraction <= 1.0):
            raise ConfigError(f"{self.name}: initial_fraction must be in (0, 1]")
        if not growth > 1.0:
            raise ConfigError(f"{self.name}: growth must be > 1")
        if bound not in ("normal", "bernstein", "hoeffding"):
            raise ConfigError(f"{self.name}: bound must be normal, bernstein or hoeffding")
        if not (isinstance(min_initial, int) and min_initial >= 1):
            raise ConfigError(f"{self.name}: min_initial must be an integer ≥ 1")
        if correction not in ("bonferroni", "none"):
            raise ConfigError(f"{self.name}: correction must be 'bonferroni' or 'none'")
        if against not in ("all", "leader"):
            raise ConfigError(f"{self.name}: against must be 'all' or 'leader'")
        if not prior >= 0:
            raise ConfigError(f"{self.name}: prior must be ≥ 0")
        self.initial_fraction = initial_fraction
        self.min_initial = min_initial
        self.growth = growth
        self.bound = bound
        self.correction = correction
        self.prior = prior
        self.against = against

    # ------------------------------------------------------------------ schedule
    def _on_start(self) -> None:
        n = self.problem.n_datapoints
        first = max(self.min_initial, math.ceil(self.initial_fraction * n))
        self._checkpoints = checkpoints(n, first, self.growth)
        self._next = 0  # index of the next checkpoint to reach
        self._pending = False
        k = max(1, self.problem.n_arms - 1) if self.correction == "bonferroni" else 1
        # the last checkpoint sees every datapoint: its comparisons are exact, no δ needed
        self._tests = k * max(1, len(self._checkpoints) - 1)
        self._delta = (1.0 - self.confidence_) / self._tests
        self._gap = math.inf

    # ------------------------------------------------------------------ the test
    def paired_matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(alive arms, D, R): ``D[a, c]`` is the mean of ``value_a − value_c`` over
        the datapoints both alive arms a and c have seen (the difference of their
        exact means once both saw everything), ``R[a, c]`` the radius of its
        one-sided bound (0 when both arms saw everything, inf when no overlap)."""
        alive = np.asarray(self.alive(), dtype=np.int64)
        n_dp = self.problem.n_datapoints
        upto = int(self.pos[alive].max()) if alive.size else 0
        cols = self.problem.order[:upto]
        v = self.stats.values[np.ix_(alive, cols)]
        m = (~np.isnan(v)).astype(float)
        vz = np.where(m > 0, v, 0.0)
        n = m @ m.T
        s_ac = vz @ m.T  # Σ value_a over the items both saw
        q_ac = (vz * vz) @ m.T
        cross = vz @ vz.T
        with np.errstate(invalid="ignore", divide="ignore"):
            nn = np.maximum(n, 1.0)
            diff_sum = s_ac - s_ac.T
            d = diff_sum / nn
            sq = q_ac + q_ac.T - 2.0 * cross  # Σ (value_a − value_c)²
            var = np.maximum(sq - diff_sum * d, 0.0) / np.maximum(n - 1.0, 1.0)
        std = np.sqrt(var)
        width = 2.0 * self.problem.objective.value_range()
        pos = self.pos[alive]
        seen = np.minimum(pos[:, None], pos[None, :]).astype(float)
        if self.bound == "normal":
            r = normal_radius(std, n, n_dp, self._delta, width=width, seen=seen, prior=self.prior)
        elif self.bound == "bernstein":
            r = bernstein_serfling_radius(std, n, n_dp, self._delta, width=width)
        else:
            r = hoeffding_serfling_radius(n, n_dp, self._delta, width=width)
        done = pos >= n_dp
        both_done = done[:, None] & done[None, :]
        # two arms that saw everything are compared on their exact means (each over
        # its own observed cells: a missing cell under "skip" is not part of an arm)
        own = self.stats.mean()[alive]
        d = np.where(both_done, own[:, None] - own[None, :], np.where(n > 0, d, 0.0))
        d = np.nan_to_num(d, nan=0.0)
        r = np.where(both_done, 0.0, r)
        r = np.where((n > 0) | both_done, r, np.inf)
        return alive, d, r

    def _check(self) -> None:
        obj = self.problem.objective
        if obj.has_constraints:
            ok = obj.feasible(self.stats.mean_cost(), self.stats.mean_latency())
            for i in self.alive():
                if not ok[i] and self.stats.n[i] > 0 and len(self.alive()) > 1:
                    self._eliminate(i)
        alive, d, r = self.paired_matrix()
        lcb = d - r  # lcb[a, c]: lower bound on μ_a − μ_c
        np.fill_diagonal(lcb, -np.inf)
        margin = obj.within or 0.0
        if self.against == "leader":
            b = self.best()
            beaten = lcb[alive == b][0] > margin
        else:
            beaten = (lcb > margin).any(axis=0)
        for j in alive[beaten]:
            self._eliminate(int(j))
        self._gap = self.gap_bound()
        if len(self.alive()) <= 1 or (self.epsilon_ > 0 and self._gap <= self.epsilon_):
            self._finished = True

    def gap_bound(self) -> float:
        """Upper bound on (best alive mean − the pick's mean), from the paired test."""
        if len(self.alive()) <= 1:
            return 0.0
        b = self.best()
        alive, d, r = self.paired_matrix()
        row = alive == b
        ucb = (-(d - r))[row][0]  # upper bound on μ_c − μ_b
        return float(np.max(ucb[~row]))
