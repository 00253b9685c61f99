"""The bulk stream parser (``StreamParser.feed_all``) gives exactly what the
event-by-event parser gives, on well-formed, odd, malformed and cut streams."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_parsing import (
    ANTHROPIC_STREAM,
    GEMINI_STREAM,
    OPENAI_CHAT_STREAM,
    RESPONSES_STREAM,
    _chat_chunk,
    _sse,
)

from agentopt.tracking.bulk import decode_payloads, split_stream
from agentopt.tracking.sse import StreamParser


def _compact(events: list[tuple[str | None, Any]]) -> bytes:
    """SSE with compact JSON, as OpenAI and the simulator send it."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


WORDS = ["Hé", "llo", ' "quoted" ', "back\\slash", "tab\tnew\nline", "🌍", "", "\u2028", "end"]


def _long_chat(n: int = 40, *, compact: bool = True, **extra: Any) -> bytes:
    make = _compact if compact else _sse
    events: list[tuple[str | None, Any]] = [
        (None, _chat_chunk({"role": "assistant", "content": ""}))
    ]
    for i in range(n):
        events.append((None, {**_chat_chunk({"content": WORDS[i % len(WORDS)]}), **extra}))
    events.append((None, _chat_chunk({}, finish="stop")))
    usage = {"prompt_tokens": 5, "completion_tokens": n}
    events.append((None, {**_chat_chunk({}), "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return make(events)


LONG = _long_chat()


def _both(wire: Any, data: bytes, complete: bool) -> tuple[Any, Any]:
    a = StreamParser(wire)
    a.feed(data)
    b = StreamParser(wire)
    b.feed_all(data)
    return a.finish(complete=complete), b.finish(complete=complete)


def _variants(stream: bytes) -> list[bytes]:
    out = [
        stream,
        stream.rstrip(b"\n"),  # last event without its blank line
        stream.replace(b"data: [DONE]\n\n", b""),  # no [DONE]
        stream.replace(b"\n", b"\r\n"),
        stream.replace(b"data: ", b"data:"),
        stream + b"data: [DONE]\n\n",
        b": comment\n\n" + stream,
        b"data: 1\n\n" + stream,  # an event that is not an object
        stream.replace(b'"content":"H', b'"content":H', 1),  # malformed JSON
        stream.replace(b'"content": "H', b'"content": H', 1),
        stream.replace(b"llo", b"l\\xlo", 1),  # a bad escape inside a text delta
        stream.replace(b"llo", b"l\x01lo", 1),  # a raw control character
        stream.replace(b"llo", b'l","x', 1),  # a quote that splits the string
        stream.replace(b'"gpt-4o-2024-08-06"', b'"gpt-4o-mini"', 7),  # the model changes
    ]
    out += [stream[:cut] for cut in range(0, len(stream), max(1, len(stream) // 40))]
    return out


STREAMS = [
    ("openai", OPENAI_CHAT_STREAM),
    ("openai", RESPONSES_STREAM),
    ("anthropic", ANTHROPIC_STREAM),
    ("gemini", GEMINI_STREAM),
    ("openai", LONG),
    ("openai", _long_chat(compact=False)),
    ("openai", _long_chat(12, obfuscation="x")),
]


@pytest.mark.parametrize(("wire", "stream"), STREAMS)
@pytest.mark.parametrize("complete", [True, False])
def test_feed_all_equals_feed_on_every_variant(wire: Any, stream: bytes, complete: bool) -> None:
    for variant in _variants(stream):
        old, new = _both(wire, variant, complete)
        assert new == old, variant[:120]


def test_long_chat_stream_is_assembled_from_text_deltas() -> None:
    split = split_stream(LONG)
    assert split is not None
    payloads, names, n, done = split
    assert (names, n, done) == (None, 44, True)
    decoded = decode_payloads(payloads, chat=True)
    assert decoded is not None
    objs, template = decoded
    assert template is not None  # the envelope decoded once, the 40 texts alone
    assert [o for o in objs if type(o) is str] == [WORDS[i % len(WORDS)] for i in range(40)]
    p = StreamParser("openai")
    p.feed_all(LONG)
    r = p.finish()
    expected = "".join(WORDS[i % len(WORDS)] for i in range(40))
    assert r.error is None and r.body["choices"][0]["message"]["content"] == expected
    assert r.usage.completion_tokens == 40


def test_chunks_whose_envelope_varies_are_decoded_whole() -> None:
    varied = _long_chat(12).replace(b'"created":1', b'"created":2', 3)
    decoded = decode_payloads(split_stream(varied)[0], chat=True)  # type: ignore[index]
    assert decoded is not None and len(decoded[0]) == 15
    old, new = _both("openai", varied, True)
    assert new == old and new.error is None


def test_feed_all_after_feed_goes_event_by_event() -> None:
    p = StreamParser("openai")
    p.feed(LONG[:100])
    p.feed_all(LONG[100:])
    q = StreamParser("openai")
    q.feed(LONG)
    assert p.finish() == q.finish()


def test_feed_all_never_raises() -> None:
    for junk in (b"\n\n", b"data: \n\n", b"event: x\n\n", b"data: [DONE]\n\n", b"\xff\xfe\n\n"):
        p = StreamParser("openai")
        p.feed_all(junk)
        assert p.finish() is not None
