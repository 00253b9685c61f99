"""LLMTracker: record every LLM call your code makes, per datapoint, combo and agent.

::

    from agentopt import LLMTracker

    with LLMTracker(cache_dir=None) as tracker:          # capture on
        with tracker.track(data_id="q1", agent_id="planner"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        tracker.print_summary()

What is captured while a tracker runs: httpx traffic to a known LLM endpoint
(the openai and anthropic SDKs, LangChain, raw httpx), ``litellm.completion``
and ``acompletion`` (once litellm is imported), and, through the loopback
gateway, subprocesses started inside a session. A call inside a session
carries its ids and is routed by its router; a call outside any session is
recorded with no ids and not routed.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from agentopt.exceptions import ConfigError, TrackingError
from agentopt.pricing import PriceBook
from agentopt.records import CallRecord
from agentopt.routers.context import Feedback
from agentopt.tracking.analytics import summary
from agentopt.tracking.backend import Backend, InProcessBackend
from agentopt.tracking.capture import httpx_capture
from agentopt.tracking.pipeline import Pipeline
from agentopt.tracking.providers import ProviderRegistry, ProviderSpec, Wire
from agentopt.tracking.remote import GATEWAY_URL_ENV, RemoteBackend
from agentopt.tracking.session import SessionInfo, _current, _exit, carry_session
from agentopt.tracking.storage.store import RecordStore

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from agentopt.tracking.analytics.usage import UsageStats

__all__ = ["LLMTracker"]

P = ParamSpec("P")
R = TypeVar("R")
Id = str | int | None


class _Track:
    """The context manager ``tracker.track()`` returns (a class: it is on the hot path)."""

    __slots__ = ("_ids", "_router", "_session", "_token", "_tracker")

    def __init__(self, tracker: LLMTracker, ids: tuple[Id, Id, Id], router: Any) -> None:
        self._tracker = tracker
        self._ids = ids
        self._router = router
        self._session: SessionInfo | None = None
        self._token: Any = None

    def __enter__(self) -> SessionInfo:
        t = self._tracker
        if not t.running:
            t.start()
        parent = _current.get()
        router = self._router
        if router is None and (parent is None or parent.tracker is not t):
            router = t.router
        s = SessionInfo.open(t, parent, *self._ids, router=router)
        t._live[s.session_id] = s
        self._session = s
        self._token = _current.set(s)
        return s

    async def __aenter__(self) -> SessionInfo:
        return self.__enter__()

    def __exit__(self, *exc: object) -> None:
        s = self._session
        if s is not None:
            s.active = False
            self._tracker._live.pop(s.session_id, None)
            self._tracker._on_session_end(s)
        _exit(self._token)

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


class LLMTracker:
    """Capture, route, cache and record the LLM calls made while it runs.

    ``cache=True`` replays identical requests from a SQLite cache under
    ``cache_dir`` (in memory when ``cache_dir=None``); ``store`` is None (in
    memory), a path (SQLite) or a RecordStore; ``redact=True`` keeps no message
    content in records. ``router`` is the default router of every session.
    ``estimate_tokens=True`` keeps an independent (litellm tokenizer) count of
    each call's tokens beside the reported usage, counted in a background thread
    (:mod:`agentopt.tracking.analytics.token_estimate`; it imports litellm there).
    If ``AGENTOPT_GATEWAY_URL`` is set, calls go to that daemon instead.
    """

    def __init__(
        self,
        *,
        data_id: Id = None,
        combo_id: Id = None,
        agent_id: Id = None,
        router: Any = None,
        cache: bool = True,
        cache_dir: str | Path | None = ".agentopt_cache",
        store: str | Path | RecordStore | None = None,
        redact: bool = False,
        price_book: PriceBook | None = None,
        registry: ProviderRegistry | None = None,
        estimate_tokens: bool = False,
    ) -> None:
        if router is not None and not callable(getattr(router, "route", None)):
            raise ConfigError(f"LLMTracker(router=...): {router!r} has no route(ctx) method")
        self.data_id = data_id
        self.combo_id = combo_id
        self.agent_id = agent_id
        self.router = router
        self.redact = redact
        gateway = os.environ.get(GATEWAY_URL_ENV)
        self._backend: Backend
        if gateway:
            self._backend = RemoteBackend(
                gateway, redact=redact, price_book=price_book, registry=registry
            )
        else:
            self._backend = InProcessBackend(
                cache=cache,
                cache_dir=cache_dir,
                store=store,
                redact=redact,
                price_book=price_book,
                registry=registry,
                estimate_tokens=estimate_tokens,
            )
        self._live: dict[str, SessionInfo] = {}
        self._own: _Track | None = None
        self._running = False
        self._closed = False
        self._lock = threading.RLock()
        self._gateway: Any = None
        self._session_end_hooks: list[Callable[[SessionInfo], None]] = []
        end_session = getattr(self._backend, "end_session", None)
        if end_session is not None:  # a remote backend closes the daemon's session too
            self._session_end_hooks.append(end_session)

    # -- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> LLMTracker:
        """Install capture and prepare the backend (idempotent)."""
        with self._lock:
            if self._closed:
                raise TrackingError("LLMTracker.start(): this tracker is closed; make a new one")
            if self._running:
                return self
            self._backend.pipeline()
            self._running = True
            httpx_capture.install(self)
            from agentopt.tracking.capture import client_capture, litellm_capture, subprocess_front

            client_capture.install()
            litellm_capture.install(self)
            subprocess_front.install(self)
        return self

    def stop(self) -> None:
        """End live sessions, uninstall capture, flush. Records stay queryable."""
        with self._lock:
            if not self._running:
                return
            from agentopt.tracking.capture import client_capture, litellm_capture, subprocess_front

            litellm_capture.abandon_streams(self)
            for s in list(self._live.values()):
                s.active = False
            self._live.clear()
            self._backend.pipeline().finish_open()
            self._running = False
            httpx_capture.uninstall(self)
            client_capture.uninstall()
            litellm_capture.uninstall(self)
            subprocess_front.uninstall(self)
            self._backend.flush()

    def close(self) -> None:
        """Stop and release the store and cache (final, idempotent)."""
        with self._lock:
            if self._closed:
                return
            self.stop()
            self._closed = True
            self._backend.close()

    def __enter__(self) -> LLMTracker:
        self.start()
        if any(v is not None for v in (self.data_id, self.combo_id, self.agent_id)):
            self._own = _Track(self, (self.data_id, self.combo_id, self.agent_id), None)
            self._own.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._own is not None:
            own, self._own = self._own, None
            own.__exit__()
        self.stop()

    # -- sessions ----------------------------------------------------------------

    def track(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None, router: Any = None
    ) -> _Track:
        """A session: calls inside carry these ids (unset ones inherited from an
        enclosing session of this tracker) and are routed by ``router`` (else the
        enclosing session's, else the tracker's). Starts the tracker if needed."""
        return _Track(self, (data_id, combo_id, agent_id), router)

    def track_agent(self, agent_id: Id) -> _Track:
        """A session that sets only ``agent_id`` (the other ids and the router are
        inherited from the enclosing session of this tracker)."""
        return _Track(self, (None, None, agent_id), None)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """``fn`` bound to the session active now, to run in another thread."""
        return carry_session(fn)

    @property
    def sessions(self) -> list[SessionInfo]:
        """The sessions open right now."""
        return list(self._live.values())

    def _on_session_end(self, session: SessionInfo) -> None:
        for hook in self._session_end_hooks:
            hook(session)

    def _pipeline(self) -> Pipeline:
        return self._backend.pipeline()

    # -- records -------------------------------------------------------------------

    @property
    def store(self) -> RecordStore:
        return self._backend.store

    @property
    def records(self) -> list[CallRecord]:
        """Every record, in the order they were made."""
        return self._backend.store.all()

    def get_records(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None
    ) -> list[CallRecord]:
        """The records matching every id given (all records when none is)."""
        return self._backend.store.query(data_id=data_id, combo_id=combo_id, agent_id=agent_id)

    def _totals(
        self, data_id: Id, combo_id: Id, agent_id: Id, group_by: str | None = None
    ) -> UsageStats:
        # Aggregated by the store (in SQL for a SQL store): no record is loaded.
        from agentopt.tracking.analytics.usage import compute

        ids = {"data_id": data_id, "combo_id": combo_id, "agent_id": agent_id}
        return compute(self, ids, group_by, percentiles=False)

    def get_usage(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None
    ) -> dict[str, tuple[int, int]]:
        """``{model: (input_tokens, output_tokens)}``, cache hits included."""
        stats = self._totals(data_id, combo_id, agent_id, "model")
        return {g.key["model"]: (g.input_tokens, g.output_tokens) for g in stats}

    def get_cost(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None
    ) -> float | None:
        """Total USD; None when some call is unpriced (cache hits cost 0)."""
        t = self._totals(data_id, combo_id, agent_id).total
        if t.unpriced_requests:
            return None
        return t.cost_usd or 0.0

    def get_cached_latency(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None
    ) -> float:
        """Seconds the cache saved: the original latency of every cache hit."""
        return self._totals(data_id, combo_id, agent_id).total.cached_latency_seconds

    def print_summary(
        self,
        data_id: Id = None,
        combo_id: Id = None,
        agent_id: Id = None,
        *,
        by: str | None = None,
        console: Console | None = None,
    ) -> None:
        """A rich table of calls, tokens, cost and latency per model with a grand total;
        ``by="data_id"`` (or ``combo_id``, ``agent_id``) adds a table per value."""
        summary.print_summary(self.get_records(data_id, combo_id, agent_id), by=by, console=console)

    def to_dataframe(
        self, data_id: Id = None, combo_id: Id = None, agent_id: Id = None
    ) -> pd.DataFrame:
        """One row per call (bodies left out)."""
        build = getattr(self._backend.store, "to_dataframe", None)
        if build is not None:  # a SQL store builds it from its flat columns
            return build(data_id=data_id, combo_id=combo_id, agent_id=agent_id)
        return summary.to_dataframe(self.get_records(data_id, combo_id, agent_id))

    def export_jsonl(self, path: str | Path) -> int:
        """Write every record as one JSON line (streamed from a SQL store, so a
        large one is never loaded at once); returns how many were written."""
        export = getattr(self._backend.store, "export_jsonl", None)
        if export is not None:
            return int(export(path))
        return summary.export_jsonl(self.records, path)

    def clear(self) -> None:
        """Forget every record (the cache stays)."""
        self._backend.store.clear()
        self._backend.routes.clear()

    # -- cache and providers -----------------------------------------------------------

    def flush_cache(self) -> None:
        """Write pending cache entries to disk."""
        c = self._backend.cache()
        if c is not None:
            c.flush()

    def clear_cache(self) -> None:
        """Drop every cached response."""
        self._backend.clear_cache()

    def register_provider(
        self,
        name: str,
        base_url: str,
        path_patterns: Sequence[str] | str = (),
        *,
        wire: Wire = "openai",
    ) -> ProviderSpec:
        """Capture calls to ``base_url``'s host whose path matches a pattern
        (regexes; default: the wire's well-known endpoints). A router may then
        send calls to ``"<name>/<model>"``."""
        if isinstance(path_patterns, str):
            path_patterns = (path_patterns,)
        if not path_patterns:
            path_patterns = _DEFAULT_PATHS[wire]
        return self._backend.register_provider(name, base_url, tuple(path_patterns), wire)

    # -- routing feedback ------------------------------------------------------------------

    def add_record_listener(self, fn: Callable[[CallRecord], None]) -> None:
        """Call ``fn(record)`` for each call this tracker records, as it is recorded:
        ``tracker.add_record_listener(PrometheusMetrics().observe)`` or
        ``OTelExporter(endpoint=...).export`` (:mod:`agentopt.telemetry`). With
        ``AGENTOPT_GATEWAY_URL`` the daemon records the SDK calls: configure its
        ``telemetry`` instead (here only the calls recorded in this process are seen)."""
        self._backend.recorder.add_listener(fn)

    def feedback(self, *, data_id: Id, score: float, combo_id: Id = None) -> Feedback:
        """Give ``score`` as the reward of ``data_id``'s calls to the router(s)
        that routed them (the tracker's router if none did). ``combo_id``
        narrows the credited calls to one combination's run of that datapoint
        (a selection evaluates several on the same datapoint). Returns the Feedback."""
        if data_id is None:
            raise ConfigError("LLMTracker.feedback(): data_id is required")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise ConfigError(
                f"LLMTracker.feedback(data_id={data_id!r}): score must be a number in [0, 1], "
                f"got {score!r}"
            )
        key = str(data_id)
        recs = self.get_records(data_id=key, combo_id=combo_id)
        models = tuple(r.model or r.requested_model or "?" for r in recs)
        combo = None
        if recs and all(r.agent_id is not None for r in recs):
            combo = {str(r.agent_id): r.model or r.requested_model or "?" for r in recs}
        fb = Feedback(
            reward=float(score),
            models=models,
            combo=combo,
            cost_usd=summary.total_cost(recs),
            latency_seconds=sum(r.latency_seconds for r in recs),
            data_id=key,
        )
        routers = self._backend.routes.routers_for(key)
        if not routers and self.router is not None:
            routers = [self.router]
        for router in routers:
            update = getattr(router, "update", None)
            if update is not None:
                update(fb)
        return fb

    # -- subprocesses -------------------------------------------------------------------------

    def get_session_env(self, session: SessionInfo | None = None) -> dict[str, str]:
        """The environment variables a child process needs so that its LLM calls
        reach this tracker's loopback gateway under ``session`` (default: the
        active one); ``{}`` outside a session. Children started with
        ``subprocess`` inside a session get them automatically."""
        from agentopt.tracking.capture import subprocess_front

        return subprocess_front.session_env_for(self, session)

    def _session_proxy(self, session: SessionInfo) -> Any:
        from agentopt.tracking.capture import subprocess_front

        return subprocess_front.proxy_for(self, session)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._running else "stopped"
        return f"<LLMTracker {state}, {len(self._backend.store)} records>"


_DEFAULT_PATHS: dict[str, tuple[str, ...]] = {
    "openai": (r"/chat/completions/?$", r"/responses/?$"),
    "anthropic": (r"/v1/messages/?$",),
    "gemini": (r":generateContent$", r":streamGenerateContent$"),
}
