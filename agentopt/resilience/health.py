"""Which backends are healthy: passive signals from real traffic plus active probes.

:class:`HealthRegistry` keeps one :class:`BackendHealth` per backend name (a
provider, or a base URL): a :class:`~agentopt.resilience.breaker.CircuitBreaker`
fed by every real call's outcome (:meth:`HealthRegistry.record`) and by probes
(:meth:`HealthRegistry.probe_once` / :meth:`HealthRegistry.run_probes`: an HTTP
GET of a configurable path every ``interval`` seconds). A backend whose
breaker is open is unavailable to routers and aliases until a probe or a
half-open trial call succeeds, so a backend that comes back returns to
service within one probe interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentopt.resilience.breaker import BreakerState, CircuitBreaker

__all__ = ["BackendHealth", "HealthRegistry", "Probe", "ProbeConfig"]

log = logging.getLogger("agentopt.resilience")

#: an async probe: (url) -> None when healthy, else the reason
Probe = Callable[[str], Awaitable[str | None]]


@dataclass
class ProbeConfig:
    url: str  # what to GET (the backend's base URL + path)
    interval: float = 10.0
    failure_threshold: int = 3  # consecutive failed probes that open the breaker
    timeout: float = 5.0


@dataclass
class BackendHealth:
    name: str
    breaker: CircuitBreaker
    probe: ProbeConfig | None = None
    last_probe_at: str | None = None
    last_probe_ok: bool | None = None
    last_probe_error: str | None = None
    last_probe_seconds: float | None = None
    probe_failures: int = 0  # consecutive
    probes: int = 0
    calls_ok: int = 0
    calls_failed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": self.breaker.available(),
            "breaker": self.breaker.snapshot(),
            "calls_ok": self.calls_ok,
            "calls_failed": self.calls_failed,
            "probe": None
            if self.probe is None
            else {
                "url": self.probe.url,
                "interval_seconds": self.probe.interval,
                "last_at": self.last_probe_at,
                "last_ok": self.last_probe_ok,
                "last_error": self.last_probe_error,
                "last_seconds": self.last_probe_seconds,
                "consecutive_failures": self.probe_failures,
                "probes": self.probes,
            },
        }


async def http_probe(url: str, timeout: float = 5.0) -> str | None:
    """GET ``url``: healthy on any status below 500 (an auth error still proves it is up)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.get(url)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if r.status_code < 500 else f"HTTP {r.status_code}"


class HealthRegistry:
    """Thread-safe map of backend name → :class:`BackendHealth`."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.clock = clock  # every breaker's time source (tests drive it)
        self._lock = threading.Lock()
        self._backends: dict[str, BackendHealth] = {}

    def backend(self, name: str) -> BackendHealth:
        with self._lock:
            b = self._backends.get(name)
            if b is None:
                b = BackendHealth(
                    name,
                    CircuitBreaker(
                        failure_threshold=self.failure_threshold,
                        cooldown=self.cooldown,
                        clock=lambda: self.clock(),
                    ),
                )
                self._backends[name] = b
            return b

    def configure_probe(self, name: str, probe: ProbeConfig) -> None:
        self.backend(name).probe = probe

    def available(self, name: str) -> bool:
        """False while the backend's breaker is open (unknown backends are available)."""
        with self._lock:
            b = self._backends.get(name)
        return b is None or b.breaker.available()

    def allow(self, name: str) -> bool:
        """Take a call slot: True when closed, or as the one half-open trial."""
        return self.backend(name).breaker.allow()

    def record(self, name: str, ok: bool, error: str | None = None) -> None:
        """A real call's outcome (passive health)."""
        b = self.backend(name)
        if ok:
            b.calls_ok += 1
            b.breaker.record_success()
        else:
            b.calls_failed += 1
            b.breaker.record_failure(error)

    async def probe_once(self, name: str, probe: Probe | None = None) -> bool:
        """Probe one backend now; a success closes its breaker, ``failure_threshold``
        consecutive failures open it."""
        b = self.backend(name)
        if b.probe is None:
            raise ValueError(f"backend {name!r} has no probe configured")
        t0 = time.perf_counter()
        if probe is not None:
            error = await probe(b.probe.url)
        else:
            error = await http_probe(b.probe.url, b.probe.timeout)
        b.last_probe_seconds = time.perf_counter() - t0
        b.last_probe_at = datetime.now(UTC).isoformat()
        b.last_probe_ok = error is None
        b.last_probe_error = error
        b.probes += 1
        if error is None:
            b.probe_failures = 0
            b.breaker.record_success()
        else:
            b.probe_failures += 1
            if b.probe_failures >= b.probe.failure_threshold and (
                b.breaker.state is not BreakerState.OPEN
            ):
                for _ in range(b.breaker.failure_threshold):
                    b.breaker.record_failure(f"probe: {error}")
        return error is None

    async def run_probes(self, stop: asyncio.Event, probe: Probe | None = None) -> None:
        """Probe every configured backend at its interval until ``stop`` is set
        (a probe that raises is logged, never fatal)."""
        next_at: dict[str, float] = {}
        while not stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [
                    b
                    for b in self._backends.values()
                    if b.probe is not None and next_at.get(b.name, 0.0) <= now
                ]
            for b in due:
                assert b.probe is not None
                next_at[b.name] = now + b.probe.interval
            if due:  # a probe that raises is logged; the others go on
                outcomes = await asyncio.gather(
                    *(self.probe_once(b.name, probe) for b in due), return_exceptions=True
                )
                for b, outcome in zip(due, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        log.error("agentopt: health probe of %s failed: %r", b.name, outcome)
            wait = min((t - time.monotonic() for t in next_at.values()), default=1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.01, min(wait, 1.0)))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            backends = list(self._backends.values())
        return {b.name: b.snapshot() for b in sorted(backends, key=lambda b: b.name)}
