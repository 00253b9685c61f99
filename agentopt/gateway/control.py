"""The control plane, under ``/agentopt/v1`` (a Starlette app; not the hot path).

======================================  ==========================================
``POST /agentopt/v1/sessions``          open: ``{data_id, combo_id, agent_id, alias}``
                                        → ``{session_id, token, ...}``
``DELETE /agentopt/v1/sessions/{tok}``  close (the token stops working)
``GET /agentopt/v1/records``            ``?data_id=&combo_id=&agent_id=&session_id=``
``GET /agentopt/v1/records/count``      ``{"count": n}``
``DELETE /agentopt/v1/records``         forget every record
``POST /agentopt/v1/flush``             write pending records and cache entries
``POST /agentopt/v1/feedback``          ``{request_id | data_id, score[, combo_id]}``
                                        (also ``POST /v1/feedback``)
``POST /agentopt/v1/cache/flush``       write pending cache entries
``POST /agentopt/v1/cache/clear``       drop every cached response
``POST /agentopt/v1/providers``         ``{name, base_url, wire, path_patterns}``
``POST /agentopt/v1/upstreams``         ``{base_url}`` → ``{key, path}`` for ``/s/`` URLs
``GET /agentopt/v1/routers``            each alias router's statistics
``GET /agentopt/v1/usage``              usage totals (when the store computes them)
``GET /agentopt/v1/health``             also ``GET /internal/health``
======================================  ==========================================
"""

from __future__ import annotations

import asyncio
import functools
import math
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import ConfigError
from agentopt.gateway.resolve import GatewayError
from agentopt.records import CallRecord

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonApp

__all__ = ["control_app"]

_ID_KEYS = ("data_id", "combo_id", "agent_id", "session_id")


def control_app(daemon: Daemon, app: DaemonApp) -> Any:
    """The Starlette app of the control plane for ``daemon``."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    P = "/agentopt/v1"

    def fail(status: int, message: str) -> Response:
        return JSONResponse(
            {"error": {"message": message, "type": "invalid_request_error"}}, status
        )

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise GatewayError(400, "the body must be a JSON object") from None
        if not isinstance(data, dict):
            raise GatewayError(400, "the body must be a JSON object")
        return data

    def guarded(fn: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                out = await fn(request)
            except GatewayError as exc:
                return fail(exc.status, str(exc))
            except ConfigError as exc:
                return fail(400, daemon.scrub(str(exc)))
            if isinstance(out, tuple):
                return JSONResponse(out[0], out[1])
            return JSONResponse(out)

        return endpoint

    async def health(request: Request) -> Any:
        return daemon.health()

    async def open_session(request: Request) -> Any:
        data = await body_of(request)
        alias = data.get("alias")
        spec = data.get("router")
        router: Any = None
        own_router = False
        if isinstance(spec, str):  # an alias name
            alias = alias or spec
        elif isinstance(spec, dict):  # Router.config(): the session's own policy
            from agentopt.routers.registry import router_from_config

            router, own_router = router_from_config(spec), True
        elif "router" in data and spec is None:  # opt out of the daemon's default policy
            own_router = True
        elif spec is not None:
            raise GatewayError(
                400, "router: an alias name, {'policy': ..., 'kwargs': {...}}, or null"
            )
        if own_router and alias is not None:
            raise GatewayError(400, "a session takes an alias or a router of its own, not both")
        if alias is not None and alias not in daemon.aliases:
            raise GatewayError(
                400,
                f"no alias {alias!r}; configured: {', '.join(sorted(daemon.aliases)) or 'none'}",
            )
        s = daemon.sessions.open(
            data_id=data.get("data_id"),
            combo_id=data.get("combo_id"),
            agent_id=data.get("agent_id"),
            alias=alias,
            session_id=data.get("session_id"),
            anonymous=bool(data.get("anonymous")),
            router=router,
            own_router=own_router,
        )
        if own_router:
            s.extra["router"] = spec
        return s.public(), 201

    async def close_session(request: Request) -> Any:
        s = daemon.sessions.close(request.path_params["token"])
        if s is None:
            raise GatewayError(404, "no such open session")
        return {"closed": s.session_id}

    async def records(request: Request) -> Any:
        filters = {k: request.query_params.get(k) for k in _ID_KEYS}
        await daemon.settle({k: v for k, v in filters.items() if v is not None})
        recs = daemon.store.query(**{k: v for k, v in filters.items() if v is not None})
        return {"records": [r.model_dump(mode="json") for r in recs]}

    async def append_records(request: Request) -> Any:
        data = await body_of(request)
        rows = data.get("records")
        if not isinstance(rows, list):
            raise GatewayError(400, "records: 'records' must be a list of call records")
        try:
            recs = [CallRecord.model_validate(r) for r in rows]
        except ValueError as exc:
            raise GatewayError(400, f"records: not a call record: {exc}") from None
        for r in recs:
            daemon.store.append(r)
        return {"appended": len(recs)}, 201

    async def count(request: Request) -> Any:
        return {"count": len(daemon.store)}

    async def clear_records(request: Request) -> Any:
        daemon.store.clear()
        return {"cleared": True}

    async def flush(request: Request) -> Any:
        daemon.store.flush()
        if daemon.cache is not None:
            daemon.cache.flush()
        return {"flushed": True}

    async def feedback(request: Request) -> Any:
        data = await body_of(request)
        score = data.get("score")
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            raise GatewayError(400, f"feedback: 'score' must be a number in [0, 1], got {score!r}")
        if not 0.0 <= float(score) <= 1.0:
            raise GatewayError(400, f"feedback: 'score' must be in [0, 1], got {score!r}")
        rid, did = data.get("request_id"), data.get("data_id")
        combo = data.get("combo_id")
        # in a thread: with a shared database, feedback reads and writes it
        return await asyncio.to_thread(
            functools.partial(
                daemon.feedback,
                float(score),
                request_id=None if rid is None else str(rid),
                data_id=None if did is None else str(did),
                combo_id=None if combo is None else str(combo),
            )
        )

    async def cache_flush(request: Request) -> Any:
        if daemon.cache is not None:
            daemon.cache.flush()
        return {"cache": daemon.cache is not None}

    async def cache_clear(request: Request) -> Any:
        if daemon.cache is not None:
            daemon.cache.clear()
        return {"cache": daemon.cache is not None}

    async def providers(request: Request) -> Any:
        data = await body_of(request)
        name, base = data.get("name"), data.get("base_url")
        if not isinstance(name, str) or not isinstance(base, str):
            raise GatewayError(400, "providers: 'name' and 'base_url' (strings) are required")
        wire = data.get("wire", "openai")
        patterns = data.get("path_patterns") or None
        spec = daemon.register_provider(name, base, wire, patterns)
        daemon.upstreams.register(base)
        return {"name": spec.name, "wire": spec.wire, "base_url": spec.base_url}, 201

    async def upstreams(request: Request) -> Any:
        data = await body_of(request)
        base = data.get("base_url")
        if not isinstance(base, str):
            raise GatewayError(400, "upstreams: 'base_url' (a string) is required")
        key, path = daemon.upstreams.register(base)
        return {"key": key, "path": path}, 201

    async def routers(request: Request) -> Any:
        return {name: a.router.stats() for name, a in daemon.aliases.items()}

    async def usage(request: Request) -> Any:
        from agentopt.tracking.analytics.usage import usage_stats

        params = dict(request.query_params)
        group_by = params.pop("group_by", None)
        try:
            stats = usage_stats(
                daemon.store,
                group_by=group_by.split(",") if group_by else None,
                **params,
            )
        except TypeError as exc:
            raise GatewayError(400, f"usage: {exc}") from None
        return stats.as_dict()

    routes = [
        Route("/internal/health", guarded(health), methods=["GET"]),
        Route(f"{P}/health", guarded(health), methods=["GET"]),
        Route(f"{P}/sessions", guarded(open_session), methods=["POST"]),
        Route(f"{P}/sessions/{{token}}", guarded(close_session), methods=["DELETE"]),
        Route(f"{P}/records", guarded(records), methods=["GET"]),
        Route(f"{P}/records", guarded(clear_records), methods=["DELETE"]),
        Route(f"{P}/records", guarded(append_records), methods=["POST"]),
        Route(f"{P}/records/count", guarded(count), methods=["GET"]),
        Route(f"{P}/flush", guarded(flush), methods=["POST"]),
        Route(f"{P}/feedback", guarded(feedback), methods=["POST"]),
        Route("/v1/feedback", guarded(feedback), methods=["POST"]),
        Route(f"{P}/cache/flush", guarded(cache_flush), methods=["POST"]),
        Route(f"{P}/cache/clear", guarded(cache_clear), methods=["POST"]),
        Route(f"{P}/providers", guarded(providers), methods=["POST"]),
        Route(f"{P}/upstreams", guarded(upstreams), methods=["POST"]),
        Route(f"{P}/routers", guarded(routers), methods=["GET"]),
        Route(f"{P}/usage", guarded(usage), methods=["GET"]),
    ]
    return Starlette(routes=routes)
