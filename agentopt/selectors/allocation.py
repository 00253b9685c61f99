"""Spending a budget that binds: paired sequential halving over the alive arms.

When ``budget_usd`` or ``max_evaluations`` cannot pay for every alive arm to
see every datapoint, a confidence rule alone would run out of money with many
arms alive and pick among them on thin, early data. Sequential halving
(Karnin, Koren & Somekh 2013) spends a fixed budget to maximise the chance of
ending on the best arm: the remaining budget is split evenly over the
``⌈log₂ m⌉`` halvings still needed for the ``m`` alive arms; each round moves
every alive arm forward on the *same* datapoints of the shuffled order (paired),
then the more promising half goes on, ranked by the upper end of a
one-standard-error band around each arm's mean over the shared prefix
(:func:`optimistic_means`). The last two
arms share what is left, so the final comparison is made on as much data as the
budget buys.

Nothing here depends on a benchmark: the plan is fixed by the budget left, the
per-evaluation costs observed so far, N and the alive arms. Budget eliminations
are not certified: the strategy records them apart, and the results then state
an estimated probability, not a confidence level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from agentopt.selectors.base import Problem
from agentopt.selectors.state import ArmStats

GROWTH = 2.0  # each round moves its arms twice as far as the one before

__all__ = [
    "affordable",
    "budget_target",
    "halving_keep",
    "leaders",
    "optimistic_means",
    "unit_costs",
]


def unit_costs(stats: ArmStats, problem: Problem) -> np.ndarray | None:
    """Predicted $ per evaluation for every arm: its own observed mean, else the
    problem's hint, else the mean over the arms observed; None if nothing is known."""
    mean = stats.mean_cost()
    if problem.arm_costs_hint is not None:
        mean = np.where(np.isnan(mean), problem.arm_costs_hint, mean)
    known = ~np.isnan(mean)
    if not known.any():
        return None
    # an arm never priced is predicted at the dearest known arm (never optimistic)
    return np.where(known, mean, float(np.max(mean[known])))


def _plan_cost(scale: float, common: int, n: int, rates: list[float]) -> float:
    """Predicted spend of a halving plan whose r-th round moves its arms forward by
    ``scale·2^r`` datapoints (``rates[r]``: the summed $ or count per datapoint of
    the arms predicted alive in round r), prefixes capped at n."""
    total, prev = 0.0, float(common)
    for r, rate in enumerate(rates):
        cur = min(float(n), common + scale * (GROWTH ** (r + 1) - 1) / (GROWTH - 1))
        total += rate * (cur - prev)
        prev = cur
    return total


def _first_step(left: float, common: int, n: int, rates: list[float]) -> float:
    """The first round's step of the plan that spends exactly ``left`` (bisection)."""
    if _plan_cost(float(n), common, n, rates) <= left:
        return math.inf
    lo, hi = 0.0, float(n)
    for _ in range(60):
        mid = (lo + hi) / 2
        if _plan_cost(mid, common, n, rates) > left:
            hi = mid
        else:
            lo = mid
    return lo


def budget_target(
    problem: Problem,
    stats: ArmStats,
    pos: np.ndarray,
    alive: Sequence[int],
) -> int | None:
    """The shared prefix the alive arms should reach next when the budget binds,
    or None when it does not (the confidence schedule then goes on).

    The plan: halvings until one arm is left, the survivors of each predicted to
    be the current leaders (:func:`leaders`), each round moving its arms twice as
    far as the one before, so every round costs about the same *number* of
    evaluations while the dollars follow the arms that are likely to survive
    (the best arms are often the dearest). Its scale is the one that spends what
    is left; this round takes its first step.
    """
    if problem.budget_usd is None and problem.max_evaluations is None:
        return None
    n = problem.n_datapoints
    arms = np.asarray(alive, dtype=np.int64)
    if arms.size == 0:
        return None
    left = n - pos[arms]
    if int(left.max()) <= 0:
        return None
    common = int(pos[arms].min())
    order, _ = leaders(stats, problem, arms, common)
    sizes = [arms.size]
    while sizes[-1] > 1:
        sizes.append(halving_keep(sizes[-1]))
    sizes = sizes[:-1] or [1]
    step = math.inf
    binding = False
    if problem.max_evaluations is not None:
        evals_left = max(0, problem.max_evaluations - stats.evaluations)
        if float(left.sum()) > evals_left:
            binding = True
            step = min(step, _first_step(evals_left, common, n, [float(m) for m in sizes]))
    if problem.budget_usd is not None:
        costs = unit_costs(stats, problem)
        if costs is not None:
            usd_left = max(0.0, problem.budget_usd - float(stats.cost_sum.sum()))
            if float((costs[arms] * left).sum()) > usd_left * (1 + 1e-9):
                binding = True
                rates = [float(costs[order[:m]].sum()) for m in sizes]
                step = min(step, _first_step(usd_left, common, n, rates))
    if not binding:
        return None
    return min(n, common + max(1, math.floor(step)))


def leaders(
    stats: ArmStats, problem: Problem, arms: np.ndarray, common: int
) -> tuple[np.ndarray, np.ndarray]:
    """The alive arms, most promising first (unseen last), and the values that rank
    them: the upper end of a one-standard-error band around each arm's mean over
    the shared prefix (see :func:`optimistic_means`)."""
    v = stats.values[np.ix_(arms, problem.order[:common])]
    up = optimistic_means(v, problem.objective.value_range())
    rank = np.argsort(-up, kind="stable")
    return np.asarray(arms[rank]), np.asarray(up[rank])


def optimistic_means(values: np.ndarray, width: float) -> np.ndarray:
    """Per row (NaN: not seen): mean + one standard error, the variance shrunk
    towards its largest possible value ``width²/4`` by one pseudo-observation (as
    the paired tests do); ``-inf`` for a row with nothing seen.

    Why a halving ranks by it rather than by the mean: the cut should drop the
    arms least likely to be the best, and an arm whose mean rests on less or
    noisier evidence is more likely to be better than it looks. With rare errors
    (scores near 1), a single unlucky early datapoint no longer outweighs the
    evidence that the arm is among the best (measured on the recorded tables: the
    equal-budget found-best rate on mathqa rose from 56 % to 70 %, the other three
    unchanged). It is a ranking, not a test: nothing is certified by it.
    """
    ok = ~np.isnan(values)
    seen = ok.sum(axis=1)
    n = np.maximum(seen, 1)
    vz = np.where(ok, values, 0.0)
    mean = vz.sum(axis=1) / n
    ss = np.maximum((vz * vz).sum(axis=1) - n * mean * mean, 0.0)  # Σ (v − mean)²
    var = (ss + width * width / 4.0) / n  # (n − 1)·s² plus one pseudo-observation, over n
    return np.where(seen > 0, mean + np.sqrt(var / n), -np.inf)


def halving_keep(n_alive: int) -> int:
    """How many arms a halving keeps."""
    return max(1, math.ceil(n_alive / 2))


def affordable(
    problem: Problem, stats: ArmStats, pos: np.ndarray, ranked: Sequence[int] | np.ndarray
) -> int:
    """How many of ``ranked`` (best first) the budget left can take to the end of
    the data: a halving never keeps fewer, since arms that all see every
    datapoint are then compared on their exact means."""
    n = problem.n_datapoints
    arms = np.asarray(ranked, dtype=np.int64)
    need = (n - pos[arms]).astype(float)
    fits = np.full(arms.size, True)
    if problem.max_evaluations is not None:
        evals_left = max(0, problem.max_evaluations - stats.evaluations)
        fits &= np.cumsum(need) <= evals_left
    if problem.budget_usd is not None:
        costs = unit_costs(stats, problem)
        if costs is None:
            return 0
        usd_left = max(0.0, problem.budget_usd - float(stats.cost_sum.sum()))
        fits &= np.cumsum(costs[arms] * need) <= usd_left * (1 + 1e-9)
    return int(np.argmin(fits)) if not fits.all() else int(arms.size)
