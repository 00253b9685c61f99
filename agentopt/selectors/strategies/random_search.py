"""Random search: evaluate a random subset of the arms fully, pick the best of them."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy

__all__ = ["RandomSearchStrategy"]


class RandomSearchStrategy(Strategy):
    """Samples ``ceil(fraction · n_arms)`` arms with the seed and evaluates them on
    every datapoint; the arms not sampled count as eliminated in round 0."""

    name: ClassVar[str] = "random_search"

    def __init__(self, *, fraction: float = 0.25, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (0.0 < fraction <= 1.0):
            raise ConfigError(f"random_search: fraction must be in (0, 1], not {fraction!r}")
        self.fraction = fraction

    def _on_start(self) -> None:
        k = self.problem.n_arms
        m = max(1, min(k, math.ceil(k * self.fraction)))
        chosen = set(int(i) for i in self.rng.choice(k, size=m, replace=False))
        for i in range(k):
            if i not in chosen:
                self._eliminate(i)
        self.round = 1

    def ask(self) -> list[Pair]:
        self._require_started()
        pairs = self._next_prefix_pairs(self.alive(), self.problem.n_datapoints)
        if not pairs:
            self._finished = True
        return pairs
