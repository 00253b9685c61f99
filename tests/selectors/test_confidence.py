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


# ---------------------------------------------------------------- betting tests
def _ville_crossings(pop: np.ndarray, delta: float, runs: int, seed: int) -> float:
    """Share of random orders in which the first arm's test ever reaches 1/δ."""
    from agentopt.selectors.sequential import bet_log_wealth

    rng = np.random.default_rng(seed)
    n = pop.shape[1]
    hits = 0
    for _ in range(runs):
        v = pop[:, rng.permutation(n)]
        w = bet_log_wealth(v, np.ones_like(v, dtype=bool), 0, n, n)
        hits += bool((w[0] >= np.log(1 / delta)).any())
    return hits / runs


def test_betting_test_holds_its_level_at_every_step_under_an_exact_tie() -> None:
    """Two arms with equal means, watched after every datapoint: the best's test may
    reach 1/δ in at most δ of 600 random orders (δ = 0.2; tolerance 2.5 binomial σ
    ≈ 4 points; Ville's bound is usually far from tight)."""
    rng = np.random.default_rng(3)
    a = (rng.random(120) < 0.5).astype(float)
    b = rng.permutation(a)  # the same mean, different items
    assert _ville_crossings(np.stack([a, b]), 0.2, 600, seed=4) <= 0.2 + 0.04


def test_betting_test_holds_with_many_tied_competitors() -> None:
    """The best arm tied with 15 others (its test bets on whichever leads): the union
    over competitors costs nothing, the rate stays ≤ δ = 0.2 (+ 2.5 σ) over 400 orders."""
    rng = np.random.default_rng(5)
    base = (rng.random(100) < 0.6).astype(float)
    pop = np.stack([base] + [rng.permutation(base) for _ in range(15)])
    assert _ville_crossings(pop, 0.2, 400, seed=6) <= 0.2 + 0.05


def test_betting_test_bets_against_a_clear_gap() -> None:
    """A 30-point worse arm is rejected long before the data run out (power)."""
    from agentopt.selectors.sequential import bet_log_wealth

    rng = np.random.default_rng(7)
    good = (rng.random(200) < 0.8).astype(float)
    bad = (rng.random(200) < 0.5).astype(float)
    v = np.stack([good, bad])
    w = bet_log_wealth(v, np.ones_like(v, dtype=bool), 0, 200, 200)
    assert (w[1] >= np.log(20)).argmax() < 100
    assert np.all(np.isfinite(w))


def test_betting_wealth_can_be_fed_in_pieces() -> None:
    """Feeding the steps in batches gives the same path as one pass (the tests are
    predictable: step s uses only the datapoints before it)."""
    from agentopt.selectors.sequential import bet_log_wealth

    rng = np.random.default_rng(8)
    v = (rng.random((5, 60)) < rng.random((5, 1))).astype(float)
    m = np.ones_like(v, dtype=bool)
    whole = bet_log_wealth(v, m, 0, 60, 60)
    first = bet_log_wealth(v[:, :25], m[:, :25], 0, 25, 60)
    rest = first[:, -1:] + bet_log_wealth(v, m, 25, 60, 60)
    np.testing.assert_allclose(np.hstack([first, rest]), whole)
