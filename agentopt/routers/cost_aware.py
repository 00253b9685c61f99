"""CostAwareRouter: Thompson sampling that pays attention to what arms cost.

Two rules, combinable:

- ``lambda_cost=λ``: maximise the sampled reward minus ``λ × mean cost`` (USD
  per call for flat candidates, per datapoint for combinations);
- ``tolerance=τ``: among the arms whose sampled objective is within τ of the
  best sample, take the cheapest. Sampling (not posterior means) keeps it
  exploring; as posteriors narrow this becomes "the cheapest arm whose mean
  reward is within τ of the best".

An arm whose cost is still unknown costs ``prior_cost_usd[arm]`` if given,
else the mean cost of the arms seen so far. ``budget_usd`` (overall) and
``model_budget_usd`` are enforced by the base router from observed spend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Candidates
from agentopt.routers.bandits import ThompsonRouter
from agentopt.routers.context import RouteContext
from agentopt.routers.registry import register_router

__all__ = ["CostAwareRouter"]


@register_router("cost_aware")
class CostAwareRouter(ThompsonRouter):
    """Thompson sampling on ``reward − λ·cost``, then the cheapest arm within
    ``tolerance`` of the best (default tolerance 0.02: a saving is worth two
    points of score; ``tolerance=0`` with ``lambda_cost=0`` is plain Thompson)."""

    def __init__(
        self,
        candidates: Candidates,
        *,
        lambda_cost: float = 0.0,
        tolerance: float | None = 0.02,
        prior_cost_usd: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(candidates, **kwargs)
        if not lambda_cost >= 0:
            raise ConfigError(f"lambda_cost must be >= 0, got {lambda_cost!r}")
        if tolerance is not None and not tolerance >= 0:
            raise ConfigError(f"tolerance must be >= 0 or None, got {tolerance!r}")
        self.lambda_cost = float(lambda_cost)
        self.tolerance = tolerance
        self.prior_cost_usd = dict(prior_cost_usd or {})
        unknown = [k for k in self.prior_cost_usd if k not in self.arms.index]
        if unknown:
            raise ConfigError(f"prior_cost_usd: unknown arm(s) {unknown}")
        self._prior_cost = np.array(
            [self.prior_cost_usd.get(lab, np.nan) for lab in self.arms.labels], dtype=float
        )

    def expected_cost(self) -> np.ndarray:
        """Per-arm expected cost in USD: observed mean, else prior, else the mean
        of the observed arms (0 before anything was observed)."""
        seen = self._cost_n > 0
        cost = np.where(seen, self._cost_sum / np.maximum(self._cost_n, 1.0), self._prior_cost)
        missing = np.isnan(cost)
        if missing.any():
            fill = float(cost[seen].mean()) if seen.any() else 0.0
            cost[missing] = fill
        return cost

    def _sample(self, allowed: np.ndarray | None) -> np.ndarray:
        n, s = self._n, self._sum
        if allowed is not None:
            n, s = n[allowed], s[allowed]
        if self.gaussian:
            sd = self.exploration * np.sqrt(self.noise_var() / (n + 1.0))
            out: np.ndarray = (s + 0.5) / (n + 1.0) + sd * self.rng.standard_normal(n.size)
            return out
        a0, b0 = self.prior
        beta: np.ndarray = self.rng.beta(a0 + s, b0 + n - s)
        return beta

    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        theta = self._sample(allowed)
        cost = self.expected_cost()
        if allowed is not None:
            cost = cost[allowed]
        obj = theta - self.lambda_cost * cost if self.lambda_cost else theta
        if self.tolerance:
            near = np.flatnonzero(obj >= obj.max() - self.tolerance)
            j = int(near[np.argmin(cost[near])])
        else:
            j = int(np.argmax(obj))
        return j if allowed is None else int(allowed[j])

    def _params(self) -> dict[str, Any]:
        return {
            **super()._params(),
            "lambda_cost": self.lambda_cost,
            "tolerance": self.tolerance,
            "prior_cost_usd": self.prior_cost_usd,
        }
