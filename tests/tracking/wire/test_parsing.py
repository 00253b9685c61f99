"""Parsing of real-shaped bodies and streams of every wire format, never raising."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from agentopt.records import PARSE_FAILED
from agentopt.tracking.wire.parsing import (
    StreamParser,
    is_stream_request,
    parse_body,
    request_model,
    with_model,
)

# -- real-shaped bodies -------------------------------------------------------

OPENAI_CHAT = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 20,
        "completion_tokens": 9,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
    },
}

OPENAI_RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 10},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 123,
    },
}

ANTHROPIC = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-20250514",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 50,
        "output_tokens": 7,
    },
}

GEMINI = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Hello"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 30,
        "candidatesTokenCount": 5,
        "cachedContentTokenCount": 12,
        "thoughtsTokenCount": 3,
        "totalTokenCount": 38,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}


def _b(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("wire", "body", "model", "usage"),
    [
        ("openai", OPENAI_CHAT, "gpt-4o-mini-2024-07-18", (20, 9, 8, 4)),
        ("openai", OPENAI_RESPONSES, "gpt-4.1-2025-04-14", (36, 87, 10, 20)),
        ("anthropic", ANTHROPIC, "claude-sonnet-4-20250514", (162, 7, 50, 0)),
        ("gemini", GEMINI, "gemini-2.5-flash", (30, 8, 12, 3)),
    ],
)
def test_parse_body_reads_model_and_usage(
    wire: Any, body: dict[str, Any], model: str, usage: tuple[int, int, int, int]
) -> None:
    p = parse_body(wire, 200, _b(body))
    assert p.model == model
    u = p.usage
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens) == usage
    assert p.error is None
    assert p.body == body
    assert p.usage_found


def test_body_without_usage_keeps_the_model_and_says_usage_is_missing() -> None:
    p = parse_body("openai", 200, _b({"model": "m", "choices": []}))
    assert (p.model, p.error, p.usage_found, p.usage.total_tokens) == ("m", None, False, 0)


@pytest.mark.parametrize(
    "content",
    [b'{"model": "gpt-4o", "usage": {', b"<html>bad gateway</html>", b"", b"\xff\xfe\x00"],
)
def test_malformed_success_body_is_parse_failed_with_a_reason(content: bytes) -> None:
    p = parse_body("openai", 200, content)
    assert p.model == PARSE_FAILED
    assert p.error is not None and "not valid JSON" in p.error
    json.dumps(p.body)  # still serialisable


def test_json_that_is_not_an_object_is_parse_failed() -> None:
    p = parse_body("anthropic", 200, b"[1, 2]")
    assert p.model == PARSE_FAILED
    assert p.error is not None and "not an object" in p.error


@pytest.mark.parametrize(
    ("wire", "status", "body", "expected"),
    [
        (
            "openai",
            429,
            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}},
            "HTTP 429: requests: Rate limit reached",
        ),
        (
            "anthropic",
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "HTTP 529: overloaded_error: Overloaded",
        ),
        (
            "gemini",
            400,
            [
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid",
                        "status": "INVALID_ARGUMENT",
                    }
                }
            ],
            "HTTP 400: INVALID_ARGUMENT: API key not valid",
        ),
        ("openai", 422, {"detail": "model is required"}, "HTTP 422: model is required"),
    ],
)
def test_error_bodies_give_the_providers_message_with_status(
    wire: Any, status: int, body: Any, expected: str
) -> None:
    p = parse_body(wire, status, _b(body))
    assert p.error == expected
    assert p.model is None
    assert p.body == body


def test_non_json_error_body_keeps_its_text() -> None:
    p = parse_body("openai", 502, b"upstream connect error")
    assert p.error == "HTTP 502: upstream connect error"
    p = parse_body("openai", 503, b"")
    assert p.error == "HTTP 503: Service Unavailable"


def test_error_object_on_a_200_is_an_error() -> None:
    p = parse_body("openai", 200, _b({"error": {"message": "no credits"}}))
    assert p.error == "no credits"


# -- requests ------------------------------------------------------------------


def test_request_model_reads_body_or_gemini_path() -> None:
    assert request_model("openai", "http://x/v1/chat/completions", {"model": "gpt-4o"}) == "gpt-4o"
    assert request_model("anthropic", "http://x/v1/messages", None) is None
    url = "https://g.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert request_model("gemini", url, {"contents": []}) == "gemini-2.5-pro"


def test_with_model_rewrites_without_mutating() -> None:
    body = {"model": "a", "messages": []}
    url = httpx.URL("http://x/v1/chat/completions")
    new_url, new_body = with_model("openai", url, body, "b")
    assert (new_url, new_body["model"], body["model"]) == (url, "b", "a")
    gurl = httpx.URL("https://g.example/v1beta/models/gemini-1.5:generateContent?key=k")
    new_url, new_body = with_model("gemini", gurl, {"contents": []}, "gemini-2.5-flash")
    assert new_url.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert new_url.params["key"] == "k"
    assert new_body == {"contents": []}


def test_is_stream_request() -> None:
    assert is_stream_request("openai", "http://x/v1/chat/completions", {"stream": True})
    assert not is_stream_request("openai", "http://x/v1/chat/completions", {"stream": False})
    assert not is_stream_request("anthropic", "http://x/v1/messages", None)
    assert is_stream_request("gemini", "http://g/v1beta/models/m:streamGenerateContent?alt=sse", {})
    assert not is_stream_request("gemini", "http://g/v1beta/models/m:generateContent", {})


# -- streams -------------------------------------------------------------------


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": usage,
    }


OPENAI_CHAT_STREAM = _sse(
    [
        (None, _chat_chunk({"role": "assistant", "content": ""})),
        (None, _chat_chunk({"content": "Héllo "})),
        (None, _chat_chunk({"content": "wörld 🌍"})),
        (
            None,
            _chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"ci'},
                        }
                    ]
                }
            ),
        ),
        (
            None,
            _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        ),
        (None, _chat_chunk({}, finish="tool_calls")),
        (
            None,
            {
                **_chat_chunk({}),
                "choices": [],
                "usage": {
                    "prompt_tokens": 11,
                    "completion_tokens": 6,
                    "prompt_tokens_details": {"cached_tokens": 2},
                    "completion_tokens_details": {"reasoning_tokens": 1},
                },
            },
        ),
        (None, "[DONE]"),
    ]
)

RESPONSES_STREAM = _sse(
    [
        (
            "response.created",
            {
                "type": "response.created",
                "response": {"id": "resp_1", "model": "gpt-4.1", "status": "in_progress"},
            },
        ),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi "}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "there"}),
        ("response.completed", {"type": "response.completed", "response": OPENAI_RESPONSES}),
    ]
)

ANTHROPIC_STREAM = _sse(
    [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-3-5-haiku-20241022",
                    "content": [],
                    "usage": {
                        "input_tokens": 25,
                        "cache_read_input_tokens": 5,
                        "cache_creation_input_tokens": 0,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Let me "},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "check."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "lookup",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"q": '},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '"x"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 42},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)


def _gemini_chunk(text: str, finish: str | None = None, usage: Any = None) -> dict:
    cand: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [cand], "modelVersion": "gemini-2.0-flash"}
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


GEMINI_USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 4, "totalTokenCount": 12}
GEMINI_STREAM = _sse(
    [
        (None, _gemini_chunk("Hel", usage={"promptTokenCount": 8, "candidatesTokenCount": 1})),
        (None, _gemini_chunk("lo", finish="STOP", usage=GEMINI_USAGE)),
    ]
).replace(b"\n", b"\r\n")  # Gemini terminates lines with CRLF


def _feed_split(wire: Any, data: bytes, size: int) -> StreamParser:
    p = StreamParser(wire)
    for i in range(0, len(data), size):
        p.feed(data[i : i + size])
    return p


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
def test_openai_chat_stream_assembles_text_tools_and_usage(size: int) -> None:
    r = _feed_split("openai", OPENAI_CHAT_STREAM, size).finish()
    assert r.error is None
    assert r.model == "gpt-4o-2024-08-06"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (11, 6)
    assert (r.usage.cached_tokens, r.usage.reasoning_tokens) == (2, 1)
    msg = r.body["choices"][0]["message"]
    assert msg["content"] == "Héllo wörld 🌍"
    assert msg["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert r.body["choices"][0]["finish_reason"] == "tool_calls"
    json.dumps(r.body)


@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_responses_stream_uses_the_completed_response(size: int) -> None:
    r = _feed_split("openai", RESPONSES_STREAM, size).finish()
    assert r.error is None
    assert r.model == "gpt-4.1-2025-04-14"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.cached_tokens) == (36, 87, 10)
    assert r.body == OPENAI_RESPONSES


@pytest.mark.parametrize("size", [1, 2, 13, 10_000])
def test_anthropic_stream_merges_start_and_delta_usage(size: int) -> None:
    r = _feed_split("anthropic", ANTHROPIC_STREAM, size).finish()
    assert r.error is None
    assert r.model == "claude-3-5-haiku-20241022"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.cached_tokens) == (30, 42, 5)
    assert r.body["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
    ]
    assert r.body["stop_reason"] == "tool_use"


@pytest.mark.parametrize("size", [1, 4, 10_000])
def test_gemini_sse_stream_with_crlf(size: int) -> None:
    r = _feed_split("gemini", GEMINI_STREAM, size).finish()
    assert r.error is None
    assert r.model == "gemini-2.0-flash"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (8, 4)
    assert r.body["candidates"][0]["content"]["parts"] == [{"text": "Hello"}]
    assert r.body["candidates"][0]["finishReason"] == "STOP"


def test_gemini_json_array_stream_without_sse() -> None:
    chunks = [_gemini_chunk("Hel"), _gemini_chunk("lo", finish="STOP", usage=GEMINI_USAGE)]
    r = _feed_split("gemini", json.dumps(chunks).encode(), 9).finish()
    assert r.error is None
    assert r.usage.total_tokens == 12
    assert r.body["candidates"][0]["content"]["parts"] == [{"text": "Hello"}]
    # the same through parse_body
    assert parse_body("gemini", 200, json.dumps(chunks).encode()).usage.total_tokens == 12


@pytest.mark.parametrize(
    ("wire", "stream"),
    [
        ("openai", OPENAI_CHAT_STREAM),
        ("anthropic", ANTHROPIC_STREAM),
        ("gemini", GEMINI_STREAM),
        ("openai", RESPONSES_STREAM),
    ],
)
def test_truncated_stream_keeps_partial_data_and_says_truncated(wire: Any, stream: bytes) -> None:
    second = stream.index(b"data:", 10)  # cut inside the second event
    cut = stream[: max(second + 12, len(stream) // 3)]
    r = _feed_split(wire, cut, 17).finish()
    assert r.error is not None and "stream truncated" in r.error
    assert r.model not in (None, PARSE_FAILED)
    json.dumps(r.body)


def test_abandoned_stream_says_ended_early() -> None:
    p = StreamParser("anthropic")
    p.feed(ANTHROPIC_STREAM[: len(ANTHROPIC_STREAM) // 2])
    r = p.finish(complete=False)
    assert r.error is not None and "stream ended early" in r.error
    assert r.usage.prompt_tokens == 30  # message_start usage already seen
    assert p.finish() is r  # idempotent


def test_abandoned_stream_after_the_terminal_event_is_not_an_error() -> None:
    p = StreamParser("openai")
    p.feed(OPENAI_CHAT_STREAM)
    assert p.finish(complete=False).error is None


def test_last_event_without_trailing_blank_line_counts() -> None:
    data = OPENAI_CHAT_STREAM.rstrip(b"\n")
    r = _feed_split("openai", data, 10_000).finish()
    assert r.error is None


def test_malformed_events_are_reported_but_do_not_lose_the_rest() -> None:
    bad = OPENAI_CHAT_STREAM.replace(b'"content": "H', b'"content": H', 1)
    r = _feed_split("openai", bad, 5).finish()
    assert r.model == "gpt-4o-2024-08-06"
    assert r.usage.total_tokens == 17
    assert r.error is not None and "unparseable stream event" in r.error


def test_stream_of_garbage_is_parse_failed() -> None:
    r = _feed_split("openai", b"data: {not json}\n\ndata: nope\n\n", 3).finish()
    assert r.model == PARSE_FAILED
    assert r.error is not None


@pytest.mark.parametrize("content", [b"", b"<html>oops</html>"])
def test_empty_or_non_sse_success_stream_is_parse_failed(content: bytes) -> None:
    p = StreamParser("anthropic")
    p.feed(content)
    r = p.finish()
    assert r.model == PARSE_FAILED
    assert r.error


def test_error_event_in_streams() -> None:
    anth = _sse(
        [
            (
                "error",
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        ]
    )
    r = _feed_split("anthropic", anth, 4).finish()
    assert r.error == "overloaded_error: Overloaded"
    oai = _sse([(None, {"error": {"message": "boom", "type": "server_error"}})])
    assert _feed_split("openai", oai, 4).finish().error == "server_error: boom"


def test_json_error_body_fed_to_a_stream_parser_gives_the_status() -> None:
    p = StreamParser("openai", status_code=401)
    p.feed(b'{"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}')
    r = p.finish()
    assert r.error == "HTTP 401: invalid_request_error: Incorrect API key"
    assert r.model is None


def test_feed_never_raises_on_odd_input() -> None:
    p = StreamParser("openai")
    for chunk in (b"data: 1\n\n", b"data: []\n\n", b"\xff\xfe\n\n", b"event: x\ndata: null\n\n"):
        p.feed(chunk)
    r = p.finish()
    assert r.model == PARSE_FAILED
    assert r.error is not None


def test_responses_failed_event_is_an_error() -> None:
    failed = _sse(
        [
            (
                "response.failed",
                {
                    "type": "response.failed",
                    "response": {
                        "model": "gpt-4.1",
                        "status": "failed",
                        "error": {"code": "server_error", "message": "boom"},
                    },
                },
            )
        ]
    )
    r = _feed_split("openai", failed, 8).finish()
    assert r.model == "gpt-4.1"
    assert r.error is not None and "boom" in r.error


def test_anthropic_thinking_and_gemini_thoughts_are_assembled() -> None:
    anth = _sse(
        [
            ("message_start", {"type": "message_start", "message": {"model": "claude", "usage": {"input_tokens": 3}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
            ("message_stop", {"type": "message_stop"}),
        ]
    )  # fmt: skip
    r = _feed_split("anthropic", anth, 6).finish()
    assert r.body["content"] == [{"type": "thinking", "thinking": "hmm", "signature": "sig"}]
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (3, 9)
    gem = _sse(
        [
            (None, {"candidates": [{"content": {"parts": [{"text": "a", "thought": True}]}}]}),
            (None, {"candidates": [{"content": {"parts": [{"text": "b", "thought": True}]}}]}),
            (None, {"candidates": [{"content": {"parts": [{"text": "c"}]}, "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "thoughtsTokenCount": 4}}),
        ]
    )  # fmt: skip
    g = _feed_split("gemini", gem, 5).finish()
    assert g.body["candidates"][0]["content"]["parts"] == [
        {"text": "ab", "thought": True},
        {"text": "c"},
    ]
    assert (g.usage.completion_tokens, g.usage.reasoning_tokens) == (5, 4)


@pytest.mark.parametrize(
    ("wire", "stream"),
    [("openai", OPENAI_CHAT_STREAM), ("anthropic", ANTHROPIC_STREAM), ("gemini", GEMINI_STREAM)],
)
def test_terminal_is_known_as_soon_as_the_terminal_event_is_fed(wire: Any, stream: bytes) -> None:
    p = StreamParser(wire)
    p.feed(stream[: len(stream) // 2])
    assert not p.terminal
    p.feed(stream[len(stream) // 2 :])
    assert p.terminal
    assert p.finish(complete=False).error is None
