"""A tracker's own loopback gateway, and the glue that sends its children there.

:func:`session_env_for`, :func:`proxy_for` and :func:`stop_gateway` are what
:class:`~agentopt.tracking.LLMTracker` calls (through
``agentopt.tracking.subprocess_front``); :func:`install_popen` /
:func:`uninstall_popen` switch the ``subprocess.Popen`` patch on while at least
one tracker runs. The gateway starts lazily, the first time a session needs
an endpoint, on ``127.0.0.1`` and an ephemeral port, and stops with the tracker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentopt.exceptions import TrackingError
from agentopt.gateway.app import GatewayApp
from agentopt.gateway.server import GatewayServer
from agentopt.gateway.upstreams import Upstreams
from agentopt.tracking.providers import ignore_origin, unignore_origin
from agentopt.tracking.session import SessionInfo, current_session
from agentopt.tracking.subprocess_env import (
    install_popen_patch,
    session_env,
    uninstall_popen_patch,
)

if TYPE_CHECKING:
    from agentopt.tracking.pipeline import Pipeline
    from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "LocalGateway",
    "SessionProxy",
    "install_popen",
    "proxy_for",
    "session_env_for",
    "stop_gateway",
    "uninstall_popen",
]

_KNOWN_LIMIT = 10_000


@dataclass(frozen=True)
class SessionProxy:
    """One session's endpoint on the loopback gateway."""

    url: str  # http://127.0.0.1:PORT/s/<session_id>
    port: int
    session_id: str
    gateway_url: str
    _gateway: LocalGateway

    def env_dict(self, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables a child needs (see :func:`~agentopt.tracking.subprocess_env.session_env`)."""
        return session_env(self.gateway_url, self.session_id, self._gateway.upstreams, base_env)

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
    """The gateway of one tracker: server, upstream table, sessions it serves."""

    def __init__(self, tracker: LLMTracker) -> None:
        self.tracker = tracker
        self.upstreams = Upstreams()
        self._known: OrderedDict[str, SessionInfo] = OrderedDict()
        self._lock = threading.Lock()
        self.app = GatewayApp(self._resolve, self.upstreams)
        self.server = GatewayServer(self.app)

    def start(self) -> LocalGateway:
        self.server.start()
        ignore_origin(self.server.url)  # its own traffic is recorded by the gateway only
        return self

    def stop(self) -> None:
        if self.server.running:
            unignore_origin(self.server.url)
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def remember(self, session: SessionInfo) -> None:
        """Serve ``session`` (also after it ends: a child may outlive it)."""
        with self._lock:
            self._known[session.session_id] = session
            self._known.move_to_end(session.session_id)
            while len(self._known) > _KNOWN_LIMIT:
                self._known.popitem(last=False)

    def _resolve(self, session_id: str) -> tuple[Pipeline, SessionInfo | None] | None:
        t = self.tracker
        if not t.running:
            return None
        session = t._live.get(session_id) or self._known.get(session_id)
        return t._pipeline(), session

    def proxy(self, session: SessionInfo) -> SessionProxy:
        self.remember(session)
        return SessionProxy(
            url=f"{self.url}/s/{session.session_id}",
            port=self.server.port,
            session_id=session.session_id,
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
    if session is None or session.tracker is not tracker:
        return None
    return session


def session_env_for(
    tracker: LLMTracker,
    session: SessionInfo | None,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables a child needs so its calls reach ``tracker``'s gateway under
    ``session`` (default: the active session); ``{}`` outside a session of this tracker."""
    s = _session(tracker, session)
    if s is None:
        return {}
    gw = gateway_of(tracker)
    gw.remember(s)
    return session_env(gw.url, s.session_id, gw.upstreams, base_env)


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


# -- the Popen patch, on while at least one tracker runs ------------------------

_popen_lock = threading.Lock()
_popen_users: list[LLMTracker] = []


def _env_for_child(base_env: Mapping[str, str]) -> dict[str, str] | None:
    s = current_session()
    if s is None or not s.active:
        return None
    t = s.tracker
    if t is None or not t.running or t not in _popen_users:
        return None
    return session_env_for(t, s, base_env) or None


def install_popen(tracker: LLMTracker) -> None:
    """Children started in ``tracker``'s sessions reach its gateway from now on."""
    with _popen_lock:
        if tracker not in _popen_users:
            _popen_users.append(tracker)
        install_popen_patch(_env_for_child)


def uninstall_popen(tracker: LLMTracker) -> None:
    """Undo :func:`install_popen`; the patch goes when no tracker uses it."""
    with _popen_lock:
        if tracker in _popen_users:
            _popen_users.remove(tracker)
        if not _popen_users:
            uninstall_popen_patch()
