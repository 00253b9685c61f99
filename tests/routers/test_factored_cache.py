"""FactoredThompsonRouter keeps its posterior between updates (per-arm terms
recomputed one arm at a time, hyperparameters refreshed every 2 % growth):
the cached posterior must equal the textbook one computed from scratch, be a
pure function of the saved state, and a datapoint must draw only once."""

from __future__ import annotations

import numpy as np
import pytest

from agentopt.routers import Feedback, RouteContext, Router
from agentopt.routers.factored import FactoredThompsonRouter
from agentopt.routers.noise import arm_noise_var

GRID = {"planner": ["p0", "p1", "p2"], "solver": ["s0", "s1", "s2", "s3"]}
FLAT = ["a", "b", "c", "d", "e"]


def reference(
    r: FactoredThompsonRouter, phi: float, tau2_fit: float, tau2: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """From scratch, dense: (mean and covariance of the sampled arm scores, the
    moment estimate of τ²) for these hyperparameters."""
    n, s, x, c = r._n, r._sum, r._x, r.exploration
    seen = (n > 0).astype(float)
    hits, misses = s + 0.5, n - s + 0.5
    ybar = np.log(hits / misses) * seen
    noise = phi * (1 / hits + 1 / misses)
    omega, w_obs = seen / (noise + tau2_fit), seen / noise
    if x.shape[1] == 1:  # flat: a common mean (intercept) only
        x = x[:, :1]
    cov_beta = np.linalg.inv(x.T @ (omega[:, None] * x) + np.diag(r._prior_prec))
    beta = cov_beta @ (x.T @ (omega * ybar))
    prec_d = w_obs + 1 / tau2
    lam = w_obs / prec_d
    mean = lam * ybar + (1 - lam) * (x @ beta)
    s_fit = (1 - lam)[:, None] * x
    cov = c * c * (s_fit @ cov_beta @ s_fit.T + np.diag(1 / prec_d))
    resid = ybar - x @ beta
    lev = omega * np.einsum("ij,jk,ik->i", x, cov_beta, x)
    free = seen * (1 - np.minimum(lev, 1))
    excess = float(seen @ resid**2 - free @ noise)
    w0, prior = r._PRIOR_ARMS, r._tau2_prior
    tau2_new = max(r._TAU2_MIN, (max(excess, 0.0) + w0 * prior) / (free.sum() + w0))
    return mean, cov, tau2_new


def feed(r: Router, steps: int, seed: int, graded: bool) -> None:
    """Feedback for arms picked at random, heavier on a few (as a policy would)."""
    rng = np.random.default_rng(seed)
    k = len(r.arms)
    p = rng.uniform(0.1, 0.95, k)
    for t in range(steps):
        a = int(rng.integers(k)) if rng.random() < 0.5 else int(np.argmax(p))
        y = (
            float(np.clip(p[a] + rng.normal(0, 0.2), 0, 1))
            if graded
            else float(rng.random() < p[a])
        )
        combo = None if r.arms.combos is None else r.arms.combos[a]
        models = (r.arms.labels[a],) if combo is None else ()
        r.update(Feedback(reward=y, models=models, combo=combo, data_id=f"s{seed}-d{t}"))


@pytest.mark.parametrize("cands", [GRID, FLAT], ids=["grid", "flat"])
@pytest.mark.parametrize("graded", [False, True], ids=["binary", "graded"])
def test_cached_posterior_equals_the_textbook_one_at_every_step(
    cands: object, graded: bool
) -> None:
    # tolerance 1e-9: the two differ only by rounding (Cholesky vs inverse)
    r = FactoredThompsonRouter(cands, seed=0)  # type: ignore[arg-type]
    refreshes = 0
    for step in range(400):
        feed(r, 1, seed=step, graded=graded)
        refresh = r._n_total >= r._refresh_at
        phi = (
            arm_noise_var(r._n, r._sum, r._within, (r._sum.sum() + 1) / (r._n_total + 2))[1]
            if refresh
            else r._phi
        )
        tau2_fit = r._tau2
        mean, cov = r._score_moments()
        # on a refresh the interactions already use the new τ², the fit the old one
        _, _, tau2_new = reference(r, phi, tau2_fit, tau2_fit)
        ref_mean, ref_cov, _ = reference(r, phi, tau2_fit, tau2_new if refresh else tau2_fit)
        np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=1e-9)
        np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-12)
        if refresh:
            refreshes += 1
            assert r._hyper_next is not None
            assert r._hyper_next[0] == pytest.approx(tau2_new, rel=1e-9)
            assert r._hyper_next[1] == phi
    assert 60 < refreshes < 200  # every update early on, then every 2 % growth


@pytest.mark.parametrize("cands", [GRID, FLAT], ids=["grid", "flat"])
def test_cache_is_a_pure_function_of_the_saved_state(cands: object) -> None:
    # a reloaded router recomputes every term at once; the original kept them
    # one arm at a time: they must agree bit for bit
    # (loaded into a router with a posterior of its own, which must not survive)
    r = FactoredThompsonRouter(cands, seed=1)  # type: ignore[arg-type]
    other = FactoredThompsonRouter(cands, seed=1)  # type: ignore[arg-type]
    feed(other, 30, seed=99, graded=True)
    other._score_moments()
    for step in range(300):
        feed(r, 1, seed=step, graded=step % 3 == 0)
        if step % 50 == 49:
            r._score_moments()
            other.load_state_dict(r.state_dict())
            other._score_moments()
            for name in ("ybar", "seen", "noise", "w_obs", "omega", "shrink", "own", "csd"):
                assert np.array_equal(getattr(r._terms, name), getattr(other._terms, name)), name
            assert np.array_equal(r._root, other._root)
            assert np.array_equal(r._xroot @ r._u, other._xroot @ other._u)


def test_a_datapoint_draws_once_and_its_other_calls_reuse_the_combination() -> None:
    r = FactoredThompsonRouter(GRID, seed=2)
    feed(r, 100, seed=2, graded=False)
    for t in range(20):
        did = f"next{t}"
        planner = r.route(RouteContext(requested_model="x", data_id=did, agent_id="planner"))
        drawn = r.rng.bit_generator.state
        solver = r.route(RouteContext(requested_model="x", data_id=did, agent_id="solver"))
        again = r.route(RouteContext(requested_model="x", data_id=did, agent_id="planner"))
        assert r.rng.bit_generator.state == drawn  # no second draw
        assert again == planner
        assert r.stats()["decisions"][-1]["reason"] == "combination of this datapoint"
        # the datapoint's reward credits that one combination, once
        before = r.arm_stats()["n"]
        r.update(Feedback(reward=1.0, data_id=did))
        gained = r.arm_stats()["n"] - before
        assert gained.sum() == 1
        assert gained[r.arms.index[f"planner={planner} + solver={solver}"]] == 1
