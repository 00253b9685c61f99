"""Matrix UCB: a two-way surrogate of the combination × datapoint matrix.

Outcomes are modelled as ``y[a, d] ≈ α_a + β_d``: a combination's strength plus
a datapoint's difficulty shared by every combination. The difficulty learned
from the other arms predicts an arm's unobserved cells, so its full-dataset
mean is known far better than from its own cells alone (the datapoint effect
is a control variate). Each round samples the leader and the arms with the
highest upper confidence bounds (see :mod:`.surrogate` for the shared loop).

Name ``matrix_ucb``, the method of the same name in the published AgentOpt package.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from agentopt.selectors.strategies.surrogate import SurrogateStrategy, additive_fit

__all__ = ["MatrixUCBStrategy"]


class MatrixUCBStrategy(SurrogateStrategy):
    """UCB over arms whose means are predicted by an additive (arm + datapoint) model."""

    name: ClassVar[str] = "matrix_ucb"

    def _predict(self) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta, sigma2 = additive_fit(self.stats.values)
        cells = np.nan_to_num(alpha, nan=np.nanmean(alpha) if np.any(~np.isnan(alpha)) else 0.0)
        return self._population_mean(cells[:, None] + beta[None, :], sigma2)
