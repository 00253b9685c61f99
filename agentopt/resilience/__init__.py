"""Resilience for calls to providers: retries, circuit breakers, health checks.

Pure policy and state, no I/O of their own (the health checker takes the probe
as a function), so the pipeline's forward stage, the daemon's aliases and the
routers share one view of which backend is healthy:

- :class:`RetryPolicy`: which failures are retried, how long to wait
  (exponential backoff with full jitter, ``Retry-After`` honoured in seconds or
  as an HTTP date), and how many attempts; never after the first byte of a
  response reached the caller.
- :class:`CircuitBreaker`: closed → open after N consecutive failures →
  half-open after a cool-down (one trial call) → closed on success.
- :class:`HealthRegistry`: one breaker per backend plus its probe history;
  what ``GET /internal/health`` reports and what routers consult.
"""

from __future__ import annotations

from agentopt.resilience.breaker import BreakerState, CircuitBreaker
from agentopt.resilience.health import BackendHealth, HealthRegistry
from agentopt.resilience.retry import RetryDecision, RetryPolicy, parse_retry_after

__all__ = [
    "BackendHealth",
    "BreakerState",
    "CircuitBreaker",
    "HealthRegistry",
    "RetryDecision",
    "RetryPolicy",
    "parse_retry_after",
]
