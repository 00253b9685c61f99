"""FactoredThompsonRouter: Thompson sampling that uses the structure of combinations.

Combinations share node models (``planner=A + solver=B`` and ``planner=A +
solver=C`` both use A as planner), so what one teaches informs the others. The
reward of combination a is modelled as

    r = μ + Σ_node β[node, model_a(node)] + δ_a + noise

- the additive part (μ and one effect per node and model) is a Bayesian linear
  regression on one-hot features, fitted from every reward: an untried
  combination of well-known node models is predicted from its parts;
- δ_a is the combination's own interaction (the pairwise term for two nodes),
  with prior N(0, τ²) where τ² is estimated from the data (empirical Bayes:
  how far observed combination means sit from the additive fit, net of noise).
  When the world is additive τ² stays small and combinations pool strength;
  when it is not, τ² grows and each combination leans on its own data;
- the noise variance σ² is the pooled within-combination variance (prior 1/4
  worth two observations).

A decision samples θ from the additive posterior and each δ_a from its
conditional posterior, and takes the argmax: one inverse and one Cholesky
of a (1 + Σ models per node)-square matrix after each update, microseconds for 2 nodes × 9 models.
With flat candidates (one node) it is Gaussian Thompson sampling with a shared
mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Candidates
from agentopt.routers.base import Router
from agentopt.routers.context import PromptFeatures, RouteContext
from agentopt.routers.registry import register_router

__all__ = ["FactoredThompsonRouter"]


@dataclass(frozen=True, slots=True)
class _Posterior:
    mean: np.ndarray  # additive effects (or, with one node, per-arm means)
    chol: np.ndarray  # a square root of their covariance (one node: per-arm sd)
    s2: float  # noise variance
    tau2: float  # interaction variance
    delta_mean: np.ndarray  # per-arm interaction, posterior mean
    delta_sd: np.ndarray  # and sd


@register_router("factored")
class FactoredThompsonRouter(Router):
    """Thompson sampling on node-model effects plus per-combination interactions.

    Args:
        effect_sd: prior standard deviation of each node-model effect.
        interaction_sd: starting guess of τ (updated from data, worth two arms).
        exploration: scales the sampled spread (1 = the posterior).
    """

    def __init__(
        self,
        candidates: Candidates,
        *,
        effect_sd: float = 0.25,
        interaction_sd: float = 0.1,
        exploration: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(candidates, **kwargs)
        for name, v in (
            ("effect_sd", effect_sd),
            ("interaction_sd", interaction_sd),
            ("exploration", exploration),
        ):
            if not v > 0:
                raise ConfigError(f"{name} must be > 0, got {v!r}")
        self.effect_sd = float(effect_sd)
        self.interaction_sd = float(interaction_sd)
        self.exploration = float(exploration)
        arms = self.arms
        k = len(arms)
        # one node: no intercept, so the precision is diagonal (independent arms)
        self._multi = arms.multi_node
        nodes = arms.nodes or ["_"]
        combos = arms.combos or [{"_": m} for m in arms.labels]
        offsets: dict[tuple[str, str], int] = {}
        first = 1 if self._multi else 0
        for n in nodes:
            for c in combos:
                offsets.setdefault((n, c[n]), first + len(offsets))
        self._dim = first + len(offsets)
        feat = [([0] if self._multi else []) + [offsets[(n, c[n])] for n in nodes] for c in combos]
        self._feat = np.array(feat, dtype=np.intp)
        self._x = np.zeros((k, self._dim))
        np.put_along_axis(self._x, self._feat, 1.0, axis=1)
        # flat positions in the Gram matrix that one reward of arm i increments
        self._gram_idx = [(f[:, None] * self._dim + f[None, :]).ravel() for f in self._feat]
        self._prior_prec = np.full(self._dim, 1.0 / self.effect_sd**2)
        self._prior_mean = np.zeros(self._dim)
        if self._multi:
            self._prior_prec[0] = 1.0
            self._prior_mean[0] = 0.5
        else:
            self._prior_mean[:] = 0.5
        self._diag = np.diag_indices(self._dim)
        self._gram = np.zeros((self._dim, self._dim))
        self._xy = np.zeros(self._dim)
        self._within = np.zeros(k)
        self._cache: _Posterior | None = None

    # ------------------------------------------------------------------ model
    def noise_var(self) -> float:
        """σ²: pooled within-arm variance, prior 1/4 worth two observations."""
        dof = float(np.maximum(self._n - 1.0, 0.0).sum())
        return (0.5 + float(self._within.sum())) / (2.0 + dof)

    def _posterior(self) -> _Posterior:
        """Everything a decision needs that changes only with an update."""
        if self._cache is not None:
            return self._cache
        s2 = self.noise_var()
        n = self._n
        if self._multi:
            prec = self._gram / s2
            prec[self._diag] += self._prior_prec
            # one eigendecomposition gives both the mean and a square root of
            # the covariance (V·diag(w^-1/2)), cheaper than inv + cholesky
            w, vecs = np.linalg.eigh(prec)
            rhs = self._prior_prec * self._prior_mean + self._xy / s2
            mean = vecs @ ((vecs.T @ rhs) / w)
            chol: np.ndarray = vecs / np.sqrt(w)
            add_hat = self._x @ mean
            # per-arm noise: the arm's own variance, shrunk to the pooled one
            v = (self._within + 2.0 * s2) / (np.maximum(n - 1.0, 0.0) + 2.0)
            seen = n >= 2
            tau2 = self.interaction_sd**2
            if seen.any():
                resid_seen = self._sum[seen] / n[seen] - add_hat[seen]
                excess = float(np.sum(resid_seen * resid_seen - v[seen] / n[seen]))
                tau2 = max(1e-4, (excess + 2.0 * tau2) / (float(seen.sum()) + 2.0))
            resid = np.where(n > 0, self._sum / np.maximum(n, 1.0) - add_hat, 0.0)
            prec_d = n / v + 1.0 / tau2
            delta_mean = (n / v) * resid / prec_d
            delta_sd = 1.0 / np.sqrt(prec_d)
        else:
            prec_d = self._prior_prec + n / s2
            mean = (self._prior_prec * self._prior_mean + self._sum / s2) / prec_d
            chol = 1.0 / np.sqrt(prec_d)
            tau2 = 0.0
            delta_mean = delta_sd = np.zeros(len(n))
        self._cache = _Posterior(mean, chol, s2, tau2, delta_mean, delta_sd)
        return self._cache

    def interaction_var(self) -> float:
        """τ²: spread of combination means around the additive fit, net of noise
        (0 with one node, where there is nothing to interact)."""
        return self._posterior().tau2

    def predict(self) -> dict[str, float]:
        """Posterior mean reward of every arm (additive fit + shrunk interaction)."""
        p = self._posterior()
        mu = self._x @ p.mean + p.delta_mean
        return dict(zip(self.arms.labels, mu.tolist(), strict=True))

    def _choose_arm(self, ctx: RouteContext, allowed: np.ndarray | None) -> int:
        p = self._posterior()
        c = self.exploration
        z = self.rng.standard_normal(self._dim)
        if self._multi:
            theta = p.mean + c * (p.chol @ z)
            k = len(self.arms)
            score = self._x @ theta + p.delta_mean + c * p.delta_sd * self.rng.standard_normal(k)
        else:
            score = p.mean + c * p.chol * z
        if allowed is None:
            return int(np.argmax(score))
        return int(allowed[int(np.argmax(score[allowed]))])

    def _learn_arm(
        self, i: int, reward: float, cost_usd: float | None, features: PromptFeatures | None
    ) -> None:
        self._gram.ravel()[self._gram_idx[i]] += 1.0
        self._xy[self._feat[i]] += reward
        n = self._n[i]
        self._within[i] = max(0.0, self._sumsq[i] - self._sum[i] ** 2 / n) if n > 0 else 0.0
        self._cache = None

    # ------------------------------------------------------------------ state
    def _params(self) -> dict[str, Any]:
        return {
            "effect_sd": self.effect_sd,
            "interaction_sd": self.interaction_sd,
            "exploration": self.exploration,
        }

    def _policy_state(self) -> dict[str, Any]:
        return {
            "gram": self._gram.tolist(),
            "xy": self._xy.tolist(),
            "within": self._within.tolist(),
        }

    def _load_policy_state(self, state: Mapping[str, Any]) -> None:
        if "gram" in state:
            self._gram = np.asarray(state["gram"], dtype=float)
            self._xy = np.asarray(state["xy"], dtype=float)
            self._within = np.asarray(state["within"], dtype=float)
            self._cache = None
