"""Ask OpenAI chat streams for their usage, and hide the answer from callers who did not.

An OpenAI Chat Completions stream reports its usage only when the request says
``stream_options: {"include_usage": true}``; the official SDK, LangChain and
the OpenAI Agents SDK do not say it by default, and such a call would be
recorded with unknown usage. The pipeline therefore adds the option
(:func:`ask_for_usage`) and passes the answer through a :class:`UsageStripper`,
which removes what the caller did not ask for: the last, usage-only chunk
(``"choices": []``) and the ``"usage"`` field of the other chunks. The tracker
still parses the stream as the provider sent it.

>>> s = UsageStripper()
>>> s.feed(b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\\n\\n')
b'data: {"choices":[{"delta":{"content":"hi"}}]}\\n\\n'
>>> s.feed(b'data: {"choices":[],"usage":{"prompt_tokens":1}}\\n\\ndata: [DONE]\\n\\n')
b'data: [DONE]\\n\\n'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["UsageStripper", "ask_for_usage", "asks_for_usage", "is_chat_path", "strip_events"]

_CHAT_PATH = re.compile(r"/chat/completions/?$")
_BOUNDARY = re.compile(rb"\r?\n\r?\n")


def is_chat_path(path: str) -> bool:
    """Whether ``path`` is an OpenAI Chat Completions endpoint."""
    return _CHAT_PATH.search(path) is not None


def asks_for_usage(body: Any) -> bool:
    """Whether a chat request asks for the usage chunk itself."""
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def ask_for_usage(path: str, body: Any) -> dict[str, Any] | None:
    """The body of an OpenAI chat stream request with ``include_usage`` added, or
    None when ``body`` is no such request or already asks for usage."""
    if not isinstance(body, dict) or body.get("stream") is not True:
        return None
    if not is_chat_path(path) or asks_for_usage(body):
        return None
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return None  # something odd the caller chose: leave it to the provider
    return {**body, "stream_options": {**(options or {}), "include_usage": True}}


class UsageStripper:
    """Removes usage from an SSE stream fed in arbitrary chunks (see the module
    docstring). Events pass through as soon as they are complete; events without
    usage pass through byte for byte."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> bytes:
        """The complete events of ``chunk`` (and of what came before), stripped."""
        buf = self._buf + chunk if self._buf else chunk
        out: list[bytes] = []
        start = 0
        for m in _BOUNDARY.finditer(buf):
            out.append(_strip_event(buf[start : m.end()]))
            start = m.end()
        self._buf = buf[start:]
        return b"".join(out)

    def flush(self) -> bytes:
        """What remains at the end of the stream (an event without its blank line)."""
        rest, self._buf = self._buf, b""
        return _strip_event(rest) if rest else b""


def strip_events(events: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks of ``events`` stripped (for a cached stream played back)."""
    s = UsageStripper()
    for event in events:
        out = s.feed(event)
        if out:
            yield out
    tail = s.flush()
    if tail:
        yield tail


#: How OpenAI writes the ``"usage": null`` of every chunk when usage is asked for:
#: removed as bytes (a JSON string cannot hold an unescaped quote, so these bytes
#: are always a key and its value, never text).
_NULL_USAGE = (b',"usage":null', b'"usage":null,', b', "usage": null', b'"usage": null, ')


def _strip_event(event: bytes) -> bytes:
    if b'"usage"' not in event:
        return event
    for null in _NULL_USAGE:
        if null in event:
            event = event.replace(null, b"")
            if b'"usage"' not in event:
                return event
    lines = event.splitlines(keepends=True)
    data = [i for i, line in enumerate(lines) if line.startswith(b"data:")]
    if len(data) != 1:
        return event  # multi-line data: not what OpenAI sends; leave it
    i = data[0]
    line = lines[i]
    payload = line[5:].strip()
    try:
        obj = json.loads(payload)
    except ValueError:
        return event
    if not isinstance(obj, dict) or "usage" not in obj:
        return event
    if not obj.get("choices"):
        return b""  # the usage-only chunk the caller did not ask for
    del obj["usage"]
    ending = line[len(line.rstrip(b"\r\n")) :]
    lines[i] = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + ending
    return b"".join(lines)
