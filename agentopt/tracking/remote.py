"""The remote backend: an LLMTracker whose calls go through an ``agentopt serve`` daemon.

Setting ``AGENTOPT_GATEWAY_URL`` (and ``AGENTOPT_API_KEY`` when the daemon
wants one) makes every new :class:`LLMTracker` use this backend instead of
the in-process one, with no other change to the caller's code:

- an SDK (httpx) call captured in a session is sent to the daemon's
  ``/s/<token>/<upstream>/<path>`` endpoint for that session, so the daemon
  forwards it to where it was going and records it with the session's ids
  (and caches it, when the daemon has a cache);
- a session's router runs here, in the caller's process (its state is the
  caller's object); its choice travels as ``x-agentopt-route`` and the daemon's
  route stage applies it, translation included;
- litellm calls are recorded here and their records appended to the daemon's
  store;
- subprocess children of a session get base URLs pointing at the daemon;
- records, usage and feedback are read back over the control plane.

The daemon is reached over plain HTTP (``/agentopt/v1``), so nothing here
imports ``agentopt.gateway``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.exceptions import ConfigError, StoreError, TrackingError
from agentopt.pricing import PriceBook
from agentopt.records import CallRecord
from agentopt.tracking.capture.subprocess_env import session_env
from agentopt.tracking.pipeline import AsyncSend, Pipeline, Send, _lib_of, capture_bypassed
from agentopt.tracking.providers import (
    ProviderRegistry,
    ProviderSpec,
    Wire,
    default_registry,
    ignore_origin,
    unignore_origin,
)
from agentopt.tracking.recorder import Recorder
from agentopt.tracking.routing import RouteState
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.storage.store import IdLike, RecordStore
from agentopt.tracking.wire.parsing import request_model

if TYPE_CHECKING:
    from agentopt.tracking.storage.cache import ResponseCache
    from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "API_KEY_ENV",
    "GATEWAY_URL_ENV",
    "RemoteBackend",
    "RemoteRecordStore",
]

#: The environment variable that switches trackers to the remote backend.
GATEWAY_URL_ENV = "AGENTOPT_GATEWAY_URL"
#: The daemon's API key, when it requires one.
API_KEY_ENV = "AGENTOPT_API_KEY"
P = "/agentopt/v1"
_ROUTE_HEADER = "x-agentopt-route"


class ControlClient:
    """The daemon's control plane over HTTP; errors become :class:`TrackingError`."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=60, trust_env=False)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, P + path, **kw)
        except httpx.HTTPError as exc:
            raise TrackingError(
                f"{GATEWAY_URL_ENV}={self.url}: the daemon did not answer {method} {path}: "
                f"{type(exc).__name__}: {exc}. Is `agentopt serve` running there?"
            ) from None
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:500]
            raise TrackingError(f"agentopt daemon at {self.url}: {method} {path}: {message}")
        return r.json()

    def close(self) -> None:
        self._http.close()


class RemoteRecordStore:
    """The daemon's record store, as a :class:`~agentopt.tracking.storage.store.RecordStore`.

    Appends (litellm's records) are sent in batches; reads flush them first."""

    def __init__(self, control: ControlClient) -> None:
        self._control = control
        self._pending: list[CallRecord] = []
        self._lock = threading.Lock()

    def append(self, record: CallRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                self._control.call(
                    "POST", "/records", json={"records": [r.model_dump(mode="json") for r in batch]}
                )
            except TrackingError as exc:
                with self._lock:
                    self._pending[:0] = batch  # kept for the next flush
                raise StoreError(f"{exc}; {len(batch)} record(s) kept to send again") from None

    def query(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
    ) -> list[CallRecord]:
        self.flush()
        params = {
            k: str(v)
            for k, v in {
                "data_id": data_id,
                "combo_id": combo_id,
                "agent_id": agent_id,
                "session_id": session_id,
            }.items()
            if v is not None
        }
        out = self._control.call("GET", "/records", params=params)
        return [CallRecord.model_validate(r) for r in out["records"]]

    def all(self) -> list[CallRecord]:
        return self.query()

    def __len__(self) -> int:
        self.flush()
        return int(self._control.call("GET", "/records/count")["count"])

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
        self._control.call("DELETE", "/records")

    def close(self) -> None:
        self.flush()

    def __repr__(self) -> str:
        return f"RemoteRecordStore({self._control.url})"


class RemotePipeline(Pipeline):
    """Route here, then send each captured call to the daemon for its session."""

    def __init__(self, backend: RemoteBackend) -> None:
        super().__init__(backend.registry, backend.recorder, backend.routes, None)
        self.backend = backend

    def _redirect(self, request: Any, session: SessionInfo | None, lib: ModuleType) -> Any:
        url = request.url if lib is httpx else httpx.URL(str(request.url))
        spec = self.registry.match(request.method, url)
        if spec is None:
            return None
        content: bytes = request.content
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        requested = request_model(spec.wire, url, body)
        choice = self.routes.route(session, requested, body, spec.name)
        b = self.backend
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        key = b.upstream_key(origin)
        token = b.token_for(session)
        target = f"{b.url}/s/{token}/{key}{url.raw_path.decode('ascii')}"
        headers = lib.Headers(request.headers)
        for name in ("host", "content-length", "transfer-encoding"):
            if name in headers:
                del headers[name]
        if choice and choice != requested:
            headers[_ROUTE_HEADER] = choice
        return lib.Request(
            request.method, target, headers=headers, content=content, extensions=request.extensions
        )

    def handle(self, request: Any, session: SessionInfo | None, send: Send) -> Any:
        if capture_bypassed():
            return send(request)
        lib = _lib_of(request)
        try:
            request.content  # noqa: B018 - a streamed body must be read first
        except lib.RequestNotRead:
            request.read()
        redirected = self._redirect(request, session, lib)
        return send(redirected if redirected is not None else request)

    async def handle_async(self, request: Any, session: SessionInfo | None, send: AsyncSend) -> Any:
        if capture_bypassed():
            return await send(request)
        lib = _lib_of(request)
        try:
            request.content  # noqa: B018
        except lib.RequestNotRead:
            await request.aread()
        redirected = self._redirect(request, session, lib)
        return await send(redirected if redirected is not None else request)

    def finish_open(self) -> int:
        return 0  # calls in flight are the daemon's to record


class _Upstreams:
    """Upstream keys the daemon knows, registered on first use."""

    def __init__(self, backend: RemoteBackend) -> None:
        self._backend = backend

    def register(self, base_url: str) -> tuple[str, str]:
        url = httpx.URL(base_url.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"upstream base URL must be absolute http(s), got {base_url!r}")
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        return self._backend.upstream_key(origin), url.raw_path.decode("ascii").rstrip("/")


class _DaemonFrontEnd:
    """Children of a session reach the daemon under the session's token."""

    def __init__(self, backend: RemoteBackend) -> None:
        self._backend = backend

    def session_env(
        self, tracker: LLMTracker, session: SessionInfo, base_env: Mapping[str, str] | None
    ) -> dict[str, str]:
        b = self._backend
        return session_env(
            b.url, session.session_id, _Upstreams(b), base_env, token=b.token_for(session)
        )

    def proxy(self, tracker: LLMTracker, session: SessionInfo) -> Any:
        return None  # no per-session server: the daemon serves every session

    def base_url_for(self, tracker: LLMTracker, session: SessionInfo, upstream: str) -> str:
        b = self._backend
        key, path = _Upstreams(b).register(upstream)
        return f"{b.url}/s/{b.token_for(session)}/{key}{path}"

    def stop(self, tracker: LLMTracker) -> None:
        return None


class RemoteBackend:
    """A :class:`~agentopt.tracking.backend.Backend` backed by an ``agentopt serve`` daemon."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        redact: bool = False,
        price_book: PriceBook | None = None,
        registry: ProviderRegistry | None = None,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(
                f"{GATEWAY_URL_ENV}={url!r}: expected the daemon's URL, e.g. http://127.0.0.1:8080"
            )
        self.url = url.rstrip("/")
        self.control = ControlClient(self.url, api_key or os.environ.get(API_KEY_ENV))
        self.control.call("GET", "/health")  # fail now, with a clear message, if it is not there
        self.registry = registry or default_registry()
        self.store: RecordStore = RemoteRecordStore(self.control)
        self.recorder = Recorder(self.store, redact=redact, price_book=price_book)
        self.routes = RouteState(self.store)
        self.process_front_end = _DaemonFrontEnd(self)
        self._pipeline = RemotePipeline(self)
        self._tokens: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._anonymous: str | None = None
        self._lock = threading.Lock()
        ignore_origin(self.url)  # calls to the daemon itself are the daemon's to record

    # -- sessions and upstreams on the daemon -------------------------------------------

    def token_for(self, session: SessionInfo | None) -> str:
        """The daemon session token standing for ``session`` (opened on first use)."""
        sid = session.session_id if session is not None else ""
        token = self._tokens.get(sid) if session is not None else self._anonymous
        if token is not None:
            return token
        body: dict[str, Any] = {"anonymous": True}
        if session is not None:
            body = {
                "session_id": session.session_id,
                "data_id": session.data_id,
                "combo_id": session.combo_id,
                "agent_id": session.agent_id,
            }
            if session.router is not None:
                # this session routes here (its choice travels as x-agentopt-route):
                # the daemon's default policy must not route it again
                body["router"] = None
        token = str(self.control.call("POST", "/sessions", json=body)["token"])
        with self._lock:
            if session is None:
                self._anonymous = token
            else:
                self._tokens[sid] = token
        return token

    def end_session(self, session: SessionInfo) -> None:
        """The session ended: close it on the daemon (its token stops working)."""
        with self._lock:
            token = self._tokens.pop(session.session_id, None)
        if token is not None:
            # the daemon may be gone or restarted: the token is dead either way
            with contextlib.suppress(TrackingError):
                self.control.call("DELETE", f"/sessions/{token}")

    def upstream_key(self, origin: str) -> str:
        key = self._keys.get(origin)
        if key is None:
            key = str(self.control.call("POST", "/upstreams", json={"base_url": origin})["key"])
            self._keys[origin] = key
        return key

    # -- Backend -----------------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        return self._pipeline

    def cache(self) -> ResponseCache | None:
        return None  # the daemon's cache, if it has one, serves every call

    def register_provider(
        self, name: str, base_url: str, path_patterns: list[str] | tuple[str, ...], wire: Wire
    ) -> ProviderSpec:
        spec = self.registry.register(name, base_url, path_patterns, wire=wire)
        self.control.call(
            "POST",
            "/providers",
            json={
                "name": name,
                "base_url": base_url,
                "wire": wire,
                "path_patterns": list(path_patterns),
            },
        )
        return spec

    def flush(self) -> None:
        self.store.flush()
        self.control.call("POST", "/flush")

    def clear_cache(self) -> None:
        self.control.call("POST", "/cache/clear")

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            unignore_origin(self.url)
            self.control.close()
