"""The daemon's usage analytics over HTTP: the same numbers as ``agentopt.usage_stats``.

``GET /v1/usage/stats``     :func:`agentopt.usage_stats` with its filters as query
                            parameters (``provider``, ``model``, ``alias``, ``combo_id``,
                            ``data_id``, ``agent_id``, ``session_id``, ``start_date``,
                            ``end_date``, ``status``) and ``group_by=model,day``
``GET /v1/usage/recent``    the ``limit`` most recent records (default 50, at most 1000),
                            newest first; ``bodies=false`` leaves request/response out
``GET /v1/usage/export``    every matching record (``start_date``/``end_date``, ids),
                            ``format=jsonl`` (whole records) or ``csv`` (the flat columns),
                            streamed in chunks: an export of a million records never sits
                            in memory
``GET /v1/usage/reconcile`` reported tokens against a tokenizer count of the stored
                            bodies, per model (:mod:`agentopt.tracking.analytics.reconcile`)
``GET /v1/routing/metrics`` per alias: calls, activation (requested ≠ selected) rate,
                            activations per target, rewards received, current estimates
``GET /metrics``            Prometheus text format (:mod:`agentopt.telemetry.prometheus`)

Bad parameters get 400 with what was expected.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agentopt.exceptions import AgentOptError, ConfigError
from agentopt.records import CallRecord
from agentopt.tracking.analytics.usage import normalize, usage_stats

__all__ = ["usage_app"]

_FILTERS = (
    "provider",
    "model",
    "alias",
    "combo_id",
    "data_id",
    "agent_id",
    "session_id",
    "start_date",
    "end_date",
    "status",
)
_CHUNK = 2000


def _filters(request: Request) -> dict[str, Any]:
    unknown = set(request.query_params) - {*_FILTERS, "group_by", "limit", "format", "bodies"}
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(sorted(unknown))}; filters: {', '.join(_FILTERS)}"
        )
    return {k: request.query_params[k] for k in _FILTERS if request.query_params.get(k)}


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


class _Reader:
    """Reads records in order or newest first, filtered like usage_stats: from a
    SQL store's flat columns (:meth:`~agentopt.tracking.storage.sql_store.SQLRecordStore.read_calls`,
    keyset pagination), or from any other store in Python."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.sql = hasattr(store, "read_calls")

    def _python(self, filters: dict[str, Any]) -> list[CallRecord]:
        from agentopt.tracking.analytics.usage import _matches

        conds, _ = normalize(filters, None)
        return [r for r in self.store.all() if _matches(r, conds)]

    def recent(self, filters: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        if not self.sql:
            return [r.model_dump(mode="json") for r in self._python(filters)[-limit:][::-1]]
        conds, _ = normalize(filters, None)
        rows = self.store.read_calls(conds, ["json"], newest_first=True, limit=limit)
        return [json.loads(t) for (t,) in rows]

    def rows(self, filters: dict[str, Any], columns: list[str]) -> Iterator[tuple[Any, ...]]:
        """Matching rows in order, ``_CHUNK`` at a time (keyset on seq)."""
        conds, _ = normalize(filters, None)
        last = None
        while True:
            batch = self.store.read_calls(conds, ["seq", *columns], after=last, limit=_CHUNK)
            for row in batch:
                yield row[1:]
            if len(batch) < _CHUNK:
                return
            last = batch[-1][0]

    def export_jsonl(self, filters: dict[str, Any]) -> Iterator[bytes]:
        if not self.sql:
            for r in self._python(filters):
                yield (r.model_dump_json() + "\n").encode()
            return
        for (text,) in self.rows(filters, ["json"]):
            yield (text + "\n").encode()

    def export_csv(self, filters: dict[str, Any]) -> Iterator[bytes]:
        from agentopt.tracking.storage.store_columns import COLUMN_NAMES

        names = ["call_id", *[c for c in COLUMN_NAMES if c != "call_id"]]
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(names)
        if not self.sql:
            from agentopt.tracking.storage.store_columns import row_of

            for r in self._python(filters):
                writer.writerow(row_of(r))
                yield _drain(buf)
            return
        yield _drain(buf)
        for n, row in enumerate(self.rows(filters, names), start=1):
            writer.writerow(row)
            if n % 500 == 0:
                yield _drain(buf)
        yield _drain(buf)


def _drain(buf: io.StringIO) -> bytes:
    data = buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    return data


async def _aiter(it: Iterator[bytes]) -> AsyncIterator[bytes]:
    import asyncio

    loop = asyncio.get_running_loop()
    sentinel = object()
    while True:
        chunk = await loop.run_in_executor(None, next, it, sentinel)
        if chunk is sentinel:
            return
        yield chunk  # type: ignore[misc]


def routing_metrics(aliases: dict[str, Any]) -> dict[str, Any]:
    """Per alias: what its router did and currently believes."""
    out: dict[str, Any] = {}
    for name, alias in aliases.items():
        router = getattr(alias, "router", None)
        stats = router.stats() if router is not None and hasattr(router, "stats") else {}
        arms = stats.get("arms", {})
        out[name] = {
            "router": getattr(alias, "router_name", None) or stats.get("router"),
            "targets": [getattr(t, "choice", str(t)) for t in getattr(alias, "targets", [])],
            "calls": stats.get("calls"),
            "replacement_rate": stats.get("activation_rate"),
            "rewards_received": stats.get("feedbacks"),
            "activations": {k: v.get("pulls") for k, v in arms.items()},
            "estimates": {k: v.get("mean_reward") for k, v in arms.items()},
            "mean_cost_usd": {k: v.get("mean_cost_usd") for k, v in arms.items()},
            "spend_usd": stats.get("spend_usd"),
        }
    return out


def usage_app(
    store: Any,
    *,
    aliases: Callable[[], dict[str, Any]] = dict,
    metrics: Any = None,
) -> Starlette:
    """The routes above over ``store``; ``aliases()`` gives the daemon's aliases,
    ``metrics`` a :class:`~agentopt.telemetry.prometheus.PrometheusMetrics`."""
    reader = _Reader(store)

    def guarded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                # in a worker thread: a long query never stalls the calls the
                # daemon is serving on its event loop
                result = await run_in_threadpool(fn, request)
            except (AgentOptError, ValueError) as exc:
                return _json({"error": {"message": str(exc), "type": "invalid_request"}}, 400)
            return result if isinstance(result, Response) else _json(result)

        return endpoint

    def stats(request: Request) -> Any:
        group_by = request.query_params.get("group_by") or None
        return usage_stats(store, group_by=group_by, **_filters(request)).as_dict()

    def recent(request: Request) -> Any:
        raw = request.query_params.get("limit") or "50"
        try:
            limit = int(raw)
        except ValueError as exc:
            raise ConfigError(f"limit={raw!r}: expected an integer") from exc
        if not 1 <= limit <= 1000:
            raise ConfigError(f"limit={limit}: expected 1 … 1000")
        records = reader.recent(_filters(request), limit)
        if request.query_params.get("bodies") == "false":
            for r in records:
                r.pop("request_body", None)
                r.pop("response_body", None)
        return {"records": records}

    def export(request: Request) -> Any:
        fmt = request.query_params.get("format") or "jsonl"
        filters = _filters(request)
        normalize(filters, None)  # bad dates are a 400 before streaming starts
        if fmt == "jsonl":
            it, media = reader.export_jsonl(filters), "application/x-ndjson"
        elif fmt == "csv":
            it, media = reader.export_csv(filters), "text/csv; charset=utf-8"
        else:
            raise ConfigError(f"format={fmt!r}: expected jsonl or csv")
        name = f"agentopt-records.{fmt}"
        return StreamingResponse(
            _aiter(it),
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    async def reconcile(request: Request) -> Response:
        import asyncio

        from agentopt.tracking.analytics.reconcile import reconcile_usage

        try:
            filters = _filters(request)
            group_by = request.query_params.get("group_by") or "model"
            groups = await asyncio.get_running_loop().run_in_executor(
                None, lambda: reconcile_usage(store, group_by=group_by, **filters)
            )
        except (AgentOptError, ValueError) as exc:
            return _json({"error": {"message": str(exc), "type": "invalid_request"}}, 400)
        return _json({"groups": [g.as_dict() for g in groups]})

    def routing(request: Request) -> Any:
        return {"aliases": routing_metrics(aliases())}

    def prometheus(request: Request) -> Any:
        if metrics is None:
            return _json({"error": {"message": "metrics are off"}}, 404)
        from agentopt.telemetry.prometheus import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/v1/usage/stats", guarded(stats)),
            Route("/v1/usage/recent", guarded(recent)),
            Route("/v1/usage/export", guarded(export)),
            Route("/v1/usage/reconcile", reconcile),
            Route("/v1/routing/metrics", guarded(routing)),
            Route("/metrics", guarded(prometheus)),
        ]
    )
