"""The subprocess front-end: child processes reach the tracker's loopback gateway.

While a session is active, ``subprocess.Popen`` children get base-URL
variables pointing at a loopback gateway endpoint for that session; the
gateway runs the same pipeline and passes the call through to the upstream
the child would otherwise have reached. The Popen patch lives in
:mod:`agentopt.tracking.subprocess_env` and the gateway in
:mod:`agentopt.gateway.local`; this module is the tracker's door to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentopt.tracking.session import SessionInfo

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = ["install", "proxy_for", "session_env_for", "stop_gateway", "uninstall"]


def install(tracker: LLMTracker) -> None:
    """Children started in ``tracker``'s sessions reach its gateway from now on."""
    from agentopt.gateway import local

    local.install_popen(tracker)


def uninstall(tracker: LLMTracker) -> None:
    """Undo :func:`install` and stop the tracker's gateway if it started one."""
    from agentopt.gateway import local

    local.uninstall_popen(tracker)
    local.stop_gateway(tracker)


def session_env_for(tracker: LLMTracker, session: SessionInfo | None) -> dict[str, str]:
    """The variables a child needs for ``session`` (default: the active one);
    ``{}`` outside a session of this tracker. Starts the gateway if needed."""
    from agentopt.gateway import local

    return local.session_env_for(tracker, session)


def proxy_for(tracker: LLMTracker, session: SessionInfo) -> Any:
    """The gateway endpoint of ``session`` (``url``, ``port``, ``env_dict()``),
    or None when the tracker is not running."""
    from agentopt.gateway import local

    return local.proxy_for(tracker, session)


def stop_gateway(tracker: LLMTracker) -> None:
    """Stop the tracker's loopback gateway, if it started one."""
    from agentopt.gateway import local

    local.stop_gateway(tracker)
