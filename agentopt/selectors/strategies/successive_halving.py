"""Successive halving (Karnin et al., 2013): a fixed budget of evaluations.

The budget (``budget`` evaluations, or ``budget_fraction`` of all cells) is split
evenly over ``ceil(log2 K)`` rounds; in each round every survivor advances on the
same shuffled prefix by its share, then the better half (by mean; ties → cheaper,
then faster) survives. It gives no confidence guarantee: it spends the budget.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy

__all__ = ["SuccessiveHalvingStrategy"]


class SuccessiveHalvingStrategy(Strategy):
    """Fixed-budget successive halving."""

    name: ClassVar[str] = "successive_halving"

    def __init__(
        self, *, budget: int | None = None, budget_fraction: float = 0.3, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if budget is not None and budget < 1:
            raise ConfigError("successive_halving: budget must be ≥ 1 evaluation")
        if not (0.0 < budget_fraction <= 1.0):
            raise ConfigError("successive_halving: budget_fraction must be in (0, 1]")
        self.budget = budget
        self.budget_fraction = budget_fraction

    def _on_start(self) -> None:
        k, n = self.problem.n_arms, self.problem.n_datapoints
        self._budget = self.budget or max(1, int(self.budget_fraction * k * n))
        self._rounds = max(1, math.ceil(math.log2(k))) if k > 1 else 1
        self._pending = False

    def _halve(self) -> None:
        alive = self.alive()
        keep = max(1, math.ceil(len(alive) / 2))
        st = self.stats
        mean = np.nan_to_num(st.mean(), nan=-np.inf)
        cost = np.nan_to_num(st.mean_cost(), nan=np.inf)
        lat = np.nan_to_num(st.mean_latency(), nan=np.inf)
        ranked = sorted(alive, key=lambda i: (-mean[i], cost[i], lat[i], i))
        for i in ranked[keep:]:
            self._eliminate(i)

    def update(self) -> None:
        if self._pending:
            self._pending = False
            self._halve()

    def ask(self) -> list[Pair]:
        self._require_started()
        if self._finished:
            return []
        self.update()
        alive = self.alive()
        if len(alive) <= 1 and self.round > 0:
            self._finished = True
            return []
        n = self.problem.n_datapoints
        while self.round < self._rounds:
            per_arm = max(1, self._budget // (len(alive) * self._rounds))
            upto = min(n, int(self.pos[alive].max()) + per_arm)
            self.round += 1
            pairs = self._next_prefix_pairs(alive, upto)
            if pairs:
                self._pending = True
                return pairs
            self._halve()
            alive = self.alive()
            if len(alive) <= 1:
                break
        self._finished = True
        return []
