"""Quotas and budgets: which models a router may still use, and why not.

- a :class:`Quota` caps the calls routed to one model per sliding time window;
- a per-model budget caps what one model has spent, an overall budget what all
  models have spent together.

Spend comes from observed call records (``cost_usd``), or from feedback when no
record of that datapoint was observed. The clock is injectable so that windows
are tested without sleeping; the default is wall time (``time.time``), so a
saved router's windows still mean something after a restart.

Shared limits (gateway replicas on one database, :mod:`agentopt.gateway.replicas`):
after :meth:`Limits.share`, every call and spend this router counts is also kept
in a journal that :meth:`Limits.drain` empties (for publishing), and
:meth:`Limits.absorb` counts what other replicas published, without journaling it.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentopt.exceptions import ConfigError

__all__ = ["Limits", "Quota", "Usage"]

Clock = Callable[[], float]
#: One journal entry: (model or None, calls, dollars, time). A call is ``(model, 1,
#: 0.0, t)``, a spend ``(model, 0, usd, t)``.
Usage = tuple[str | None, int, float, float]


@dataclass(frozen=True)
class Quota:
    """At most ``max_calls`` calls to ``model`` in any ``window_seconds``."""

    model: str
    max_calls: int
    window_seconds: float

    def __post_init__(self) -> None:
        if not isinstance(self.max_calls, int) or self.max_calls < 0:
            raise ConfigError(f"quota for {self.model!r}: max_calls must be an int >= 0")
        if not self.window_seconds > 0:
            raise ConfigError(f"quota for {self.model!r}: window_seconds must be > 0")

    def describe(self) -> str:
        return f"{self.model} {self.max_calls} calls/{self.window_seconds:g} s"


QuotaSpec = Iterable[Quota] | Mapping[str, tuple[int, float]]


class Limits:
    """Quota and budget book-keeping for one router."""

    def __init__(
        self,
        *,
        quotas: QuotaSpec | None = None,
        model_budget_usd: Mapping[str, float] | None = None,
        budget_usd: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.quotas: dict[str, Quota] = {}
        if isinstance(quotas, Mapping):
            for model, spec in quotas.items():
                try:
                    calls, window = spec
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"quotas[{model!r}]: expected (max_calls, window_seconds), got {spec!r}"
                    ) from None
                self.quotas[model] = Quota(model, calls, float(window))
        else:
            for q in quotas or ():
                if not isinstance(q, Quota):
                    raise ConfigError(f"quotas: expected Quota objects, got {q!r}")
                self.quotas[q.model] = q
        self.model_budget_usd: dict[str, float] = dict(model_budget_usd or {})
        for model, b in self.model_budget_usd.items():
            if not b >= 0:
                raise ConfigError(f"model_budget_usd[{model!r}]: must be >= 0, got {b!r}")
        if budget_usd is not None and not budget_usd >= 0:
            raise ConfigError(f"budget_usd must be >= 0, got {budget_usd!r}")
        self.budget_usd = budget_usd
        self.clock: Clock = clock or time.time
        self._calls: dict[str, deque[float]] = {m: deque() for m in self.quotas}
        self.spend: dict[str, float] = {}
        self.total_spend = 0.0
        self.calls: dict[str, int] = {}
        self._journal: deque[Usage] | None = None  # set by share()

    @property
    def active(self) -> bool:
        """True when any limit is configured (else :meth:`blocked` is always None)."""
        return bool(self.quotas or self.model_budget_usd or self.budget_usd is not None)

    def blocked(self, model: str, now: float | None = None) -> str | None:
        """Why ``model`` may not be used now, or None when it may."""
        if self.budget_usd is not None and self.total_spend >= self.budget_usd:
            return (
                f"overall budget exhausted: spent ${self.total_spend:.4f} of ${self.budget_usd:.4f}"
            )
        cap = self.model_budget_usd.get(model)
        if cap is not None:
            spent = self.spend.get(model, 0.0)
            if spent >= cap:
                return f"budget exhausted: {model} spent ${spent:.4f} of ${cap:.4f}"
        q = self.quotas.get(model)
        if q is not None:
            window = self._calls[model]
            t = self.clock() if now is None else now
            while window and window[0] <= t - q.window_seconds:
                window.popleft()
            if len(window) >= q.max_calls:
                return f"quota exhausted: {q.describe()}"
        return None

    def record_call(self, model: str, now: float | None = None) -> None:
        self.calls[model] = self.calls.get(model, 0) + 1
        journal = self._journal
        if model in self.quotas or journal is not None:
            t = self.clock() if now is None else now
            if model in self.quotas:
                self._calls[model].append(t)
            if journal is not None:
                journal.append((model, 1, 0.0, t))

    def record_spend(self, model: str | None, usd: float | None) -> None:
        if usd is None or usd != usd or usd <= 0:  # None, NaN or nothing spent
            return
        self.total_spend += usd
        if model is not None:
            self.spend[model] = self.spend.get(model, 0.0) + usd
        if self._journal is not None:
            self._journal.append((model, 0, float(usd), self.clock()))

    # ------------------------------------------------------------------ sharing
    @property
    def shared(self) -> bool:
        """True once :meth:`share` was called."""
        return self._journal is not None

    def share(self) -> None:
        """Journal every call and spend counted from now on, for :meth:`drain`."""
        if self._journal is None:
            self._journal = deque()

    def drain(self) -> list[Usage]:
        """The journal's entries, oldest first; they leave the journal."""
        out: list[Usage] = []
        journal = self._journal
        while journal:
            out.append(journal.popleft())  # thread-safe against appends
        return out

    def absorb(self, model: str | None, calls: int, usd: float, at: float) -> None:
        """Count usage another replica published (``calls`` calls to ``model`` and
        ``usd`` spent, the last at ``at``), without journaling it. Calls older than
        their model's quota window are counted but not kept in the window."""
        if usd > 0:
            self.total_spend += usd
            if model is not None:
                self.spend[model] = self.spend.get(model, 0.0) + usd
        if model is None or calls <= 0:
            return
        self.calls[model] = self.calls.get(model, 0) + calls
        q = self.quotas.get(model)
        if q is None or at <= self.clock() - q.window_seconds:
            return
        window = self._calls[model]
        if not window or at >= window[-1]:
            window.extend([at] * calls)
        else:  # older than a call counted here: keep the window in time order
            merged = list(window)
            i = bisect.bisect_right(merged, at)
            merged[i:i] = [at] * calls
            self._calls[model] = deque(merged)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "windows": {m: list(w) for m, w in self._calls.items()},
            "spend": dict(self.spend),
            "total_spend": self.total_spend,
            "calls": dict(self.calls),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for m, w in state.get("windows", {}).items():
            if m in self._calls:
                self._calls[m] = deque(float(t) for t in w)
        self.spend = {str(k): float(v) for k, v in state.get("spend", {}).items()}
        self.total_spend = float(state.get("total_spend", 0.0))
        self.calls = {str(k): int(v) for k, v in state.get("calls", {}).items()}

    def config(self) -> dict[str, Any]:
        return {
            "quotas": {m: (q.max_calls, q.window_seconds) for m, q in self.quotas.items()},
            "model_budget_usd": dict(self.model_budget_usd),
            "budget_usd": self.budget_usd,
        }
