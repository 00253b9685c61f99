"""When to retry a failed call, and how long to wait first.

Retried: HTTP 408, 409, 425, 429, 500, 502, 503, 504, 529 and any other 5xx,
connection errors and time-outs, but only while nothing of the response has
reached the caller (a stream that has started is never retried: the caller
would see its beginning twice). The wait is exponential backoff with full
jitter (``uniform(0, min(cap, base · 2^attempt))``, AWS's recommendation),
except that a ``Retry-After`` header (seconds, or an HTTP date) is honoured
as given, up to ``max_retry_after``; a longer one is not waited for (the call
fails over instead).

>>> p = RetryPolicy(max_attempts=3, seed=0)
>>> p.decide(attempt=1, status=429, headers={"retry-after": "2"}).delay
2.0
>>> p.decide(attempt=1, status=400).retry
False
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from agentopt.exceptions import ConfigError

__all__ = ["RETRY_STATUSES", "RetryDecision", "RetryPolicy", "parse_retry_after"]

#: statuses worth another attempt (besides every 5xx)
RETRY_STATUSES = frozenset({408, 409, 425, 429, 529})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (or ``retry-after-ms``-less) header value:
    a number of seconds, or an HTTP date. None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


@dataclass
class RetryPolicy:
    """``max_attempts`` counts the first try (1 = never retry)."""

    max_attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    retry_on_timeout: bool = True
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retries: max_attempts={self.max_attempts}: expected ≥ 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ConfigError("retries: delays must be ≥ 0")
        self._rng = random.Random(self.seed)

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status in RETRY_STATUSES or 500 <= status <= 599

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before attempt ``attempt + 1``."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        return self._rng.uniform(0.0, ceiling)

    def decide(
        self,
        *,
        attempt: int,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        connection_error: bool = False,
        timeout: bool = False,
        started: bool = False,
    ) -> RetryDecision:
        """Whether attempt number ``attempt`` (1-based) that failed so is tried again."""
        if started:
            return RetryDecision(False, reason="the response had started reaching the caller")
        if attempt >= self.max_attempts:
            return RetryDecision(False, reason=f"{attempt} attempt(s), the limit")
        if timeout and not self.retry_on_timeout:
            return RetryDecision(False, reason="time-outs are not retried")
        if status is not None and not (connection_error or timeout):
            if not self.retryable_status(status):
                return RetryDecision(False, reason=f"HTTP {status} is not retryable")
        elif not (connection_error or timeout):
            return RetryDecision(False, reason="not a retryable failure")
        lower = {k.lower(): v for k, v in (headers or {}).items()}
        after = parse_retry_after(lower.get("retry-after"))
        if after is None and "retry-after-ms" in lower:
            try:
                after = max(0.0, float(lower["retry-after-ms"]) / 1000.0)
            except ValueError:
                after = None
        if after is not None:
            if after > self.max_retry_after:
                return RetryDecision(
                    False, reason=f"Retry-After {after:.0f}s exceeds {self.max_retry_after:.0f}s"
                )
            return RetryDecision(True, after, "Retry-After")
        return RetryDecision(True, self.backoff(attempt), "backoff")
