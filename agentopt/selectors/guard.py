"""A dollar budget enforced per evaluation, inside a batch, for live selections.

The selection loop cuts a batch to the budget before it starts, from each
arm's observed cost per item. Live batches run many evaluations at once and
the costs of the first batch are unknown, so the live evaluator also asks
this guard before *starting* each evaluation: it starts only when what was
spent, plus what is in flight, plus this arm's predicted cost stays within
the budget. A refused pair yields no observation, and :class:`GuardStop`
ends the selection. At most ``max_concurrent`` evaluations of unknown cost
can overrun the budget, and only before any cost has been observed.
"""

from __future__ import annotations

import threading

import numpy as np

from agentopt.records import Observation
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import StoppingRule

__all__ = ["BudgetGuard", "GuardStop"]


class BudgetGuard:
    """Tracks spend (fresh and resumed observations) and admits evaluations."""

    def __init__(self, budget_usd: float, n_arms: int) -> None:
        self.budget_usd = float(budget_usd)
        self.spent = 0.0
        self.in_flight = 0.0
        self.refused = 0
        self._sum = np.zeros(n_arms)
        self._n = np.zeros(n_arms, dtype=np.int64)
        self._lock = threading.Lock()

    def predict(self, arm: int) -> float:
        """The arm's observed mean $ per item, else the mean over all arms, else 0."""
        if self._n[arm]:
            return float(self._sum[arm] / self._n[arm])
        total = int(self._n.sum())
        return float(self._sum.sum() / total) if total else 0.0

    def try_start(self, arm: int) -> float | None:
        """The predicted cost, reserved, if the evaluation may start; else None."""
        with self._lock:
            p = self.predict(arm)
            if self.spent + self.in_flight + p > self.budget_usd * (1 + 1e-12):
                self.refused += 1
                return None
            self.in_flight += p
            return p

    def release(self, reserved: float) -> None:
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - reserved)

    def observe(self, arm: int, obs: Observation) -> None:
        """Count an observation's cost (an unpriced one counts as $0)."""
        with self._lock:
            if obs.cost_usd is not None:
                self.spent += obs.cost_usd
                self._sum[arm] += obs.cost_usd
                self._n[arm] += 1


class GuardStop(StoppingRule):
    """Stops the selection once the guard refused an evaluation."""

    def __init__(self, guard: BudgetGuard) -> None:
        self.guard = guard

    def should_stop(self, state: SelectionState) -> str | None:
        if self.guard.refused:
            return f"budget ${self.guard.budget_usd:.2f} reached"
        return None
