"""LUCB (Kalyanakrishnan et al., 2012) with finite-population bounds.

Each step samples the empirical leader ``h`` and the challenger ``l`` (the other
arm with the highest upper bound) on their next datapoints; it stops when
``LCB_h ≥ UCB_l − ε``. Bounds are per arm, simultaneous over arms and sample
sizes (``δ / (K · N)``), and exact for an arm that has seen every datapoint.
Nothing is eliminated: the pick is the leader.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy
from agentopt.selectors.confidence import per_arm_radius, z_value

__all__ = ["LUCBStrategy"]


class LUCBStrategy(Strategy):
    """LUCB1-style adaptive sampling of the leader and its strongest challenger.

    ``initial``: datapoints every arm sees first (default 2 % of N, at least 3).
    ``challengers``: how many challengers are sampled per step (1 = classic LUCB;
    default ``ceil(K / 20)``: bigger batches for parallel evaluation). ``step``: datapoints each
    sampled arm advances per step (default 2 % of N, at least 1).
    """

    name: ClassVar[str] = "lucb"

    def __init__(
        self,
        *,
        initial: int | None = None,
        challengers: int | None = None,
        step: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if initial is not None and initial < 1:
            raise ConfigError("lucb: initial must be ≥ 1")
        if challengers is not None and challengers < 1:
            raise ConfigError("lucb: challengers must be ≥ 1")
        if step is not None and step < 1:
            raise ConfigError("lucb: step must be ≥ 1")
        self.initial = initial
        self.challengers = challengers
        self.step = step

    def _on_start(self) -> None:
        n = self.problem.n_datapoints
        self._initial = self.initial or max(3, math.ceil(0.02 * n))
        self._delta = (1.0 - self.confidence_) / (self.problem.n_arms * n)
        self._z = float(z_value(self._delta))
        self._init_done = False
        self._step = self.step or max(1, math.ceil(0.02 * n))
        self._challengers = self.challengers or max(1, math.ceil(self.problem.n_arms / 20))

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats
        mean = st.mean()
        r = per_arm_radius(
            st.std(), st.n, self.pos, self.problem.n_datapoints, self._delta, z=self._z
        )
        lo = np.where(st.n > 0, mean - r, -np.inf)
        hi = np.where(st.n > 0, mean + r, np.inf)
        # an arm asked on everything but never observed (all cells missing) cannot win
        empty = (st.n == 0) & self.exhausted()
        return np.where(empty, -np.inf, lo), np.where(empty, -np.inf, hi)

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
        ucb = hi.copy()
        ucb[h] = -np.inf
        order = np.argsort(-ucb, kind="stable")
        l_best = int(order[0])
        if lo[h] >= ucb[l_best] - self.epsilon_:
            self._finished = True
            return []
        n = self.problem.n_datapoints
        want = [h, *[int(j) for j in order[: self._challengers] if ucb[j] > -np.inf]]
        pairs: list[Pair] = []
        for a in want:
            if self.pos[a] < n:
                pairs.extend(self._next_prefix_pairs([a], int(self.pos[a]) + self._step))
        if not pairs:
            # leader and challengers are exact yet not separated: only ties remain
            others = [j for j in range(self.problem.n_arms) if self.pos[j] < n]
            if not others:
                self._finished = True
                return []
            pairs = self._next_prefix_pairs([others[0]], int(self.pos[others[0]]) + 1)
        self.round += 1
        return pairs
