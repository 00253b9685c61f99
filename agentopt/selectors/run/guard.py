"""A dollar budget enforced per evaluation, in flight included, for live selections.

The selection loop cuts a batch to the budget before it starts, from each
arm's observed cost per item. Live batches run many evaluations at once, so the
live evaluator also *reserves* with this guard before starting each one:

- an evaluation starts only if what was spent, plus the reservations of the
  evaluations in flight, plus its own estimate stays within the budget; its
  estimate is its arm's mean priced cost, else the dearest arm priced so far
  (never optimistic), and it is replaced by the real cost when the evaluation
  ends (:meth:`BudgetGuard.settle`);
- before any evaluation has been priced there is no estimate: evaluations then
  start one at a time (the others wait for the first price), so the spend can
  pass the budget by at most the cost of one evaluation;
- an evaluation whose calls were unpriced counts at its estimate, never as $0;
  with no priced evaluation to estimate from, the budget cannot be enforced and
  the selection stops, saying so.

A refused start yields no observation, and :class:`GuardStop` ends the
selection. Another executor (threads, processes, a cluster) reuses the same
protocol: ``await reserve(arm)`` → run → ``settle(reservation, observation)``
(or ``cancel(reservation)``); the guard is thread-safe.

Example::

    guard = BudgetGuard(0.005, n_arms=4)
    r = await guard.reserve(0)       # None: refused (the budget would be passed)
    guard.settle(r, observation)     # the estimate is replaced by the real cost
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import numpy as np

from agentopt.records import Observation
from agentopt.selectors.state import SelectionState
from agentopt.selectors.stopping import StoppingRule, usd

__all__ = ["BudgetGuard", "GuardStop", "Reservation"]


@dataclass(frozen=True)
class Reservation:
    """Money held for one evaluation in flight; ``known`` False before any price."""

    arm: int
    estimate: float
    known: bool


class _Wait:
    pass


_WAIT = _Wait()


class BudgetGuard:
    """Tracks spend (fresh and resumed observations), reserves for evaluations in
    flight and admits evaluations (see the module docstring)."""

    def __init__(self, budget_usd: float, n_arms: int) -> None:
        self.budget_usd = float(budget_usd)
        self.spent = 0.0  #: priced costs plus estimates of unpriced evaluations
        self.estimated_usd = 0.0  #: the part of ``spent`` that is an estimate
        self.unpriced = 0  #: evaluations counted at an estimate
        self.unenforceable = 0  #: unpriced evaluations with nothing to estimate from
        self.in_flight = 0.0
        self.refused = 0
        self._blind = 0  # evaluations in flight with no estimate (before any price)
        self._sum = np.zeros(n_arms)
        self._n = np.zeros(n_arms, dtype=np.int64)
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []

    def predict(self, arm: int) -> float | None:
        """The arm's mean priced $ per evaluation, else the dearest arm's, else None."""
        if self._n[arm]:
            return float(self._sum[arm] / self._n[arm])
        seen = self._n > 0
        if not seen.any():
            return None
        return float(np.max(self._sum[seen] / self._n[seen]))

    def _decide(self, arm: int) -> Reservation | _Wait | None:
        limit = self.budget_usd * (1 + 1e-12)
        if self.unenforceable or self.spent + self.in_flight >= limit:
            self.refused += 1
            return None
        p = self.predict(arm)
        if p is None:
            if self._blind:
                return _WAIT  # one evaluation of unknown cost at a time
            self._blind += 1
            return Reservation(arm, 0.0, known=False)
        if self.spent + self.in_flight + p > limit:
            self.refused += 1
            return None
        self.in_flight += p
        return Reservation(arm, p, known=True)

    async def reserve(self, arm: int) -> Reservation | None:
        """Hold money for one evaluation of ``arm``; None if it may not start."""
        while True:
            with self._lock:
                d = self._decide(arm)
                if not isinstance(d, _Wait):
                    return d
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
            await fut

    def settle(self, reservation: Reservation, obs: Observation) -> None:
        """The evaluation ended: its real cost (or estimate) replaces the reservation."""
        with self._lock:
            self._release(reservation)
            self._count(reservation.arm, obs)
        self._wake()

    def cancel(self, reservation: Reservation) -> None:
        """The evaluation did not happen: give the reservation back."""
        with self._lock:
            self._release(reservation)
        self._wake()

    def observe(self, arm: int, obs: Observation) -> None:
        """Count an observation made without a reservation (one resumed from a store)."""
        with self._lock:
            self._count(arm, obs)
        self._wake()

    # ----------------------------------------------------------------- inside
    def _release(self, r: Reservation) -> None:
        if r.known:
            self.in_flight = max(0.0, self.in_flight - r.estimate)
        else:
            self._blind = max(0, self._blind - 1)

    def _count(self, arm: int, obs: Observation) -> None:
        if obs.cost_usd is not None:
            self.spent += obs.cost_usd
            self._sum[arm] += obs.cost_usd
            self._n[arm] += 1
            return
        est = self.predict(arm)
        if est is None:
            self.unenforceable += 1
            return
        self.spent += est
        self.estimated_usd += est
        self.unpriced += 1

    def _wake(self) -> None:
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.get_loop().call_soon_threadsafe(_resolve, fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class GuardStop(StoppingRule):
    """Stops the selection once the guard refused an evaluation, or cannot price one."""

    def __init__(self, guard: BudgetGuard) -> None:
        self.guard = guard

    def should_stop(self, state: SelectionState) -> str | None:
        g = self.guard
        if g.unenforceable:
            return (
                f"budget {usd(g.budget_usd)} cannot be enforced: {g.unenforceable} "
                "evaluation(s) made unpriced calls and none was priced to estimate from "
                "(give model_prices= for the models the agent calls, or no budget_usd)"
            )
        if g.refused:
            note = (
                f", {usd(g.estimated_usd)} of it estimated for unpriced calls" if g.unpriced else ""
            )
            return f"budget {usd(g.budget_usd)} reached (spent {usd(g.spent)}{note})"
        return None
