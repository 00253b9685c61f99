"""Response streams that pass bytes through unchanged while the tracker watches.

:class:`CallState` is one call in flight: it sees every chunk (to parse usage
and time the first token), and :meth:`CallState.finish` makes the record
exactly once, when the stream ends, fails, or is closed early by the caller.
The tee streams wrap an httpx response stream around a ``CallState``;
:class:`ReplayStream` plays a cached body back, chunk by chunk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.records import PARSE_FAILED, CallRecord, Usage
from agentopt.tracking.capture.usage_strip import UsageStripper
from agentopt.tracking.recorder import Exchange, Recorder, usage_or_unknown
from agentopt.tracking.wire.parsing import StreamParser, parse_body
from agentopt.tracking.wire.sse import first_content_chunk

if TYPE_CHECKING:
    from agentopt.tracking.storage.cache import Cache

__all__ = ["AsyncTee", "CallState", "ReplayStream", "SyncTee", "split_events", "streams_for"]

log = logging.getLogger("agentopt.tracking")

ABANDONED = "stream closed by the caller before it ended"
NO_USAGE_CHUNK = "stream truncated: upstream closed before its usage chunk"

#: ``Exchange.extra`` keys: the request asked for OpenAI's usage chunk (the caller
#: did, or the pipeline did for it), and the caller must not see it (the pipeline did).
USAGE_ASKED = "usage_asked"
STRIP_USAGE = "strip_usage"


def _decoder(headers: httpx.Headers) -> Callable[[bytes], bytes] | None:
    """A chunk decoder for the response's Content-Encoding (None for identity)."""
    enc = headers.get("content-encoding", "").strip().lower()
    if not enc or enc == "identity":
        return None
    try:
        from httpx._decoders import SUPPORTED_DECODERS

        decoders = [SUPPORTED_DECODERS[e.strip()]() for e in enc.split(",") if e.strip()]
    except Exception:  # unknown encoding: parsing will fail and say so
        return None
    decoders.reverse()

    def decode(chunk: bytes) -> bytes:
        for d in decoders:
            chunk = d.decode(chunk)
        return chunk

    return decode


_NO_HEADERS = httpx.Headers()


class CallState:
    """One intercepted call between request and record. Body chunks are kept
    (decoded) until the end, then parsed in one go."""

    __slots__ = (
        "_chunks",
        "_decode",
        "_done",
        "_lock",
        "_parser",
        "_times",
        "cache",
        "cache_key",
        "exchange",
        "first_chunk_at",
        "headers",
        "on_done",
        "recorder",
        "started",
        "status_code",
    )

    def __init__(
        self,
        exchange: Exchange,
        recorder: Recorder,
        *,
        cache: Cache | None = None,
        cache_key: str | None = None,
        on_done: Callable[[CallState], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.recorder = recorder
        self.cache = cache
        self.cache_key = cache_key
        self.on_done = on_done
        self.started = time.perf_counter()
        self.first_chunk_at: float | None = None
        self.status_code: int | None = None
        self.headers: httpx.Headers = _NO_HEADERS  # until begin(); never mutated
        self._chunks: list[bytes] = []
        self._times: list[float] = []  # when each chunk of _chunks arrived
        self._parser: StreamParser | None = None
        self._decode: Callable[[bytes], bytes] | None = None
        self._done = False
        self._lock = threading.Lock()

    def begin(self, response: httpx.Response) -> None:
        """The status and headers arrived."""
        self.status_code = response.status_code
        self.headers = response.headers
        self._decode = _decoder(response.headers)
        ctype = response.headers.get("content-type", "")
        if self.exchange.stream and response.status_code < 400 and "event-stream" in ctype:
            self._parser = StreamParser(self.exchange.wire)  # type: ignore[arg-type]

    def chunk(self, data: bytes) -> None:
        """One chunk of the body went by."""
        if not data:
            return
        now = time.perf_counter()
        if self.first_chunk_at is None:
            self.first_chunk_at = now
        self._times.append(now)
        if self._decode is not None:
            try:
                data = self._decode(data)
            except Exception:
                self._decode = None
                self._parser = None
                self._chunks.append(data)
                return
        # Streams are parsed once, at the end: one feed of the whole body costs far
        # less than one per chunk, and the chunks are kept for the cache anyway.
        self._chunks.append(data)

    def whole(self, content: bytes) -> None:
        """The whole (already decoded) body arrived at once."""
        self._decode = None
        self.chunk(content)

    def fail(self, exc: BaseException) -> CallRecord | None:
        """The request failed before an answer (refused, timed out, ...). A
        cancellation that gives its reason (a deadline) is recorded as that reason."""
        if isinstance(exc, asyncio.CancelledError) and exc.args and exc.args[0]:
            return self.finish(complete=False, error=str(exc.args[0]))
        return self.finish(complete=False, error=f"{type(exc).__name__}: {exc}")

    def finish(self, *, complete: bool, error: str | None = None) -> CallRecord | None:
        """Make the record (once): ``complete`` is False when the stream broke
        or was abandoned, ``error`` names what went wrong."""
        with self._lock:
            if self._done:
                return None
            self._done = True
        try:
            return self._finish(complete, error)
        except Exception:  # the tracker must never break the caller's call
            log.exception("agentopt: could not record a call to %s", self.exchange.url)
            return None
        finally:
            if self.on_done is not None:
                self.on_done(self)

    def _finish(self, complete: bool, error: str | None) -> CallRecord:
        end = time.perf_counter()
        ex = self.exchange
        status = self.status_code
        ttft = first_byte = None
        if ex.stream and self.first_chunk_at is not None:
            first_byte = ttft = self.first_chunk_at - self.started
            if self._parser is not None:  # an event stream: time to its first content
                i = first_content_chunk(self._parser.wire, self._chunks)
                ttft = None if i is None else self._times[i] - self.started
        if status is None:  # never got an answer
            return self.recorder.record(
                ex,
                status_code=None,
                model=ex.model,
                usage=Usage(),
                response_body=None,
                latency_seconds=end - self.started,
                error=error or "no response",
            )
        if self._parser is not None:
            try:
                self._parser.feed_all(b"".join(self._chunks))
            except Exception:  # parsers never raise by contract; be sure anyway
                log.exception("agentopt: stream parser failed")
            if not complete and _saw_terminal(self._parser):
                # SDKs stop reading at the terminal event ([DONE], message_stop) and
                # close without draining the socket: that stream was complete.
                complete = True
            parsed = self._parser.finish(complete=complete)
        else:
            parsed = parse_body(ex.wire, status, b"".join(self._chunks))  # type: ignore[arg-type]
            if not complete and status < 400 and parsed.error is None:
                parsed.error = ABANDONED
        err = error or parsed.error
        if not complete and err is None:
            err = ABANDONED
        if (
            err is None
            and self._parser is not None
            and not parsed.usage_found
            and not self._parser.done
            and ex.extra.get(USAGE_ASKED)
        ):
            err = NO_USAGE_CHUNK  # finish_reason came, then the stream was cut
        model = parsed.model
        if status >= 400 and model is None:
            model = ex.model
        rec = self.recorder.record(
            ex,
            status_code=status,
            model=model,
            usage=usage_or_unknown(parsed.usage, parsed.usage_found, status),
            response_body=parsed.body,
            latency_seconds=end - self.started,
            ttft_seconds=ttft,
            first_byte_seconds=first_byte,
            error=err,
        )
        if (
            self.cache is not None
            and self.cache_key is not None
            and complete
            and err is None
            and status < 300
            and model != PARSE_FAILED
            and rec.usage_known
        ):
            self._store(rec, end - self.started, ttft)
        return rec

    def _store(self, rec: CallRecord, latency: float, ttft: float | None) -> None:
        from agentopt.tracking.storage.cache import CachedResponse

        assert self.cache is not None and self.cache_key is not None
        headers = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in _HOP_HEADERS and not k.lower().startswith("set-cookie")
        ]
        try:
            self.cache.put(
                self.cache_key,
                CachedResponse(
                    status_code=self.status_code or 200,
                    headers=headers,
                    body=b"".join(self._chunks),
                    streamed=self._parser is not None,
                    latency_seconds=latency,
                    ttft_seconds=ttft,
                    model=rec.model,
                    created_at=time.time(),
                ),
            )
        except Exception:
            log.exception("agentopt: could not write the response cache")


def _saw_terminal(parser: StreamParser) -> bool:
    """Whether the parser has seen the stream's terminal event."""
    for holder in (parser, getattr(parser, "_asm", None)):
        for name in ("terminal", "_terminal"):
            value = getattr(holder, name, None)
            if isinstance(value, bool):
                return value
    return False


_HOP_HEADERS = frozenset(
    {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive", "date"}
)


def replay_headers(
    headers: dict[str, str] | Sequence[tuple[str, str]] | None,
) -> list[tuple[str, str]]:
    """Headers of a replayed response: hop-by-hop and encoding headers dropped."""
    h = httpx.Headers(headers or {})
    for name in _HOP_HEADERS:
        if name in h:
            del h[name]
    h["x-agentopt-cache"] = "hit"
    return list(h.multi_items())


def split_events(body: bytes) -> list[bytes]:
    """A stored SSE body cut at event boundaries, so a replay streams event by event."""
    if not body:
        return []
    parts = body.split(b"\n\n")
    out = [p + b"\n\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


class SyncTee(httpx.SyncByteStream):
    """Pass a sync response stream through, feeding its ``CallState``. With a
    ``strip``, the caller gets the decoded stream without the usage it did not
    ask for (see :mod:`agentopt.tracking.capture.usage_strip`)."""

    def __init__(self, inner: Any, state: CallState, strip: UsageStripper | None = None) -> None:
        self._inner = inner
        self._state = state
        self._strip = strip

    def __iter__(self) -> Iterator[bytes]:
        if self._strip is not None:
            yield from self._stripped(self._strip)
            return
        state = self._state
        keep = state._chunks.append
        stamp = state._times.append
        clock = time.perf_counter
        try:
            for chunk in self._inner:
                if state._decode is None and state.first_chunk_at is not None and chunk:
                    keep(chunk)  # the common case, inline: a plain chunk after the first
                    stamp(clock())
                else:
                    state.chunk(chunk)
                yield chunk
        except GeneratorExit:
            state.finish(complete=False)
            raise
        except BaseException as exc:
            state.finish(complete=False, error=f"{type(exc).__name__}: {exc}")
            raise
        state.finish(complete=True)

    def _stripped(self, strip: UsageStripper) -> Iterator[bytes]:
        state = self._state
        try:
            for chunk in self._inner:
                out = strip.feed(_decoded(state, chunk))
                if out:
                    yield out
            tail = strip.flush()
            if tail:
                yield tail
        except GeneratorExit:
            state.finish(complete=False)
            raise
        except BaseException as exc:
            state.finish(complete=False, error=f"{type(exc).__name__}: {exc}")
            raise
        state.finish(complete=True)

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._state.finish(complete=False)


class AsyncTee(httpx.AsyncByteStream):
    """Pass an async response stream through, feeding its ``CallState`` (see SyncTee)."""

    def __init__(self, inner: Any, state: CallState, strip: UsageStripper | None = None) -> None:
        self._inner = inner
        self._state = state
        self._strip = strip

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self._state
        strip = self._strip
        keep = state._chunks.append
        stamp = state._times.append
        clock = time.perf_counter
        try:
            async for chunk in self._inner:
                if strip is not None:
                    out = strip.feed(_decoded(state, chunk))
                    if out:
                        yield out
                    continue
                if state._decode is None and state.first_chunk_at is not None and chunk:
                    keep(chunk)  # the common case, inline (see SyncTee)
                    stamp(clock())
                else:
                    state.chunk(chunk)
                yield chunk
            if strip is not None:
                tail = strip.flush()
                if tail:
                    yield tail
        except GeneratorExit:
            state.finish(complete=False)
            raise
        except BaseException as exc:
            state.finish(complete=False, error=f"{type(exc).__name__}: {exc}")
            raise
        state.finish(complete=True)

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._state.finish(complete=False)


def _decoded(state: CallState, chunk: bytes) -> bytes:
    """Feed ``chunk`` to ``state``; the decoded bytes it kept (b"" for none)."""
    n = len(state._chunks)
    state.chunk(chunk)
    return state._chunks[-1] if len(state._chunks) > n else b""


class ReplayStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A stored body played back in chunks, sync or async."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self._chunks:
            yield c


_FLAVOURS: dict[str, tuple[type[SyncTee], type[AsyncTee], type[ReplayStream]]] = {}


def streams_for(lib: ModuleType) -> tuple[type[SyncTee], type[AsyncTee], type[ReplayStream]]:
    """The tee and replay stream classes for an httpx-compatible library
    (``httpx`` itself, or a fork such as the ``httpx2`` the anthropic SDK uses),
    so that the library's own ``isinstance`` checks on streams pass."""
    found = _FLAVOURS.get(lib.__name__)
    if found is not None:
        return found
    if lib is httpx:
        found = (SyncTee, AsyncTee, ReplayStream)
    else:
        sync_base, async_base = lib.SyncByteStream, lib.AsyncByteStream
        found = (
            type("SyncTee", (SyncTee, sync_base), {}),
            type("AsyncTee", (AsyncTee, async_base), {}),
            type("ReplayStream", (ReplayStream, sync_base, async_base), {}),
        )
    _FLAVOURS[lib.__name__] = found
    return found
