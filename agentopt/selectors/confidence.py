"""Confidence radii for means of a finite population sampled without replacement.

An evaluation dataset of ``N`` datapoints is the whole population: after ``n``
of them (in a random order) the remaining uncertainty shrinks with the finite
population correction and vanishes at ``n = N`` (the mean is then exact).

- :func:`normal_radius`: the survey-sampling interval ``z·s·sqrt((1−f)/n)`` with
  the exact without-replacement variance factor ``(N−n)/(N−1)``, where the
  sample variance is shrunk towards the range's maximum variance by one pseudo
  observation (so a small sample with no spread is not taken as certainty).
- :func:`hoeffding_serfling_radius`: Bardenet & Maillard (2015), Thm 2.4 / Cor. 2.5:
  a distribution-free, finite-sample bound for values in a range of width ``b−a``.
- :func:`bernstein_serfling_radius`: Bardenet & Maillard (2015), Thm 3.5
  (empirical Bernstein–Serfling): variance-adaptive, finite-sample.

All are one-sided at level ``delta`` and vectorised over arrays. Callers split
``delta`` over the comparisons and looks they make (union bound).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

__all__ = [
    "bernstein_serfling_radius",
    "fpc",
    "hoeffding_serfling_radius",
    "normal_radius",
    "per_arm_radius",
    "z_value",
]

_KAPPA = 7.0 / 3.0 + 3.0 / math.sqrt(2.0)


def z_value(delta: float | np.ndarray) -> np.ndarray:
    """The one-sided standard normal quantile ``Φ⁻¹(1 − δ)``."""
    return np.asarray(ndtri(1.0 - np.asarray(delta, dtype=float)))


def fpc(n: np.ndarray | float, population: int) -> np.ndarray:
    """Without-replacement variance factor ``(N − n)/(N − 1)``, clipped to [0, 1]."""
    n = np.asarray(n, dtype=float)
    if population <= 1:
        return np.where(n >= population, 0.0, 1.0)
    return np.clip((population - n) / (population - 1.0), 0.0, 1.0)


def normal_radius(
    std: np.ndarray | float,
    n: np.ndarray | float,
    population: int,
    delta: float | np.ndarray,
    *,
    width: float = 1.0,
    seen: np.ndarray | float | None = None,
    prior: float = 1.0,
    z: float | None = None,
) -> np.ndarray:
    """``z(δ) · s̃ · sqrt(fpc / n)``; infinite where ``n = 0``, zero when exhausted.

    ``s̃² = ((n−1)·s² + width²/4) / n`` (one pseudo-observation at the maximum
    variance of a variable of range ``width``). ``seen`` (default ``n``) is how many
    datapoints of the population were asked, for the correction factor (under
    *skip*, an asked-but-missing cell shrinks the population, not the sample).
    ``prior`` is the weight of the pseudo-observation; ``z`` (precomputed ``z(δ)``)
    saves the quantile on hot paths.
    """
    n = np.asarray(n, dtype=float)
    s = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    vmax = width * width / 4.0
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (np.maximum(n - 1.0, 0.0) * s * s + prior * vmax) / np.maximum(n - 1.0 + prior, 1.0)
        f = fpc(n if seen is None else seen, population)
        zz = z_value(delta) if z is None else z
        r = zz * np.sqrt(var * f / np.maximum(n, 1.0))
    return np.where(n > 0, r, np.inf)


def _rho(n: np.ndarray, population: int) -> np.ndarray:
    """Serfling's factor ρ_n (Bardenet & Maillard's refinement)."""
    nn = float(population)
    small = 1.0 - (n - 1.0) / nn
    large = (1.0 - n / nn) * (1.0 + 1.0 / np.maximum(n, 1.0))
    return np.clip(np.where(n <= nn / 2.0, small, large), 0.0, 1.0)


def hoeffding_serfling_radius(
    n: np.ndarray | float, population: int, delta: float | np.ndarray, *, width: float = 1.0
) -> np.ndarray:
    """``width · sqrt(ρ_n · log(1/δ) / (2n))``; infinite at n = 0, zero at n = N."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = width * np.sqrt(
            _rho(n, population) * np.log(1.0 / np.asarray(delta)) / (2.0 * np.maximum(n, 1.0))
        )
    r = np.where(n >= population, 0.0, r)
    return np.where(n > 0, r, np.inf)


def bernstein_serfling_radius(
    std: np.ndarray | float,
    n: np.ndarray | float,
    population: int,
    delta: float | np.ndarray,
    *,
    width: float = 1.0,
) -> np.ndarray:
    """``σ̂·sqrt(2ρ_n·log(5/δ)/n) + κ·width·log(5/δ)/n``, κ = 7/3 + 3/√2; zero at n = N."""
    n = np.asarray(n, dtype=float)
    s = np.nan_to_num(np.asarray(std, dtype=float), nan=width / 2.0)
    lg = np.log(5.0 / np.asarray(delta))
    with np.errstate(invalid="ignore", divide="ignore"):
        nn = np.maximum(n, 1.0)
        r = s * np.sqrt(2.0 * _rho(n, population) * lg / nn) + _KAPPA * width * lg / nn
    r = np.where(n >= population, 0.0, r)
    return np.where(n > 0, r, np.inf)


def per_arm_radius(
    std: np.ndarray,
    n: np.ndarray,
    asked: np.ndarray,
    population: int,
    delta: float,
    *,
    width: float = 1.0,
    z: float | None = None,
) -> np.ndarray:
    """The per-arm radius the strategies report in ``intervals()``: the normal
    finite-population radius, zero for an arm asked on every datapoint."""
    r = normal_radius(std, n, population, delta, width=width, seen=asked, z=z)
    return np.where(np.asarray(asked) >= population, 0.0, r)
