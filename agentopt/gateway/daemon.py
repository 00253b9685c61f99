"""The ``agentopt serve`` engine: one pipeline, its store, cache, aliases and sessions.

:class:`Daemon` assembles the parts every front-end shares (the
:class:`~agentopt.tracking.pipeline.Pipeline`, the recorder, the record store,
the cache) with what only the daemon has: configured providers, aliases with
their routers (state saved and restored across restarts), control-plane
sessions and the engine's keys. :class:`~agentopt.gateway.server.DaemonApp`
serves it over HTTP; :func:`~agentopt.gateway.cli.cli_main` runs it.

    daemon = Daemon(GatewayConfig(), store="records.sqlite",
                    openai_base_url="http://127.0.0.1:9000/v1")
    with DaemonServer(daemon) as server:
        print(server.url)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import ConfigError, RoutingError
from agentopt.gateway.config import GatewayConfig
from agentopt.gateway.keys import KeyRing, scrub_secrets
from agentopt.gateway.resolve import Alias, GatewayError, Target, resolve_name
from agentopt.gateway.sessions import CallSession, DaemonSession, SessionTable
from agentopt.gateway.upstreams import Upstreams
from agentopt.pricing import PriceBook
from agentopt.records import CallRecord
from agentopt.routers.context import Feedback, RouteContext
from agentopt.tracking.analytics import summary
from agentopt.tracking.pipeline import Pipeline
from agentopt.tracking.providers import OFFICIAL_BASE_URLS, ProviderRegistry, default_registry
from agentopt.tracking.recorder import Recorder
from agentopt.tracking.routing import RouteState
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.storage.store import RecordStore, get_store
from agentopt.tracking.wire.translate import Translator

if TYPE_CHECKING:
    from agentopt.gateway.replicas import SharedRouters
    from agentopt.tracking.analytics.token_estimate import TokenEstimator
    from agentopt.tracking.storage.cache import Cache

__all__ = ["Daemon", "PinnedRoutes"]

log = logging.getLogger("agentopt.gateway")

# Paths each wire's endpoints live under, relative to a provider's base URL.
_OPENAI_PATTERNS = (r"/chat/completions/?$", r"/responses/?$", r"/embeddings/?$")
_ANTHROPIC_PATTERNS = (r"/v1/messages/?$",)
_ROUTED_LIMIT = 100_000  # request ids remembered for feedback


class PinnedRoutes(RouteState):
    """The daemon's route stage: the target was chosen before the pipeline
    (alias router, model name, or a remote tracker's own router) and travels
    on the call's session as ``pinned``."""

    def route(
        self,
        session: SessionInfo | None,
        requested_model: str | None,
        body: Any,
        provider: str | None,
    ) -> str | None:
        return getattr(session, "pinned", None)


class Daemon:
    """Everything ``agentopt serve`` runs; see the module docstring."""

    def __init__(
        self,
        config: GatewayConfig | None = None,
        *,
        store: str | Path | RecordStore | None = None,
        cache_dir: str | Path | None = None,
        api_key: str | None = None,
        openai_base_url: str | None = None,
        anthropic_base_url: str | None = None,
        state_dir: str | Path | None = None,
        price_book: PriceBook | None = None,
        environ: dict[str, str] | None = None,
        default_router: Any = None,
    ) -> None:
        self.config = config = config or GatewayConfig()
        #: the policy of every call no alias, pinned route or session router routes
        #: (``agentopt serve --routing-policy``)
        self.default_router = default_router
        self.api_key = api_key or None
        self.keys = KeyRing(config, environ=environ, daemon_key=self.api_key)
        self.registry = self._registry(openai_base_url, anthropic_base_url)
        self.store = get_store(store, retention_days=config.retention_days)
        self.estimator: TokenEstimator | None = None
        if config.telemetry.estimate_tokens:
            from agentopt.tracking.analytics.token_estimate import TokenEstimator as Estimator

            self.estimator = Estimator(self.store)
            self.estimator.start()  # imports litellm now, in its thread, not at the first call
        self.recorder = Recorder(
            self.store, redact=config.redact, price_book=price_book, estimator=self.estimator
        )
        self.routes = PinnedRoutes(self.store)
        self.cache: Cache | None = None
        if cache_dir is not None and _is_postgres_url(str(cache_dir)):
            from agentopt.tracking.storage.pg_cache import PostgresResponseCache

            self.cache = PostgresResponseCache(str(cache_dir))
        elif cache_dir is not None:
            from agentopt.tracking.storage.cache import ResponseCache

            self.cache = ResponseCache(Path(cache_dir))
        self.pipeline = Pipeline(
            self.registry,
            self.recorder,
            self.routes,
            self.cache,
            translator=Translator(api_key_for=self.keys.engine_key),
        )
        self.shared: SharedRouters | None = None
        shared = _is_shared(self.store)
        self.state_dir = None if shared else self._state_dir(state_dir or config.state_dir, store)
        if shared and (state_dir or config.state_dir):
            log.warning(
                "agentopt gateway: state_dir is not used with a PostgreSQL store:"
                " routers learn from the feedback log in the database"
            )
        self.aliases = {
            name: Alias(name, a, self.registry, self._alias_path(name))
            for name, a in config.aliases.items()
        }
        if shared:
            from agentopt.gateway.replicas import SharedRouters

            self.shared = SharedRouters(
                self.store,  # type: ignore[arg-type]
                self.aliases,
                interval=config.router_sync_seconds,
                origin=f"{socket.gethostname()}:{os.getpid()}",
            )
            if self.aliases:
                self.shared.sync()  # start with everything learned so far
                self.shared.start()
        self.sessions = SessionTable()
        self.upstreams = Upstreams()
        self.started_at = time.time()
        # the record of each non-streamed call the data plane waits for, by call id
        self._waiting: dict[str, CallRecord | None] = {}
        # request id → (alias, target choice, data_id): what feedback credits
        self._routed: OrderedDict[str, tuple[str, str, str | None]] = OrderedDict()
        self._routed_by_data: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.records_at_close: int | None = None
        self.recorder.add_listener(self._on_record)
        # resilience: one breaker per provider, fed by real calls and probes
        from agentopt.resilience import HealthRegistry
        from agentopt.resilience.health import ProbeConfig

        res = config.resilience
        self.health_registry = HealthRegistry(
            failure_threshold=res.breaker.failure_threshold, cooldown=res.breaker.cooldown
        )
        for name, hc in res.health_checks.items():
            spec = self.registry.by_name(name)
            if spec is None:
                raise ConfigError(
                    f"resilience.health_checks.{name}: no provider named {name!r}"
                    f" (providers: {', '.join(sorted(self.registry.names()))})"
                )
            self.health_registry.configure_probe(
                name,
                ProbeConfig(
                    url=spec.base_url.rstrip("/") + "/" + hc.path.lstrip("/"),
                    interval=hc.interval,
                    failure_threshold=hc.failure_threshold,
                    timeout=hc.timeout,
                ),
            )
        self._excluded_by_breaker: dict[str, set[str]] = {}
        # (alias, provider) → its retry policy (stateless but for its jitter)
        self._policies: dict[tuple[str | None, str], Any] = {}
        self.metrics: Any = None
        self.capture_writer: Any = None
        self.on_close: list[Any] = []

    # -- assembly ---------------------------------------------------------------

    def _registry(self, openai_url: str | None, anthropic_url: str | None) -> ProviderRegistry:
        reg = default_registry()
        reg.register(
            "anthropic",
            anthropic_url or OFFICIAL_BASE_URLS["anthropic"],
            _ANTHROPIC_PATTERNS,
            wire="anthropic",
        )
        reg.register(
            "openai", openai_url or OFFICIAL_BASE_URLS["openai"], _OPENAI_PATTERNS, wire="openai"
        )
        for name, p in self.config.providers.items():
            self.register_provider(name, p.base_url, p.wire, registry=reg)
        return reg

    def register_provider(
        self,
        name: str,
        base_url: str,
        wire: str,
        patterns: tuple[str, ...] | list[str] | None = None,
        *,
        registry: ProviderRegistry | None = None,
    ) -> Any:
        """Add (or replace) a provider the daemon may forward to."""
        reg = registry or self.registry
        if registry is None:
            self._policies.clear()  # a provider's retries may differ from the one it replaces
        if patterns is None:
            patterns = _OPENAI_PATTERNS if wire == "openai" else _ANTHROPIC_PATTERNS
        return reg.register(name, base_url, tuple(patterns), wire=wire)  # type: ignore[arg-type]

    @staticmethod
    def _state_dir(
        state_dir: str | Path | None, store: str | Path | RecordStore | None
    ) -> Path | None:
        if state_dir is not None:
            return Path(state_dir)
        if (
            isinstance(store, str | Path)
            and str(store) not in ("", ":memory:", "memory")
            and ("://" not in str(store) or str(store).startswith("sqlite:///"))
        ):
            text = str(store).removeprefix("sqlite:///")
            return Path(text + ".state")
        return None

    def _alias_path(self, name: str) -> Path | None:
        if self.state_dir is None:
            return None
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.state_dir / "routers" / f"{safe}.json"

    # -- resolving a call ---------------------------------------------------------

    def targets(
        self, model: str, wire: str, body: Any, ids: dict[str, str | None], alias: str | None
    ) -> tuple[Alias | None, list[Target]]:
        """The alias (if any) and the targets to try for ``model`` in ``wire`` format.
        ``alias`` is the session's alias, which routes every call of the session."""
        a = self.aliases.get(alias or model)
        if a is None and alias:
            raise GatewayError(400, f"session alias {alias!r} is not configured")
        if a is not None:
            self._sync_breakers(a)
            targets = a.choose(body, ids)
            # targets whose breaker is open go last (tried only if nothing else answers)
            return a, sorted(targets, key=lambda t: not self.available(t))
        return None, [resolve_name(model, wire, self.registry)]

    def policy_choice(
        self,
        session: DaemonSession | None,
        ids: dict[str, str | None],
        requested: str,
        body: Any,
        provider: str | None,
    ) -> str | None:
        """The model a policy router picks for a call no alias or pinned route
        decided: the session's own router (``POST /sessions`` with ``router``),
        else the daemon's default; None keeps the caller's model. A router that
        fails is logged and the call goes out unrouted; a routing error (a
        budget spent) is the caller's 429."""
        if session is not None and session.own_router:
            router = session.router
        else:
            router = self.default_router
        if router is None:
            return None
        sid = ids.get("session_id")
        history = tuple(self.store.query(session_id=sid)) if sid else ()
        ctx = RouteContext.for_call(
            requested,
            body if isinstance(body, dict) else None,
            provider=provider,
            data_id=ids.get("data_id"),
            combo_id=ids.get("combo_id"),
            agent_id=ids.get("agent_id"),
            session_id=sid,
            call_index=len(history),
            history=history,
        )
        try:
            choice = router.route(ctx)
        except RoutingError as exc:
            raise GatewayError(429, str(exc), kind="rate_limit_error") from exc
        except Exception:
            log.exception("agentopt gateway: router %r failed; keeping %r", router, requested)
            return None
        if choice is not None and not isinstance(choice, str):
            log.error("agentopt gateway: router %r returned %r, not a model name", router, choice)
            return None
        return choice or None

    # -- resilience ---------------------------------------------------------------

    def backend(self, target: Target) -> str:
        """The name a target's health is kept under: its provider."""
        return target.spec.name

    def available(self, target: Target) -> bool:
        return self.health_registry.available(self.backend(target))

    def _sync_breakers(self, alias: Alias) -> None:
        """Routers never pick a target whose breaker is open: exclude those models
        from the alias's router while open (all of them open: exclude none)."""
        down = {c for c, t in alias.targets.items() if not self.available(t)}
        if len(down) == len(alias.targets):
            down = set()
        before = self._excluded_by_breaker.get(alias.name, set())
        router = alias.router
        if down != before and hasattr(router, "exclude_models"):
            if before - down:
                router.include_models(*(before - down))
            if down - before:
                router.exclude_models(*(down - before))
            self._excluded_by_breaker[alias.name] = down

    def retry_policy(self, alias: Alias | None, target: Target) -> Any:
        """The retry policy of a call to ``target`` (alias's, else provider's, else global)."""
        key = (alias.name if alias is not None else None, target.spec.name)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = self._retry_policy(alias, target)
        return policy

    def _retry_policy(self, alias: Alias | None, target: Target) -> Any:
        cfg = None
        if alias is not None:
            cfg = self.config.aliases[alias.name].retries
        if cfg is None:
            provider = self.config.providers.get(target.spec.name)
            cfg = provider.retries if provider is not None else None
        return (cfg or self.config.resilience.retries).policy()

    def state_dir_or_cwd(self) -> Path:
        return self.state_dir if self.state_dir is not None else Path.cwd()

    def call_session(
        self,
        base: DaemonSession | None,
        ids: dict[str, str | None],
        call_id: str,
        alias: Alias | None,
        pinned: str | None,
        *,
        request_id: str | None = None,
        attempt: int | None = None,
    ) -> CallSession | None:
        """The session a call's record carries (None: a first attempt with no ids,
        not routed). Retries carry the caller's ``request_id`` and their number."""
        if base is not None:
            merged = base.ids()
            for k, v in ids.items():
                if v is not None:
                    merged[k] = v
        else:
            merged = ids
        if alias is None and pinned is None and not any(merged.values()) and request_id is None:
            return None
        return CallSession(
            session_id=merged.get("session_id") or request_id or call_id,
            data_id=merged.get("data_id"),
            combo_id=merged.get("combo_id"),
            agent_id=merged.get("agent_id"),
            router=alias.router if alias is not None else None,
            pinned=pinned,
            alias=alias.name if alias is not None else None,
            request_id=request_id,
            attempt=attempt,
        )

    def remember_route(self, call_id: str, alias: Alias, choice: str, data_id: str | None) -> None:
        with self._lock:
            self._routed[call_id] = (alias.name, choice, data_id)
            while len(self._routed) > _ROUTED_LIMIT:
                self._routed.popitem(last=False)
            if data_id is not None:
                self._routed_by_data.setdefault(data_id, set()).add(alias.name)
                if len(self._routed_by_data) > _ROUTED_LIMIT:
                    self._routed_by_data.pop(next(iter(self._routed_by_data)))

    # -- records the data plane waits for ------------------------------------------

    def wait_for(self, call_id: str) -> None:
        self._waiting[call_id] = None

    def take_record(self, call_id: str) -> CallRecord | None:
        return self._waiting.pop(call_id, None)

    def _on_record(self, rec: CallRecord) -> None:
        if rec.call_id in self._waiting:
            self._waiting[rec.call_id] = rec

    def _busy(self, filters: dict[str, str]) -> bool:
        """Whether a call matching ``filters`` (every call when empty) is still open."""
        for state in list(self.pipeline._open.values()):
            if not filters:
                return True
            s = state.exchange.session
            if s is not None and all(getattr(s, k, None) == v for k, v in filters.items()):
                return True
        return False

    async def settle(self, filters: dict[str, str], timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` s) until no call matching ``filters`` is still
        being recorded: a stream's record is made when the upstream body ends,
        which may be just after the caller read its last event."""
        deadline = time.monotonic() + timeout
        while self._busy(filters) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def records(self, timeout: float = 10.0, **filters: str) -> list[CallRecord]:
        """The records matching ``filters`` (``data_id=``, ``session_id=``…), once
        the calls they name are recorded (from any thread but the server's)."""
        deadline = time.monotonic() + timeout
        while self._busy(filters) and time.monotonic() < deadline:
            time.sleep(0.002)
        return self.store.query(**filters)

    async def commit_records(self) -> None:
        """Write the records buffered so far before answering (``commit_before_answer``);
        never fails a call: while the store fails, the records wait in memory."""
        flush = getattr(self.store, "flush_if_healthy", None)
        if flush is not None:
            await asyncio.to_thread(flush)

    # -- feedback -------------------------------------------------------------------

    def feedback(
        self,
        score: float,
        *,
        request_id: str | None = None,
        data_id: str | None = None,
        combo_id: str | None = None,
    ) -> dict[str, Any]:
        """Credit ``score`` to the router(s) that routed a request or a datapoint
        (with a shared database, on every replica: see :mod:`agentopt.gateway.replicas`)."""
        if self.shared is not None:
            return self._shared_feedback(score, request_id, data_id, combo_id)
        if request_id is not None:
            found = self._routed.get(request_id)
            if found is None:
                raise GatewayError(
                    404, f"feedback: no routed request {request_id!r} (only alias calls are)"
                )
            alias_name, choice, _data = found
            alias = self.aliases[alias_name]
            fb = Feedback(reward=score, models=(choice,), data_id=None)
            alias.router.update(fb)
            return {"credited": [alias_name], "models": [choice]}
        if data_id is None:
            raise GatewayError(400, "feedback: give request_id or data_id")
        with self._lock:  # feedback runs in a worker thread; routing adds to these sets
            names = sorted(self._routed_by_data.get(data_id, ()))
        if not names:
            raise GatewayError(404, f"feedback: no alias call was made for data_id {data_id!r}")
        recs = self.store.query(data_id=data_id, combo_id=combo_id)
        for name in names:
            self.aliases[name].router.update(_data_feedback(score, name, data_id, recs)[0])
        with self._lock:
            self._routed_by_data.pop(data_id, None)
        return {"credited": names}

    def _shared_feedback(
        self, score: float, request_id: str | None, data_id: str | None, combo_id: str | None
    ) -> dict[str, Any]:
        """Feedback resolved here into one credit per call, appended to the database's
        log (a call already credited is not credited again), folded by every replica."""
        from agentopt.exceptions import StoreError
        from agentopt.gateway.replicas import call_credit_key
        from agentopt.tracking.storage.pg_pool import db_errors

        db_failed = db_errors()
        failed_or_down: tuple[type[BaseException], ...] = (*db_failed, StoreError)

        assert self.shared is not None
        health = self.store.health()  # type: ignore[attr-defined]
        if health.last_error is not None:  # known down: say so at once
            raise GatewayError(
                503,
                f"feedback not recorded: the database {self.store!r} is unreachable"
                f" ({health.last_error}); nothing was credited, send it again",
                kind="api_error",
            )
        credits: list[tuple[str, str, Feedback]] = []  # (alias, credit key, feedback)
        try:
            if request_id is not None:
                alias_name, choice = self._routed_request(request_id)
                fb = Feedback(reward=score, models=(choice,))
                credits.append((alias_name, call_credit_key(request_id), fb))
            elif data_id is None:
                raise GatewayError(400, "feedback: give request_id or data_id")
            else:
                recs = self.store.query(data_id=data_id, combo_id=combo_id)
                for name in sorted({r.alias for r in recs if r.alias in self.aliases}):
                    own = [r for r in recs if r.alias == name]
                    # attempts that failed (a retry, a fallback) are not what was scored
                    for r in [r for r in own if r.ok] or own:
                        fb = Feedback(
                            reward=score,
                            models=(r.model or r.requested_model or "?",),
                            cost_usd=r.cost_usd,
                            latency_seconds=r.latency_seconds,
                            data_id=data_id,
                        )
                        credits.append((name, call_credit_key(r.request_id or r.call_id), fb))
                if not credits:
                    raise GatewayError(
                        404,
                        f"feedback: no alias call is recorded for data_id {data_id!r} (each"
                        " replica writes its records within its store's flush_interval)",
                    )
            added = self.shared.publish(credits)
        except failed_or_down as exc:
            raise GatewayError(
                503,
                f"feedback not recorded: the database {self.store!r} is unreachable ({exc});"
                " nothing was credited, send it again",
                kind="api_error",
            ) from None
        try:
            self.shared.sync()  # this replica's routers include it before it answers
        except db_failed as exc:  # recorded: the sync thread folds it later
            log.warning("agentopt gateway: feedback recorded, not folded yet: %s", exc)
        names = sorted({name for name, _, _ in credits})
        new = {name for (name, _, _), fresh in zip(credits, added, strict=True) if fresh}
        out: dict[str, Any] = {
            "credited": [n for n in names if n in new],
            "already_credited": [n for n in names if n not in new],
            "calls_credited": sum(added),
        }
        if request_id is not None:
            out["models"] = list(credits[0][2].models)
        return out

    def _routed_request(self, request_id: str) -> tuple[str, str]:
        """(alias, target) of a request routed by this replica or, from its
        records in the database, by another."""
        found = self._routed.get(request_id)
        if found is not None:
            return found[0], found[1]
        rows = self.store.sql(  # type: ignore[attr-defined]
            "SELECT records.json FROM records JOIN calls USING (seq)"
            " WHERE calls.request_id = %s",  # every attempt's record carries it (indexed)
            (request_id,),
        )
        recs = [CallRecord.model_validate_json(r[0]) for r in rows]
        recs = [r for r in recs if r.alias in self.aliases]
        if not recs:
            raise GatewayError(
                404, f"feedback: no routed request {request_id!r} (only alias calls are)"
            )
        # the attempt that answered: the last one that did not fail
        last = max(recs, key=lambda r: (r.ok, r.attempt or 0))
        alias = self.aliases[last.alias or ""]
        choice = alias.router.arms.match_model(last.model, last.provider)
        if choice is None:
            raise GatewayError(
                404, f"feedback: request {request_id!r} answered as {last.model!r}, not a target"
            )
        return alias.name, choice

    def sync_routers(self) -> int:
        """Append this replica's quota and budget usage, and fold the feedback and
        usage of the other replicas into this one's routers now (also done every
        ``router_sync_seconds``); returns how many feedback rows were folded."""
        return 0 if self.shared is None else self.shared.sync()

    def scrub(self, text: str) -> str:
        """``text`` without any key the engine holds (for messages and logs)."""
        return scrub_secrets(text, self.keys.secrets())

    # -- state and lifecycle ---------------------------------------------------------

    def save_state(self) -> None:
        """Save every alias router's state (when a state directory is set)."""
        for a in self.aliases.values():
            try:
                a.save()
            except OSError as exc:
                log.error("agentopt gateway: cannot save router state of %r: %s", a.name, exc)

    def health(self) -> dict[str, Any]:
        """Liveness and the record store's write health (``degraded`` while it
        fails: calls are still served, records wait in a bounded buffer)."""
        store_health = getattr(self.store, "health", None)
        store = store_health().as_dict() if store_health is not None else {"ok": True}
        return {
            "status": "ok" if store.get("ok", True) else "degraded",
            "store_health": store,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "providers": sorted(self.registry.names()),
            "aliases": sorted(self.aliases),
            "sessions": len(self.sessions),
            "in_flight": len(self.pipeline._open),
            "store": repr(self.store),
            "shared_routers": None if self.shared is None else self.shared.status(),
            "backends": self.health_registry.snapshot(),
            "capture": None
            if self.capture_writer is None
            else {
                "dir": str(self.capture_writer.dir),
                "written": self.capture_writer.written,
                "dropped": self.capture_writer.dropped,
            },
        }

    def close(self) -> None:
        """Record calls still open, save router state, flush and close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.pipeline.finish_open()
        if self.shared is not None:
            self.shared.close()
        self.save_state()
        for fn in self.on_close:
            try:
                fn()
            except Exception as exc:  # a telemetry exporter must not lose records
                log.error("agentopt gateway: while closing: %s", exc)
        if self.estimator is not None:
            self.estimator.close()  # counts what is queued first
        try:
            self.store.flush()
            self.records_at_close = len(self.store)
        finally:
            self.store.close()
            if self.cache is not None:
                self.cache.close()


def _is_postgres_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def _is_shared(store: RecordStore) -> bool:
    """Whether ``store`` is a PostgreSQL store (replicas may share it)."""
    import sys

    pg = sys.modules.get("agentopt.tracking.storage.pg_store")
    return pg is not None and isinstance(store, pg.PostgresRecordStore)


def _data_feedback(
    score: float, alias: str, data_id: str, recs: list[CallRecord]
) -> tuple[Feedback, list[CallRecord]]:
    """The feedback a datapoint's records give ``alias``, and the records it credits."""
    own = [r for r in recs if r.requested_model == alias] or recs
    # attempts that failed (a retry, a fallback) are not what the caller scored
    own = [r for r in own if r.ok] or own
    fb = Feedback(
        reward=score,
        models=tuple(r.model or r.requested_model or "?" for r in own),
        cost_usd=summary.total_cost(own),
        latency_seconds=sum(r.latency_seconds for r in own),
        data_id=data_id,
    )
    return fb, own
