"""Tracking sessions: who a call belongs to, carried by a ContextVar.

A session names the datapoint, model combination and agent role of the calls
made inside it. The active session lives in a :class:`contextvars.ContextVar`,
so asyncio tasks created inside a session inherit it; a thread does not,
so :func:`carry_session` wraps a callable to run in the caller's session::

    with tracker.track(data_id=7):
        pool.submit(carry_session(agent_step), question)

Nesting: an inner session inherits every id (and the router) the outer one
set and the inner one leaves unset; it gets its own ``session_id``.
"""

from __future__ import annotations

import contextvars
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = ["SessionInfo", "carry_session", "current_session"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(eq=False, slots=True)
class SessionInfo:
    """One tracking session. Ids are strings (or None); ``router`` is the router
    that routes this session's calls (its own or inherited), or None."""

    session_id: str
    data_id: str | None = None
    combo_id: str | None = None
    agent_id: str | None = None
    router: Any = None
    parent: SessionInfo | None = None
    tracker: LLMTracker | None = field(default=None, repr=False)
    active: bool = True

    @classmethod
    def open(
        cls,
        tracker: LLMTracker | None,
        parent: SessionInfo | None,
        data_id: object = None,
        combo_id: object = None,
        agent_id: object = None,
        router: Any = None,
    ) -> SessionInfo:
        """A new session; unset ids and router are inherited from ``parent``."""
        if parent is not None and parent.tracker is tracker:
            data_id = parent.data_id if data_id is None else data_id
            combo_id = parent.combo_id if combo_id is None else combo_id
            agent_id = parent.agent_id if agent_id is None else agent_id
            router = parent.router if router is None else router
        return cls(
            session_id=uuid.uuid4().hex,
            data_id=None if data_id is None else str(data_id),
            combo_id=None if combo_id is None else str(combo_id),
            agent_id=None if agent_id is None else str(agent_id),
            router=router,
            parent=parent,
            tracker=tracker,
        )

    def ids(self) -> dict[str, str | None]:
        """The ids a record of this session carries."""
        return {
            "session_id": self.session_id,
            "data_id": self.data_id,
            "combo_id": self.combo_id,
            "agent_id": self.agent_id,
        }

    @property
    def proxy(self) -> Any:
        """This session's loopback gateway endpoint, or None when none is running."""
        if self.tracker is None:
            return None
        return self.tracker._session_proxy(self)


_current: contextvars.ContextVar[SessionInfo | None] = contextvars.ContextVar(
    "agentopt_session", default=None
)


def current_session() -> SessionInfo | None:
    """The session active in this context (thread or task), or None."""
    return _current.get()


def _enter(session: SessionInfo) -> contextvars.Token[SessionInfo | None]:
    return _current.set(session)


def _exit(token: contextvars.Token[SessionInfo | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # Closed from another context (e.g. a generator finalised elsewhere):
        # the session is over either way.
        _current.set(None)


def carry_session(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so that it runs in the session active *now*, wherever it is
    called later (typically in a worker thread)::

        with tracker.track(data_id="q1"):
            threading.Thread(target=carry_session(work)).start()
    """
    session = _current.get()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _current.set(session)
        try:
            return fn(*args, **kwargs)
        finally:
            _exit(token)

    return run
