"""Prometheus metrics parsed back by prometheus_client's parser; OTel spans captured
in memory and checked against the GenAI semantic conventions."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from agentopt.records import CallRecord
from agentopt.resilience import HealthRegistry
from agentopt.telemetry.otel import OTelExporter
from agentopt.telemetry.prometheus import PrometheusMetrics

OK = CallRecord(
    call_id="a",
    provider="openai",
    requested_model="gpt-4o-mini",
    model="gpt-4o-mini-2024-07-18",
    prompt_tokens=120,
    completion_tokens=30,
    cached_tokens=20,
    latency_seconds=0.8,
    ttft_seconds=0.2,
    cost_usd=0.0012,
    status_code=200,
    stream=True,
    request_url="http://127.0.0.1:9/v1/chat/completions",
    request_body={"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 64},
    response_body={"id": "chatcmpl-1", "choices": [{"finish_reason": "stop"}]},
    data_id="d1",
    combo_id="c1",
    agent_id="solver",
    timestamp="2026-12-07T10:00:00+00:00",
)
FAILED = CallRecord(
    call_id="b",
    provider="anthropic",
    requested_model="claude-haiku-4-5",
    model="claude-haiku-4-5",
    latency_seconds=0.1,
    status_code=529,
    error="HTTP 529: overloaded",
    request_url="https://api.anthropic.com/v1/messages",
)
UNPRICED = CallRecord(
    call_id="c",
    provider="local",
    model="my-llama",
    prompt_tokens=5,
    completion_tokens=5,
    latency_seconds=0.3,
    status_code=200,
)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_text_parses_and_counts_each_call_once() -> None:
    health = HealthRegistry(failure_threshold=1)
    health.record("anthropic", ok=False, error="HTTP 529")
    health.record("openai", ok=True)
    m = PrometheusMetrics(health=health)
    for r in (OK, FAILED, UNPRICED):
        m.observe(r)
    s = _samples(m.render().decode())
    model = "gpt-4o-mini-2024-07-18"
    key = (
        ("alias", ""),
        ("cached", "false"),
        ("model", model),
        ("provider", "openai"),
        ("status_class", "2xx"),
    )
    assert s[("agentopt_requests_total", key)] == 1
    assert (
        s[
            (
                "agentopt_request_errors_total",
                (("model", "claude-haiku-4-5"), ("provider", "anthropic"), ("status_class", "5xx")),
            )
        ]
        == 1
    )
    assert (
        s[("agentopt_tokens_total", (("kind", "input"), ("model", model), ("provider", "openai")))]
        == 120
    )
    assert (
        s[("agentopt_tokens_total", (("kind", "cached"), ("model", model), ("provider", "openai")))]
        == 20
    )
    assert s[
        ("agentopt_cost_usd_total", (("model", model), ("provider", "openai")))
    ] == pytest.approx(0.0012)
    # the unpriced success is counted apart, the failure is not "unpriced"
    assert (
        s[("agentopt_unpriced_requests_total", (("model", "my-llama"), ("provider", "local")))] == 1
    )
    assert (
        "agentopt_unpriced_requests_total",
        (("model", "claude-haiku-4-5"), ("provider", "anthropic")),
    ) not in s
    assert (
        s[("agentopt_request_duration_seconds_count", (("model", model), ("provider", "openai")))]
        == 1
    )
    assert (
        s[
            (
                "agentopt_request_duration_seconds_bucket",
                (("le", "1.0"), ("model", model), ("provider", "openai")),
            )
        ]
        == 1
    )
    assert s[
        ("agentopt_time_to_first_token_seconds_sum", (("model", model), ("provider", "openai")))
    ] == pytest.approx(0.2)
    assert s[("agentopt_breaker_state", (("backend", "anthropic"),))] == 2
    assert s[("agentopt_breaker_state", (("backend", "openai"),))] == 0


def test_two_metric_sets_never_share_counters() -> None:
    a, b = PrometheusMetrics(), PrometheusMetrics()
    a.observe(OK)
    assert "agentopt_requests_total{" not in b.render().decode()


@pytest.fixture()
def spans() -> tuple[OTelExporter, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return OTelExporter(tracer_provider=provider), memory


def test_one_span_per_call_with_genai_attributes(
    spans: tuple[OTelExporter, InMemorySpanExporter],
) -> None:
    exporter, memory = spans
    exporter.export(OK)
    (span,) = memory.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == 120 and a["gen_ai.usage.output_tokens"] == 30
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == 9
    assert a["agentopt.cost_usd"] == pytest.approx(0.0012)
    assert a["agentopt.combo_id"] == "c1"
    assert (span.end_time - span.start_time) == pytest.approx(0.8e9, rel=1e-6)
    assert span.status.status_code is StatusCode.UNSET


def test_failed_call_span_has_error_status(
    spans: tuple[OTelExporter, InMemorySpanExporter],
) -> None:
    exporter, memory = spans
    exporter.export(FAILED)
    exporter.export(UNPRICED)
    failed, unpriced = memory.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "529"
    assert failed.attributes["gen_ai.provider.name"] == "anthropic"
    assert "agentopt.cost_usd" not in unpriced.attributes  # unpriced: absent, never 0


def test_the_in_process_tracker_exports_one_span_per_call(
    spans: tuple[OTelExporter, InMemorySpanExporter],
) -> None:
    import openai

    from agentopt import LLMTracker, SimServer

    exporter, memory = spans
    metrics = PrometheusMetrics()
    with SimServer("default", time_scale=0.0) as sim, LLMTracker(cache=False) as tracker:
        tracker.add_record_listener(exporter.export)
        tracker.add_record_listener(metrics.observe)
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-sim", max_retries=0)
        for q in ("2+2?", "3+3?"):
            with tracker.track(data_id=q):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
                )
        records = tracker.get_records()
    got = memory.get_finished_spans()
    assert len(got) == 2 == len(records)
    assert {s.attributes["agentopt.call_id"] for s in got} == {r.call_id for r in records}
    assert all(s.attributes["gen_ai.request.model"] == "gpt-4o-mini" for s in got)
    total = sum(
        s.value
        for f in text_string_to_metric_families(metrics.render().decode())
        for s in f.samples
        if s.name == "agentopt_requests_total"
    )
    assert total == 2
