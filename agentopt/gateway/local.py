"""A tracker's own loopback gateway: the default process front-end.

:data:`LOOPBACK` is what :mod:`agentopt.tracking.capture.subprocess_front` asks (through
:mod:`agentopt._frontends`) for a session's child environment. The gateway starts
lazily, the first time a session needs an endpoint, on ``127.0.0.1`` and an
ephemeral port, and stops with the tracker.

Each session gets an unguessable **token** (not its id) in its URL
(``/s/<token>/<upstream>/...``); the token stops working when the session ends,
so a local process that learns a session id, or a stale URL, cannot spend the
user's keys. The app refuses non-loopback ``Host`` headers and forwards only
LLM endpoints.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import TrackingError
from agentopt.gateway.app import GatewayApp
from agentopt.gateway.server import GatewayServer
from agentopt.gateway.upstreams import Upstreams
from agentopt.tracking.capture.subprocess_env import session_env
from agentopt.tracking.providers import ignore_origin, unignore_origin
from agentopt.tracking.session import SessionInfo, current_session

if TYPE_CHECKING:
    from agentopt.tracking.pipeline import Pipeline
    from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "LOOPBACK",
    "LocalGateway",
    "LoopbackFrontEnd",
    "SessionProxy",
    "proxy_for",
    "session_env_for",
    "stop_gateway",
]

_KNOWN_LIMIT = 10_000
# How long a session's end waits for its calls still in flight to be recorded
# (milliseconds normally; a stream the caller left open unread waits it out).
SETTLE_S = 2.0
log = logging.getLogger("agentopt.gateway")


@dataclass(frozen=True)
class SessionProxy:
    """One session's endpoint on the loopback gateway."""

    url: str  # http://127.0.0.1:PORT/s/<token>
    port: int
    session_id: str
    token: str
    gateway_url: str
    _gateway: LocalGateway

    def env_dict(self, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables a child needs (see :func:`~agentopt.tracking.capture.subprocess_env.session_env`)."""
        return session_env(
            self.gateway_url, self.session_id, self._gateway.upstreams, base_env, token=self.token
        )

    @property
    def openai_base_url(self) -> str:
        """Base URL for an OpenAI client, reaching the official OpenAI API."""
        return f"{self.url}/openai/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for an Anthropic client, reaching the official Anthropic API."""
        return f"{self.url}/anthropic"

    def base_url_for(self, upstream_base_url: str) -> str:
        """The gateway base URL standing for ``upstream_base_url`` in this session."""
        key, path = self._gateway.upstreams.register(upstream_base_url)
        return f"{self.url}/{key}{path}"


class LocalGateway:
    """The gateway of one tracker: server, upstream table, the sessions it serves."""

    def __init__(self, tracker: LLMTracker) -> None:
        self.tracker = tracker
        self.upstreams = Upstreams()
        self._by_token: OrderedDict[str, SessionInfo] = OrderedDict()
        self._token_of: dict[str, str] = {}
        self._lock = threading.Lock()
        self.app = GatewayApp(self._resolve, self.upstreams)
        self.server = GatewayServer(self.app)

    def start(self) -> LocalGateway:
        self.server.start()
        ignore_origin(self.server.url)  # its own traffic is recorded by the gateway only
        self.tracker._session_end_hooks.append(self.forget)
        return self

    def stop(self) -> None:
        if self.server.running:
            unignore_origin(self.server.url)
        self.server.stop()
        hooks = self.tracker._session_end_hooks
        if self.forget in hooks:
            hooks.remove(self.forget)

    @property
    def url(self) -> str:
        return self.server.url

    def remember(self, session: SessionInfo) -> str:
        """Serve ``session`` until it ends; its token."""
        with self._lock:
            token = self._token_of.get(session.session_id)
            if token is None:
                token = secrets.token_urlsafe(24)
                self._token_of[session.session_id] = token
                self._by_token[token] = session
                while len(self._by_token) > _KNOWN_LIMIT:
                    _, old = self._by_token.popitem(last=False)
                    self._token_of.pop(old.session_id, None)
            return token

    def forget(self, session: SessionInfo) -> None:
        """The session ended: its token stops working, and its calls still in
        flight (a stream whose caller has read the last event, the upstream's
        last bytes not yet) are recorded before the session's end returns."""
        with self._lock:
            token = self._token_of.pop(session.session_id, None)
            if token is not None:
                self._by_token.pop(token, None)
        if token is not None and not self.app.settle(session.session_id, SETTLE_S):
            log.debug(
                "agentopt gateway: session %s ended with a call still in flight after %.1f s",
                session.session_id,
                SETTLE_S,
            )

    def _resolve(self, token: str) -> tuple[Pipeline, SessionInfo | None] | None:
        t = self.tracker
        if not t.running:
            return None
        session = self._by_token.get(token)
        if session is not None and not session.active:
            return t._pipeline(), None
        return t._pipeline(), session

    def proxy(self, session: SessionInfo) -> SessionProxy:
        token = self.remember(session)
        return SessionProxy(
            url=f"{self.url}/s/{token}",
            port=self.server.port,
            session_id=session.session_id,
            token=token,
            gateway_url=self.url,
            _gateway=self,
        )


_lock = threading.Lock()


def gateway_of(tracker: LLMTracker) -> LocalGateway:
    """The tracker's gateway, started on first use."""
    gw = tracker._gateway
    if isinstance(gw, LocalGateway) and gw.server.running:
        return gw
    with _lock:
        gw = tracker._gateway
        if not (isinstance(gw, LocalGateway) and gw.server.running):
            if not tracker.running:
                raise TrackingError(
                    "the tracker is not running: start it before asking for its gateway"
                )
            gw = LocalGateway(tracker).start()
            tracker._gateway = gw
        return gw


def _session(tracker: LLMTracker, session: SessionInfo | None) -> SessionInfo | None:
    session = session or current_session()
    if session is None or session.tracker is not tracker or not session.active:
        return None
    return session


def session_env_for(
    tracker: LLMTracker,
    session: SessionInfo | None,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables a child needs so its calls reach ``tracker``'s gateway under
    ``session`` (default: the active one); ``{}`` outside a live session of this tracker."""
    s = _session(tracker, session)
    if s is None:
        return {}
    gw = gateway_of(tracker)
    return session_env(gw.url, s.session_id, gw.upstreams, base_env, token=gw.remember(s))


def proxy_for(tracker: LLMTracker, session: SessionInfo) -> SessionProxy | None:
    """``session``'s endpoint on ``tracker``'s gateway (started if needed), or
    None when the tracker is not running."""
    if not tracker.running:
        return None
    return gateway_of(tracker).proxy(session)


def stop_gateway(tracker: LLMTracker) -> None:
    """Stop the tracker's gateway, if it started one."""
    gw, tracker._gateway = tracker._gateway, None
    if isinstance(gw, LocalGateway):
        gw.stop()


class LoopbackFrontEnd:
    """The process front-end of in-process trackers (see :mod:`agentopt._frontends`)."""

    def session_env(
        self, tracker: LLMTracker, session: SessionInfo, base_env: Mapping[str, str] | None
    ) -> dict[str, str]:
        return session_env_for(tracker, session, base_env)

    def proxy(self, tracker: LLMTracker, session: SessionInfo) -> Any:
        return proxy_for(tracker, session)

    def base_url_for(self, tracker: LLMTracker, session: SessionInfo, upstream: str) -> str:
        return gateway_of(tracker).proxy(session).base_url_for(upstream)

    def stop(self, tracker: LLMTracker) -> None:
        stop_gateway(tracker)


LOOPBACK = LoopbackFrontEnd()
