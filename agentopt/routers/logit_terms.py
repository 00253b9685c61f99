"""Per-arm terms of :class:`~agentopt.routers.factored.FactoredThompsonRouter`,
kept between updates.

Each arm of the factored model contributes, on the logit scale, its empirical
logit ``ȳ = log((s + ½)/(n − s + ½))``, that logit's sampling variance
``v = φ·(1/(s + ½) + 1/(n − s + ½))``, its weight in the additive fit
``ω = 1/(v + τ²_fit)``, and the conjugate posterior of its interaction given
the effects: precision ``1/v + 1/τ²``, shrinkage ``λ = (1/v) / precision``.
An update changes one arm's counts, so only that arm's terms are recomputed
(scalar arithmetic); the terms that depend on φ or τ² are recomputed for
every arm when those move, i.e. when the reward count has grown by 2 %
(vectorised). Both paths do
the same IEEE operations in the same order, and logs go through
:func:`math.log` in both (numpy's vectorised log may round differently), so
the terms are a pure function of the counts and hyperparameters whichever
path computed them: a saved and reloaded router resumes identically.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ArmTerms"]


class ArmTerms:
    """Arrays over the arms: ``ybar``, ``noise``, ``w_obs`` (1/noise, 0 when
    unseen), ``omega`` (weight in the additive fit, 0 when unseen), and for
    the interactions ``shrink`` (1 − λ), ``own`` (λ·ȳ) and ``csd`` (``c`` × sd
    given the effects). Mark an arm whose counts changed with :meth:`touch`."""

    def __init__(self, k: int, c: float) -> None:
        self.c = c
        self.ybar = np.zeros(k)
        self.seen = np.zeros(k)  # 1.0 for an arm with a reward, else 0.0
        self.noise = np.zeros(k)
        self.w_obs = np.zeros(k)
        self.omega = np.zeros(k)
        self.shrink = np.ones(k)
        self.own = np.zeros(k)
        self.csd = np.zeros(k)
        # what each group of terms was computed for (None: recompute)
        self._counts_ok = False  # ybar, seen
        self._noise_of: float | None = None  # φ of noise, w_obs
        self._fit_of: tuple[float, float] | None = None  # (φ, τ²) of omega
        self._draw_of: tuple[float, float] | None = None  # (φ, τ²) of shrink, own, csd
        self._dirty: set[int] = set()

    def touch(self, i: int) -> None:
        self._dirty.add(i)

    def invalidate(self) -> None:
        """The counts were replaced (a loaded state): recompute every term."""
        self._counts_ok = False
        self._noise_of = self._fit_of = self._draw_of = None

    def sync(
        self, n: np.ndarray, total: np.ndarray, phi: float, tau2_fit: float, tau2: float
    ) -> None:
        """Bring every term up to date with the counts ``n``, sums ``total``
        and these hyperparameters: the arms touched since the last call one by
        one, then whichever groups of terms the hyperparameters moved, all at
        once (the common case is the first alone)."""
        for i in self._dirty:
            self._arm(i, float(n[i]), float(total[i]), phi, tau2_fit, tau2)
        self._dirty.clear()
        if not self._counts_ok:
            ratio = ((total + 0.5) / (n - total + 0.5)).tolist()
            self.ybar = np.array(
                [math.log(r) if m > 0 else 0.0 for r, m in zip(ratio, n.tolist(), strict=True)]
            )
            self.seen = (n > 0).astype(float)
            self._counts_ok = True
        if self._noise_of != phi:
            self.noise = phi * (1.0 / (total + 0.5) + 1.0 / (n - total + 0.5))
            self.w_obs = np.where(self.seen > 0, 1.0 / self.noise, 0.0)
            self._noise_of = phi
        if self._fit_of != (phi, tau2_fit):
            self.omega = np.where(self.seen > 0, 1.0 / (self.noise + tau2_fit), 0.0)
            self._fit_of = (phi, tau2_fit)
        if self._draw_of != (phi, tau2):
            prec_d = self.w_obs + 1.0 / tau2
            lam = self.w_obs / prec_d
            self.shrink = 1.0 - lam
            self.own = lam * self.ybar
            self.csd = self.c / np.sqrt(prec_d)
            self._draw_of = (phi, tau2)

    def _arm(
        self, i: int, n: float, total: float, phi: float, tau2_fit: float, tau2: float
    ) -> None:
        hits, misses = total + 0.5, n - total + 0.5
        noise = phi * (1.0 / hits + 1.0 / misses)
        if n > 0:
            ybar = math.log(hits / misses)
            seen = 1.0
            w_obs = 1.0 / noise
            omega = 1.0 / (noise + tau2_fit)
        else:  # unseen: no data, no weight
            ybar = seen = w_obs = omega = 0.0
        prec_d = w_obs + 1.0 / tau2
        lam = w_obs / prec_d
        self.ybar[i], self.seen[i], self.noise[i] = ybar, seen, noise
        self.w_obs[i], self.omega[i] = w_obs, omega
        self.shrink[i], self.own[i], self.csd[i] = 1.0 - lam, lam * ybar, self.c / math.sqrt(prec_d)
