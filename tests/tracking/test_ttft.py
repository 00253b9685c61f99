"""Time to first token is the time to the first content, not to the first byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import t1_helpers

from agentopt.tracking import LLMTracker, TrackingTransport
from agentopt.tracking.capture import tee

no_global_patch = t1_helpers.no_global_patch


class Clock:
    """A stand-in for the tee's ``time`` module: time moves only when the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


class Timed(httpx.SyncByteStream):
    """Chunks that arrive at given (fake) times."""

    def __init__(self, clock: Clock, timed: list[tuple[float, bytes]]) -> None:
        self.clock = clock
        self.timed = timed

    def __iter__(self) -> Iterator[bytes]:
        for at, chunk in self.timed:
            self.clock.now = at
            yield chunk


def event(obj: Any, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(obj).encode() + b"\n\n"


def chat(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return event(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def run(
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    body: dict[str, Any],
    timed: list[tuple[float, bytes]],
) -> Any:
    clock = Clock()
    monkeypatch.setattr(tee, "time", clock)
    transport = httpx.MockTransport(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Timed(clock, timed)
        )
    )
    http = httpx.Client(transport=TrackingTransport(transport))
    with LLMTracker(cache=False) as t, http.stream("POST", url, json=body) as r:
        for _ in r.iter_bytes():
            pass
    [rec] = t.records
    return rec


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_ttft_is_the_first_text_delta_not_the_role_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = run(
        monkeypatch,
        "https://api.openai.com/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [], "stream": True},
        [
            (1.0, chat({"role": "assistant", "content": ""})),
            (5.0, chat({"content": "4"})),
            (6.0, chat({}, "stop")),
            (6.0, b'data: {"choices":[],"usage":' + json.dumps(USAGE).encode() + b"}\n\n"),
            (7.0, b"data: [DONE]\n\n"),
        ],
    )
    assert rec.first_byte_seconds == 1.0
    assert rec.ttft_seconds == 5.0
    assert rec.latency_seconds == 7.0


def test_ttft_counts_a_tool_call_delta(monkeypatch: pytest.MonkeyPatch) -> None:
    tool = {"index": 0, "id": "t", "type": "function", "function": {"name": "add", "arguments": ""}}
    rec = run(
        monkeypatch,
        "https://api.openai.com/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [], "stream": True},
        [
            (1.0, chat({"role": "assistant"})),
            (3.0, chat({"tool_calls": [tool]})),
            (4.0, chat({}, "tool_calls")),
            (4.0, b"data: [DONE]\n\n"),
        ],
    )
    assert (rec.first_byte_seconds, rec.ttft_seconds) == (1.0, 3.0)


def test_ttft_of_an_anthropic_stream_is_its_first_content_block_delta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = {
        "type": "message_start",
        "message": {"id": "m", "model": "claude-haiku-4-5", "usage": {"input_tokens": 3}},
    }
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    thinking = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "hm"},
    }
    rec = run(
        monkeypatch,
        "https://api.anthropic.com/v1/messages",
        {"model": "claude-haiku-4-5", "messages": [], "max_tokens": 5, "stream": True},
        [
            (1.0, event(start, "message_start")),
            (2.0, event(block, "content_block_start")),
            (4.0, event(thinking, "content_block_delta")),
            (
                5.0,
                event(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": 2},
                    },
                    "message_delta",
                ),
            ),
            (5.0, event({"type": "message_stop"}, "message_stop")),
        ],
    )
    assert (rec.first_byte_seconds, rec.ttft_seconds) == (1.0, 4.0)
    assert rec.usage_known and rec.completion_tokens == 2


def test_ttft_of_a_responses_stream_is_its_first_output_delta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = {"type": "response.created", "response": {"id": "r", "model": "gpt-4o-mini"}}
    done = {
        "type": "response.completed",
        "response": {
            "id": "r",
            "model": "gpt-4o-mini",
            "status": "completed",
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
    rec = run(
        monkeypatch,
        "https://api.openai.com/v1/responses",
        {"model": "gpt-4o-mini", "input": "hi", "stream": True},
        [
            (1.0, event(created)),
            (2.5, event({"type": "response.output_text.delta", "delta": "4"})),
            (3.0, event(done)),
        ],
    )
    assert (rec.first_byte_seconds, rec.ttft_seconds) == (1.0, 2.5)
