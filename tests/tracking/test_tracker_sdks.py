"""The httpx front-end with real SDKs against the simulated provider."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import t1_helpers
from t1_helpers import ANTHROPIC_KEY, MSG, OPENAI_KEY

from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker, TrackingTransport

pytestmark = pytest.mark.xdist_group("t1-sdks")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch


@pytest.fixture(scope="module")
def oc(sim: SimServer) -> openai.OpenAI:
    # Built before any tracker starts, like a module-level SDK client.
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)


@pytest.fixture(scope="module")
def ac(sim: SimServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=sim.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0
    )


def test_openai_sync_call_is_recorded_with_usage_cost_and_ids(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id=1, combo_id="c", agent_id="solver"):
        r = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records
    assert (rec.data_id, rec.combo_id, rec.agent_id) == ("1", "c", "solver")
    assert rec.requested_model == "gpt-4o-mini" and rec.model == r.model
    assert r.usage is not None
    assert (rec.prompt_tokens, rec.completion_tokens) == (
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
    )
    assert rec.cost_usd is not None and rec.cost_usd > 0
    assert (
        rec.status_code == 200 and rec.error is None and not rec.stream and rec.ttft_seconds is None
    )
    assert rec.provider == "openai" and not rec.cached
    assert rec.request_body["messages"] == MSG
    assert OPENAI_KEY not in rec.model_dump_json()


def test_openai_stream_passes_through_and_records_usage_and_ttft(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="s"):
        chunks = list(
            oc.chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    [rec] = t.records
    usage = chunks[-1].usage
    assert usage is not None
    assert rec.stream and rec.error is None
    assert (rec.prompt_tokens, rec.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert rec.ttft_seconds is not None and 0 <= rec.ttft_seconds <= rec.latency_seconds
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and rec.response_body["choices"][0]["message"]["content"] == text


async def test_openai_async_and_async_stream(sim: SimServer) -> None:
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache=False) as t, t.track(data_id="a"):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for _ in stream:
            pass
    recs = t.get_records(data_id="a")
    assert [r.stream for r in recs] == [False, True]
    assert all(r.completion_tokens > 0 and r.error is None for r in recs)
    await client.close()


def test_anthropic_sync_and_stream(ac: anthropic.Anthropic) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="x"):
        m = ac.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MSG)
        with ac.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MSG) as s:
            final = s.get_final_message()
    plain, streamed = t.records
    assert plain.provider == "anthropic" and plain.model == m.model
    assert (plain.prompt_tokens, plain.completion_tokens) == (
        m.usage.input_tokens,
        m.usage.output_tokens,
    )
    assert streamed.stream and streamed.error is None and streamed.ttft_seconds is not None
    assert streamed.completion_tokens == final.usage.output_tokens
    assert ANTHROPIC_KEY not in t.records[0].model_dump_json() + streamed.model_dump_json()


async def test_anthropic_async(sim: SimServer) -> None:
    client = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key=ANTHROPIC_KEY)
    with LLMTracker(cache=False) as t, t.track(data_id="aa"):
        await asyncio.gather(
            *(
                client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MSG)
                for _ in range(3)
            )
        )
    assert len(t.get_records(data_id="aa")) == 3
    await client.close()


class _Endless(httpx.SyncByteStream):
    """An SSE stream that never ends on its own (the caller must abandon it)."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield b'data: {"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
        while True:
            yield b'data: {"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"."}}]}\n\n'

    def close(self) -> None:
        self.closed = True


def test_abandoned_stream_still_yields_a_record() -> None:
    upstream = _Endless()
    transport = TrackingTransport(
        httpx.MockTransport(
            lambda req: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=upstream
            )
        )
    )
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    with LLMTracker(cache=False) as t, t.track(data_id="ab"):
        client = httpx.Client(transport=transport)
        with client.stream("POST", "http://mock.test/v1/chat/completions", json=body) as r:
            for i, _ in enumerate(r.iter_bytes()):
                if i == 3:
                    break
    [rec] = t.records
    assert upstream.closed
    assert rec.stream and rec.error is not None and "early" in rec.error
    assert rec.model == "gpt-4o-mini" and rec.ttft_seconds is not None


def test_calls_outside_a_session_have_no_ids_and_stopped_tracker_records_nothing(
    oc: openai.OpenAI,
) -> None:
    t = LLMTracker(cache=False).start()
    oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    t.stop()
    oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records  # stays queryable after stop; the second call was not captured
    assert (rec.session_id, rec.data_id) == (None, None)
    t.close()
    t.close()  # idempotent


def test_non_llm_traffic_passes_untouched() -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.url.path)
        return httpx.Response(200, json={"ok": True})

    with LLMTracker(cache=False) as t, t.track(data_id=1):
        client = httpx.Client(transport=TrackingTransport(httpx.MockTransport(handler)))
        assert client.get("http://example.test/health").json() == {"ok": True}
        assert client.post("http://example.test/v1/embeddings", json={}).status_code == 200
    assert seen == ["/health", "/v1/embeddings"] and t.records == []


def test_tracking_transport_records_a_mock_provider() -> None:
    body = {
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        "choices": [],
    }
    transport = TrackingTransport(httpx.MockTransport(lambda req: httpx.Response(200, json=body)))
    with LLMTracker(cache=False) as t, t.track(data_id=9):
        r = httpx.Client(transport=transport).post(
            "http://mock.test/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG}
        )
    assert r.json() == body
    [rec] = t.records
    assert (rec.prompt_tokens, rec.completion_tokens, rec.data_id) == (3, 4, "9")


def test_stop_records_a_stream_nobody_closed() -> None:
    upstream = _Endless()
    transport = TrackingTransport(
        httpx.MockTransport(
            lambda req: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=upstream
            )
        )
    )
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    t = LLMTracker(cache=False).start()
    with t.track(data_id="open"):
        client = httpx.Client(transport=transport)
        response = client.send(
            client.build_request("POST", "http://mock.test/v1/chat/completions", json=body),
            stream=True,
        )
        chunks = response.iter_raw()
        next(chunks)
    assert t.records == []  # still streaming
    t.stop()
    [rec] = t.records
    response.close()
    assert rec.data_id == "open" and rec.error is not None and "early" in rec.error


def test_records_persist_in_a_sqlite_store(tmp_path: Path) -> None:
    body = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    transport = TrackingTransport(httpx.MockTransport(lambda req: httpx.Response(200, json=body)))
    path = tmp_path / "records.sqlite"
    with LLMTracker(cache=False, store=path) as t, t.track(data_id=5):
        httpx.Client(transport=transport).post(
            "http://mock.test/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": MSG}
        )
    t.close()
    again = LLMTracker(cache=False, store=path)
    assert [(r.data_id, r.completion_tokens) for r in again.records] == [("5", 2)]
    again.close()
