"""Incremental parsing of streamed LLM responses (server-sent events).

:class:`StreamParser` is fed the raw bytes of a stream as they pass through the
tracker (split anywhere, even mid-line or mid-character) and, at the end,
returns a :class:`~agentopt.tracking.wire.wire_formats.ParsedResponse` whose
``body`` is the equivalent non-streamed response: text, tool calls and usage.
It understands OpenAI Chat Completions chunks, OpenAI Responses API events,
Anthropic message events and Gemini SSE chunks, and never raises.
:meth:`StreamParser.feed_all` takes a whole stream at once (the tee's case)
and decodes a well-formed one in bulk (:mod:`agentopt.tracking.wire.bulk`).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from typing import Any

import httpx

from agentopt.records import PARSE_FAILED, Usage
from agentopt.tracking.providers import Wire
from agentopt.tracking.wire.assemblers import OpenAIAssembler, assembler_for
from agentopt.tracking.wire.bulk import (
    ChatTemplate,
    chat_text_run,
    decode_payloads,
    loads_all,
    split_stream,
)
from agentopt.tracking.wire.wire_formats import ParsedResponse, is_content_event, snippet

__all__ = ["StreamParser", "first_content_chunk"]

_RAW_LIMIT = 1 << 20  # bytes kept to parse a stream that turns out not to be SSE
_BATCH = 256  # events decoded together


class _Bad:
    """An event whose data is not JSON."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class StreamParser:
    """Parse one streamed response incrementally; see the module docstring."""

    def __init__(self, wire: Wire, *, status_code: int = 200) -> None:
        self.wire: Wire = wire
        self.status_code = status_code
        self._buf = b""
        self._event: str | None = None
        self._data: list[bytes] = []
        self._pending: list[tuple[str | None, bytes]] = []
        self._raw: bytearray | None = bytearray()  # until the first SSE event is seen
        self._events = 0
        self._bad: list[str] = []
        self._asm = assembler_for(wire)
        self._result: ParsedResponse | None = None
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_at = 0  # bytes checked so far
        self._not_utf8: str | None = None  # why the caller could not decode the stream
        self.done = False  # an OpenAI ``data: [DONE]`` was seen

    def _check_utf8(self, chunk: bytes) -> None:
        """Note the first byte the caller's SSE decoder would choke on (SSE is UTF-8)."""
        if self._not_utf8 is not None:
            return
        try:
            self._utf8.decode(chunk)
        except UnicodeDecodeError as exc:
            at = self._utf8_at + exc.start
            self._not_utf8 = f"stream is not valid UTF-8 (byte {at}: {exc.reason}); the caller could not decode it"
        self._utf8_at += len(chunk)

    # -- feeding ---------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """Feed the next raw bytes of the stream."""
        if not chunk or self._result is not None:
            return
        self._check_utf8(chunk)
        self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        try:
            if self._raw is not None:
                if len(self._raw) + len(chunk) <= _RAW_LIMIT:
                    self._raw += chunk
                else:
                    self._raw = None
            lines = (self._buf + chunk if self._buf else chunk).split(b"\n")
            self._buf = lines.pop()
            data = self._data
            for raw in lines:
                if raw.startswith(b"data:"):  # the common case, kept inline
                    value = raw[6:] if raw[5:6] == b" " else raw[5:]
                    data.append(value[:-1] if value.endswith(b"\r") else value)
                elif not raw or raw == b"\r":
                    self._dispatch()
                    data = self._data
                else:
                    self._line(raw)
        except Exception as exc:  # defensive: never raise into the caller's stream
            self._bad.append(f"{type(exc).__name__}: {exc}")

    def feed_all(self, body: bytes) -> None:
        """Feed a whole stream at once (what the tee does when the stream ends).

        A well-formed stream (``data:`` events, each optionally after one
        ``event:`` line, ending with a blank line) is split and decoded in bulk,
        with one ``json.loads`` for all its events; anything else, or anything
        that fails there, goes through :meth:`feed` with the same result."""
        if not body or self._result is not None:
            return
        self._check_utf8(body)
        if not (self._events or self._buf or self._data or self._pending):
            try:
                if self._bulk(body):
                    return
            except Exception as exc:  # defensive: never raise into the caller's stream
                if self._events:  # it failed half-way: keep what was parsed
                    self._bad.append(f"{type(exc).__name__}: {exc}")
                    return
        self._feed(body)

    def _bulk(self, body: bytes) -> bool:
        """Parse ``body`` in bulk; False (nothing changed) when it is not plain enough."""
        if isinstance(self._asm, OpenAIAssembler):
            run = chat_text_run(body)
            if run is not None and self._run(*run):
                return True
        split = split_stream(body)
        if split is None:
            return False
        payloads, names, n, done = split
        decoded = decode_payloads(payloads, chat=isinstance(self._asm, OpenAIAssembler))
        if decoded is None:
            return False
        objs, template = decoded
        self._raw = None
        self._events += n
        if done:
            self._asm.terminal = self.done = True
        self._bad.extend(self._asm.handle_all(names, objs, template))
        return True

    def _run(self, head: bytes, texts: list[str], tail: bytes, template: ChatTemplate) -> bool:
        """The events of ``head``, the text chunks of ``template`` carrying
        ``texts``, then the events of ``tail`` (see :func:`chat_text_run`);
        False (nothing changed) when ``head`` or ``tail`` is not plain enough."""
        parts: list[tuple[list[Any], list[str | None] | None, int, bool]] = []
        for events in (head, tail):
            if not events:
                parts.append(([], None, 0, False))
                continue
            split = split_stream(events)
            decoded = None if split is None else loads_all(split[0])
            if split is None or decoded is None or any(type(o) is str for o in decoded):
                return False
            parts.append((decoded, split[1], split[2], split[3]))
        (objs_h, names_h, n_h, done_h), (objs_t, names_t, n_t, done_t) = parts
        if done_h:
            return False  # [DONE] before the text: not a stream this path knows
        asm = self._asm
        assert isinstance(asm, OpenAIAssembler)
        self._raw = None
        self._events += n_h + len(texts) + n_t
        if done_t:
            asm.terminal = self.done = True
        bad = self._bad
        bad.extend(asm.handle_all(names_h, objs_h))
        bad.extend(asm.add_texts(texts, template))
        bad.extend(asm.handle_all(names_t, objs_t))
        return True

    def _line(self, raw: bytes) -> None:
        """A line that is not ``data:`` (``event:``, a comment, a blank line)."""
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw:
            self._dispatch()
            return
        if raw.startswith(b":"):
            return
        name, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")

    def _dispatch(self) -> None:
        event, data = self._event, self._data
        if not data:
            self._event = None
            return
        self._event, self._data = None, []
        text = data[0] if len(data) == 1 else b"\n".join(data)
        self._raw = None
        self._events += 1
        if text == b"[DONE]" or text.strip() == b"[DONE]":
            self._asm.terminal = self.done = True
            return
        # Decoding is batched (one json.loads per batch is ~3x cheaper than one per event).
        self._pending.append((event, text))
        if len(self._pending) >= _BATCH:
            self._drain()

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            joined = b"[" + b",".join(text for _, text in pending) + b"]"
            objs = json.loads(joined.decode("utf-8", errors="replace"))
            if not isinstance(objs, list) or len(objs) != len(pending):
                raise ValueError("event count mismatch")
        except ValueError:
            objs = []
            for _, text in pending:
                try:
                    objs.append(json.loads(text))
                except ValueError as exc:
                    objs.append(_Bad(f"malformed event data ({exc}): {text[:200]!r}"))
        for (event, _), obj in zip(pending, objs, strict=True):
            if isinstance(obj, _Bad):
                self._bad.append(obj.why)
            else:
                self._handle(event, obj)

    def feed_event(self, event: str | None, obj: Any) -> None:
        """Feed one already-decoded event (also used for Gemini JSON-array streams)."""
        self._drain()
        self._events += 1
        self._raw = None
        self._handle(event, obj)

    def _handle(self, event: str | None, obj: Any) -> None:
        try:
            if not isinstance(obj, dict):
                self._bad.append(f"event data is not an object: {str(obj)[:200]!r}")
                return
            self._asm.handle(event, obj)
        except Exception as exc:
            self._bad.append(f"{type(exc).__name__}: {exc}")

    @property
    def terminal(self) -> bool:
        """Whether the stream's terminal event (``[DONE]``, ``message_stop``,
        ``response.completed``, a finish reason) has been seen so far."""
        if self._pending:
            try:
                self._drain()
            except Exception as exc:  # never raise into the caller's stream
                self._bad.append(f"{type(exc).__name__}: {exc}")
        return self._asm.terminal

    # -- the end ---------------------------------------------------------

    def finish(self, *, complete: bool = True) -> ParsedResponse:
        """The parsed response. ``complete=False`` means the caller stopped
        reading; without a terminal event the error then says "stream ended early".
        Idempotent: later calls return the first result."""
        if self._result is not None:
            return self._result
        try:
            result = self._finish(complete)
        except Exception as exc:
            result = ParsedResponse(
                model=PARSE_FAILED if self.status_code < 400 else None,
                error=f"could not parse stream: {type(exc).__name__}: {exc}",
            )
        self._result = result
        return result

    def _finish(self, complete: bool) -> ParsedResponse:
        self._drain()
        if complete and self._not_utf8 is None:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self._not_utf8 = (
                    "stream is not valid UTF-8 (it ends inside a character); "
                    "the caller could not decode it"
                )
        bad_before = len(self._bad)
        if self._buf and complete:
            # A last event without its trailing blank line still counts.
            tail, self._buf = self._buf, b""
            for line in tail.split(b"\n"):
                self._line(line)
        if self._data and complete:
            self._dispatch()
        self._drain()
        if not self._asm.terminal:
            # A cut-off last event is the truncation itself, not a malformed event.
            del self._bad[bad_before:]
        if self._events == 0:
            return self._not_sse(complete)
        return self._result_of(self._asm.body(), complete)

    def _result_of(self, body: Any, complete: bool) -> ParsedResponse:
        asm = self._asm
        usage = asm.parsed_usage()
        errors: list[str] = []
        if self.status_code >= 400:
            errors.append(f"HTTP {self.status_code}: {asm.error or 'error stream'}")
        elif asm.error:
            errors.append(asm.error)
        if not asm.terminal:
            if complete:
                errors.append("stream truncated: upstream closed before the terminal event")
            else:
                errors.append("stream ended early: the caller stopped reading before the end")
        if self._bad:
            errors.append(f"{len(self._bad)} unparseable stream event(s), first: {self._bad[0]}")
        if self._not_utf8 is not None:
            errors.append(self._not_utf8)
        model = asm.model
        if model is None and usage is None and self._bad and self.status_code < 400:
            model = PARSE_FAILED
        return ParsedResponse(
            model=model,
            usage=usage or Usage(),
            error="; ".join(errors) or None,
            body=body,
            # Usage counts only once final: a stream cut before its terminal event
            # (or before OpenAI's usage chunk) has not reported what it cost.
            usage_found=usage is not None and asm.terminal,
        )

    def _not_sse(self, complete: bool) -> ParsedResponse:
        """No SSE event at all: the upstream sent a plain body (an error, or Gemini's
        JSON array stream), or nothing."""
        raw = bytes(self._raw or b"")
        if raw.strip() and (complete or self.status_code >= 400):
            from agentopt.tracking.wire.parsing import parse_body

            return parse_body(self.wire, self.status_code, raw)
        if self.status_code >= 400:
            reason = httpx.codes.get_reason_phrase(self.status_code)
            return ParsedResponse(model=None, error=f"HTTP {self.status_code}: {reason}")
        if not complete:
            return ParsedResponse(
                model=None, error="stream ended early: the caller stopped reading before any event"
            )
        if self._raw is None:
            what = "not an event stream (body too large to parse)"
        elif raw.strip():
            what = f"not an event stream: {snippet(raw)!r}"
        else:
            what = "empty stream: no event received"
        return ParsedResponse(model=PARSE_FAILED, error=what)


_EVENT_END = re.compile(rb"\r?\n\r?\n")


def first_content_chunk(wire: Wire, chunks: Sequence[bytes]) -> int | None:
    """The index of the chunk that completed the stream's first content event
    (see :func:`~agentopt.tracking.wire.wire_formats.is_content_event`), or None when
    no event carries content. Reads only as far as that event."""
    buf = b""
    for i, chunk in enumerate(chunks):
        buf = buf + chunk if buf else chunk
        start = 0
        for m in _EVENT_END.finditer(buf):
            event = buf[start : m.start()]
            start = m.end()
            data = [line[5:] for line in event.splitlines() if line.startswith(b"data:")]
            if not data:
                continue
            try:
                obj = json.loads(b"\n".join(data))
            except ValueError:
                continue
            if is_content_event(wire, obj):
                return i
        buf = buf[start:]
    return None
