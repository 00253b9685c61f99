"""Stopping rules: read the :class:`SelectionState`, say why to stop (or None).

Rules compose with :class:`AnyOf` (stop when any says so). Budget rules also say
how much may still be *started* (:meth:`StoppingRule.allowance`), so the loop cuts
a batch short and a budget is never overrun: ``MaxEvaluations(n)`` stops at
exactly ``n`` evaluations; ``BudgetUSD(x)`` never starts an evaluation predicted
to take the spend above ``x`` (in replay the prediction is the recorded cost,
so the spend stays ≤ ``x``).

Example::

    rule = default_stopping(epsilon=0.01, budget_usd=5.0)
    rule.should_stop(state)   # "budget $5.00 spent" | "within ε=0.01 of the best" | None
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from agentopt.exceptions import ConfigError
from agentopt.selectors.state import SelectionState

__all__ = [
    "AnyOf",
    "BudgetUSD",
    "ConfidenceReached",
    "DataExhausted",
    "EpsilonReached",
    "MaxEvaluations",
    "StoppingRule",
    "default_stopping",
    "usd",
]


def usd(x: float) -> str:
    """Dollars with the digits that matter: ``$5.00``, ``$0.005``, ``$44.4055``."""
    return f"${x:,.2f}" if round(x, 2) == x else f"${x:,.6g}"


class StoppingRule(ABC):
    """Says whether the selection should stop, and how much it may still start."""

    #: True when the rule reads ``state.lower/upper/gap_upper`` (the loop refreshes them).
    needs_bounds: bool = False

    @abstractmethod
    def should_stop(self, state: SelectionState) -> str | None:
        """A human-readable reason to stop, or None to go on."""

    def allowance(self, state: SelectionState) -> tuple[int | None, float | None]:
        """(evaluations, dollars) that may still be started; None = unlimited."""
        return None, None

    def __or__(self, other: StoppingRule) -> AnyOf:
        return AnyOf(self, other)


class ConfidenceReached(StoppingRule):
    """Stop when one arm is left alive, or the pick is certified the best."""

    needs_bounds = True

    def should_stop(self, state: SelectionState) -> str | None:
        if len(state.alive) <= 1:
            return "one combination left"
        if state.gap_upper <= 0.0:
            return f"best certified at confidence {state.problem.confidence:g}"
        return None


class EpsilonReached(StoppingRule):
    """Stop when the pick is certified within ``epsilon`` of the best."""

    needs_bounds = True

    def __init__(self, epsilon: float) -> None:
        if not (math.isfinite(epsilon) and epsilon >= 0):
            raise ConfigError(f"EpsilonReached: epsilon must be ≥ 0, not {epsilon!r}")
        self.epsilon = epsilon

    def should_stop(self, state: SelectionState) -> str | None:
        if len(state.alive) <= 1 or state.gap_upper <= self.epsilon:
            return f"within ε={self.epsilon:g} of the best"
        return None


class BudgetUSD(StoppingRule):
    """Stop once ``max_usd`` is spent; never start what would overrun it."""

    def __init__(self, max_usd: float) -> None:
        if not (math.isfinite(max_usd) and max_usd >= 0):
            raise ConfigError(f"BudgetUSD: the budget must be a number ≥ 0, not {max_usd!r}")
        self.max_usd = float(max_usd)

    def should_stop(self, state: SelectionState) -> str | None:
        if state.spent_usd >= self.max_usd:
            return f"budget {usd(self.max_usd)} spent"
        return None

    def allowance(self, state: SelectionState) -> tuple[int | None, float | None]:
        return None, max(0.0, self.max_usd - state.spent_usd)


class MaxEvaluations(StoppingRule):
    """Stop after exactly ``n`` evaluations."""

    def __init__(self, n: int) -> None:
        if not (isinstance(n, int) and n >= 0):
            raise ConfigError(f"MaxEvaluations: n must be an integer ≥ 0, not {n!r}")
        self.n = n

    def should_stop(self, state: SelectionState) -> str | None:
        if state.evaluations >= self.n:
            return f"{self.n} evaluations done"
        return None

    def allowance(self, state: SelectionState) -> tuple[int | None, float | None]:
        return max(0, self.n - state.evaluations), None


class DataExhausted(StoppingRule):
    """Stop when every alive arm was asked on every datapoint."""

    def should_stop(self, state: SelectionState) -> str | None:
        return "data exhausted" if state.data_exhausted else None


class AnyOf(StoppingRule):
    """Stop when any rule says so; allowances take the tightest."""

    def __init__(self, *rules: StoppingRule) -> None:
        self.rules: list[StoppingRule] = []
        for r in rules:
            self.rules.extend(r.rules if isinstance(r, AnyOf) else [r])

    @property
    def needs_bounds(self) -> bool:  # type: ignore[override]
        return any(r.needs_bounds for r in self.rules)

    def should_stop(self, state: SelectionState) -> str | None:
        for r in self.rules:
            reason = r.should_stop(state)
            if reason is not None:
                return reason
        return None

    def allowance(self, state: SelectionState) -> tuple[int | None, float | None]:
        n_max: int | None = None
        usd_max: float | None = None
        for r in self.rules:
            n, usd = r.allowance(state)
            if n is not None:
                n_max = n if n_max is None else min(n_max, n)
            if usd is not None:
                usd_max = usd if usd_max is None else min(usd_max, usd)
        return n_max, usd_max


def default_stopping(
    *,
    epsilon: float = 0.0,
    budget_usd: float | None = None,
    max_evaluations: int | None = None,
) -> AnyOf:
    """The rules ModelSelector applies: data exhausted, plus ε, $ and count limits
    when given. (A strategy's own certification ends it through ``ask() == []``.)"""
    rules: list[StoppingRule] = [DataExhausted()]
    if epsilon > 0:
        rules.append(EpsilonReached(epsilon))
    if budget_usd is not None:
        rules.append(BudgetUSD(budget_usd))
    if max_evaluations is not None:
        rules.append(MaxEvaluations(max_evaluations))
    return AnyOf(*rules)
