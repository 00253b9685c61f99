"""The dashboard's HTTP side: one HTML page, its static files, and a JSON API.

The page (``static/index.html`` + ``app.js`` + ``style.css``, with Chart.js
vendored next to them: nothing is fetched from a CDN) asks the JSON API below
for aggregates only; it never downloads the record store. Every API view takes
the same filters (:class:`~agentopt.gateway.dashboard.data.Filters`).

``GET  /dashboard``                       the page
``GET  /dashboard/static/<file>``         its scripts and styles
``GET  /dashboard/api/options``           filter values (models, agents, combos, aliases)
``GET  /dashboard/api/summary``           totals and percentiles (:func:`agentopt.usage_stats`)
``GET  /dashboard/api/stats``             the same, grouped (``group_by=model,day``)
``GET  /dashboard/api/calls``             recent calls (``limit``, ``before``, ``after`` by seq)
``GET  /dashboard/api/calls/<call_id>``   one call, request and response as stored
``GET  /dashboard/api/timeseries``        requests, cost, errors, cache hits per bucket and model
``GET  /dashboard/api/latency``           latency and TTFT percentiles per model
``GET  /dashboard/api/errors``            error rate per provider
``GET  /dashboard/api/routing``           per alias: traffic share over time, estimates, savings
``GET  /dashboard/api/selections``        the selection stores this dashboard was given
``GET  /dashboard/api/selections/<i>``    one selection: per-combination table, Pareto, eliminations

With an API key, every route needs ``Authorization: Bearer <key>``,
``x-api-key: <key>`` or the cookie set by ``/dashboard/login`` (a form, since a
browser cannot add headers to a page load); comparisons are constant-time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
from collections.abc import AsyncIterator, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from agentopt.exceptions import AgentOptError, ConfigError
from agentopt.gateway.dashboard.data import DashboardData, Filters
from agentopt.gateway.dashboard.selection import selection_view

__all__ = ["COOKIE", "create_dashboard_app"]

COOKIE = "agentopt_dashboard"
_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "chart.umd.min.js": "text/javascript; charset=utf-8",
}
Estimates = Callable[[], dict[str, dict[str, Any]]]


def _static(name: str) -> bytes:
    return resources.files("agentopt.gateway.dashboard").joinpath("static", name).read_bytes()


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_clean(data), status_code=status, headers={"cache-control": "no-store"})


def _token(key: str) -> str:
    return hashlib.sha256(("agentopt-dashboard:" + key).encode()).hexdigest()


def create_dashboard_app(
    store: str | Path | Any,
    *,
    selections: Sequence[str | Path] = (),
    api_key: str | None = None,
    estimates: Estimates | None = None,
    prefix: str = "/dashboard",
) -> Starlette:
    """The dashboard over a SQL record store (a SQLite path, a PostgreSQL URL, or
    the daemon's open store).

    ``selections`` are observation stores to offer in the selection view;
    ``estimates`` (the daemon passes it) returns each alias's current router
    estimates as ``{alias: {model: value}}``.
    """
    data = DashboardData(store)
    sel_paths = [Path(p) for p in selections]
    token = _token(api_key) if api_key else None

    def authorised(request: Request) -> bool:
        if api_key is None:
            return True
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), api_key.encode()
        ):
            return True
        header = request.headers.get("x-api-key")
        if header is not None and hmac.compare_digest(header.encode(), api_key.encode()):
            return True
        cookie = request.cookies.get(COOKIE)
        return (
            cookie is not None
            and token is not None
            and hmac.compare_digest(cookie.encode(), token.encode())
        )

    def guarded(
        handler: Callable[[Request], Any], *, page: bool = False
    ) -> Callable[[Request], Any]:
        async def wrapped(request: Request) -> Response:
            if not authorised(request):
                if page:
                    return RedirectResponse(f"{prefix}/login", status_code=303)
                return _json({"error": "unauthorised: send the daemon's API key"}, 401)
            try:
                # in a worker thread: a long query never stalls the daemon's calls
                result = await run_in_threadpool(handler, request)
                if isinstance(result, Response):
                    return result
                return _json(result)
            except (AgentOptError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)

        return wrapped

    def filters(request: Request) -> Filters:
        return Filters.from_query(request.query_params)

    def page(request: Request) -> Response:
        html = _static("index.html").decode().replace("__PREFIX__", prefix)
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", status_code=404)
        return Response(_static(name), media_type=_STATIC[name])

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return HTMLResponse(_LOGIN.replace("__PREFIX__", prefix).replace("__MSG__", ""))
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        key = (form.get("key") or [""])[0]
        if api_key is None or not hmac.compare_digest(key.encode(), api_key.encode()):
            msg = "<p class=err>That key is not the daemon's API key.</p>"
            return HTMLResponse(
                _LOGIN.replace("__PREFIX__", prefix).replace("__MSG__", msg), status_code=401
            )
        resp = RedirectResponse(prefix, status_code=303)
        resp.set_cookie(COOKIE, _token(api_key), httponly=True, samesite="strict", path=prefix)
        return resp

    def int_param(request: Request, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}={raw!r}: expected an integer") from exc

    def calls(request: Request) -> Any:
        return {
            "calls": data.calls(
                filters(request),
                limit=int_param(request, "limit") or 100,
                before=int_param(request, "before"),
                after=int_param(request, "after"),
            )
        }

    def call(request: Request) -> Any:
        record = data.call(request.path_params["call_id"])
        if record is None:
            return _json({"error": "no such call"}, 404)
        return record

    def routing(request: Request) -> Any:
        views = data.routing(filters(request), request.query_params.get("bucket") or None)
        current = estimates() if estimates is not None else {}
        for v in views:
            v["estimates"] = current.get(v["alias"])
        return {"aliases": views}

    def selection_list(request: Request) -> Any:
        return {
            "selections": [
                {"index": i, "name": p.name, "path": str(p), "exists": p.exists()}
                for i, p in enumerate(sel_paths)
            ]
        }

    def selection(request: Request) -> Any:
        try:
            i = int(request.path_params["index"])
            path = sel_paths[i]
        except (ValueError, IndexError):
            return _json({"error": "no such selection"}, 404)
        return selection_view(path, fingerprint=request.query_params.get("fingerprint") or None)

    routes = [
        Route(prefix, guarded(page, page=True)),
        Route(prefix + "/", guarded(page, page=True)),
        Route(prefix + "/login", login, methods=["GET", "POST"]),
        Route(prefix + "/static/{name}", static),
        Route(prefix + "/api/options", guarded(lambda r: data.options())),
        Route(prefix + "/api/summary", guarded(lambda r: data.summary(filters(r)))),
        Route(
            prefix + "/api/stats",
            guarded(
                lambda r: {
                    "groups": data.grouped(filters(r), r.query_params.get("group_by") or "model")
                }
            ),
        ),
        Route(prefix + "/api/calls", guarded(calls)),
        Route(prefix + "/api/calls/{call_id}", guarded(call)),
        Route(
            prefix + "/api/timeseries",
            guarded(lambda r: data.timeseries(filters(r), r.query_params.get("bucket") or None)),
        ),
        Route(prefix + "/api/latency", guarded(lambda r: data.latency(filters(r)))),
        Route(
            prefix + "/api/errors",
            guarded(lambda r: {"providers": data.errors_by_provider(filters(r))}),
        ),
        Route(prefix + "/api/routing", guarded(routing)),
        Route(prefix + "/api/selections", guarded(selection_list)),
        Route(prefix + "/api/selections/{index}", guarded(selection)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            data.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard_data = data
    return app


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agentopt · sign in</title>
<link rel="stylesheet" href="__PREFIX__/static/style.css"></head>
<body class="login"><form method="post" action="__PREFIX__/login">
<h1>agentopt dashboard</h1>
<p>This daemon needs its API key.</p>__MSG__
<input type="password" name="key" autocomplete="current-password" placeholder="API key" autofocus>
<button type="submit">Sign in</button></form></body></html>
"""
