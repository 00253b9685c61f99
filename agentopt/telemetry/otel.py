"""One OpenTelemetry span per LLM call, following the GenAI semantic conventions.

Span name ``"{operation} {request model}"`` (e.g. ``chat gpt-4o-mini``), kind
CLIENT, start and end from the record's timestamp and latency, status ERROR
with ``error.type`` for a failed call. Attributes (``gen_ai.*`` from the
OpenTelemetry GenAI conventions; ``agentopt.*`` ours):

- ``gen_ai.operation.name`` (``chat``, ``embeddings``, ``text_completion``),
  ``gen_ai.provider.name`` and the older ``gen_ai.system``,
- ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.id``,
  ``gen_ai.response.finish_reasons``, ``gen_ai.request.max_tokens`` /
  ``temperature`` / ``top_p`` when the request set them,
- ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
- ``server.address``, ``server.port``, ``error.type``,
- ``agentopt.cost_usd`` (absent when unpriced), ``agentopt.cached``,
  ``agentopt.ttft_seconds``, ``agentopt.data_id`` / ``combo_id`` / ``agent_id``,
  ``agentopt.call_id``, ``agentopt.alias``.

Message content is not attached (it may be large or private); it stays in the
record store. ``OTelExporter(endpoint="http://collector:4318/v1/traces")``
exports over OTLP/HTTP; ``OTelExporter(tracer_provider=...)`` uses yours (tests
pass one with an in-memory exporter).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from agentopt.records import CallRecord

__all__ = ["OTelExporter", "span_attributes"]

_PROVIDER_NAMES = {"gemini": "gcp.gemini", "google": "gcp.gemini", "azure": "azure.ai.openai"}


def _operation(url: str | None) -> str:
    path = urlsplit(url or "").path
    if path.endswith("/embeddings"):
        return "embeddings"
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        return "text_completion"
    if ":generateContent" in path or ":streamGenerateContent" in path:
        return "generate_content"
    return "chat"


def _finish_reasons(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    out = []
    for choice in body.get("choices") or []:
        if isinstance(choice, dict) and choice.get("finish_reason"):
            out.append(str(choice["finish_reason"]))
    if body.get("stop_reason"):
        out.append(str(body["stop_reason"]))
    if body.get("status") and body.get("object") == "response":
        out.append(str(body["status"]))
    return out


def span_attributes(record: CallRecord) -> dict[str, Any]:
    """The span's attributes for ``record`` (see the module docstring)."""
    provider = record.provider or "unknown"
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _operation(record.request_url),
        "gen_ai.provider.name": _PROVIDER_NAMES.get(provider, provider),
        "gen_ai.system": _PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": record.requested_model or record.model or "unknown",
        "gen_ai.usage.input_tokens": record.prompt_tokens,
        "gen_ai.usage.output_tokens": record.completion_tokens,
        "agentopt.call_id": record.call_id,
        "agentopt.cached": record.cached,
    }
    if record.model:
        attrs["gen_ai.response.model"] = record.model
    body = record.response_body
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        attrs["gen_ai.response.id"] = body["id"]
    reasons = _finish_reasons(body)
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    req = record.request_body
    if isinstance(req, dict):
        for key, attr in (
            ("max_tokens", "gen_ai.request.max_tokens"),
            ("max_completion_tokens", "gen_ai.request.max_tokens"),
            ("temperature", "gen_ai.request.temperature"),
            ("top_p", "gen_ai.request.top_p"),
        ):
            value = req.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attrs[attr] = value
    if record.request_url:
        parts = urlsplit(record.request_url)
        if parts.hostname:
            attrs["server.address"] = parts.hostname
        if parts.port:
            attrs["server.port"] = parts.port
    if record.cost_usd is not None:
        attrs["agentopt.cost_usd"] = record.cost_usd
    if record.ttft_seconds is not None:
        attrs["agentopt.ttft_seconds"] = record.ttft_seconds
    for key in ("data_id", "combo_id", "agent_id"):
        value = getattr(record, key)
        if value is not None:
            attrs[f"agentopt.{key}"] = value
    alias = getattr(record, "alias", None)
    if alias:
        attrs["agentopt.alias"] = alias
    if not record.ok:
        attrs["error.type"] = (
            str(record.status_code) if record.status_code and record.status_code >= 400 else "error"
        )
    return attrs


class OTelExporter:
    """Turn each record into a finished span; see the module docstring."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        tracer_provider: Any = None,
        service_name: str = "agentopt",
    ) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:  # the 'otel' extra
            from agentopt.exceptions import ConfigError

            raise ConfigError(
                "OpenTelemetry export needs the 'otel' extra: pip install 'agentopt[otel]'"
            ) from exc
        if tracer_provider is None:
            tracer_provider = TracerProvider(
                resource=Resource.create({"service.name": service_name})
            )
            if endpoint is not None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                tracer_provider.add_span_processor(
                    BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))
                )
        self.provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("agentopt")

    def export(self, record: CallRecord) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attrs = span_attributes(record)
        try:
            start = datetime.fromisoformat(record.timestamp)
        except ValueError:
            start = None
        start_ns = int(start.timestamp() * 1e9) if start is not None else None
        end_ns = (
            start_ns + int(max(0.0, record.latency_seconds) * 1e9) if start_ns is not None else None
        )
        name = f"{attrs['gen_ai.operation.name']} {attrs['gen_ai.request.model']}"
        span = self.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attrs, start_time=start_ns
        )
        if not record.ok:
            span.set_status(Status(StatusCode.ERROR, record.error or f"HTTP {record.status_code}"))
        span.end(end_time=end_ns)

    def flush(self) -> None:
        flush = getattr(self.provider, "force_flush", None)
        if flush is not None:
            flush()

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if shutdown is not None:
            shutdown()
