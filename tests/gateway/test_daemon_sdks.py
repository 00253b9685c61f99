"""The daemon's data plane through real clients: openai and anthropic SDKs, litellm, raw HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.pricing import PriceBook
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import ANTHROPIC_WEATHER_TOOL, WEATHER_TOOL, serving

pytestmark = pytest.mark.xdist_group("daemon")


@pytest.fixture(scope="module")
def served(sim: SimServer) -> Iterator[tuple[Daemon, DaemonServer]]:
    with serving(sim) as pair:
        yield pair


@pytest.fixture
def daemon(served: tuple[Daemon, DaemonServer]) -> Daemon:
    served[0].store.clear()
    return served[0]


@pytest.fixture
def url(served: tuple[Daemon, DaemonServer]) -> str:
    return served[1].url


def _msg(text: str = "hi") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_openai_sdk_sync_call_carries_request_id_cost_and_routing(daemon: Daemon, url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="anything")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=_msg())
    r = raw.parse()
    rid = raw.headers["x-agentopt-request-id"]
    extra = r.model_extra or {}
    (rec,) = daemon.records()
    assert rec.call_id == rid == extra["_request_id"]
    assert r.model == "gpt-4o-mini" and r.choices[0].message.content
    assert extra["_cost"] == pytest.approx(rec.cost_usd) and rec.cost_usd > 0
    assert extra["_latency_ms"] == pytest.approx(rec.latency_seconds * 1000, abs=0.01)
    assert extra["_routing"] == {
        "alias": None,
        "requested": "gpt-4o-mini",
        "selected_model": "openai/gpt-4o-mini",
        "router": None,
        "fallback_from": None,
        "attempts": 1,
        "not_answered_by": [],
    }
    assert rec.total_tokens == r.usage.total_tokens  # type: ignore[union-attr]


def test_unpriced_model_has_null_cost_never_zero(sim: SimServer) -> None:
    with serving(
        sim, price_book=PriceBook({"gpt-4o": {"input": 1, "output": 2}}, use_litellm=False)
    ) as (
        d,
        server,
    ):
        r = httpx.post(
            server.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": _msg()}
        )
        priced = httpx.post(
            server.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": _msg()}
        )
    body = r.json()
    assert r.status_code == 200, body
    assert "_cost" in body and body["_cost"] is None
    assert priced.json()["_cost"] > 0
    assert [x.cost_usd is None for x in d.records()] == [True, False]


async def test_openai_sdk_async_stream_is_recorded_with_usage(daemon: Daemon, url: str) -> None:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="anything")
    stream = await client.chat.completions.create(
        model="openai/gpt-4.1",
        messages=_msg("stream please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    await client.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (rec,) = daemon.records()
    assert text and rec.stream and rec.error is None
    assert (rec.requested_model, rec.model) == ("openai/gpt-4.1", "gpt-4.1")
    assert rec.completion_tokens == chunks[-1].usage.completion_tokens  # type: ignore[union-attr]


def test_openai_sdk_tools_round_trip(daemon: Daemon, url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="anything")
    r = client.chat.completions.create(
        model="gpt-4o",
        messages=_msg("weather in Paris?"),
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
    )
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    follow = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            *_msg("weather in Paris?"),
            r.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert follow.choices[0].message.content
    assert [r.model for r in daemon.records()] == ["gpt-4o", "gpt-4o"]


def test_anthropic_sdk_sync_stream_and_tools(daemon: Daemon, url: str) -> None:
    client = anthropic.Anthropic(base_url=url, api_key="anything")
    m = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=_msg())  # type: ignore[arg-type]
    assert m.content[0].type == "text"
    with client.messages.stream(
        model="anthropic/claude-haiku-4-5",
        max_tokens=50,
        messages=_msg("stream"),  # type: ignore[arg-type]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    t = client.messages.create(
        model="claude-opus-4-6",
        max_tokens=100,
        messages=_msg("weather in Paris?"),  # type: ignore[arg-type]
        tools=[ANTHROPIC_WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "any"},
    )
    assert text and final.usage.output_tokens > 0
    assert any(b.type == "tool_use" for b in t.content)
    recs = daemon.records()
    assert [(r.provider, r.model, r.stream) for r in recs] == [
        ("anthropic", "claude-haiku-4-5", False),
        ("anthropic", "claude-haiku-4-5", True),
        ("anthropic", "claude-opus-4-6", False),
    ]
    assert recs[1].completion_tokens == final.usage.output_tokens
    assert all(r.cost_usd is not None and r.cost_usd > 0 for r in recs)


async def test_anthropic_sdk_async(daemon: Daemon, url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=url, api_key="anything")
    m = await client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=_msg())  # type: ignore[arg-type]
    await client.close()
    (rec,) = daemon.records()
    assert (m.model_extra or {})["_request_id"] == rec.call_id


def test_raw_http_like_curl(daemon: Daemon, url: str) -> None:
    r = httpx.post(
        url + "/v1/chat/completions",
        content=json.dumps({"model": "gpt-4o-mini", "messages": _msg()}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200
    assert r.headers["x-agentopt-request-id"] == r.json()["_request_id"]
    streamed = httpx.post(
        url + "/v1/messages",
        json={"model": "claude-haiku-4-5", "max_tokens": 20, "messages": _msg(), "stream": True},
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert b"message_stop" in streamed.content
    assert streamed.headers["x-agentopt-request-id"] in {x.call_id for x in daemon.records()}


def test_models_healthz_and_bad_requests(daemon: Daemon, url: str) -> None:
    assert httpx.get(url + "/healthz").text == "ok"
    assert httpx.get(url + "/v1/models").json()["object"] == "list"
    bad = httpx.post(url + "/v1/chat/completions", content=b"not json")
    assert bad.status_code == 400 and "model" in bad.json()["error"]["message"]
    unknown = httpx.post(
        url + "/v1/chat/completions", json={"model": "nowhere/x", "messages": _msg()}
    )
    assert unknown.status_code == 400
    assert "no provider 'nowhere'" in unknown.json()["error"]["message"]
    missing = httpx.post(url + "/v1/nothing", json={})
    assert missing.status_code == 404
    assert daemon.records() == []


def test_embeddings_and_count_tokens_pass_through(daemon: Daemon, url: str) -> None:
    r = httpx.post(
        url + "/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "hi"}
    )
    # the simulator has no embeddings endpoint: its answer comes back as it is
    assert r.headers["x-agentopt-request-id"]
    assert r.status_code in (200, 404)
    c = httpx.post(
        url + "/v1/messages/count_tokens",
        json={"model": "anthropic/claude-haiku-4-5", "messages": _msg()},
    )
    assert c.headers["x-agentopt-request-id"]


def test_litellm_as_a_client(daemon: Daemon, url: str) -> None:
    import litellm

    r = litellm.completion(
        model="openai/gpt-4o-mini", api_base=url + "/v1", api_key="anything", messages=_msg()
    )
    assert r.choices[0].message.content  # type: ignore[union-attr]
    (rec,) = daemon.records()
    assert rec.model == "gpt-4o-mini" and rec.cost_usd is not None


def test_responses_api_through_the_daemon(daemon: Daemon, url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="anything")
    r = client.responses.create(model="gpt-4o-mini", input="Say hi")
    stream = client.responses.create(model="openai/gpt-4.1", input="stream", stream=True)
    events = [e.type for e in stream]
    assert r.output_text
    assert "response.completed" in events
    recs = daemon.records()
    assert [(x.requested_model, x.stream, x.error) for x in recs] == [
        ("gpt-4o-mini", False, None),
        ("openai/gpt-4.1", True, None),
    ]
    assert recs[0].call_id == (r.model_extra or {})["_request_id"]
    assert recs[0].prompt_tokens == r.usage.input_tokens  # type: ignore[union-attr]
