"""aiohttp, captured through the gateway: ``ClientSession._request`` points LLM
calls made inside a session at the session's endpoint on the tracker's gateway.

aiohttp offers no hook that can answer a request without a connection (client
middlewares and ``TraceConfig`` must go through the connector), so the call is
sent, as the caller made it, to the gateway that stands for its upstream in the
active session: the loopback gateway of an in-process tracker, or the daemon
with ``AGENTOPT_GATEWAY_URL``. The gateway runs the same pipeline (route, cache,
forward, record) and streams the provider's bytes back. Outside a session, and
for anything that is no LLM call, aiohttp is untouched.
See :mod:`agentopt.tracking.capture.client_capture`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from yarl import URL

from agentopt.tracking.capture.client_capture import llm_call

__all__ = ["gateway_url", "patch"]


def gateway_url(method: str, url: URL) -> URL | None:
    """Where an aiohttp call to ``url`` goes instead, or None (left alone)."""
    if not url.is_absolute():
        return None
    found = llm_call(method, str(url))
    if found is None:
        return None
    session = found[1]
    tracker = None if session is None else session.tracker
    if session is None or tracker is None:
        return None
    from agentopt.tracking.capture.subprocess_front import base_url_for

    base = base_url_for(tracker, session, str(url.origin()))
    if base is None:
        return None
    return URL(base + url.raw_path_qs, encoded=True)


def patch() -> Callable[[], None]:
    """Patch ``ClientSession._request``; returns the function that restores it."""
    original = aiohttp.ClientSession._request

    async def _request(self: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
        build = getattr(self, "_build_url", URL)
        try:
            url = build(str_or_url)
        except Exception:  # aiohttp will report the bad URL itself
            url = None
        target = None if url is None else gateway_url(method, url)
        return await original(self, method, target or str_or_url, *args, **kwargs)

    aiohttp.ClientSession._request = _request  # type: ignore[method-assign]

    def restore() -> None:
        aiohttp.ClientSession._request = original  # type: ignore[method-assign]

    return restore
