"""The pass-through gateway: an ASGI app that runs each call through the pipeline.

``/s/<token>/<upstream_key>/<path>`` forwards to ``<upstream origin>/<path>``
(query string, method, headers and body unchanged) through the tracker's
:class:`~agentopt.tracking.pipeline.Pipeline` for that session, so the call is
routed, cached and recorded like any in-process call, and streams come back as
they arrive. Only LLM calls are forwarded, plus ``GET …/models`` (unrecorded);
a token that names no live session gets 403, and a request whose ``Host`` is
not a loopback name gets 403 (no DNS rebinding from a web page).
``GET /healthz`` answers ``ok``.

The app is raw ASGI (no framework on the hot path); ``resolve(token)``
supplies the pipeline and the session (None when the token names none).

A call's record is made when its upstream body ends, which can be a moment
after the caller has read the last event (the OpenAI SDK closes at
``[DONE]``). :meth:`GatewayApp.settle` waits for a session's calls still in
flight, so a session that ends has every record of its calls.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from agentopt.gateway.asgi import (
    HOP_HEADERS,
    Receive,
    Scope,
    Send,
    error,
    read_body,
    respond,
)
from agentopt.gateway.upstreams import Upstreams
from agentopt.tracking.redact import scrub_url

if TYPE_CHECKING:
    from agentopt.tracking.pipeline import Pipeline
    from agentopt.tracking.session import SessionInfo

__all__ = ["GatewayApp", "Resolver"]

log = logging.getLogger("agentopt.gateway")

Resolver = Callable[[str], "tuple[Pipeline, SessionInfo | None] | None"]

_ROUTE = re.compile(r"^/s/([^/]+)/([^/]+)(/.*)?$")
_HOP = HOP_HEADERS


class GatewayApp:
    """ASGI app; see the module docstring."""

    def __init__(
        self,
        resolve: Resolver,
        upstreams: Upstreams,
        *,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self.resolve = resolve
        self.upstreams = upstreams
        self.timeout = httpx.Timeout(600.0, connect=10.0) if timeout is None else timeout
        self._client: httpx.AsyncClient | None = None
        self._inflight: dict[str, int] = {}  # session id -> calls being served
        self._settled = threading.Condition()

    def settle(self, session_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` s until no call of ``session_id`` is in flight
        (each has been recorded); False if some still were."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while self._inflight.get(session_id):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(left)
        return True

    def client(self) -> httpx.AsyncClient:
        """The upstream client, created in the serving event loop on first use."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            await _respond(send, 200, b"ok", "text/plain")
            return
        m = _ROUTE.match(path)
        if m is None:
            await _error(
                send,
                404,
                f"agentopt gateway: no route for {path!r}; use /s/<session>/<upstream>/<path>",
            )
            return
        session_id, key = m.group(1), m.group(2)
        origin = self.upstreams.origin(key)
        if origin is None:
            await _error(send, 404, f"agentopt gateway: unknown upstream {key!r}")
            return
        host = _host_of(scope)
        if host and not _is_loopback(host):
            await _error(send, 403, "agentopt gateway: Host header is not a loopback name")
            return
        found = self.resolve(session_id)
        if found is None:
            await _error(send, 503, "agentopt gateway: no running tracker behind this gateway")
            return
        pipeline, session = found
        if session is None:
            await _error(send, 403, "agentopt gateway: unknown or ended session")
            return
        sid = session.session_id
        with self._settled:
            self._inflight[sid] = self._inflight.get(sid, 0) + 1
        try:
            await self._forward(scope, receive, send, origin, pipeline, session)
        finally:
            with self._settled:
                n = self._inflight.pop(sid) - 1
                if n:
                    self._inflight[sid] = n
                else:
                    self._settled.notify_all()

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        origin: str,
        pipeline: Pipeline,
        session: SessionInfo | None,
    ) -> None:
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        # Keep the path exactly as the child sent it (percent-encoding included).
        parts = raw_path.split(b"/", 4)  # b"", b"s", session, key, rest
        rest = "/" + (parts[4].decode("ascii", "replace") if len(parts) == 5 else "")
        query: bytes = scope.get("query_string", b"")
        target = origin + rest + (("?" + query.decode("ascii", "replace")) if query else "")
        method = scope["method"]
        if pipeline.registry.match(method, target) is None and not (
            method == "GET" and rest.rstrip("/").endswith("/models")
        ):
            await _error(send, 404, f"agentopt gateway: {method} {rest} is not an LLM endpoint")
            return
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _HOP
        ]
        # Identity encoding: the pipeline parses the bytes it passes through.
        headers = [(k, v) for k, v in headers if k.lower() != "accept-encoding"]
        headers.append(("accept-encoding", "identity"))
        body = await _read_body(receive)
        request = httpx.Request(scope["method"], target, headers=headers, content=body)
        client = self.client()
        try:
            response = await pipeline.handle_async(
                request, session, functools.partial(client.send, stream=True)
            )
        except httpx.HTTPError as exc:
            await _error(
                send,
                504 if isinstance(exc, httpx.TimeoutException) else 502,
                f"agentopt gateway: upstream {origin} failed: {type(exc).__name__}: {exc}",
                kind="upstream_error",
            )
            return
        try:
            out_headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower() not in _HOP
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": out_headers,
                }
            )
            if hasattr(response, "_content"):  # already read (cache replay, translation)
                await send({"type": "http.response.body", "body": response.content})
                return
            try:
                async for chunk in response.aiter_raw():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                # The status line is gone: end the body (the record says what broke)
                # and say it in one line, not a server traceback in the user's process.
                log.warning(
                    "agentopt gateway: upstream %s broke mid-body: %s: %s",
                    scrub_url(origin),
                    type(exc).__name__,
                    exc,
                )
            except OSError:  # the child went away; the record says the call was abandoned
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _host_of(scope: Scope) -> str:
    for k, v in scope["headers"]:
        if k.lower() == b"host":
            host = v.decode("latin-1")
            return host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    return ""


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


async def _read_body(receive: Receive) -> bytes:
    return await read_body(receive)


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await respond(send, status, body, content_type)


async def _error(send: Send, status: int, message: str, *, kind: str = "gateway_error") -> None:
    await error(send, status, message, kind=kind)
