"""Export what the tracker records to the tools operators already run.

- :class:`~agentopt.telemetry.prometheus.PrometheusMetrics`: counters and
  histograms per model and provider (requests, errors, tokens, cost, latency,
  time to first token) and breaker states, in Prometheus' text format
  (``GET /metrics`` on the daemon). Needs ``prometheus-client`` (the ``server`` extra).
- :class:`~agentopt.telemetry.otel.OTelExporter`: one OpenTelemetry span per
  call following the GenAI semantic conventions (``gen_ai.*``), exported over
  OTLP to Langfuse, Phoenix, Jaeger or any collector. Needs the ``otel`` extra.

Both take finished :class:`~agentopt.records.CallRecord` s (``observe(record)``),
so the daemon and the in-process tracker export the same way:
``LLMTracker(on_record=[metrics.observe, exporter.export])``.
"""

from __future__ import annotations

__all__ = ["OTelExporter", "PrometheusMetrics"]


def __getattr__(name: str) -> object:
    if name == "PrometheusMetrics":
        from agentopt.telemetry.prometheus import PrometheusMetrics

        return PrometheusMetrics
    if name == "OTelExporter":
        from agentopt.telemetry.otel import OTelExporter

        return OTelExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
