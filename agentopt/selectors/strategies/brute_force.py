"""Brute force: every arm on every datapoint (the reference every other method saves against)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair, Strategy

__all__ = ["BruteForceStrategy"]


class BruteForceStrategy(Strategy):
    """Evaluates all arms on all datapoints, in ``rounds`` paired batches.

    The pick is the best mean (ties → cheaper, then faster); nothing is eliminated.
    """

    name: ClassVar[str] = "brute_force"

    def __init__(self, *, rounds: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (isinstance(rounds, int) and rounds >= 1):
            raise ConfigError(f"brute_force: rounds must be an integer ≥ 1, not {rounds!r}")
        self.rounds = rounds

    def ask(self) -> list[Pair]:
        self._require_started()
        n = self.problem.n_datapoints
        step = max(1, math.ceil(n / self.rounds))
        upto = int(self.pos.min()) + step
        pairs = self._next_prefix_pairs(range(self.problem.n_arms), upto)
        if not pairs:
            self._finished = True
        else:
            self.round += 1
        return pairs
