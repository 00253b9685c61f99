"""ContextualRouter: LinUCB or linear Thompson sampling on prompt features.

One ridge regression per arm (disjoint model) of the reward on
:meth:`PromptFeatures.as_vector` (bias, log token estimate, tools, images, log
turns), so "long prompts with tools go to the strong model, short ones to the
cheap one" can be learned. Rewards are centred at 0.5, so an arm with no data
predicts 0.5.

Each arm keeps the inverse of its Gram matrix, updated by Sherman–Morrison, so
a decision is one batched matrix-vector product (a few µs for 100 arms with
5 features), where mabwiser's LinUCB took 1.4 ms per decision with 10 arms.
For a fixed context x, the linear-Thompson sample of ``x·θ`` is Normal with
variance ``v²·xᵀA⁻¹x``: the same quantities as LinUCB, no Cholesky needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Candidates
from agentopt.routers.base import Router
from agentopt.routers.context import PromptFeatures, RouteContext
from agentopt.routers.registry import register_router

__all__ = ["ContextualRouter"]

_D = len(PromptFeatures().as_vector())


@register_router("contextual")
class ContextualRouter(Router):
    """``method="linucb"`` scores ``x·θ + alpha·sqrt(xᵀA⁻¹x)``;
    ``method="thompson"`` samples ``x·θ + alpha·sqrt(xᵀA⁻¹x)·z``, z ~ N(0, 1).
    ``ridge`` is the prior precision of each arm's weights."""

    def __init__(
        self,
        candidates: Candidates,
        *,
        method: Literal["linucb", "thompson"] = "linucb",
        alpha: float = 1.0,
        ridge: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(candidates, **kwargs)
        if method not in ("linucb", "thompson"):
            raise ConfigError(f"method must be 'linucb' or 'thompson', got {method!r}")
        if not alpha >= 0:
            raise ConfigError(f"alpha must be >= 0, got {alpha!r}")
        if not ridge > 0:
            raise ConfigError(f"ridge must be > 0, got {ridge!r}")
        self.method = method
        self.alpha = float(alpha)
        self.ridge = float(ridge)
        k = len(self.arms)
        self._a_inv = np.repeat(np.eye(_D)[None] / self.ridge, k, axis=0)
        self._b = np.zeros((k, _D))
        self._theta = np.zeros((k, _D))

    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        x = np.asarray(ctx.features.as_vector())
        a_inv, theta = self._a_inv, self._theta
        if allowed is not None:
            a_inv, theta = a_inv[allowed], theta[allowed]
        mean = theta @ x
        width = np.sqrt(np.maximum((a_inv @ x) @ x, 0.0))
        if self.method == "linucb":
            score = mean + self.alpha * width
            best = np.flatnonzero(score == score.max())
            j = int(best[0]) if best.size == 1 else int(self.rng.choice(best))
        else:
            j = int(np.argmax(mean + self.alpha * width * self.rng.standard_normal(mean.size)))
        return j if allowed is None else int(allowed[j])

    def _learn_arm(
        self, i: int, reward: float, cost_usd: float | None, features: PromptFeatures | None
    ) -> None:
        x = np.asarray((features or PromptFeatures()).as_vector())
        a_inv = self._a_inv[i]
        u = a_inv @ x
        a_inv -= np.outer(u, u) / (1.0 + float(x @ u))
        self._b[i] += (reward - 0.5) * x
        self._theta[i] = a_inv @ self._b[i]

    def predict(self, features: PromptFeatures) -> dict[str, float]:
        """The expected reward of each arm for these features."""
        x = np.asarray(features.as_vector())
        return dict(zip(self.arms.labels, (self._theta @ x + 0.5).tolist(), strict=True))

    def _params(self) -> dict[str, Any]:
        return {"method": self.method, "alpha": self.alpha, "ridge": self.ridge}

    def _policy_state(self) -> dict[str, Any]:
        return {"a_inv": self._a_inv.tolist(), "b": self._b.tolist(), "theta": self._theta.tolist()}

    def _load_policy_state(self, state: Mapping[str, Any]) -> None:
        if "a_inv" in state:
            a_inv = np.asarray(state["a_inv"], dtype=float)
            b = np.asarray(state["b"], dtype=float)
            theta = np.asarray(state["theta"], dtype=float)
            k = len(self.arms)
            if a_inv.shape != (k, _D, _D) or b.shape != (k, _D) or theta.shape != (k, _D):
                raise ConfigError(
                    f"router state: contextual matrices have shape {a_inv.shape}, expected "
                    f"{(k, _D, _D)} (saved with other candidates or another feature set)"
                )
            self._a_inv, self._b, self._theta = a_inv, b, theta
