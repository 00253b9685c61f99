"""The httpx front-end: a transport wrapper that sends LLM calls through the pipeline.

:class:`TrackingTransport` / :class:`AsyncTrackingTransport` wrap any httpx
transport explicitly. While at least one tracker runs, :func:`install` also
wraps httpx's default transports (``HTTPTransport.handle_request`` and
``AsyncHTTPTransport.handle_async_request``) at class level, so clients built
*before* the tracker started (module-level SDK clients) are caught too.

Which tracker handles a call: the tracker of the active session; outside any
session, the most recently started running tracker, which records the call
with no ids and does not route it. Requests that match no provider pass
through untouched.
"""

from __future__ import annotations

import functools
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.tracking.capture.import_hooks import cancel, when_imported
from agentopt.tracking.pipeline import Pipeline, capture_bypassed
from agentopt.tracking.session import SessionInfo, current_session

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = [
    "FORKS",
    "AsyncTrackingTransport",
    "TrackingTransport",
    "install",
    "installed",
    "resolve",
    "uninstall",
]

_lock = threading.Lock()
_running: list[LLMTracker] = []
_originals: dict[str, tuple[Any, Any]] = {}

#: httpx forks whose transports are patched too, once imported.
FORKS = ("httpx2",)


def resolve(tracker: LLMTracker | None = None) -> tuple[Pipeline, SessionInfo | None] | None:
    """The pipeline and session that handle a call made now, or None."""
    session = current_session()
    if session is not None and session.active:
        owner = session.tracker
        if owner is not None and owner.running and (tracker is None or owner is tracker):
            return owner._pipeline(), session
    if tracker is not None:
        return (tracker._pipeline(), None) if tracker.running else None
    running = _running
    if running:
        return running[-1]._pipeline(), None
    return None


def _patches(lib: ModuleType) -> tuple[Any, Any]:
    """Patched ``handle_request`` / ``handle_async_request`` for one httpx flavour."""
    sync_original = lib.HTTPTransport.handle_request
    async_original = lib.AsyncHTTPTransport.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        if capture_bypassed():
            return sync_original(self, request)
        found = resolve()
        if found is None:
            return sync_original(self, request)
        pipeline, session = found
        return pipeline.handle(request, session, functools.partial(sync_original, self))

    async def handle_async_request(self: Any, request: Any) -> Any:
        if capture_bypassed():
            return await async_original(self, request)
        found = resolve()
        if found is None:
            return await async_original(self, request)
        pipeline, session = found
        return await pipeline.handle_async(
            request, session, functools.partial(async_original, self)
        )

    return handle_request, handle_async_request


def _patch(lib: ModuleType) -> None:
    with _lock:
        if not _running or lib.__name__ in _originals:
            return
        _originals[lib.__name__] = (
            lib.HTTPTransport.handle_request,
            lib.AsyncHTTPTransport.handle_async_request,
        )
        sync, async_ = _patches(lib)
        lib.HTTPTransport.handle_request = sync
        lib.AsyncHTTPTransport.handle_async_request = async_


def install(tracker: LLMTracker) -> None:
    """Register a running tracker; patch httpx's transports if not yet patched
    (and those of ``httpx2``, the fork the anthropic SDK uses, once imported)."""
    with _lock:
        if tracker not in _running:
            _running.append(tracker)
    _patch(httpx)
    for name in FORKS:
        when_imported(name, _patch)


def uninstall(tracker: LLMTracker) -> None:
    """Unregister a tracker; restore httpx when no tracker runs any more."""
    with _lock:
        if tracker in _running:
            _running.remove(tracker)
        if _running:
            return
        for name in FORKS:
            cancel(name)
        for name, (sync, async_) in list(_originals.items()):
            lib = sys.modules[name]
            lib.HTTPTransport.handle_request = sync
            lib.AsyncHTTPTransport.handle_async_request = async_
            del _originals[name]


def installed() -> bool:
    """Whether httpx's transports are patched right now."""
    return bool(_originals)


class TrackingTransport(httpx.BaseTransport):
    """Wrap a transport so that its LLM calls go through a tracker's pipeline::

        client = httpx.Client(transport=TrackingTransport(httpx.MockTransport(handler)))

    ``tracker=None`` uses whichever tracker :func:`resolve` picks."""

    def __init__(self, inner: httpx.BaseTransport, tracker: LLMTracker | None = None) -> None:
        self.inner = inner
        self.tracker = tracker

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        found = None if capture_bypassed() else resolve(self.tracker)
        if found is None:
            return self.inner.handle_request(request)
        pipeline, session = found
        return pipeline.handle(request, session, self.inner.handle_request)

    def close(self) -> None:
        self.inner.close()


class AsyncTrackingTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`TrackingTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tracker: LLMTracker | None = None) -> None:
        self.inner = inner
        self.tracker = tracker

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        found = None if capture_bypassed() else resolve(self.tracker)
        if found is None:
            return await self.inner.handle_async_request(request)
        pipeline, session = found
        return await pipeline.handle_async(request, session, self.inner.handle_async_request)

    async def aclose(self) -> None:
        await self.inner.aclose()
