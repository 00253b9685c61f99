"""A circuit breaker per backend: stop sending traffic to one that keeps failing.

closed ── N consecutive failures ──► open ── cool-down elapsed ──► half-open
  ▲                                   ▲                                │
  └──────────── trial succeeds ───────┼──────── trial fails ───────────┘

While open, :meth:`allow` is False (routers and aliases skip the backend).
After ``cooldown`` seconds one trial call is let through (half-open); its
success closes the breaker, its failure opens it again for another cool-down.
A successful health probe counts as a trial. Time comes from ``clock`` so
tests drive it without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from agentopt.exceptions import ConfigError

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ConfigError(f"breaker failure_threshold={failure_threshold}: expected ≥ 1")
        if cooldown < 0:
            raise ConfigError(f"breaker cooldown={cooldown}: expected ≥ 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0  # consecutive
        self._opened_at: float | None = None
        self._trial_out = False
        self.total_failures = 0
        self.total_successes = 0
        self.opened = 0  # times it opened
        self.last_error: str | None = None

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def _current(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self._opened_at is not None
            and self._clock() - self._opened_at >= self.cooldown
        ):
            self._state = BreakerState.HALF_OPEN
            self._trial_out = False
        return self._state

    def allow(self) -> bool:
        """May a call go to this backend now? In half-open, only one trial at a time."""
        with self._lock:
            state = self._current()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_out:
                self._trial_out = True
                return True
            return False

    def available(self) -> bool:
        """Like :meth:`allow` without taking the half-open trial (for routers' candidate lists)."""
        with self._lock:
            state = self._current()
            return state is BreakerState.CLOSED or (
                state is BreakerState.HALF_OPEN and not self._trial_out
            )

    def record_success(self) -> None:
        with self._lock:
            self.total_successes += 1
            self._failures = 0
            self._state = BreakerState.CLOSED
            self._opened_at = None
            self._trial_out = False

    def record_failure(self, error: str | None = None) -> None:
        with self._lock:
            self.total_failures += 1
            self.last_error = error
            state = self._current()
            self._failures += 1
            if state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
                if state is not BreakerState.OPEN:
                    self.opened += 1
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._trial_out = False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            state = self._current()
            retry_in = None
            if state is BreakerState.OPEN and self._opened_at is not None:
                retry_in = max(0.0, self.cooldown - (self._clock() - self._opened_at))
            return {
                "state": state.value,
                "consecutive_failures": self._failures,
                "failures": self.total_failures,
                "successes": self.total_successes,
                "times_opened": self.opened,
                "half_open_in_seconds": retry_in,
                "last_error": self.last_error,
            }
