"""Per-arm noise variance for rewards in [0, 1] (a quasi-binomial model).

A reward in [0, 1] with mean μ has variance at most μ(1 − μ) (equality for
0/1 rewards), so arms near 0 or 1 are far less noisy than arms near 0.5. A
single pooled variance overstates the noise of near-perfect arms and
understates that of poor ones, which both slows learning and biases any
estimate of how much arms differ. As in quasi-likelihood GLMs, we take

    v_a = φ · μ̃_a (1 − μ̃_a)

with μ̃_a the arm's mean smoothed toward ``centre`` (two pseudo-observations)
and φ ∈ (0, 1] one dispersion ratio fitted to every within-arm deviation (1 for
0/1 rewards; graded scores such as F1 are usually below 1).
"""

from __future__ import annotations

import numpy as np

__all__ = ["arm_noise_var", "noise_base"]

_SMOOTH = 2.0  # pseudo-observations of ``centre`` in μ̃
_PHI_PRIOR = 2.0  # weight of φ = 1, in observations
_FLOOR = 1e-4  # μ̃(1 − μ̃) never below this


def noise_base(n: np.ndarray, total: np.ndarray, centre: float) -> np.ndarray:
    """μ̃(1 − μ̃) per arm (never below 1e-4), μ̃ the arm's mean smoothed
    toward ``centre``."""
    mu = (total + _SMOOTH * centre) / (n + _SMOOTH)
    return np.maximum(mu * (1.0 - mu), _FLOOR)


def arm_noise_var(
    n: np.ndarray, total: np.ndarray, within: np.ndarray, centre: float
) -> tuple[np.ndarray, float]:
    """(per-arm variance of one reward, φ) from per-arm counts, sums and sums
    of squared deviations from the arm's mean."""
    base = noise_base(n, total, centre)
    expected = float(np.dot(np.maximum(n - 1.0, 0.0), base))
    phi = (float(within.sum()) + _PHI_PRIOR * 0.25) / (expected + _PHI_PRIOR * 0.25)
    phi = min(max(phi, 1e-3), 1.0)
    return phi * base, phi
