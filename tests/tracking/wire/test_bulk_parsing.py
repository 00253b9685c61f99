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

from agentopt.tracking.wire.bulk import chat_text_run, decode_payloads, split_stream
from agentopt.tracking.wire.sse import StreamParser


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


def _texts(n: int, start: int = 0) -> list[tuple[str | None, Any]]:
    return [(None, _chat_chunk({"content": WORDS[(start + i) % len(WORDS)]})) for i in range(n)]


_TOOL = _chat_chunk({"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]})
_END = [(None, _chat_chunk({}, finish="stop")), (None, "[DONE]")]
#: Shapes around the run of text chunks that ``chat_text_run`` cuts in one go.
NO_ROLE = _compact([*_texts(20), *_END])
TWO_RUNS = _compact([*_texts(10), (None, _TOOL), *_texts(12, 3), *_END])
NULL_AFTER = _compact([*_texts(12), (None, _chat_chunk({"content": None})), *_END])
NO_TAIL = _compact(_texts(12))

STREAMS = [
    ("openai", NO_ROLE),
    ("openai", TWO_RUNS),
    ("openai", NULL_AFTER),
    ("openai", NO_TAIL),
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


def test_a_run_of_text_chunks_is_cut_in_one_go() -> None:
    run = chat_text_run(LONG)
    assert run is not None
    head, texts, tail, template = run
    assert texts == [WORDS[i % len(WORDS)] for i in range(40)]
    assert head.count(b"\n\n") == 1 and tail.count(b"\n\n") == 3  # role; finish, usage, DONE
    assert template.fast and template.model == "gpt-4o-2024-08-06"
    no_role = chat_text_run(NO_ROLE)  # the first chunk goes with the head
    assert no_role is not None and no_role[1] == [WORDS[i % len(WORDS)] for i in range(1, 20)]


def test_streams_without_such_a_run_are_not_cut() -> None:
    assert chat_text_run(OPENAI_CHAT_STREAM) is None  # too few chunks to pay off
    assert chat_text_run(TWO_RUNS) is None  # two runs: parsed event by event
    assert chat_text_run(LONG.replace(b"\n", b"\r\n")) is None
    assert chat_text_run(LONG.replace(b"llo", b'l","x', 1)) is None  # not one string each
