"""Top-two Thompson sampling (Russo, 2016) with a finite-population posterior.

Each draw samples every arm's mean from a Gaussian posterior ``N(μ̂, s̃²/n · fpc)``
(exact once the arm saw every datapoint) and takes the argmax as the leader; with
probability ``1 − beta`` it takes the challenger instead, the winner of a second
draw among the other arms (the usual re-sample-until-different, in one draw);
the chosen arm gets its next datapoint. It stops when the leader's
lower bound clears every other upper bound (minus ε), with per-arm bounds
simultaneous over arms and sample sizes (``δ / (K · N)``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy
from agentopt.selectors.confidence import fpc, per_arm_radius, z_value

__all__ = ["TopTwoThompsonStrategy"]


class TopTwoThompsonStrategy(Strategy):
    """Top-two Thompson sampling; ``batch`` draws per ask (default ``max(16, K/2)``,
    for parallel evaluation)."""

    name: ClassVar[str] = "top_two_thompson"

    def __init__(
        self,
        *,
        beta: float = 0.5,
        batch: int | None = None,
        initial: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (0.0 < beta < 1.0):
            raise ConfigError("top_two_thompson: beta must be in (0, 1)")
        if (batch is not None and batch < 1) or (initial is not None and initial < 1):
            raise ConfigError("top_two_thompson: batch and initial must be ≥ 1")
        self.beta = beta
        self.batch = batch
        self.initial = initial

    def _on_start(self) -> None:
        n = self.problem.n_datapoints
        self._initial = self.initial or max(3, math.ceil(0.02 * n))
        self._delta = (1.0 - self.confidence_) / (self.problem.n_arms * n)
        self._z = float(z_value(self._delta))
        self._init_done = False
        self._batch = self.batch or max(16, math.ceil(self.problem.n_arms / 2))

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats
        mean = st.mean()
        r = per_arm_radius(
            st.std(), st.n, self.pos, self.problem.n_datapoints, self._delta, z=self._z
        )
        empty = (st.n == 0) & self.exhausted()
        lo = np.where(st.n > 0, mean - r, -np.inf)
        hi = np.where(st.n > 0, mean + r, np.inf)
        return np.where(empty, -np.inf, lo), np.where(empty, -np.inf, hi)

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats
        n = st.n.astype(float)
        s = np.nan_to_num(st.std(), nan=0.0)
        var = (np.maximum(n - 1.0, 0.0) * s * s + 0.25) / np.maximum(n, 1.0)
        sd = np.sqrt(var / np.maximum(n, 1.0) * fpc(self.pos, self.problem.n_datapoints))
        mean = np.nan_to_num(st.mean(), nan=0.5)
        sd = np.where(st.n > 0, sd, 1.0)
        # exhausted arms are known exactly; one with no observation at all cannot win
        empty = (st.n == 0) & self.exhausted()
        mean = np.where(empty, -np.inf, mean)
        return mean, np.where(self.exhausted(), 0.0, sd)

    def ask(self) -> list[Pair]:
        self._require_started()
        if self._finished:
            return []
        if not self._init_done:
            self._init_done = True
            self.round += 1
            first = self._next_prefix_pairs(range(self.problem.n_arms), self._initial)
            if first:
                return first
        lo, hi = self.intervals()
        h = self.best()
        others = np.delete(hi, h)
        if others.size == 0 or lo[h] >= others.max() - self.epsilon_:
            self._finished = True
            return []
        n = self.problem.n_datapoints
        open_arms = self.pos < n
        if not open_arms.any():
            self._finished = True
            return []
        mean, sd = self._posterior()
        b, k = self._batch, mean.shape[0]
        theta = mean + sd * self.rng.standard_normal((b, k))
        lead = np.argmax(theta, axis=1)
        # the challenger: the winner of a fresh draw among the other arms
        theta2 = mean + sd * self.rng.standard_normal((b, k))
        theta2[np.arange(b), lead] = -np.inf
        challenger = np.argmax(theta2, axis=1)
        take_lead = self.rng.random(b) <= self.beta
        arms = np.where(take_lead, lead, challenger)
        # an exact arm needs no more data: sample the most uncertain open arm instead
        fallback = int(np.argmax(np.where(open_arms, hi - lo, -np.inf)))
        arms = np.where(open_arms[arms], arms, fallback)
        uniq, counts = np.unique(arms, return_counts=True)
        pairs: list[Pair] = []
        for a, k in zip(uniq.tolist(), counts.tolist(), strict=True):
            pairs.extend(self._next_prefix_pairs([a], int(self.pos[a]) + k))
        self.round += 1
        return pairs
