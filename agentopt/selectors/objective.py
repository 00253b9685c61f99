"""What "best" means: the per-item objective a selector maximises.

The default maximises the mean score. Cost and latency enter in *natural units*
(dollars and seconds per item), never through a running min–max normalisation,
so an arm's objective value does not move when another arm is added or observed::

    Objective()                                   # mean score
    Objective(cost_weight=10.0)                   # score − 10·$ per item
    Objective(latency_weight=0.01)                # score − 0.01·s per item
    Objective(max_cost_per_item=0.002)            # constraint: arms above 0.2¢/item are infeasible
    Objective.cheapest_within(0.01)               # the cheapest arm within 1 point of the best score

``value()`` turns one evaluation (score, $, s) into its objective value; the
selection compares arms on the mean of these values. A NaN cost or latency (an
unpriced model) counts as 0 in the weighted sum and is ignored by constraints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agentopt.exceptions import ConfigError

__all__ = ["Objective"]


@dataclass(frozen=True)
class Objective:
    """Maximise ``score − cost_weight·$ − latency_weight·s`` per item.

    - ``max_cost_per_item`` / ``max_latency_per_item``: an arm whose mean $ (s)
      per item exceeds the limit is infeasible and eliminated.
    - ``within``: when set, the pick is the *cheapest* arm whose mean score is
      within ``within`` of the best mean score (cost decides, quality only filters).
    """

    cost_weight: float = 0.0
    latency_weight: float = 0.0
    max_cost_per_item: float | None = None
    max_latency_per_item: float | None = None
    within: float | None = None

    def __post_init__(self) -> None:
        for name in ("cost_weight", "latency_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"Objective.{name} must be a finite number ≥ 0, not {v!r}")
        for name in ("max_cost_per_item", "max_latency_per_item", "within"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ConfigError(
                    f"Objective.{name} must be None or a finite number ≥ 0, not {v!r}"
                )
        if self.within is not None and (self.cost_weight or self.latency_weight):
            raise ConfigError("Objective.within ranks by cost; it cannot be combined with weights")

    @classmethod
    def cheapest_within(cls, epsilon: float, **constraints: float | None) -> Objective:
        """The cheapest arm whose mean score is within ``epsilon`` of the best."""
        return cls(within=epsilon, **constraints)  # type: ignore[arg-type]

    @classmethod
    def coerce(cls, value: Objective | dict[str, float] | None) -> Objective:
        """``None`` → mean score; a dict → ``Objective(**dict)``; an Objective as is."""
        if value is None:
            return cls()
        if isinstance(value, Objective):
            return value
        if isinstance(value, dict):
            try:
                return cls(**value)
            except TypeError as exc:
                raise ConfigError(f"objective: {exc}") from None
        raise ConfigError(
            f"objective must be an Objective, a dict or None, not {type(value).__name__}"
        )

    @property
    def is_score_only(self) -> bool:
        """True when the objective value equals the score (no weights)."""
        return self.cost_weight == 0.0 and self.latency_weight == 0.0

    @property
    def has_constraints(self) -> bool:
        return self.max_cost_per_item is not None or self.max_latency_per_item is not None

    def value(self, score: float, cost_usd: float, latency_s: float) -> float:
        """The objective value of one evaluation."""
        v = score
        if self.cost_weight and not math.isnan(cost_usd):
            v -= self.cost_weight * cost_usd
        if self.latency_weight and not math.isnan(latency_s):
            v -= self.latency_weight * latency_s
        return v

    def values(self, score: np.ndarray, cost_usd: np.ndarray, latency_s: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`value`."""
        v = np.asarray(score, dtype=float)
        if self.cost_weight:
            v = v - self.cost_weight * np.nan_to_num(cost_usd, nan=0.0)
        if self.latency_weight:
            v = v - self.latency_weight * np.nan_to_num(latency_s, nan=0.0)
        return v

    def value_range(self) -> float:
        """Width of the range a per-item value can take, for range-based bounds.

        Scores lie in [0, 1]; weighted costs and latencies widen the range by an
        amount that is not known in advance, so range-based bounds use 1 for the
        score-only objective and fall back to variance-based bounds otherwise.
        """
        return 1.0

    def feasible(self, mean_cost: np.ndarray, mean_latency: np.ndarray) -> np.ndarray:
        """Which arms meet the constraints, judged on their observed means (NaN passes)."""
        ok = np.ones(np.shape(mean_cost), dtype=bool)
        if self.max_cost_per_item is not None:
            ok &= ~(np.nan_to_num(mean_cost, nan=-np.inf) > self.max_cost_per_item)
        if self.max_latency_per_item is not None:
            ok &= ~(np.nan_to_num(mean_latency, nan=-np.inf) > self.max_latency_per_item)
        return ok
