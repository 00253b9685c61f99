"""The published anchor's arm elimination, re-implemented faithfully as a baseline.

The rule of AgentOptimizer/agentopt's ``arm_elimination`` selector (as replayed
by its ``offline_selector_sim_v2.py``):

- every active arm is evaluated on the next batch of the shuffled datapoints; the
  first batch is ``max(1, N // 10)`` datapoints and each next one doubles
  (``int(size · growth)``);
- per arm: mean ± c·SE with c = 1, SE = sample std / √n, std = 0.5 when n < 2;
- arm i is dropped when its upper bound is below the lower bound of another
  active arm (all checks against the active set as it was before the round);
  there is no correction for multiple comparisons;
- it stops when one arm is left or the data is exhausted;
- the final pick is the best mean over **all** arms, eliminated ones included
  (ties → lower mean latency). This is the published code's known flaw; it is kept
  here, and only here, so comparisons are like for like.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy

__all__ = ["AgentOptArmEliminationStrategy"]


class AgentOptArmEliminationStrategy(Strategy):
    """The published arm-elimination rule (see the module docstring)."""

    name: ClassVar[str] = "agentopt_arm_elimination"

    def __init__(
        self,
        *,
        c: float = 1.0,
        initial_fraction: float = 0.1,
        growth: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (c > 0 and 0 < initial_fraction <= 1 and growth >= 1):
            raise ConfigError(
                "agentopt_arm_elimination: need c > 0, 0 < initial_fraction ≤ 1, growth ≥ 1"
            )
        self.c = c
        self.initial_fraction = initial_fraction
        self.growth = growth

    def _on_start(self) -> None:
        self._offset = 0
        self._batch = max(1, int(self.problem.n_datapoints * self.initial_fraction))
        self._pending_check = False
        self._end = 0
        self._checked = False

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        st = self.stats
        n = st.n.astype(float)
        mean = np.where(st.n > 0, st.value_sum / np.maximum(n, 1.0), 0.0)
        std = np.where(st.n >= 2, np.nan_to_num(st.std(), nan=0.5), 0.5)
        se = std / np.sqrt(np.maximum(n, 1.0))
        return mean - self.c * se, mean + self.c * se

    def _check(self) -> None:
        lo, hi = self._bounds()
        has = self.stats.n > 0
        active = self.alive()
        dropped = []
        for i in active:
            if not has[i]:
                continue
            for j in active:
                if i != j and has[j] and hi[i] < lo[j]:
                    dropped.append(i)
                    break
        for i in dropped:
            self._eliminate(i)

    def update(self) -> None:
        if self._pending_check:
            self._pending_check = False
            self._checked = True
            self._check()
            if len(self.alive()) <= 1:
                self._finished = True

    def ask(self) -> list[Pair]:
        self._require_started()
        if self._finished:
            return []
        n = self.problem.n_datapoints
        if self._pending_check or self._checked:
            self.update()
            self._checked = False
            if self._finished:
                return []
            self._offset = self._end
            self._batch = max(1, int(self._batch * self.growth))
        if self._offset >= n or not self.alive():
            self._finished = True
            return []
        self._end = min(self._offset + self._batch, n)
        self.round += 1
        self._pending_check = True
        return self._next_prefix_pairs(self.alive(), self._end)

    def intervals(self) -> tuple[np.ndarray, np.ndarray]:
        """The rule's own mean ± c·SE per arm."""
        return self._bounds()

    def best(self) -> int:
        """The best mean over all arms, eliminated ones included (published flaw)."""
        self._require_started()
        st = self.stats
        mean = np.where(st.n > 0, st.value_sum / np.maximum(st.n, 1), 0.0)
        lat = np.nan_to_num(st.mean_latency(), nan=0.0)
        best, best_acc, best_lat = 0, -math.inf, math.inf
        for i in range(self.problem.n_arms):
            acc = float(mean[i])
            if acc > best_acc + 1e-9 or (abs(acc - best_acc) <= 1e-9 and lat[i] < best_lat - 1e-9):
                best, best_acc, best_lat = i, acc, float(lat[i])
        return best
