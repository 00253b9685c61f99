"""Split and decode a whole, well-formed SSE stream in bulk.

The fast path of :meth:`~agentopt.tracking.wire.sse.StreamParser.feed_all`: a stream
whose events are plain ``data:`` lines (optionally after one ``event:`` line)
is cut with a few C-level byte operations and decoded with one ``json.loads``
for all events. Chat Completions streams go one step further: most chunks are
the same envelope around a different ``delta.content`` string, so when
chunks are byte-identical but for that string, only the strings are decoded
and the envelope once (:class:`ChatTemplate`). Every function returns None
when the stream is not that plain, and the caller then parses it event by
event, with the same result.
"""

from __future__ import annotations

import copy
import json
import re
from itertools import compress, repeat
from operator import and_, not_
from typing import Any

__all__ = ["ChatTemplate", "chat_text_run", "decode_payloads", "loads_all", "split_stream"]

#: Where a chunk's text delta starts: ``"delta": {"content": `` (any JSON spacing).
_MARK = re.compile(rb'"delta":\s*\{\s*"content":\s*')
#: One JSON string literal (validated by json.loads afterwards).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LITERAL = rb'"[^"\\\n\x01]*(?:\\[^\n\x01][^"\\\n\x01]*)*"'
#: String literals joined by \x01, which no literal can contain or escape.
_LITERALS = re.compile(_LITERAL + rb"(?:\x01" + _LITERAL + rb")*")
_SENTINEL = b'"\\u0000agentopt-slot"'
_SENTINEL_TEXT = "\x00agentopt-slot"
_MIN_TEMPLATED = 8  # below this many events a template does not pay for itself


class ChatTemplate:
    """A Chat Completions chunk envelope shared by many text chunks, decoded once
    (see :mod:`agentopt.tracking.wire.bulk`); only ``delta.content`` differs."""

    __slots__ = ("fast", "index", "model", "obj")

    def __init__(self, obj: dict[str, Any]) -> None:
        choice = obj["choices"][0]
        self.obj = obj
        self.model = obj.get("model")
        self.index = choice.get("index", 0)
        # Whether such a chunk only adds text (see OpenAIAssembler.handle).
        self.fast = (
            not obj.get("usage")
            and not choice.get("finish_reason")
            and all(k in ("content", "role") for k in choice["delta"])
        )

    @staticmethod
    def fits(obj: Any, slot: str) -> bool:
        """Whether ``obj`` is one chunk of one choice whose ``delta.content`` is ``slot``."""
        if type(obj) is not dict:
            return False
        choices = obj.get("choices")
        if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
            return False
        delta = choices[0].get("delta")
        return type(delta) is dict and delta.get("content") == slot

    def build(self, text: str) -> dict[str, Any]:
        """The whole chunk with ``text`` in its slot."""
        obj: dict[str, Any] = copy.deepcopy(self.obj)
        obj["choices"][0]["delta"]["content"] = text
        return obj


def split_stream(body: bytes) -> tuple[list[bytes], list[str | None] | None, int, bool] | None:
    """``(payloads, names, n_events, done)`` of a stream of complete events:
    the data of each event but a final ``[DONE]``, the event names (None when no
    event has one), how many events there were and whether ``[DONE]`` ended it."""
    if not body.endswith(b"\n\n") or b"\r" in body:
        return None
    parts = body.split(b"\n\n")
    parts.pop()  # the empty tail after the last blank line
    n = len(parts)
    names: list[str | None] | None = None
    if (
        body.startswith(b"data: ")
        and body.count(b"\n") == 2 * n
        and body.count(b"\n\ndata: ") == n - 1
    ):
        # Only single-line "data: " events (OpenAI Chat Completions, Gemini).
        payloads = [p[6:] for p in parts]
    else:
        named = _split_named(parts)
        if named is None:
            return None
        payloads, names = named
    done = payloads[-1] == b"[DONE]" or payloads[-1].strip() == b"[DONE]"
    if done:
        payloads.pop()
    return payloads, names, n, done


def _split_named(parts: list[bytes]) -> tuple[list[bytes], list[str | None]] | None:
    """Events of the form ``event: name`` + ``data: payload`` (Anthropic, the
    Responses API), or plain ``data:``; None when any event has another shape."""
    payloads: list[bytes] = []
    names: list[str | None] = []
    for part in parts:
        if part.startswith(b"event: "):
            head, _, data = part.partition(b"\n")
            if not data.startswith(b"data: ") or b"\n" in data:
                return None
            names.append(head[7:].decode("utf-8", errors="replace"))
            payloads.append(data[6:])
        elif part.startswith(b"data: ") and b"\n" not in part:
            names.append(None)
            payloads.append(part[6:])
        else:
            return None
    return payloads, names


def decode_payloads(
    payloads: list[bytes], *, chat: bool = False
) -> tuple[list[Any], ChatTemplate | None] | None:
    """The decoded payloads, in order, and the template of the text chunks (or
    None); None when any payload is not JSON. With ``chat``, text chunks sharing
    one envelope come back as just their text (a ``str``; no other item is one)
    and the template says the rest of each of them."""
    if chat and len(payloads) >= _MIN_TEMPLATED:
        out = _templated(payloads)
        if out is not None:
            return out
    objs = loads_all(payloads)
    return None if objs is None else (objs, None)


def loads_all(payloads: list[bytes]) -> list[Any] | None:
    """The JSON payloads decoded with one ``json.loads``, or None when any is not JSON."""
    if not payloads:
        return []
    try:
        objs = json.loads((b"[" + b",".join(payloads) + b"]").decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if not isinstance(objs, list) or len(objs) != len(payloads):
        return None
    return objs


def _templated(payloads: list[bytes]) -> tuple[list[Any], ChatTemplate] | None:
    found = _template(payloads)
    if found is None:
        return None
    pre, suf, template = found
    ls = len(suf)
    # Which payloads are ``pre + literal + suf``: C-level loops, no Python per payload.
    fits = list(
        map(
            and_,
            map(bytes.startswith, payloads, repeat(pre)),
            map(bytes.endswith, payloads, repeat(suf)),
        )
    )
    cut = slice(len(pre), -ls if ls else None)
    literals = [p[cut] for p in compress(payloads, fits)]
    # Each must be exactly one JSON string literal (so that joining cannot merge
    # or split them); checked in one regex over the joined literals.
    if not literals or _LITERALS.fullmatch(b"\x01".join(literals)) is None:
        return None
    texts = loads_all(literals)
    objs = loads_all(list(compress(payloads, map(not_, fits))))
    if texts is None or objs is None or any(type(o) is str for o in objs):
        return None  # a str among the others would pass for a text delta
    next_text, next_obj = iter(texts).__next__, iter(objs).__next__
    return [next_text() if f else next_obj() for f in fits], template


def _template(payloads: list[bytes]) -> tuple[bytes, bytes, ChatTemplate] | None:
    """The envelope of the first text chunk among the first few: the bytes before
    and after its ``delta.content`` string, and the envelope decoded once with a
    sentinel in that slot (which proves where the slot is)."""
    for p in payloads[:4]:
        mark = _MARK.search(p)
        if mark is None:
            continue
        literal = _STRING.match(p, mark.end())
        if literal is None:
            return None
        pre, suf = p[: mark.end()], p[literal.end() :]
        if _SENTINEL in pre or _SENTINEL in suf:
            return None
        try:
            obj = json.loads((pre + _SENTINEL + suf).decode("utf-8", errors="replace"))
        except ValueError:
            return None
        return (pre, suf, ChatTemplate(obj)) if ChatTemplate.fits(obj, _SENTINEL_TEXT) else None
    return None


def chat_text_run(body: bytes) -> tuple[bytes, list[str], bytes, ChatTemplate] | None:
    """A Chat Completions stream cut around its run of consecutive text chunks:
    ``(head, texts, tail, template)``, where ``head`` and ``tail`` are the whole
    events before and after the run (``tail`` maybe empty) and
    ``texts`` the decoded ``delta.content`` of each chunk of the run, in order.

    The run is cut with one ``bytes.split`` on the bytes that join two such
    chunks (the end of one envelope, the blank line, the start of the next), so
    no Python code runs per event. None when the stream has no such run of at
    least ``_MIN_TEMPLATED`` chunks; the caller then parses it event by event."""
    if not body.startswith(b"data: ") or not body.endswith(b"\n\n") or b"\r" in body:
        return None
    mark = _MARK.search(body)
    if mark is None:
        return None
    start = body.rfind(b"\n", 0, mark.start()) + 1  # the first text chunk's line
    end = body.find(b"\n", mark.end())
    line = body[start:end]
    if end < 0 or not line.startswith(b"data: "):
        return None
    found = _template([line[6:]])
    if found is None:
        return None
    pre, suf, template = found
    pieces = body.split(suf + b"\n\ndata: " + pre)
    if len(pieces) <= _MIN_TEMPLATED or not suf:
        return None
    # The first piece: the events before the run, the last of them but its
    # suffix (the run starts after the first event that ends like its chunks).
    head = pieces[0] + suf + b"\n\n"
    literals = pieces[1:]
    # The last piece: the last chunk's literal and suffix, then the events after.
    last, blank, tail = literals[-1].partition(b"\n\n")
    if not blank or not last.endswith(suf):
        return None
    literals[-1] = last[: -len(suf)]
    if _LITERALS.fullmatch(b"\x01".join(literals)) is None:
        return None  # each piece must be exactly one JSON string, or the cut was wrong
    texts = loads_all(literals)  # each a str: the regex proved each a string literal
    return None if texts is None else (head, texts, tail, template)
