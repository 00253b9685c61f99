"""Sessions the daemon serves: ids for records, a router, an unguessable token.

A control-plane client (a remote tracker, a script) opens a session with its
``data_id`` / ``combo_id`` / ``agent_id`` and optionally an alias whose router
routes every call of the session, or a router of its own (``{"policy",
"kwargs"}``, rebuilt by the daemon), or ``router: null`` to opt out of the
daemon's default policy. The session's **token** (not its id) is
what a child process gets in its base URLs, so knowing a session id is not
enough to spend the engine's keys; the token expires when the session closes.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from agentopt.tracking.session import SessionInfo

__all__ = ["CallSession", "DaemonSession", "SessionTable"]


@dataclass(eq=False, slots=True)
class CallSession(SessionInfo):
    """The session of one call through the daemon: the ids its record carries,
    the router that chose its target (it sees the record's spend) and the
    target itself (``pinned``, ``provider/model``), applied by the route stage."""

    pinned: str | None = None
    #: the gateway alias the caller named (recorded as ``CallRecord.alias``)
    alias: str | None = None
    #: the caller's request this call is an attempt of, and which attempt (1-based)
    request_id: str | None = None
    attempt: int | None = None


@dataclass(slots=True)
class DaemonSession:
    """A session opened over the control plane."""

    session_id: str
    token: str
    data_id: str | None = None
    combo_id: str | None = None
    agent_id: str | None = None
    alias: str | None = None
    anonymous: bool = False  # stands for "no session": its calls carry no ids
    extra: dict[str, Any] = field(default_factory=dict)
    #: the session's own policy router (None with ``own_router``: unrouted)
    router: Any = None
    #: whether the session chose its router (else the daemon's default applies)
    own_router: bool = False

    def ids(self) -> dict[str, str | None]:
        return {
            "session_id": None if self.anonymous else self.session_id,
            "data_id": self.data_id,
            "combo_id": self.combo_id,
            "agent_id": self.agent_id,
        }

    def public(self) -> dict[str, Any]:
        out = {**self.ids(), "alias": self.alias, "token": self.token}
        if self.own_router:
            out["router"] = self.extra.get("router")  # the config it was opened with
        return out


def _str(v: object) -> str | None:
    return None if v is None else str(v)


class SessionTable:
    """Open sessions by token, thread-safe."""

    def __init__(self, limit: int = 100_000) -> None:
        self._by_token: dict[str, DaemonSession] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def open(
        self,
        *,
        data_id: object = None,
        combo_id: object = None,
        agent_id: object = None,
        alias: str | None = None,
        session_id: str | None = None,
        anonymous: bool = False,
        router: Any = None,
        own_router: bool = False,
    ) -> DaemonSession:
        s = DaemonSession(
            session_id=session_id or uuid.uuid4().hex,
            token=secrets.token_urlsafe(24),
            data_id=_str(data_id),
            combo_id=_str(combo_id),
            agent_id=_str(agent_id),
            alias=alias,
            anonymous=anonymous,
            router=router,
            own_router=own_router,
        )
        with self._lock:
            self._by_token[s.token] = s
            while len(self._by_token) > self._limit:  # oldest first: dicts keep order
                self._by_token.pop(next(iter(self._by_token)))
        return s

    def get(self, token: str) -> DaemonSession | None:
        return self._by_token.get(token)

    def close(self, token: str) -> DaemonSession | None:
        """End a session: its token stops working at once."""
        with self._lock:
            return self._by_token.pop(token, None)

    def __len__(self) -> int:
        return len(self._by_token)
