"""uvicorn's httptools protocol, sending a sized response's head and body in one write.

uvicorn writes a response's status line and headers to the socket as soon as
the app sends ``http.response.start``, and the body in a second write. On
loopback each write is a system call that also wakes the reader, so a small
JSON answer costs two wake-ups of the client and two of the kernel's TCP path
where one would do; for the gateway daemon, whose whole job is to add as little
as possible to each call, that was the largest single cost after the upstream
round trip.

:class:`CoalescingHttpToolsProtocol` holds a response's head until the first
body write and sends both together:

- a sized (``content-length``) head waits for its body, which follows at once;
- a streamed (chunked) head waits at most :data:`STREAM_HEAD_HOLD_S` (2 ms) for
  the first chunk: an upstream that answers at once (a cache, a fast model, a
  simulator) gets its head and first chunk to the caller in one write, and a
  slow first token delays only the head, by 2 ms, never the token;
- a held head is sent by the next write, at the end of the response (a HEAD
  request, an empty body), or before the connection is closed or aborted, so a
  head is never lost or stuck;
- on a keep-alive connection, the first write of each response is its head
  (uvicorn answers one request at a time per connection and says when a
  response is complete).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["STREAM_HEAD_HOLD_S", "coalescing_protocol"]

#: How long a streamed response's head may wait for its first chunk.
STREAM_HEAD_HOLD_S = 0.002


def _head(data: bytes) -> str | None:
    """``"sized"`` or ``"streamed"`` for a whole 2xx response head with a body to
    follow; None for anything else (which is written at once)."""
    if not (data.startswith(b"HTTP/1.1 2") and data.endswith(b"\r\n\r\n")):
        return None
    if b"\r\ntransfer-encoding: chunked\r\n" in data:
        return "streamed"
    if b"\r\ncontent-length: " in data and b"\r\ncontent-length: 0\r\n" not in data:
        return "sized"
    return None


class HeadHoldingTransport:
    """A transport that keeps back a sized response head until the body follows it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._expect_head = True
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            head = self._take()
            self._transport.write(head + bytes(data))
            return
        if self._expect_head:
            self._expect_head = False
            kind = _head(data) if isinstance(data, bytes) else None
            if kind is not None:
                self._held = bytes(data)
                if kind == "streamed":
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(STREAM_HEAD_HOLD_S, self._flush_later)
                return
        self._transport.write(data)

    def _take(self) -> bytes:
        head, self._held = self._held or b"", None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return head

    def _flush_later(self) -> None:
        self._timer = None
        self.flush_head()

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def flush_head(self) -> None:
        """Send a held head now (the response ended with no body write); a
        connection already going away drops it."""
        if self._held is not None:
            head = self._take()
            if not self._transport.is_closing():
                self._transport.write(head)

    def response_complete(self) -> None:
        self.flush_head()
        self._expect_head = True

    def write_eof(self) -> None:
        self.flush_head()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush_head()
        self._transport.close()

    def abort(self) -> None:
        self._take()
        self._transport.abort()


def coalescing_protocol() -> type[asyncio.Protocol] | None:
    """The protocol class for ``uvicorn.Config(http=...)``, or None without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(HeadHoldingTransport(transport))  # type: ignore[arg-type]

        def on_response_complete(self) -> None:
            transport = self.transport
            if isinstance(transport, HeadHoldingTransport):
                transport.response_complete()
            super().on_response_complete()

    return CoalescingHttpToolsProtocol
