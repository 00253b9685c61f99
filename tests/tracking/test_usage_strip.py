"""The usage stripper: what the caller did not ask for goes, everything else passes as sent."""

from __future__ import annotations

import json

from agentopt.tracking.capture.usage_strip import UsageStripper, ask_for_usage, strip_events

CHUNK = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a \\"usage\\":null b"}}],"usage":null}\n\n'
USAGE = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
DONE = b"data: [DONE]\n\n"


def test_stripping_survives_any_split_and_keeps_text_that_mentions_usage() -> None:
    body = CHUNK + CHUNK.replace(b"\n\n", b"\r\n\r\n") + USAGE + DONE
    for size in (1, 3, 7, len(body)):
        s = UsageStripper()
        out = b"".join(s.feed(body[i : i + size]) for i in range(0, len(body), size)) + s.flush()
        events = [e for e in out.replace(b"\r\n", b"\n").split(b"\n\n") if e]
        assert events[-1] == b"data: [DONE]" and len(events) == 3
        for e in events[:2]:
            obj = json.loads(e[6:])
            assert "usage" not in obj
            assert obj["choices"][0]["delta"]["content"] == 'a "usage":null b'


def test_a_chunk_with_choices_and_usage_keeps_its_choices() -> None:
    both = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}\n\n'
    [out] = list(strip_events([both]))
    assert json.loads(out[6:]) == {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def test_only_chat_streams_that_did_not_ask_are_changed() -> None:
    body = {"model": "m", "stream": True}
    assert ask_for_usage("/v1/chat/completions", body) == {
        **body,
        "stream_options": {"include_usage": True},
    }
    assert ask_for_usage("/v1/responses", body) is None
    assert ask_for_usage("/v1/chat/completions", {"model": "m"}) is None
    asked = {**body, "stream_options": {"include_usage": True}}
    assert ask_for_usage("/v1/chat/completions", asked) is None
