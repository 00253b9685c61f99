"""Which fault, if any, a request suffers: forced by the ``x-sim-fault`` header,
queued by :meth:`FaultInjector.inject` (``SimServer.inject``), or drawn per model.

Draws come from one generator per model, seeded by (world seed, model), so a
given sequence of requests meets the same faults on every run. Answers, in
contrast, are seeded by the request itself: retrying a request that failed
draws a new fault but gets the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter, deque

from agentopt.exceptions import SimulatorError
from agentopt.sim.world import FAULT_STATUSES, SimModel

__all__ = ["FAULT_KINDS", "FaultInjector", "fault_message", "is_fault"]

#: faults that are not an HTTP error status
FAULT_KINDS = ("hang", "drop", "truncate", "malformed")


class FaultInjector:
    """Decides faults and counts them in ``stats`` (``fault_429``, ``fault_drop``, …)."""

    def __init__(self, world_seed: int, stats: Counter[str]) -> None:
        self.world_seed = world_seed
        self.stats = stats
        self._rngs: dict[str, random.Random] = {}
        self._queued: dict[str, deque[str]] = {}
        self._closing: asyncio.Event | None = None

    def inject(self, model: str, kind: str, times: int = 1) -> None:
        """Make the next ``times`` requests to ``model`` (canonical name) suffer
        ``kind`` (a status such as ``"429"``, or one of :data:`FAULT_KINDS`).
        Safe to call from any thread."""
        kind = str(kind).strip().lower()
        if not is_fault(kind):
            raise SimulatorError(
                f"unknown fault {kind!r}: use an HTTP status in {FAULT_STATUSES} or one of {FAULT_KINDS}"
            )
        if times < 1:
            raise SimulatorError(f"times must be >= 1, got {times}")
        self._queued.setdefault(model, deque()).extend([kind] * times)

    def draw(self, model: SimModel, forced: bytes | None = None) -> str | None:
        """A status as text (``"429"``), a kind from :data:`FAULT_KINDS`, or None."""
        if forced is not None:
            kind = forced.decode(errors="replace").strip().lower()
            if is_fault(kind):
                self.stats[f"fault_{kind}"] += 1
                return kind
            return None
        queued = self._queued.get(model.name)
        if queued:
            try:
                kind = queued.popleft()
            except IndexError:  # emptied by another thread meanwhile
                pass
            else:
                self.stats[f"fault_{kind}"] += 1
                return kind
        f = model.faults
        if f.total <= 0:
            return None
        rng = self._rngs.get(model.name)
        if rng is None:
            seed = hashlib.blake2b(f"faults|{self.world_seed}|{model.name}".encode()).digest()
            rng = self._rngs[model.name] = random.Random(seed)
        u = rng.random()
        rates = [
            *((str(s), r) for s, r in f.errors.items()),
            *((k, getattr(f, k)) for k in FAULT_KINDS),
        ]
        for kind, rate in rates:
            if u < rate:
                self.stats[f"fault_{kind}"] += 1
                return kind
            u -= rate
        return None

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds``, or until :meth:`release` (the server is stopping)."""
        if self._closing is None:
            self._closing = asyncio.Event()
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            return

    def release(self) -> None:
        """Wake every hanging request (call from the server's loop)."""
        if self._closing is not None:
            self._closing.set()


def is_fault(kind: str) -> bool:
    return kind in FAULT_KINDS or (kind.isdigit() and int(kind) in FAULT_STATUSES)


def fault_message(status: int, model: str) -> str:
    return {
        429: f"Rate limit reached for {model} (simulated).",
        500: "The server had an error while processing your request (simulated).",
        529: "Overloaded (simulated).",
    }.get(status, f"Simulated error {status} for {model}.")
