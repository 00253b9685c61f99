"""The route stage: ask the session's router which model answers a call.

Builds the :class:`~agentopt.routers.context.RouteContext` of the contract,
remembers which router routed each datapoint (so that ``tracker.feedback``
reaches it) and counts calls per datapoint (``call_index``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from agentopt.exceptions import RoutingError
from agentopt.routers.context import RouteContext
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.storage.store import RecordStore

__all__ = ["NO_ROUTING", "RouteState"]

log = logging.getLogger("agentopt.tracking")


class _NoRouting:
    """A session router that keeps every call's model: a selection's sessions use
    it, so the combination under evaluation is what runs even when the tracker
    has a router (which still receives the evaluations' feedback)."""

    def route(self, ctx: Any) -> None:
        return None

    def __repr__(self) -> str:
        return "NO_ROUTING"


#: Pass as ``tracker.track(..., router=NO_ROUTING)``: no routing in that session.
NO_ROUTING = _NoRouting()


class RouteState:
    """Per-tracker routing bookkeeping, thread-safe."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._routers: dict[str, list[Any]] = {}

    def route(
        self,
        session: SessionInfo | None,
        requested_model: str | None,
        body: Mapping[str, Any] | None,
        provider: str | None,
    ) -> str | None:
        """The model the session's router picks, or None to keep the caller's.

        Routing errors (:class:`~agentopt.exceptions.RoutingError`, e.g. a budget
        exhausted) reach the caller; any other router failure is logged and the
        caller's model is kept."""
        if session is None:
            return None
        router = session.router
        data_id = session.data_id
        key = data_id if data_id is not None else f"session:{session.session_id}"
        with self._lock:
            # Every call of a datapoint counts, routed or not, so call_index is its position.
            index = self._counts.get(key, 0)
            self._counts[key] = index + 1
            if router is None or router is NO_ROUTING:
                return None
            routers = self._routers.setdefault(key, [])
            if not any(r is router for r in routers):
                routers.append(router)
        ctx = RouteContext.for_call(
            requested_model,
            body if isinstance(body, Mapping) else None,
            provider=provider,
            data_id=data_id,
            combo_id=session.combo_id,
            agent_id=session.agent_id,
            session_id=session.session_id,
            call_index=index,
            history=tuple(self._store.query(session_id=session.session_id)),
        )
        try:
            choice = router.route(ctx)
        except RoutingError:
            raise
        except Exception:
            log.exception("agentopt: router %r failed; keeping %r", router, requested_model)
            return None
        if choice is not None and not isinstance(choice, str):
            log.error("agentopt: router %r returned %r, not a model name; ignored", router, choice)
            return None
        return choice or None

    def routers_for(self, data_id: str) -> list[Any]:
        """The routers that routed calls of ``data_id``, in first-use order."""
        with self._lock:
            return list(self._routers.get(data_id, ()))

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._routers.clear()
