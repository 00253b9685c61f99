"""tracking: record every LLM call through one pipeline (route → cache → forward → record).

Importing this package never imports litellm.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

from agentopt.tracking.capture.httpx_capture import AsyncTrackingTransport, TrackingTransport
from agentopt.tracking.session import SessionInfo, carry_session, current_session
from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "AsyncTrackingTransport",
    "LLMTracker",
    "SessionInfo",
    "TrackingTransport",
    "carry_session",
    "current_session",
    "get_current_session_proxy",
    "track_agent",
]


def get_current_session_proxy() -> Any:
    """The loopback gateway endpoint of the active session (``url``, ``port``,
    ``env_dict()``), or None outside a session or when no gateway runs."""
    session = current_session()
    return None if session is None else session.proxy


def track_agent(agent_id: Any) -> AbstractContextManager[SessionInfo | None]:
    """Attribute the calls inside to ``agent_id`` (a node of a multi-step agent).

    Inside a session this opens a child session of the same tracker with only
    ``agent_id`` set, so records name the node and a per-node router picks this
    node's model. Outside any session it does nothing: agent code can always use it::

        with track_agent("planner"):
            plan = llm.invoke(prompt)
    """
    session = current_session()
    if session is None or session.tracker is None:
        return contextlib.nullcontext()
    return session.tracker.track_agent(agent_id)
