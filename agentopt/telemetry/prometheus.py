"""Prometheus metrics from call records (``GET /metrics`` on the daemon).

Metric names follow Prometheus conventions (base units, ``_total`` counters):

- ``agentopt_requests_total{model, provider, alias, status_class, cached}``
- ``agentopt_request_errors_total{model, provider, status_class}``
- ``agentopt_tokens_total{model, provider, kind}`` (kind: input, output, cached, reasoning)
- ``agentopt_cost_usd_total{model, provider}`` (priced calls only) and
  ``agentopt_unpriced_requests_total{model, provider}`` (never counted as $0)
- ``agentopt_request_duration_seconds{model, provider}`` and
  ``agentopt_time_to_first_token_seconds{model, provider}`` (histograms)
- ``agentopt_breaker_state{backend}``: 0 closed, 1 half-open, 2 open; read from a
  :class:`~agentopt.resilience.HealthRegistry` at scrape time.

Each instance has its own ``CollectorRegistry`` (several daemons or tests in one
process never share counters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agentopt.records import CallRecord

if TYPE_CHECKING:
    from agentopt.resilience import HealthRegistry

__all__ = ["CONTENT_TYPE_LATEST", "PrometheusMetrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, float("inf"))
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, float("inf"))
_BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}


def _status_class(record: CallRecord) -> str:
    if record.status_code is not None:
        return f"{record.status_code // 100}xx"
    return "2xx" if record.error is None else "no_response"


class _BreakerCollector:
    def __init__(self, health: Callable[[], HealthRegistry | None]) -> None:
        self._health = health

    def collect(self) -> Any:
        g = GaugeMetricFamily(
            "agentopt_breaker_state",
            "Circuit breaker per backend: 0 closed, 1 half-open, 2 open",
            labels=["backend"],
        )
        registry = self._health()
        if registry is not None:
            for name, snap in registry.snapshot().items():
                g.add_metric([name], _BREAKER_VALUE.get(snap["breaker"]["state"], 0))
        yield g


class PrometheusMetrics:
    """Counters and histograms fed by :meth:`observe`; :meth:`render` for scraping."""

    def __init__(self, *, health: HealthRegistry | None = None) -> None:
        self.registry = CollectorRegistry()
        self.health = health
        r = self.registry
        self.requests = Counter(
            "agentopt_requests",
            "LLM calls answered",
            ["model", "provider", "alias", "status_class", "cached"],
            registry=r,
        )
        self.errors = Counter(
            "agentopt_request_errors",
            "LLM calls that failed",
            ["model", "provider", "status_class"],
            registry=r,
        )
        self.tokens = Counter(
            "agentopt_tokens", "Tokens by kind", ["model", "provider", "kind"], registry=r
        )
        self.cost = Counter(
            "agentopt_cost_usd", "Cost of priced calls in USD", ["model", "provider"], registry=r
        )
        self.unpriced = Counter(
            "agentopt_unpriced_requests",
            "Calls whose cost is unknown (never counted as $0)",
            ["model", "provider"],
            registry=r,
        )
        self.latency = Histogram(
            "agentopt_request_duration_seconds",
            "Call latency as the caller saw it",
            ["model", "provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "agentopt_time_to_first_token_seconds",
            "Time to the first content token of streamed calls",
            ["model", "provider"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        r.register(_BreakerCollector(lambda: self.health))

    def observe(self, record: CallRecord) -> None:
        model = record.model or record.requested_model or "?"
        provider = record.provider or "?"
        sc = _status_class(record)
        alias = getattr(record, "alias", None) or ""
        self.requests.labels(model, provider, alias, sc, "true" if record.cached else "false").inc()
        if not record.ok:
            self.errors.labels(model, provider, sc).inc()
        for kind, n in (
            ("input", record.prompt_tokens),
            ("output", record.completion_tokens),
            ("cached", record.cached_tokens),
            ("reasoning", record.reasoning_tokens),
        ):
            if n:
                self.tokens.labels(model, provider, kind).inc(n)
        if record.cost_usd is None:
            if record.ok:
                self.unpriced.labels(model, provider).inc()
        else:
            self.cost.labels(model, provider).inc(record.cost_usd)
        if record.latency_seconds:
            self.latency.labels(model, provider).observe(record.latency_seconds)
        if record.ttft_seconds is not None:
            self.ttft.labels(model, provider).observe(record.ttft_seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition (content type :data:`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
