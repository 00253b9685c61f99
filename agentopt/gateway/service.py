"""The daemon over HTTP: one ASGI app for the data plane, the control plane and sessions.

Routes:

- ``GET /healthz`` (never needs the API key) and ``GET /internal/health``;
- the provider endpoints of :mod:`agentopt.gateway.dataplane` under ``/v1``,
  and ``POST /v1/feedback``;
- the control plane under ``/agentopt/v1`` (:mod:`agentopt.gateway.control`);
- ``/s/<token>/<upstream>/<path>``: a session's pass-through (a remote
  tracker's calls and its child processes), authorised by the session token;
- anything :meth:`DaemonApp.mount` adds (a dashboard, metrics…).

With an API key, every other route needs ``Authorization: Bearer <key>`` or
``x-api-key: <key>``. On a loopback bind, requests whose ``Host`` is not a
loopback name are refused (a web page cannot reach the daemon through DNS
rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from typing import TYPE_CHECKING, Any

import httpx

from agentopt._serving import ThreadedServer
from agentopt.exceptions import ConfigError, TrackingError
from agentopt.gateway.asgi import Receive, Scope, Send, error, respond, respond_json
from agentopt.gateway.dataplane import ENDPOINTS, DataPlane, Endpoint, headers_of
from agentopt.gateway.keys import check_api_key

if TYPE_CHECKING:
    from agentopt.gateway.daemon import Daemon

__all__ = ["DaemonApp", "DaemonServer", "is_loopback"]

log = logging.getLogger("agentopt.gateway")

CONTROL_PREFIX = "/agentopt/v1"
_SESSION_ROUTE = re.compile(r"^/s/([^/]+)/([^/]+)(/.*)?$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


class DaemonApp:
    """The daemon's ASGI app (see the module docstring)."""

    def __init__(self, daemon: Daemon, *, host: str = "127.0.0.1") -> None:
        from agentopt.gateway.control import control_app

        self.daemon = daemon
        self.host = host
        self.data = DataPlane(daemon)
        self.control = control_app(daemon, self)
        self._mounts: list[tuple[str, Any, bool]] = []
        self._probe_stop: asyncio.Event | None = None
        self._probe_task: asyncio.Task[None] | None = None
        from agentopt.gateway.features import install

        #: what the server runs: this app, or the capture layer around it
        self.outer: Any = install(self)

    def mount(self, prefix: str, app: Any, *, own_auth: bool = False) -> None:
        """Serve ``app`` (any ASGI app) under ``prefix``; the API key still applies,
        checked here, or by ``app`` itself when ``own_auth`` (the dashboard, whose
        browser page signs in with a form and a cookie)."""
        self._mounts.append((prefix.rstrip("/"), app, own_auth))

    async def aclose(self) -> None:
        await self.data.aclose()
        # litellm's logging worker (started by a translated call) lives in this loop:
        # stop it before the loop closes, or it dies noisily at garbage collection.
        worker = sys.modules.get("litellm.litellm_core_utils.logging_worker")
        if worker is not None:
            with contextlib.suppress(Exception):
                await worker.GLOBAL_LOGGING_WORKER.stop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            await respond(send, 200, b"ok", "text/plain")
            return
        headers = headers_of(scope)
        if is_loopback(self.host) and not _host_ok(headers.get("host", "")):
            await error(send, 403, "agentopt gateway: Host header is not a loopback name")
            return
        for prefix, app, own_auth in self._mounts:
            if own_auth and (path == prefix or path.startswith(prefix + "/")):
                await app(scope, receive, send)
                return
        m = _SESSION_ROUTE.match(path)
        if m is not None:  # the session token is the credential
            await self._session(scope, receive, send, m.group(1), m.group(2))
            return
        if not check_api_key(self.daemon.api_key, headers):
            await error(
                send,
                401,
                "agentopt gateway: missing or wrong API key; send "
                "'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                kind="authentication_error",
                wire="anthropic" if path.startswith("/v1/messages") else "openai",
            )
            return
        method = scope["method"]
        endpoint = ENDPOINTS.get(path.rstrip("/"))
        if endpoint is not None and method == "POST":
            await self.data.call(scope, receive, send, endpoint)
            return
        if path.rstrip("/") == "/v1/models" and method == "GET":
            await self.data.models(send)
            return
        if path in ("/v1/feedback", "/internal/health") or path.startswith(CONTROL_PREFIX):
            await self.control(scope, receive, send)
            return
        for prefix, app, _own in self._mounts:
            if path == prefix or path.startswith(prefix + "/"):
                await app(scope, receive, send)
                return
        await error(send, 404, f"agentopt gateway: no route for {method} {path}")

    async def _session(
        self, scope: Scope, receive: Receive, send: Send, token: str, key: str
    ) -> None:
        d = self.daemon
        session = d.sessions.get(token)
        if session is None:
            await error(send, 403, "agentopt gateway: unknown or ended session")
            return
        origin = d.upstreams.origin(key)
        if origin is None:
            await error(send, 404, f"agentopt gateway: unknown upstream {key!r}")
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        parts = raw_path.split(b"/", 4)
        rest = "/" + (parts[4].decode("ascii", "replace") if len(parts) == 5 else "")
        query: bytes = scope.get("query_string", b"")
        url = origin + rest + (("?" + query.decode("ascii", "replace")) if query else "")
        method = scope["method"]
        spec = d.registry.match(method, url)
        if spec is None:
            if method == "GET" and rest.rstrip("/").endswith("/models"):
                await self._plain(scope, receive, send, url)
                return
            await error(send, 404, f"agentopt gateway: {method} {rest} is not an LLM endpoint")
            return
        await self.data.passthrough(scope, receive, send, url, spec, session)

    async def _plain(self, scope: Scope, receive: Receive, send: Send, url: str) -> None:
        headers = [
            (k, v)
            for k, v in headers_of(scope).items()
            if k not in ("host", "content-length", "accept-encoding")
        ]
        try:
            r = await self.data.client().send(httpx.Request("GET", url, headers=headers))
            try:
                content = await r.aread()
            finally:
                await r.aclose()
        except httpx.HTTPError as exc:
            await error(send, 502, self.daemon.scrub(f"agentopt gateway: {exc}"))
            return
        await respond(send, r.status_code, content, r.headers.get("content-type", "text/plain"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # the upstream pool (aiohttp's import, TLS context) is made now, not
                # on the first caller's time
                self.data.client().session()
                self._start_probes()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop_probes()
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start_probes(self) -> None:
        """Active health checks run in the serving loop (when any is configured)."""
        if not self.daemon.config.resilience.health_checks:
            return
        self._probe_stop = asyncio.Event()
        self._probe_task = asyncio.get_running_loop().create_task(
            self.daemon.health_registry.run_probes(self._probe_stop)
        )

    async def _stop_probes(self) -> None:
        if self._probe_stop is not None and self._probe_task is not None:
            self._probe_stop.set()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._probe_task, timeout=5)


def _host_ok(host: str) -> bool:
    if not host:
        return True  # HTTP/1.0 clients; nothing to rebind
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback(name)


async def _json_error(send: Send, status: int, message: str) -> None:
    await respond_json(send, status, {"error": {"message": message, "type": "gateway_error"}})


class DaemonServer(ThreadedServer):
    """Serve a :class:`Daemon` with uvicorn in a background thread.

    A non-loopback ``host`` without an API key is refused. ``stop()`` lets
    calls in flight finish (up to ``drain_seconds``), then closes the daemon:
    open calls recorded, router state saved, every record flushed."""

    def __init__(
        self,
        daemon: Daemon,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        drain_seconds: float = 30.0,
    ) -> None:
        if not is_loopback(host) and not daemon.api_key:
            raise ConfigError(
                f"refusing to serve on {host!r} without an API key: anyone who can reach it "
                "could spend your provider keys. Set one with --api-key KEY or the "
                "AGENTOPT_API_KEY environment variable (clients then send "
                "'Authorization: Bearer KEY'), or bind 127.0.0.1."
            )
        self.daemon = daemon
        self.daemon_app = DaemonApp(daemon, host=host)
        super().__init__(
            self.daemon_app.outer,
            host=host,
            port=port,
            name="agentopt-daemon",
            error=TrackingError,
            lifespan="on",
            on_close=self.daemon_app.aclose,
            graceful_seconds=drain_seconds,
            uvloop=True,
        )
        self.drain_seconds = drain_seconds

    def stop(self, timeout: float | None = None) -> None:
        super().stop(self.drain_seconds + 5 if timeout is None else timeout)
        self.daemon.close()


__all__ += ["CONTROL_PREFIX", "Endpoint"]
