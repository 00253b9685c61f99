"""Bayesian optimisation over combinations: a Gaussian-process surrogate, Thompson acquisition.

The surrogate is a Gaussian process over combinations whose kernel shares
strength through the combination structure: ``k(a, b) = s² · x_a·x_b + τ² · [a = b]``
with ``x_a`` the one-hot features of arm a's node models (``planner=gpt-4o``,
``solver=gpt-4o-mini``, …; an intercept only when the arms are unlabelled). An arm
is thus predicted from every arm sharing a node model with it, and its own cells
refine that. Its observations enter as the datapoint-adjusted arm effects of the
additive fit (``α_a`` of ``y[a, d] ≈ α_a + β_d``, noise ``σ²/n_a``); the prior
scales ``s²`` and ``τ²`` are set by empirical Bayes from the spread of those effects.

Each round draws joint samples of the full-dataset means from the posterior,
picks the leader (most often best) and the arms most often best after it
(top-two Thompson sampling, the acquisition), and advances them; it stops once
the posterior probability that the leader is best reaches the confidence, or by
the shared bounds of :mod:`.surrogate`.

Name ``bayesian``, the method of the same name in the published AgentOpt package.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.base import Pair
from agentopt.selectors.strategies.surrogate import (
    SurrogateStrategy,
    additive_fit,
    node_features,
)

__all__ = ["BayesianOptimizationStrategy"]

_TAU2_FLOOR = 1e-4


class BayesianOptimizationStrategy(SurrogateStrategy):
    """GP surrogate over combinations, Thompson-sampling acquisition (see the module).

    ``samples``: posterior draws per round (default 256).
    """

    name: ClassVar[str] = "bayesian"

    def __init__(self, *, samples: int = 256, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(samples, int) or samples < 16:
            raise ConfigError(f"bayesian: samples must be an integer ≥ 16, not {samples!r}")
        self.samples = samples

    def _on_start(self) -> None:
        super()._on_start()
        self._x = node_features(self.problem.arms, self.problem.n_arms)
        self._p_best = np.full(self.problem.n_arms, np.nan)

    def _posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(posterior mean of α, its covariance, datapoint effects β, residual σ²)."""
        values = self.stats.values
        alpha, beta, sigma2 = additive_fit(values)
        n = (~np.isnan(values)).sum(axis=1)
        obs = np.flatnonzero(n > 0)
        s2 = max(sigma2, 0.01) if np.isfinite(sigma2) else 0.25
        k = self.problem.n_arms
        if obs.size == 0:
            return np.zeros(k), np.eye(k) * 0.25, beta, s2
        a_obs = alpha[obs]
        m0 = float(a_obs.mean())
        noise = s2 / n[obs]
        # empirical Bayes: the spread of the arm effects beyond their noise, split into
        # what the node models explain (a ridge fit) and what is the arm's own
        x = self._x
        xo = x[obs]
        w = np.linalg.solve(xo.T @ xo + 1e-3 * np.eye(x.shape[1]), xo.T @ (a_obs - m0))
        explained = float(np.var(xo @ w)) if x.shape[1] > 1 else 0.0
        own = max(float(np.var(a_obs - m0 - xo @ w)) - float(noise.mean()), _TAU2_FLOOR)
        per_feature = explained / max(float(np.mean((x[:, 1:] ** 2).sum(axis=1))), 1.0)
        kern = max(per_feature, _TAU2_FLOOR) * (x[:, 1:] @ x[:, 1:].T) + own * np.eye(k)
        kern += own  # the common mean is uncertain too
        koo = kern[np.ix_(obs, obs)] + np.diag(noise)
        kxo = kern[:, obs]
        sol = np.linalg.solve(koo, np.column_stack([a_obs - m0, kxo.T]))
        mean = m0 + kxo @ sol[:, 0]
        cov = kern - kxo @ sol[:, 1:]
        return mean, 0.5 * (cov + cov.T), beta, s2

    def _predict(self) -> tuple[np.ndarray, np.ndarray]:
        mean, cov, beta, s2 = self._posterior()
        cells = mean[:, None] + beta[None, :]
        mu, sd = self._population_mean(cells, s2, extra_var=np.clip(np.diag(cov), 0, None))
        self._p_best = self._prob_best(mean, cov, s2)
        return mu, sd

    def _prob_best(self, mean: np.ndarray, cov: np.ndarray, s2: float) -> np.ndarray:
        """Posterior probability that each alive arm has the best full-dataset mean."""
        values = self.stats.values
        seen = ~np.isnan(values)
        n_total = self.problem.n_datapoints
        m = n_total - seen.sum(axis=1)
        w = m / n_total  # the unobserved share of each arm's mean is what is uncertain
        known = np.where(seen, values, 0.0).sum(axis=1) / n_total
        try:
            chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(mean)))
        except np.linalg.LinAlgError:
            chol = np.diag(np.sqrt(np.clip(np.diag(cov), 0, None)))
        z = self.rng.standard_normal((self.samples, len(mean)))
        alpha_draws = mean + z @ chol.T
        # the unobserved cells' own noise, averaged over m cells
        cell_noise = self.rng.standard_normal((self.samples, len(mean))) * np.sqrt(
            s2 * np.maximum(m, 1)
        )
        draws = known + w * alpha_draws + cell_noise / n_total
        draws = np.where(m == 0, known, draws)
        alive = self._alive
        draws[:, ~alive] = -np.inf
        wins = np.bincount(np.argmax(draws, axis=1), minlength=len(mean))
        return wins / self.samples

    def _acquire(self, alive: list[int], leader: int) -> list[int]:
        p = np.nan_to_num(self._p_best)
        others = sorted((j for j in alive if j != leader), key=lambda j: -p[j])
        return [leader, *others[: self._challengers]]

    def ask(self) -> list[Pair]:
        if self._init_done and not self._finished:
            self._refit()
            h = self.best()
            if self._p_best[h] >= self.confidence_ and self.epsilon_ >= 0:
                self._finished = True
                return []
        return super().ask()
