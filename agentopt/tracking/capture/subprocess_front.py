"""The subprocess front-end: child processes of a session reach a pipeline.

While at least one tracker runs, a ``subprocess.Popen`` patch (in
:mod:`agentopt.tracking.capture.subprocess_env`) gives children started inside a
session base-URL variables pointing at an endpoint for that session. Which
endpoint is the business of a *process front-end* (see :mod:`agentopt._frontends`):
the backend's own when it has one (the remote backend points at the daemon),
else the loopback gateway. This module is the tracker's door to them; it
imports nothing from ``agentopt.gateway``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentopt._frontends import ProcessFrontEnd, process_front_end
from agentopt.exceptions import TrackingError
from agentopt.tracking.capture.subprocess_env import install_popen_patch, uninstall_popen_patch
from agentopt.tracking.session import SessionInfo, current_session

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "base_url_for",
    "install",
    "proxy_for",
    "session_env_for",
    "stop_gateway",
    "uninstall",
]

_lock = threading.Lock()
_users: list[LLMTracker] = []


def _front(tracker: LLMTracker) -> ProcessFrontEnd:
    own = getattr(tracker._backend, "process_front_end", None)
    return own if own is not None else process_front_end("loopback")


def _env_for_child(base_env: Mapping[str, str]) -> dict[str, str] | None:
    s = current_session()
    if s is None or not s.active:
        return None
    t = s.tracker
    if t is None or not t.running or t not in _users:
        return None
    return session_env_for(t, s, base_env) or None


def install(tracker: LLMTracker) -> None:
    """Children started in ``tracker``'s sessions reach its front-end from now on."""
    with _lock:
        if tracker not in _users:
            _users.append(tracker)
        install_popen_patch(_env_for_child)


def uninstall(tracker: LLMTracker) -> None:
    """Undo :func:`install` (the patch goes with the last tracker) and stop the
    tracker's front-end endpoint if it started one."""
    with _lock:
        if tracker in _users:
            _users.remove(tracker)
        if not _users:
            uninstall_popen_patch()
    stop_gateway(tracker)


def session_env_for(
    tracker: LLMTracker,
    session: SessionInfo | None,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables a child needs for ``session`` (default: the active one);
    ``{}`` outside a live session of this tracker."""
    if not tracker.running:
        raise TrackingError("the tracker is not running: start it before asking for a child's env")
    s = session or current_session()
    if s is None or s.tracker is not tracker or not s.active:
        return {}
    return _front(tracker).session_env(tracker, s, base_env)


def proxy_for(tracker: LLMTracker, session: SessionInfo) -> Any:
    """The endpoint of ``session`` (``url``, ``port``, ``env_dict()``), or None
    when the tracker is not running."""
    if not tracker.running:
        return None
    return _front(tracker).proxy(tracker, session)


def base_url_for(tracker: LLMTracker, session: SessionInfo, upstream: str) -> str | None:
    """The base URL standing for ``upstream`` in ``session`` on the tracker's
    front-end (its gateway started if needed), or None when the tracker is not
    running or its front-end cannot say."""
    if not tracker.running:
        return None
    fn = getattr(_front(tracker), "base_url_for", None)
    return None if fn is None else str(fn(tracker, session, upstream))


def stop_gateway(tracker: LLMTracker) -> None:
    """Stop the tracker's front-end endpoint, if it started one."""
    _front(tracker).stop(tracker)
