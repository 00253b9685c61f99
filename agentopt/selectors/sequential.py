"""Sequential paired tests for a finite population sampled without replacement.

The datapoints are visited in a uniformly random order. For two arms j and b let
``X_u = v_j(u) − v_b(u) − margin`` on the u-th datapoint of the order (0 where
either cell is missing), ``S_{s−1}`` the sum of the first ``s − 1`` and
``μ = mean(X)`` over all N datapoints. Given the first ``s − 1`` datapoints the
next one is uniform over the rest, so ``E[X_s | past] = (N·μ − S_{s−1}) / (N − s + 1)``.
Under the null ``μ ≤ 0`` (j does not beat b by more than the margin) this is at
most ``m_s = −S_{s−1} / (N − s + 1)`` — the without-replacement centring of
Waudby-Smith & Ramdas (2020, "Confidence sequences for sampling without
replacement"). So ``Y_s = X_s − m_s`` has a non-positive conditional mean, and
any sum of ``Y_s`` with *predictable* non-negative weights (fixed from the past)
is a supermartingale under the null — **whichever competitor j is named at each
step, as long as it is chosen from the past and satisfies the null**.

Arm b's test names, at step s, the leader on the datapoints before s (the
runner-up when b leads). If b is a best arm every competitor satisfies the null,
which is what lets one test per arm replace a union over the K − 1 comparisons.

:func:`bet_log_wealth` computes, vectorised over the arms, the betting wealth
``Π (1 + λ_s Y_s)`` with a predictable Kelly plug-in ``λ_s`` (capped so that
``1 + λ_s Y_s > 0``): a non-negative supermartingale under the null, so Ville's
inequality makes ``P(∃ t: wealth ≥ 1/δ) ≤ δ`` exact and anytime (no normal
approximation; looks are free).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["Bets", "bet_log_wealth", "bet_steps"]


@dataclass
class _Steps:
    """One competitor's steps: rows (arms betting on it), their X, centring, estimates."""

    rows: np.ndarray  # arms (row indices) that name this competitor at some step
    use: np.ndarray  # (r, steps): the arm names it at that step
    x: np.ndarray  # (r, steps): X_s
    m: np.ndarray  # (r, steps): m_s
    mu: np.ndarray  # (r, steps): predictable mean estimate of X
    var: np.ndarray  # (r, steps): predictable variance estimate of X
    remaining: np.ndarray  # (steps,): N − s + 1


def _steps(
    vz: np.ndarray,
    mask: np.ndarray,
    start: int,
    stop: int,
    population: int,
    width: float,
    margin: float,
    prior: float,
) -> Iterator[tuple[int, _Steps]]:
    k = vz.shape[0]
    idx = np.arange(start, stop)  # 0-based step = number of datapoints before it
    cs = np.cumsum(vz, axis=1)
    cn = np.cumsum(mask, axis=1, dtype=float)
    before = np.maximum(idx - 1, 0)
    prev_s = np.where(idx > 0, cs[:, before], 0.0)
    prev_n = np.where(idx > 0, cn[:, before], 0.0)
    pm = prev_s / np.maximum(prev_n, 1.0)
    order = np.argsort(-pm, axis=0, kind="stable")
    leader, runner = order[0], order[1]
    rows = np.arange(k)[:, None]
    comp = np.where(leader[None, :] == rows, runner[None, :], leader[None, :])
    remaining = float(population) - idx
    for j in np.unique(comp):
        use = comp == j
        rows_j = np.flatnonzero(use.any(axis=1))
        both = mask[j][None, :] & mask[rows_j]
        x = (vz[j][None, :] - vz[rows_j]) * both - margin
        csum = np.cumsum(x, axis=1)
        csq = np.cumsum(x * x, axis=1)
        s_prev = np.where(idx > 0, csum[:, before], 0.0)
        q_prev = np.where(idx > 0, csq[:, before], 0.0)
        mu = s_prev / (idx + prior)
        var = (q_prev + prior * width * width) / (idx + prior) - mu * mu
        yield (
            int(j),
            _Steps(
                rows=rows_j,
                use=use[rows_j],
                x=x[:, start:stop],
                m=-s_prev / remaining,
                mu=mu,
                var=np.maximum(var, 1e-12),
                remaining=remaining,
            ),
        )


@dataclass
class Bets:
    """Every arm's bets over steps ``start … stop − 1`` (rows: the arms given).

    ``comp[a, t]``: the competitor (a row) arm a's test named at that step;
    ``lam``: the stake; ``y``: the centred difference ``X − m``; ``remaining``:
    ``N − s + 1``. ``log_wealth`` is the cumulative log-wealth gained.
    """

    comp: np.ndarray
    lam: np.ndarray
    y: np.ndarray
    remaining: np.ndarray
    log_wealth: np.ndarray


def bet_steps(
    vz: np.ndarray,
    mask: np.ndarray,
    start: int,
    stop: int,
    population: int,
    *,
    width: float = 1.0,
    margin: float = 0.0,
    cap: float = 0.5,
    prior: float = 1.0,
) -> Bets:
    """The bets of :func:`bet_log_wealth`, step by step (see :class:`Bets`)."""
    k = vz.shape[0]
    steps = max(stop - start, 0)
    comp = np.full((k, steps), -1, dtype=np.int64)
    lam_all = np.zeros((k, steps))
    y_all = np.zeros((k, steps))
    remaining = float(population) - np.arange(start, stop, dtype=float)
    if k < 2 or steps == 0:
        return Bets(comp, lam_all, y_all, remaining, np.zeros((k, steps)))
    lo = width + margin  # X ≥ −lo
    for j, st in _steps(vz, mask, start, stop, population, width, margin, prior):
        e = population * st.mu / st.remaining
        lam = np.where(e > 0, e / (st.var + e * e), 0.0)
        worst = np.maximum(lo + st.m, 1e-12)  # 1 + λ(X − m) ≥ 1 − λ(lo + m)
        lam = np.clip(lam, 0.0, cap / worst)
        rows = st.rows
        comp[rows] = np.where(st.use, j, comp[rows])
        lam_all[rows] = np.where(st.use, lam, lam_all[rows])
        y_all[rows] = np.where(st.use, st.x - st.m, y_all[rows])
    inc = np.log1p(lam_all * y_all)
    return Bets(comp, lam_all, y_all, remaining, np.cumsum(inc, axis=1))


def bet_log_wealth(
    vz: np.ndarray,
    mask: np.ndarray,
    start: int,
    stop: int,
    population: int,
    *,
    width: float = 1.0,
    margin: float = 0.0,
    cap: float = 0.5,
    prior: float = 1.0,
) -> np.ndarray:
    """Cumulative log-wealth of every arm's test over steps ``start … stop − 1``.

    ``vz[a, u]``: arm a's value on the u-th datapoint of the order (0 if missing),
    ``mask[a, u]``: the cell is present, over a common prefix of length ``stop``.
    Returns ``(n_arms, stop − start)``: the log-wealth gained since ``start`` by
    arm a's test "no arm beats a by more than ``margin``". ``width`` bounds
    ``|v_j − v_b|``; ``cap`` is the largest share of wealth staked on one step.
    Bets: ``λ = ê / (σ̂² + ê²)`` with ``ê = N·μ̂ / (N − s + 1)``, capped.
    """
    return bet_steps(
        vz, mask, start, stop, population, width=width, margin=margin, cap=cap, prior=prior
    ).log_wealth
