"""Successive elimination (Even-Dar et al., 2006) with finite-population bounds.

Every alive arm advances on the same shuffled prefix; at each checkpoint an arm
whose upper bound is below the best lower bound is eliminated. Bounds are *per
arm* (unpaired) and simultaneous over arms and checkpoints: each at
``δ / (K · R)``. Compare ``auto``, which tests paired differences instead.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.confidence import per_arm_radius, z_value
from agentopt.selectors.strategies.paired_elimination import CheckpointElimination, checkpoints

__all__ = ["SuccessiveEliminationStrategy"]


class SuccessiveEliminationStrategy(CheckpointElimination):
    """Per-arm confidence intervals; drop arms whose UCB < the best LCB."""

    name: ClassVar[str] = "successive_elimination"

    def __init__(
        self,
        *,
        initial_fraction: float = 0.05,
        min_initial: int = 5,
        growth: float = 1.25,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (0.0 < initial_fraction <= 1.0 and growth > 1.0 and min_initial >= 1):
            raise ConfigError(
                "successive_elimination: need 0 < initial_fraction ≤ 1, growth > 1, min_initial ≥ 1"
            )
        self.initial_fraction = initial_fraction
        self.min_initial = min_initial
        self.growth = growth

    def _on_start(self) -> None:
        n = self.problem.n_datapoints
        first = max(self.min_initial, math.ceil(self.initial_fraction * n))
        self._checkpoints = checkpoints(n, first, self.growth)
        self._next = 0
        self._pending = False
        self._delta = (1.0 - self.confidence_) / (self.problem.n_arms * len(self._checkpoints))
        self._z = float(z_value(self._delta))

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-arm bounds at the level the eliminations use (δ / (K·R))."""
        st = self.stats
        mean = st.mean()
        r = per_arm_radius(
            st.std(), st.n, self.pos, self.problem.n_datapoints, self._delta, z=self._z
        )
        lo = np.where(st.n > 0, mean - r, -np.inf)
        hi = np.where(st.n > 0, mean + r, np.inf)
        return lo, hi

    def _check(self) -> None:
        lo, hi = self.intervals()
        alive = self.alive()
        best_lo = max(lo[i] for i in alive)
        margin = self.problem.objective.within or 0.0
        for j in alive:
            if hi[j] < best_lo - margin:
                self._eliminate(j)
        if len(self.alive()) <= 1 or (self.epsilon_ > 0 and self.gap_bound() <= self.epsilon_):
            self._finished = True
