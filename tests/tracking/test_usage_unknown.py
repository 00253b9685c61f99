"""Usage not reported is unknown, never 0: every wire format, every way a body goes wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import t1_helpers
from t1_helpers import ANTHROPIC_KEY, MSG, OPENAI_KEY

from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker, TrackingTransport

pytestmark = pytest.mark.xdist_group("t1-usage")

sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch

SSE = {"content-type": "text/event-stream"}


class Chunks(httpx.SyncByteStream):
    """A response body that arrives in the given chunks (a real stream, not read)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def sse(*events: Any) -> list[bytes]:
    return [
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    ]


def chat_chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> Any:
    delta = {} if content is None else {"content": content}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def mock_openai(
    handler: Callable[[httpx.Request], httpx.Response], seen: list[dict[str, Any]] | None = None
) -> openai.OpenAI:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(json.loads(request.content))
        return handler(request)

    http = httpx.Client(transport=TrackingTransport(httpx.MockTransport(record)))
    return openai.OpenAI(api_key=OPENAI_KEY, http_client=http, max_retries=0)


# -- OpenAI chat streams: ask for the usage, hide it from a caller who did not ---------------


def test_never_a_silent_zero_for_a_default_openai_stream(sim: SimServer) -> None:
    """The SDK's default stream (no stream_options) is priced from the usage the
    tracker asked for, and the caller never sees that usage chunk."""
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache=False) as t, t.track(data_id="s"):
        chunks = list(oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True))
    assert chunks and all(c.choices for c in chunks)  # no usage-only chunk
    assert all(c.usage is None for c in chunks)  # and no usage field
    [rec] = t.records
    assert rec.usage_known and rec.prompt_tokens > 0 and rec.completion_tokens > 0
    assert rec.cost_usd is not None and rec.cost_usd > 0
    assert t.get_cost() == pytest.approx(rec.cost_usd)


def test_a_caller_that_asked_for_usage_still_gets_it(sim: SimServer) -> None:
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache=False) as t:
        chunks = list(
            oc.chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[-1].usage is not None and not chunks[-1].choices
    [rec] = t.records
    assert rec.completion_tokens == chunks[-1].usage.completion_tokens


def test_a_provider_that_refuses_stream_options_still_answers_the_caller(sim: SimServer) -> None:
    """Some OpenAI-compatible servers answer 400 to ``stream_options``. The caller did
    not send it: the request goes again as the caller wrote it, the caller gets its
    stream, the record has unknown usage (never $0), and the endpoint is not asked
    again (one refused request in all)."""
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    before = sim.stats["ok"]
    with LLMTracker(cache=False) as t:
        for _ in range(2):
            chunks = list(
                oc.chat.completions.create(model="no-stream-options", messages=MSG, stream=True)
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sim.stats["ok"] - before == 2
    first, second = t.records
    for rec in (first, second):
        assert rec.ok and rec.error is None and rec.status_code == 200
        assert not rec.usage_known and rec.cost_usd is None
        assert "stream_options" not in rec.request_body
    assert t.get_cost() is None


def test_a_stripped_stream_replays_stripped_from_the_cache(sim: SimServer) -> None:
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache_dir=None) as t:
        first = list(oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True))
        again = list(oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True))
    assert [c.model_dump() for c in again] == [c.model_dump() for c in first]
    assert all(c.usage is None and c.choices for c in again)
    live, hit = t.records
    assert hit.cached and hit.usage_known and hit.completion_tokens == live.completion_tokens


def test_never_a_silent_zero_when_a_stream_reports_no_usage() -> None:
    """A provider that ignores stream_options: the call is unpriced, and so is the total."""
    seen: list[dict[str, Any]] = []
    body = sse(chat_chunk("4"), chat_chunk(finish="stop"), b"[DONE]")
    oc = mock_openai(lambda r: httpx.Response(200, headers=SSE, stream=Chunks(body)), seen)
    with LLMTracker(cache=False) as t:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
        )
    assert text == "4"
    assert seen[0]["stream_options"] == {"include_usage": True}  # the tracker asked
    [rec] = t.records
    assert rec.error is None and not rec.usage_known
    assert rec.cost_usd is None  # unknown, never $0
    assert t.get_cost() is None


def test_a_stream_cut_before_its_usage_chunk_is_an_error_with_unknown_usage() -> None:
    body = sse(chat_chunk("4"), chat_chunk(finish="stop"))  # no usage chunk, no [DONE]
    oc = mock_openai(lambda r: httpx.Response(200, headers=SSE, stream=Chunks(body)))
    with LLMTracker(cache=False) as t:
        list(oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True))
    [rec] = t.records
    assert rec.error and "usage" in rec.error
    assert not rec.usage_known and rec.cost_usd is None


def test_a_stream_cut_by_the_provider_is_unpriced_and_never_cached(sim: SimServer) -> None:
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache_dir=None) as t:
        for _ in range(2):
            try:
                for _ in oc.chat.completions.create(
                    model="fault-truncate", messages=MSG, stream=True
                ):
                    pass
            except openai.APIError:
                pass
    assert [r.cached for r in t.records] == [False, False]
    assert all(r.error and not r.usage_known and r.cost_usd is None for r in t.records)


# -- whole bodies ----------------------------------------------------------------------------


def test_never_a_silent_zero_for_a_body_without_usage() -> None:
    answer = {
        "id": "c",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}
        ],
    }
    oc = mock_openai(lambda r: httpx.Response(200, json=answer))
    with LLMTracker(cache=False) as t:
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records
    assert not rec.usage_known and rec.cost_usd is None and t.get_cost() is None


def test_an_unparseable_body_is_an_error_with_unknown_cost(sim: SimServer) -> None:
    oc = openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)
    with LLMTracker(cache=False) as t:
        oc.chat.completions.with_raw_response.create(model="fault-malformed", messages=MSG)
    [rec] = t.records
    assert rec.error and not rec.usage_known and rec.cost_usd is None


def test_an_http_error_costs_nothing_and_is_known() -> None:
    oc = mock_openai(lambda r: httpx.Response(500, json={"error": {"message": "boom"}}))
    with LLMTracker(cache=False) as t, pytest.raises(openai.InternalServerError):
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records
    assert rec.usage_known and rec.cost_usd == 0.0  # providers do not bill errors


# -- other wire formats ------------------------------------------------------------------------


def test_never_a_silent_zero_for_an_anthropic_stream_cut_short() -> None:
    events = [
        b"event: message_start\ndata: "
        + json.dumps(
            {
                "type": "message_start",
                "message": {
                    "id": "m",
                    "model": "claude-haiku-4-5",
                    "role": "assistant",
                    "content": [],
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            }
        ).encode()
        + b"\n\n",
        b"event: content_block_start\ndata: "
        + json.dumps(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ).encode()
        + b"\n\n",
        b"event: content_block_delta\ndata: "
        + json.dumps(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "4"},
            }
        ).encode()
        + b"\n\n",
    ]  # then the connection ends: no message_delta (final usage), no message_stop
    http = httpx.Client(
        transport=TrackingTransport(
            httpx.MockTransport(lambda r: httpx.Response(200, headers=SSE, stream=Chunks(events)))
        )
    )
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": MSG, "stream": True}
    with (
        LLMTracker(cache=False) as t,
        http.stream(
            "POST",
            "https://api.anthropic.com/v1/messages",
            json=body,
            headers={"x-api-key": ANTHROPIC_KEY},
        ) as r,
    ):
        for _ in r.iter_bytes():
            pass
    [rec] = t.records
    assert rec.error and "truncated" in rec.error
    assert not rec.usage_known and rec.cost_usd is None


def test_never_a_silent_zero_for_a_responses_stream_without_usage() -> None:
    done = {
        "type": "response.completed",
        "response": {
            "id": "r",
            "object": "response",
            "model": "gpt-4o-mini",
            "status": "completed",
        },
    }
    body = sse({"type": "response.output_text.delta", "delta": "4"}, done)
    oc = mock_openai(lambda r: httpx.Response(200, headers=SSE, stream=Chunks(body)))
    with LLMTracker(cache=False) as t:
        for _ in oc.responses.create(model="gpt-4o-mini", input="2+2?", stream=True):
            pass
    [rec] = t.records
    assert rec.error is None and not rec.usage_known and rec.cost_usd is None


# -- streams the caller cannot decode ---------------------------------------------------------


def test_an_undecodable_stream_is_an_error_and_never_cached() -> None:
    calls: list[int] = []
    bad = sse(chat_chunk("ok"), chat_chunk(finish="stop"))
    bad.insert(1, b'data: {"choices":[{"index":0,"delta":{"content":"\xff\xfe"}}]}\n\n')
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    bad += sse({**chat_chunk(), "choices": [], "usage": usage}, b"[DONE]")

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, headers=SSE, stream=Chunks(list(bad)))

    oc = mock_openai(handler)
    with LLMTracker(cache_dir=None) as t:
        for _ in range(2):
            try:
                for _ in oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True):
                    pass
            except Exception:
                pass  # whatever the SDK makes of it
    assert len(calls) == 2  # the second call was not answered from the cache
    assert all(r.error and "UTF-8" in r.error and not r.cached for r in t.records)
