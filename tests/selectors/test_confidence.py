"""Finite-population confidence radii."""

from __future__ import annotations

import numpy as np

from agentopt.selectors.confidence import (
    bernstein_serfling_radius,
    fpc,
    hoeffding_serfling_radius,
    normal_radius,
    z_value,
)


def test_radius_is_zero_when_the_whole_population_was_seen() -> None:
    assert normal_radius(0.5, 200, 200, 0.01) == 0.0
    assert hoeffding_serfling_radius(200, 200, 0.01) == 0.0
    assert bernstein_serfling_radius(0.5, 200, 200, 0.01) == 0.0


def test_radius_is_infinite_without_data() -> None:
    assert np.isinf(normal_radius(0.5, 0, 200, 0.05))
    assert np.isinf(hoeffding_serfling_radius(0, 200, 0.05))


def test_finite_population_correction_shrinks_the_radius() -> None:
    assert fpc(1, 100) == 1.0
    assert fpc(100, 100) == 0.0
    small, large = normal_radius(0.4, 50, 60, 0.05), normal_radius(0.4, 50, 10**9, 0.05)
    assert small < 0.5 * large


def test_hoeffding_serfling_matches_the_formula() -> None:
    n, big, delta = 40, 100, 0.05
    rho = 1 - (n - 1) / big  # n ≤ N/2
    expected = np.sqrt(rho * np.log(1 / delta) / (2 * n))
    np.testing.assert_allclose(hoeffding_serfling_radius(n, big, delta), expected)


def test_z_value_is_the_one_sided_normal_quantile() -> None:
    np.testing.assert_allclose(z_value(0.05), 1.6448536, rtol=1e-6)


def test_normal_radius_covers_the_population_mean_without_replacement() -> None:
    """Sampling n of N items without replacement, one-sided δ = 0.05: the mean must
    be covered in ≥ 95 % − 2 % of 4000 draws (binomial σ ≈ 0.35 %)."""
    rng = np.random.default_rng(0)
    pop = (rng.random(300) < 0.3).astype(float)
    mu = pop.mean()
    for n in (20, 150, 280):
        misses = 0
        for _ in range(4000):
            x = rng.choice(pop, size=n, replace=False)
            r = normal_radius(x.std(ddof=1), n, 300, 0.05)
            misses += x.mean() - r > mu
        assert misses / 4000 <= 0.07, (n, misses)


def test_finite_sample_bounds_are_conservative() -> None:
    """Hoeffding–Serfling at δ = 0.05 misses far less than 5 % (distribution-free)."""
    rng = np.random.default_rng(1)
    pop = rng.random(200)
    mu = pop.mean()
    misses = 0
    for _ in range(2000):
        x = rng.choice(pop, size=30, replace=False)
        misses += x.mean() - hoeffding_serfling_radius(30, 200, 0.05) > mu
    assert misses / 2000 <= 0.05
