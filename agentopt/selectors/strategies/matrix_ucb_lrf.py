"""Matrix UCB with a low-rank factorisation of the combination × datapoint matrix.

Beyond the additive model of :mod:`.matrix_ucb` (combination strength plus
datapoint difficulty), some datapoints suit some combinations: a rank-``r``
interaction ``u_a · v_d`` fitted by ridge-regularised alternating least squares
on the additive residuals captures it (e.g. a datapoint only strong solvers get
right). Predicted cells use the full model; the bounds keep the additive
model's residual variance, so a factorisation that overfits a few cells cannot
make the bounds narrower than the data allow.

Name ``matrix_ucb_lrf``, the method of the same name in the published AgentOpt package.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.selectors.strategies.surrogate import SurrogateStrategy, additive_fit

__all__ = ["MatrixUCBLRFStrategy", "low_rank_fit"]


def low_rank_fit(
    resid: np.ndarray, rank: int, ridge: float, rng: np.random.Generator, iterations: int = 10
) -> np.ndarray:
    """Rank-``rank`` ALS on the observed (non-NaN) cells of ``resid``: the fitted
    interaction matrix ``U Vᵀ`` (rows/columns with no observation stay 0)."""
    seen = ~np.isnan(resid)
    w = seen.astype(float)
    r = np.where(seen, resid, 0.0)
    k, n = r.shape
    u = 0.1 * rng.standard_normal((k, rank))
    v = np.zeros((n, rank))
    eye = ridge * np.eye(rank)
    for _ in range(iterations):  # batched normal equations, one small system per row/column
        v = np.linalg.solve(
            np.einsum("ad,ai,aj->dij", w, u, u) + eye, np.einsum("ad,ai->di", r, u)[..., None]
        )[..., 0]
        u = np.linalg.solve(
            np.einsum("ad,di,dj->aij", w, v, v) + eye, np.einsum("ad,di->ai", r, v)[..., None]
        )[..., 0]
    return u @ v.T


class MatrixUCBLRFStrategy(SurrogateStrategy):
    """Matrix UCB whose surrogate adds a low-rank arm × datapoint interaction.

    ``rank``: the interaction's rank (default 2). ``ridge``: its L2 penalty
    (default 1.0, in units of squared score).
    """

    name: ClassVar[str] = "matrix_ucb_lrf"

    def __init__(self, *, rank: int = 2, ridge: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"matrix_ucb_lrf: rank must be an integer ≥ 1, not {rank!r}")
        if not ridge > 0:
            raise ConfigError(f"matrix_ucb_lrf: ridge must be > 0, not {ridge!r}")
        self.rank = rank
        self.ridge = ridge

    def _predict(self) -> tuple[np.ndarray, np.ndarray]:
        values = self.stats.values
        alpha, beta, sigma2 = additive_fit(values)
        a0 = np.nan_to_num(alpha, nan=np.nanmean(alpha) if np.any(~np.isnan(alpha)) else 0.0)
        additive = a0[:, None] + beta[None, :]
        inter = low_rank_fit(values - additive, self.rank, self.ridge, self.rng)
        cells = np.clip(additive + inter, np.nanmin(values), np.nanmax(values))
        return self._population_mean(cells, sigma2)
