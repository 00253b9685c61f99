"""The daemon's usage API, metrics, dashboard and capture, against simulated traffic."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentopt import usage_stats
from agentopt.gateway.capture import read_capture
from agentopt.gateway.config import GatewayConfig
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import PLANTED, serving

CONFIG = {
    "aliases": {
        "smart": {
            "targets": ["openai/gpt-4o", "openai/gpt-4o-mini"],
            "router": "thompson",
            "options": {"seed": 0},
        }
    },
}


@pytest.fixture(scope="module")
def served(
    sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Daemon, DaemonServer, Path]]:
    root = tmp_path_factory.mktemp("obs")
    config = GatewayConfig.model_validate(
        {**CONFIG, "capture": {"enabled": True, "dir": str(root / "capture")}}
    )
    with serving(sim, config, store=root / "records.sqlite", api_key="k-123") as (d, server):
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k-123", max_retries=0)
        for i in range(12):
            model = "smart" if i % 2 else "gpt-4o-mini"
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"What is {i} + 1?"}],
                extra_headers={"x-agentopt-data-id": f"d{i}", "x-agentopt-agent-id": "solver"},
            )
            assert reply.choices
        sim.inject("gpt-4o-mini", 400)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "fail"}]
            )
        # token estimates are counted in the background: done before any view is compared
        assert d.estimator is None or d.estimator.wait(timeout=120)
        d.store.flush()
        yield d, server, root


def _get(server: DaemonServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        server.url + path, params=params, headers={"authorization": "Bearer k-123"}, timeout=30
    )


def test_usage_stats_endpoint_is_usage_stats(served: tuple[Daemon, DaemonServer, Path]) -> None:
    d, server, _ = served
    got = _get(server, "/v1/usage/stats", group_by="model").json()
    want = usage_stats(d.store, group_by="model").as_dict()
    assert got == json.loads(json.dumps(want))
    total = _get(server, "/v1/usage/stats").json()["groups"][0]
    assert total["requests"] == 13 and total["errors"] == 1
    assert total["status"] == {"2xx": 12, "4xx": 1}
    alias = _get(server, "/v1/usage/stats", alias="smart").json()["groups"][0]
    assert alias["requests"] == 6
    assert _get(server, "/v1/usage/stats", status="bogus").status_code == 400
    assert _get(server, "/v1/usage/stats", colour="red").status_code == 400
    assert httpx.get(server.url + "/v1/usage/stats").status_code == 401


def test_recent_and_streamed_exports(served: tuple[Daemon, DaemonServer, Path]) -> None:
    d, server, _ = served
    recent = _get(server, "/v1/usage/recent", limit=3).json()["records"]
    assert len(recent) == 3 and recent[0]["status_code"] == 400
    lean = _get(server, "/v1/usage/recent", limit=2, bodies="false").json()["records"]
    assert "request_body" not in lean[0]
    jsonl = _get(server, "/v1/usage/export", format="jsonl")
    lines = [json.loads(x) for x in jsonl.text.splitlines()]
    assert [r["call_id"] for r in lines] == [r.call_id for r in d.store.all()]
    rows = list(csv.DictReader(io.StringIO(_get(server, "/v1/usage/export", format="csv").text)))
    assert len(rows) == 13 and {r["call_id"] for r in rows} == {r["call_id"] for r in lines}
    none = _get(server, "/v1/usage/export", format="jsonl", start_date="2999-01-01")
    assert none.text == ""
    assert _get(server, "/v1/usage/export", format="xml").status_code == 400


def test_routing_metrics(served: tuple[Daemon, DaemonServer, Path]) -> None:
    _, server, _ = served
    m = _get(server, "/v1/routing/metrics").json()["aliases"]["smart"]
    assert m["router"] == "thompson"
    assert sum(v or 0 for v in m["activations"].values()) == 6
    assert set(m["estimates"]) == {"openai/gpt-4o", "openai/gpt-4o-mini"}


def test_prometheus_metrics_match_the_store(served: tuple[Daemon, DaemonServer, Path]) -> None:
    _, server, _ = served
    text = _get(server, "/metrics").text
    requests = errors = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "agentopt_requests_total":
                requests += s.value
            if s.name == "agentopt_request_errors_total":
                errors += s.value
    assert requests == 13 and errors == 1


def test_dashboard_behind_the_daemon_key(served: tuple[Daemon, DaemonServer, Path]) -> None:
    _, server, _ = served
    assert httpx.get(server.url + "/dashboard/api/summary").status_code == 401
    page = httpx.get(server.url + "/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].endswith("/dashboard/login")
    s = _get(server, "/dashboard/api/summary").json()
    assert s["requests"] == 13
    with httpx.Client(base_url=server.url) as c:
        assert c.post("/dashboard/login", content="key=k-123").status_code in (200, 303)
        assert c.get("/dashboard/api/summary").status_code == 200


def test_capture_writes_each_exchange_without_keys(
    served: tuple[Daemon, DaemonServer, Path],
) -> None:
    d, _, root = served
    d.capture_writer.close()
    exchanges = [e for e in read_capture(root / "capture") if e.path == "/v1/chat/completions"]
    assert len(exchanges) == 13
    text = "".join(p.read_text() for p in (root / "capture").glob("capture-*.jsonl"))
    assert "k-123" not in text
    for value in PLANTED.values():
        assert value not in text


def test_billing_reconciliation_beside_the_reported_usage(
    served: tuple[Daemon, DaemonServer, Path],
) -> None:
    d, server, _ = served
    got = _get(server, "/v1/usage/reconcile").json()["groups"]
    by_model = {g["key"]["model"]: g for g in got}
    recs = [r for r in d.store.all() if r.ok]
    for model, g in by_model.items():
        mine = [r for r in recs if (r.model or r.requested_model) == model]
        assert g["compared"] == len(mine)
        assert g["reported_input_tokens"] == sum(r.prompt_tokens for r in mine)
        assert g["reported_output_tokens"] == sum(r.completion_tokens for r in mine)
        assert g["estimated_input_tokens"] > 0 and g["estimated_output_tokens"] > 0
        assert g["input_difference"] == g["reported_input_tokens"] - g["estimated_input_tokens"]
    assert sum(g["not_comparable"] for g in got) == 1  # the failed call


def test_a_redacting_daemon_keeps_each_calls_token_count(sim: SimServer, tmp_path: Path) -> None:
    """``redact: true`` stores no content, yet every successful call keeps the
    independent count of its unredacted bodies, and the stats show it beside
    the provider's usage."""
    import litellm

    config = GatewayConfig.model_validate({"redact": True})
    with serving(sim, config, store=tmp_path / "r.sqlite") as (d, server):
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        questions = [f"What is {i} + 1?" for i in range(3)]
        answers = {}
        for q in questions:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
            )
            answers[q] = reply.choices[0].message.content or ""
        assert d.estimator is not None and d.estimator.wait(timeout=120)
        total = httpx.get(server.url + "/v1/usage/stats", timeout=30).json()["groups"][0]
        recs = d.store.all()
    assert all(r.request_body["messages"] == "<redacted>" for r in recs)  # no content kept
    want_in = sum(
        litellm.token_counter(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
        for q in questions
    )
    want_out = sum(
        litellm.token_counter(model="gpt-4o-mini", text=a, count_response_tokens=True)
        for a in answers.values()
    )
    assert (total["requests"], total["estimated_requests"]) == (3, 3)
    assert (total["estimated_input_tokens"], total["estimated_output_tokens"]) == (
        want_in,
        want_out,
    )
    assert total["input_tokens_difference"] == total["input_tokens"] - want_in
    assert total["output_tokens_difference"] == total["output_tokens"] - want_out
