"""Capture for HTTP clients that do not use httpx: requests, urllib, aiohttp.

While at least one tracker runs, each client is hooked once it is imported
(and unhooked when the last tracker stops), alongside the httpx transports:

=================  ===============================================  ============================
client             hook                                             how a call is captured
=================  ===============================================  ============================
requests           ``HTTPAdapter.send`` (every Session, any time)   in process: the pipeline
urllib.request     ``AbstractHTTPHandler.do_open`` (every opener)   in process: the pipeline
aiohttp            ``ClientSession._request``                       the session's gateway
=================  ===============================================  ============================

In process, the client's request becomes an ``httpx.Request`` that goes through
the same :class:`~agentopt.tracking.pipeline.Pipeline` as httpx traffic (route →
cache → forward → record); *forward* sends it with the client's own original
code (its proxies, TLS settings and timeouts), and the pipeline's response goes
back to the caller as the client's own response type. aiohttp has no hook that
can answer a request without a connection, so inside a session its LLM calls
are pointed at the session's endpoint on the tracker's gateway (the loopback
gateway, or the daemon), which runs the same pipeline. Requests that are no LLM
call, and calls made while capture is bypassed (litellm's own upstream calls,
the gateway's forwards), pass through untouched.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

import httpx

from agentopt.tracking.capture.httpx_capture import resolve
from agentopt.tracking.capture.import_hooks import cancel, when_imported
from agentopt.tracking.pipeline import Pipeline, capture_bypassed
from agentopt.tracking.session import SessionInfo

__all__ = [
    "CLIENTS",
    "ChunkReader",
    "IteratorStream",
    "client_chunks",
    "client_headers",
    "install",
    "installed",
    "llm_call",
    "uninstall",
]

_lock = threading.Lock()
_users = 0
_restore: dict[str, Callable[[], None]] = {}


def _patch_requests(mod: ModuleType) -> None:
    from agentopt.tracking.capture import requests_capture

    _apply("requests", requests_capture.patch)


def _patch_urllib(mod: ModuleType) -> None:
    from agentopt.tracking.capture import urllib_capture

    _apply("urllib.request", urllib_capture.patch)


def _patch_aiohttp(mod: ModuleType) -> None:
    from agentopt.tracking.capture import aiohttp_capture

    _apply("aiohttp", aiohttp_capture.patch)


#: module name → the hook installed once it is imported
CLIENTS: dict[str, Callable[[ModuleType], None]] = {
    "requests": _patch_requests,
    "urllib.request": _patch_urllib,
    "aiohttp": _patch_aiohttp,
}


def _apply(name: str, patch: Callable[[], Callable[[], None]]) -> None:
    with _lock:
        if _users and name not in _restore:
            _restore[name] = patch()


def install() -> None:
    """One more running tracker: hook each client now or once it is imported."""
    global _users
    with _lock:
        _users += 1
        first = _users == 1
    if first:
        for name, hook in CLIENTS.items():
            when_imported(name, hook)


def uninstall() -> None:
    """One tracker fewer: with the last one, every hook is removed."""
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users:
            return
        for name in CLIENTS:
            cancel(name)
        for restore in _restore.values():
            restore()
        _restore.clear()


def llm_call(method: str, url: str) -> tuple[Pipeline, SessionInfo | None] | None:
    """The pipeline and session that capture a call made now, or None when the
    call is no LLM call, capture is bypassed, or no tracker runs."""
    if capture_bypassed():
        return None
    found = resolve()
    if found is None:
        return None
    try:
        spec = found[0].registry.match(method, url)
    except Exception:  # an unparsable URL: the client will say so itself
        return None
    return found if spec is not None else None


def installed() -> list[str]:
    """The clients hooked right now."""
    with _lock:
        return sorted(_restore)


# -- the bridge between a client's bytes and the pipeline's httpx responses ------------------


class IteratorStream(httpx.SyncByteStream):
    """A client's response body as the httpx stream the pipeline tees."""

    def __init__(self, chunks: Iterable[bytes], close: Callable[[], Any]) -> None:
        self._chunks = chunks
        self._close = close

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                yield chunk

    def close(self) -> None:
        self._close()


def client_chunks(response: httpx.Response, *, decoded: bool) -> tuple[Iterator[bytes], bool]:
    """The pipeline's response body, chunk by chunk as it arrives, for a client;
    and whether those bytes are decoded (no content-encoding left to undo).
    ``decoded=False`` keeps the wire bytes (urllib does not decode)."""
    if hasattr(response, "_content"):  # replayed from the cache, or translated
        return iter([response.content]), True
    if decoded:
        return response.iter_bytes(), True
    return response.iter_raw(), False


def client_headers(response: httpx.Response, *, decoded: bool) -> list[tuple[str, str]]:
    """Headers for the client's response: framing the client cannot redo dropped."""
    drop = {"transfer-encoding"}
    if decoded:
        drop |= {"content-encoding", "content-length"}
    return [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of chunks; ``read1`` returns as soon as one
    chunk is there (streams stream); closing it closes the pipeline's response."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], Any]) -> None:
        super().__init__()
        self._chunks = chunks
        self._on_close = close
        self._buf = b""

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buf = chunk
        return True

    def readinto(self, b: Any) -> int:
        if self.closed or not self._fill():
            return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read1(self, size: int = -1) -> bytes:
        if self.closed or not self._fill():
            return b""
        n = len(self._buf) if size is None or size < 0 else size
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        if not self.closed:
            try:
                self._on_close()
            finally:
                super().close()
