"""The selection loop: ask → (cut to the budget) → evaluate → tell → check the rules.

:func:`run_selection` drives any :class:`Evaluator` (live or replay) and records
Observations; the replay fast path (:func:`agentopt.selectors.replay.run_replay`)
shares its helpers but works on arrays only.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from agentopt.exceptions import EvaluationError
from agentopt.records import Observation
from agentopt.selectors.base import Evaluator, Pair, Problem, Strategy
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import StoppingRule, default_stopping

__all__ = [
    "BatchCallback",
    "interleave",
    "predicted_costs",
    "refresh_view",
    "run_selection",
    "truncate_batch",
]

#: Called after every batch with the state (sync, or async and awaited).
BatchCallback = Callable[[SelectionState], Awaitable[None] | None]


def predicted_costs(state: SelectionState, pairs: Sequence[Pair]) -> np.ndarray:
    """What each pair is expected to cost: the arm's observed mean $ per item, else
    the problem's hint, else 0 (unknown)."""
    mean = state.stats.mean_cost()
    hint = state.problem.arm_costs_hint
    if hint is not None:
        mean = np.where(np.isnan(mean), hint, mean)
    mean = np.nan_to_num(mean, nan=0.0)
    return np.asarray([mean[a] for a, _ in pairs], dtype=float)


def interleave(pairs: list[Pair]) -> list[Pair]:
    """The batch in paired order: every arm's k-th pair before any arm's (k+1)-th,
    arms in the order the strategy listed them (e.g. cheaper first).

    A batch cut anywhere (a budget, an evaluation cap, a refused start) then
    leaves the arms within one datapoint of each other, on the same datapoints.
    """
    if len(pairs) < 2:
        return pairs
    by_arm: dict[int, list[Pair]] = {}
    for p in pairs:
        by_arm.setdefault(p[0], []).append(p)
    if len(by_arm) == 1:
        return pairs
    out: list[Pair] = []
    queues = list(by_arm.values())
    depth = max(len(q) for q in queues)
    for k in range(depth):
        out.extend(q[k] for q in queues if k < len(q))
    return out


def truncate_batch(
    pairs: list[Pair],
    n_allow: int | None,
    usd_allow: float | None,
    costs: np.ndarray | None,
) -> tuple[list[Pair], bool]:
    """Cut ``pairs`` to what the allowances permit; returns (pairs, was_cut)."""
    cut = False
    if n_allow is not None and len(pairs) > n_allow:
        pairs, cut = pairs[:n_allow], True
    if usd_allow is not None and costs is not None and len(pairs):
        csum = np.cumsum(costs[: len(pairs)])
        k = int(np.searchsorted(csum, usd_allow * (1 + 1e-12), side="right"))
        if k < len(pairs):
            pairs, cut = pairs[:k], True
    return pairs, cut


def refresh_view(state: SelectionState, strategy: Strategy, bounds: bool) -> None:
    """Copy the strategy's view (alive, eliminated, best, bounds) into the state."""
    state.alive = strategy.alive()
    state.eliminated = strategy.eliminated()
    state.strategy_finished = strategy.finished()
    state.best = strategy.best()
    if bounds:
        state.lower, state.upper = strategy.intervals()
        state.gap_upper = strategy.gap_bound()


def _nan(x: float | int | None) -> float:
    return math.nan if x is None else float(x)


async def run_selection(
    strategy: Strategy,
    evaluator: Evaluator,
    problem: Problem,
    stopping: StoppingRule | None = None,
    *,
    on_batch: BatchCallback | None = None,
) -> SelectionState:
    """Run ``strategy`` on ``problem`` with ``evaluator`` until a rule or the
    strategy stops; returns the final state (every Observation, counted once)."""
    stopping = stopping or default_stopping(epsilon=problem.epsilon)
    strategy.start(problem)
    state = SelectionState.empty(problem)
    refresh_view(state, strategy, stopping.needs_bounds)
    reason: str | None = None
    while True:
        reason = stopping.should_stop(state)
        if reason is not None:
            break
        pairs = strategy.ask()
        if not pairs:
            reason = "selection finished"
            break
        pairs = interleave(pairs)
        n_allow, usd_allow = stopping.allowance(state)
        costs = predicted_costs(state, pairs) if usd_allow is not None else None
        pairs, cut = truncate_batch(pairs, n_allow, usd_allow, costs)
        if pairs:
            results = await evaluator.evaluate(pairs)
            if len(results) != len(pairs):
                raise EvaluationError(
                    f"the evaluator returned {len(results)} results for {len(pairs)} pairs"
                )
            _record(state, strategy, pairs, results)
            strategy.update()
            state.rounds += 1
            refresh_view(state, strategy, stopping.needs_bounds)
            if on_batch is not None:
                maybe = on_batch(state)
                if inspect.isawaitable(maybe):
                    await maybe
        if cut:
            reason = stopping.should_stop(state) or "budget reached"
            break
    refresh_view(state, strategy, True)
    state.stop_reason = reason
    return state


def _record(
    state: SelectionState,
    strategy: Strategy,
    pairs: Sequence[Pair],
    results: Sequence[Observation | None],
) -> None:
    objective = state.problem.objective
    for (arm, dp), obs in zip(pairs, results, strict=True):
        state.asked[arm] += 1
        if obs is None:
            continue
        cost, lat = _nan(obs.cost_usd), _nan(obs.latency_seconds)
        value = objective.value(obs.score, cost, lat)
        if state.stats.add(arm, dp, obs.score, value, cost, lat, obs.failed):
            state.observations.append(obs)
            state.evaluations += 1
            if not math.isnan(cost):
                state.spent_usd += cost
        strategy.tell(arm, dp, obs.score, cost, lat, failed=obs.failed)
