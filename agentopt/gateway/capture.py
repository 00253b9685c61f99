"""Wire capture: each request/response pair a server answers, to rotating JSON-lines files.

Off by default. :class:`CaptureMiddleware` wraps any ASGI app (the daemon
wraps its own when ``capture: {enabled: true}``) and writes one line per
exchange once it has ended, so a killed process leaves only whole lines (a
torn last line is skipped by :func:`read_capture`, with a warning).

The format (version 1), one JSON object per line, UTF-8::

    {"v": 1, "id": "<hex>", "time": "<ISO 8601 start, UTC>", "redacted": false,
     "request":  {"method": "POST", "path": "/v1/chat/completions", "query": "",
                  "headers": [["content-type", "application/json"], ...],
                  "body": "<text>"},
     "response": {"status": 200, "headers": [["content-type", "text/event-stream"], ...],
                  "ttfb": 0.0121, "duration": 0.3034,
                  "chunks": [[0.0121, "data: {...}\\n\\n"], [0.0502, "data: ..."], ...]},
     "error": null}

- ``headers`` are name/value pairs as sent; credentials (``Authorization``,
  ``x-api-key``, cookies, …) are replaced by ``<redacted>``, always.
- ``body`` and each chunk's data are text when they decode as UTF-8; otherwise
  an object ``{"b64": "<base64>"}``. Chunks are the body pieces exactly as the
  server sent them, each with its time in seconds since the request began, so
  a stream can be replayed with its timing. ``ttfb`` is the time to the first
  body byte, ``duration`` to the last.
- With ``redact=True``, message content in the request body and in every
  JSON body or SSE ``data:`` event of the response is replaced by
  ``<redacted>`` (the structure, models and usage stay); such a capture can
  be replayed for timing and usage, not byte for byte.
- ``error`` is set when the app raised or the client went away mid-response.

Files are named ``capture-<UTC time>-<pid>-<n>.jsonl`` in the capture folder; a
file is closed and a new one begun past ``max_bytes`` (64 MiB by default), and
with ``max_files`` the oldest beyond that many are deleted.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from agentopt.exceptions import ConfigError, DataError
from agentopt.tracking.redact import REDACTED, SECRET_HEADERS, scrub_body, scrub_url

__all__ = [
    "CAPTURE_VERSION",
    "CaptureMiddleware",
    "CaptureWriter",
    "Exchange",
    "capture_files",
    "read_capture",
]

CAPTURE_VERSION = 1
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths never captured: the daemon's own pages, health and metrics.
DEFAULT_EXCLUDE = ("/dashboard", "/internal", "/healthz", "/metrics", "/favicon.ico")


def _pack(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def _unpack(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"])
    raise DataError(f"capture: a body must be text or {{'b64': ...}}, got {type(value).__name__}")


def _redact_bytes(data: bytes) -> bytes:
    """Message content out of a JSON body or of each SSE ``data:`` event."""
    try:
        obj = json.loads(data)
    except ValueError:
        pass
    else:
        return json.dumps(scrub_body(obj, redact=True)).encode()
    out = []
    for line in data.split(b"\n"):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            try:
                obj = json.loads(payload)
            except ValueError:
                out.append(line)
                continue
            out.append(b"data: " + json.dumps(scrub_body(obj, redact=True)).encode())
        else:
            out.append(line)
    return b"\n".join(out)


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> list[list[str]]:
    """Name/value pairs as sent, credentials replaced (repeated names kept)."""
    pairs = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)
    return [[k, REDACTED if k.lower() in SECRET_HEADERS else v] for k, v in pairs]


def _query(raw: bytes) -> str:
    """The query string with credential parameters (Gemini's ``?key=``) replaced."""
    text = raw.decode("latin-1")
    if not text:
        return ""
    return urlsplit(scrub_url(f"http://capture/?{text}")).query


@dataclass
class Exchange:
    """One captured request/response pair (see the module docstring for the fields)."""

    id: str
    time: str
    method: str
    path: str
    query: str
    request_headers: list[list[str]]
    request_body: bytes
    status: int | None
    response_headers: list[list[str]]
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    ttfb: float | None = None
    duration: float | None = None
    error: str | None = None
    redacted: bool = False

    @property
    def response_body(self) -> bytes:
        return b"".join(data for _, data in self.chunks)

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def header(self, name: str, where: str = "response") -> str | None:
        pairs = self.response_headers if where == "response" else self.request_headers
        name = name.lower()
        return next((v for k, v in pairs if k.lower() == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": CAPTURE_VERSION,
            "id": self.id,
            "time": self.time,
            "redacted": self.redacted,
            "request": {
                "method": self.method,
                "path": self.path,
                "query": self.query,
                "headers": self.request_headers,
                "body": _pack(self.request_body),
            },
            "response": {
                "status": self.status,
                "headers": self.response_headers,
                "ttfb": self.ttfb,
                "duration": self.duration,
                "chunks": [[round(t, 6), _pack(d)] for t, d in self.chunks],
            },
            "error": self.error,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Exchange:
        try:
            if obj.get("v") != CAPTURE_VERSION:
                raise DataError(f"{where}: capture version {obj.get('v')!r} is not supported")
            req, resp = obj["request"], obj["response"]
            return cls(
                id=str(obj["id"]),
                time=str(obj["time"]),
                method=str(req["method"]),
                path=str(req["path"]),
                query=str(req.get("query") or ""),
                request_headers=[[str(k), str(v)] for k, v in req.get("headers") or []],
                request_body=_unpack(req.get("body")),
                status=resp.get("status"),
                response_headers=[[str(k), str(v)] for k, v in resp.get("headers") or []],
                chunks=[(float(t), _unpack(d)) for t, d in resp.get("chunks") or []],
                ttfb=resp.get("ttfb"),
                duration=resp.get("duration"),
                error=obj.get("error"),
                redacted=bool(obj.get("redacted")),
            )
        except DataError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: not a capture line ({type(exc).__name__}: {exc})") from exc


class CaptureWriter:
    """Append exchanges to rotating files in ``directory``; thread-safe.

    Each line is written and flushed whole, so a killed process loses at most
    the exchange in flight. A write that fails (disk full) warns once per
    failure streak and counts the lost exchanges in ``dropped``; serving
    goes on.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 64 << 20,
        max_files: int | None = None,
    ) -> None:
        if max_bytes < 1024:
            raise ConfigError(f"capture max_bytes={max_bytes}: expected at least 1024")
        if max_files is not None and max_files < 1:
            raise ConfigError(f"capture max_files={max_files}: expected at least 1")
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"capture dir {str(self.dir)!r} cannot be created: {exc}") from exc
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.written = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self._size = 0
        self._n = 0
        self._failing = False

    @property
    def current(self) -> Path | None:
        return Path(self._fh.name) if self._fh is not None else None

    def _open(self) -> IO[bytes]:
        self._n += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.dir / f"capture-{stamp}-{os.getpid()}-{self._n:04d}.jsonl"
        fh = path.open("ab")
        self._size = fh.tell()
        if self.max_files is not None:
            files = capture_files(self.dir)
            for old in files[: max(0, len(files) - self.max_files)]:
                with contextlib.suppress(OSError):
                    old.unlink()
        return fh

    def write(self, exchange: Exchange) -> None:
        line = json.dumps(exchange.to_json(), ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            try:
                if self._fh is None or (self._size and self._size + len(line) > self.max_bytes):
                    if self._fh is not None:
                        self._fh.close()
                    self._fh = None
                    self._fh = self._open()
                self._fh.write(line)
                self._fh.flush()
                self._size += len(line)
                self.written += 1
                self._failing = False
            except OSError as exc:
                self.dropped += 1
                if not self._failing:
                    warnings.warn(
                        f"capture: cannot write to {str(self.dir)!r} ({exc}); exchanges are"
                        " not being captured until it works again (calls are still served)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                self._failing = True
                if self._fh is not None:
                    with contextlib.suppress(OSError):
                        self._fh.close()
                    self._fh = None

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None


class CaptureMiddleware:
    """ASGI middleware: serve through ``app`` and capture each HTTP exchange."""

    def __init__(
        self,
        app: ASGIApp,
        writer: CaptureWriter,
        *,
        redact: bool = False,
        exclude: Iterable[str] = DEFAULT_EXCLUDE,
    ) -> None:
        self.app = app
        self.writer = writer
        self.redact = redact
        self.exclude = tuple(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path", "").startswith(self.exclude):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        ex = Exchange(
            id=uuid.uuid4().hex,
            time=datetime.now(UTC).isoformat(),
            method=str(scope.get("method", "GET")),
            path=str(scope.get("path", "/")),
            query=_query(bytes(scope.get("query_string") or b"")),
            request_headers=_headers(scope.get("headers") or []),
            request_body=b"",
            status=None,
            response_headers=[],
            redacted=self.redact,
        )
        body = bytearray()

        async def recv() -> Message:
            msg = await receive()
            if msg.get("type") == "http.request":
                body.extend(msg.get("body") or b"")
            return msg

        async def snd(msg: Message) -> None:
            kind = msg.get("type")
            if kind == "http.response.start":
                ex.status = int(msg.get("status", 200))
                ex.response_headers = _headers(msg.get("headers") or [])
            elif kind == "http.response.body":
                data = bytes(msg.get("body") or b"")
                if data:
                    now = time.perf_counter() - t0
                    if ex.ttfb is None:
                        ex.ttfb = now
                    ex.chunks.append((now, data))
            await send(msg)

        try:
            await self.app(scope, recv, snd)
        except BaseException as exc:
            ex.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            ex.duration = time.perf_counter() - t0
            ex.request_body = bytes(body)
            if self.redact:
                ex.request_body = _redact_bytes(ex.request_body) if ex.request_body else b""
                ex.chunks = [(t, _redact_bytes(d)) for t, d in ex.chunks]
            self.writer.write(ex)


def capture_files(path: str | Path) -> list[Path]:
    """The capture files at ``path`` (a file, or a folder's ``capture-*.jsonl``), oldest first."""
    p = Path(path)
    if p.is_dir():
        return sorted(p.glob("capture-*.jsonl"), key=lambda f: (f.stat().st_mtime, f.name))
    if p.exists():
        return [p]
    raise ConfigError(f"capture {str(p)!r}: no such file or folder")


def read_capture(path: str | Path) -> Iterator[Exchange]:
    """Every exchange captured at ``path`` (a file or a capture folder), in order.

    A torn last line (a process killed mid-write) is skipped with a warning; any
    other malformed line raises :class:`DataError` naming the file and line.
    """
    for f in capture_files(path):
        try:
            lines = f.read_bytes().split(b"\n")
        except OSError as exc:
            raise DataError(f"{f}: cannot read: {exc}") from exc
        last = len(lines) - 1
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            where = f"{f}:{i + 1}"
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                if i == last:  # no newline after it: written when the process died
                    warnings.warn(
                        f"{where}: skipped a torn last line", RuntimeWarning, stacklevel=2
                    )
                    continue
                raise DataError(f"{where}: not JSON: {exc}") from exc
            yield Exchange.from_json(obj, where)
