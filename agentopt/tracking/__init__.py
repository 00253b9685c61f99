"""tracking: record every LLM call through one pipeline (route → cache → forward → record).

Importing this package never imports litellm.
"""

from __future__ import annotations

from typing import Any

from agentopt.tracking.httpx_capture import AsyncTrackingTransport, TrackingTransport
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
]


def get_current_session_proxy() -> Any:
    """The loopback gateway endpoint of the active session (``url``, ``port``,
    ``env_dict()``), or None outside a session or when no gateway runs."""
    session = current_session()
    return None if session is None else session.proxy
