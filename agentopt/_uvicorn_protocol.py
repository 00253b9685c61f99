"""uvicorn's httptools protocol, sending a sized response's head and body in one write.

uvicorn writes a response's status line and headers to the socket as soon as
the app sends ``http.response.start``, and the body in a second write. On
loopback each write is a system call that also wakes the reader, so a small
JSON answer costs two wake-ups of the client and two of the kernel's TCP path
where one would do; for the gateway daemon, whose whole job is to add as little
as possible to each call, that was the largest single cost after the upstream
round trip.

:class:`CoalescingHttpToolsProtocol` holds the head of a response that has a
``content-length`` (a complete, non-streamed answer) until the first body
write, and sends both together. Nothing else changes:

- a streamed (chunked) response's head goes out at once, so a caller learns
  the status before the first token;
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

__all__ = ["coalescing_protocol"]


def _sized_head(data: bytes) -> bool:
    """Whether ``data`` is a whole response head announcing a non-empty sized body."""
    return (
        data.startswith(b"HTTP/1.1 2")
        and data.endswith(b"\r\n\r\n")
        and b"\r\ncontent-length: " in data
        and b"\r\ncontent-length: 0\r\n" not in data
        and b"\r\ntransfer-encoding:" not in data
    )


class HeadHoldingTransport:
    """A transport that keeps back a sized response head until the body follows it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._expect_head = True

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            head, self._held = self._held, None
            self._transport.write(head + bytes(data))
            return
        if self._expect_head:
            self._expect_head = False
            if isinstance(data, bytes) and _sized_head(data):
                self._held = data
                return
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def flush_head(self) -> None:
        """Send a held head now (the response ended with no body write)."""
        if self._held is not None:
            head, self._held = self._held, None
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
        self._held = None
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
