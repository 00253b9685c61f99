"""The litellm front-end: route before the call, record from litellm's callbacks.

While a tracker runs and litellm is imported, ``litellm.completion`` and
``litellm.acompletion`` are wrapped. The wrapper asks the session's router
for the model, tags the call with a ``litellm_call_id`` and marks the context
so that litellm's own httpx traffic is not captured a second time. One
process-wide :class:`CustomLogger` turns litellm's success and failure events
for tagged calls into records through the tracker's Recorder.

litellm is never imported by this module on its own: if it is not imported
when a tracker starts, an import hook patches it the moment user code imports
it (:mod:`agentopt.tracking.import_hooks`). A non-streamed call is recorded
by the wrapper from the response it returns (whoever comes first, the wrapper
or litellm's success event, takes the pending call; the other finds nothing),
so the caller never waits for litellm's logging thread. Streams are recorded
from the success event, which arrives from litellm's thread pool *after* the
stream ends, so readers wait for the calls still pending (:func:`wait_pending`)
instead of the caller paying on every call. The logger stays registered once
added (litellm cannot reliably unregister one); with no tracker running it
ignores every event.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agentopt.records import Usage
from agentopt.tracking.import_hooks import cancel, when_imported
from agentopt.tracking.pending import PendingCall as _Pending
from agentopt.tracking.pipeline import Pipeline, _bypass
from agentopt.tracking.recorder import Exchange
from agentopt.tracking.session import SessionInfo

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = ["calling_litellm", "install", "installed", "uninstall", "wait_pending"]

log = logging.getLogger("agentopt.tracking")

_lock = threading.Lock()
_trackers: list[LLMTracker] = []
_originals: dict[str, Any] = {}
_logger: Any = None
_in_call: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentopt_in_litellm", default=False
)

#: How long a reader waits for litellm's success callbacks still in flight.
PENDING_TIMEOUT_S = 10.0


_pending: dict[str, _Pending] = {}


# -- install / uninstall -----------------------------------------------------------------


def install(tracker: LLMTracker) -> None:
    """Register a running tracker; patch litellm now or when it gets imported."""
    with _lock:
        if tracker not in _trackers:
            _trackers.append(tracker)
        if _originals:
            return
    when_imported("litellm", _patch_if_running)


def _patch_if_running(mod: ModuleType) -> None:
    with _lock:
        if _trackers and not _originals and hasattr(mod, "completion"):
            _patch(mod)


def uninstall(tracker: LLMTracker) -> None:
    """Unregister a tracker; restore litellm when no tracker runs any more."""
    with _lock:
        if tracker in _trackers:
            _trackers.remove(tracker)
        if _trackers:
            return
        cancel("litellm")
        mod = sys.modules.get("litellm")
        if mod is not None and _originals:
            mod.completion = _originals.pop("completion")  # type: ignore[attr-defined]
            mod.acompletion = _originals.pop("acompletion")  # type: ignore[attr-defined]
        _originals.clear()


@contextlib.contextmanager
def calling_litellm() -> Iterator[None]:
    """Within this block litellm calls are the tracker's own (translations):
    neither routed nor recorded by this front-end."""
    token = _in_call.set(True)
    try:
        yield
    finally:
        _in_call.reset(token)


def installed() -> bool:
    """Whether ``litellm.completion`` is wrapped right now."""
    return bool(_originals)


def _patch(mod: ModuleType) -> None:
    global _logger
    mod.suppress_debug_info = True  # type: ignore[attr-defined]
    _originals["completion"] = mod.completion
    _originals["acompletion"] = mod.acompletion
    mod.completion = _wrap_sync(mod.completion)  # type: ignore[attr-defined]
    mod.acompletion = _wrap_async(mod.acompletion)  # type: ignore[attr-defined]
    if _logger is None:
        from agentopt.tracking.litellm_logger import make_logger

        _logger = make_logger(_on_success, _on_failure)
        mod.callbacks.append(_logger)


# -- the wrappers -----------------------------------------------------------------------


def _resolve() -> tuple[Pipeline, SessionInfo | None] | None:
    from agentopt.tracking.httpx_capture import resolve

    return resolve()


def _prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """Route the call and register it as pending: new kwargs and the call id."""
    found = _resolve()
    if found is None:
        return None
    pipeline, session = found
    kwargs = dict(kwargs)
    names = ("model", "messages")
    for name, value in zip(names, args, strict=False):
        kwargs[name] = value
    requested = kwargs.get("model")
    provider = (
        requested.split("/", 1)[0] if isinstance(requested, str) and "/" in requested else None
    )
    body = {k: v for k, v in kwargs.items() if k in _BODY_KEYS}
    choice = pipeline.routes.route(session, requested, body, provider)
    model = requested
    if choice and choice != requested:
        model = choice
        kwargs["model"] = choice
        _retarget(pipeline, kwargs, requested, choice)
    if kwargs.get("stream") and "stream_options" not in kwargs:
        # litellm reports 0 tokens for streams to a custom api_base otherwise.
        kwargs["stream_options"] = {"include_usage": True}
    call_id = kwargs.get("litellm_call_id") or f"{random.getrandbits(128):032x}"
    kwargs["litellm_call_id"] = call_id
    ex = Exchange(
        provider=provider,
        wire="litellm",
        url=str(kwargs.get("api_base") or kwargs.get("base_url") or ""),
        request_body={k: v for k, v in kwargs.items() if k in _BODY_KEYS},
        requested_model=requested,
        model=model,
        stream=bool(kwargs.get("stream")),
        session=session,
        call_id=call_id,
    )
    with _lock:
        _pending[call_id] = _Pending(pipeline, ex, time.time())
    return kwargs, call_id


_BODY_KEYS = frozenset(
    {"model", "messages", "tools", "tool_choice", "temperature", "max_tokens", "response_format"}
)


def _retarget(pipeline: Pipeline, kwargs: dict[str, Any], requested: Any, choice: str) -> None:
    """A routed model of another provider must not inherit the caller's endpoint."""
    old = requested.split("/", 1)[0] if isinstance(requested, str) and "/" in requested else None
    new, sep, _ = choice.partition("/")
    if not sep or new == old:
        return
    for k in ("api_base", "base_url", "api_key"):
        kwargs.pop(k, None)
    spec = pipeline.registry.by_name(new)
    if spec is not None:
        from agentopt.tracking.translate import litellm_target

        model, api_base = litellm_target(spec, choice.split("/", 1)[1])
        kwargs["model"] = model
        if api_base is not None:
            kwargs["api_base"] = api_base


def _mark_returned(call_id: str) -> None:
    p = _pending.get(call_id)
    if p is not None:
        p.returned = True


def _returned(call_id: str, result: Any) -> bool:
    """A non-streamed call returned ``result``: record it from there, on the
    caller's thread, unless litellm's success event already did. The event that
    comes later finds nothing pending and is ignored, so nobody waits for
    litellm's logging thread. Returns False (the event will record the call)
    when ``result`` carries no usage to record."""
    if getattr(result, "usage", None) is None:
        _mark_returned(call_id)
        return False
    with _lock:
        p = _pending.pop(call_id, None)
    if p is None:
        return True  # the success event came first and recorded it
    try:
        from agentopt.tracking.litellm_logger import usage_of

        usage, model, body = usage_of(result, {})
        hidden = getattr(result, "_hidden_params", None)
        hidden = hidden if isinstance(hidden, dict) else {}
        ex = p.exchange
        ex.provider = hidden.get("custom_llm_provider") or ex.provider
        ex.url = str(hidden.get("api_base") or ex.url)
        p.pipeline.recorder.record(
            ex,
            status_code=200,
            model=model or ex.model,
            usage=usage,
            response_body=body,
            latency_seconds=max(0.0, time.time() - p.started),
        )
    except Exception:
        log.exception("agentopt: could not record a litellm call")
    finally:
        p.mark_done()
    return True


def _mark_streaming(call_id: str) -> None:
    p = _pending.get(call_id)
    if p is not None:
        p.streaming = True


_ABANDONED = "stream ended early: the caller stopped reading before the end"


def _abandon(call_id: str) -> None:
    """Record a stream the caller closed (or dropped) before its end: litellm
    reports nothing for it."""
    with _lock:
        p = _pending.pop(call_id, None)
    if p is None:
        return
    try:
        p.pipeline.recorder.record(
            p.exchange,
            status_code=200,
            model=p.exchange.model,
            usage=Usage(),
            response_body=None,
            latency_seconds=max(0.0, time.time() - p.started),
            error=_ABANDONED,
        )
    except Exception:
        log.exception("agentopt: could not record an abandoned litellm stream")
    finally:
        p.mark_done()


def abandon_streams(tracker: LLMTracker) -> int:
    """Record the tracker's litellm streams still open as abandoned (``stop()``)."""
    pipeline = tracker._backend.pipeline()
    open_ = [
        cid
        for cid, p in list(_pending.items())
        if p.streaming and not p.returned and p.pipeline is pipeline
    ]
    for cid in open_:
        _abandon(cid)
    return len(open_)


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def completion(*args: Any, **kwargs: Any) -> Any:
        if _in_call.get():
            return original(*args, **kwargs)
        prepared = _prepare(args, kwargs)
        if prepared is None:
            return original(*args, **kwargs)
        kw, call_id = prepared
        t1, t2 = _in_call.set(True), _bypass.set(True)
        try:
            result = original(**kw)
        except BaseException:
            _mark_returned(call_id)
            raise
        finally:
            _bypass.reset(t2)
            _in_call.reset(t1)
        if kw.get("stream"):
            from agentopt.tracking.litellm_logger import wrap_stream

            _mark_streaming(call_id)
            return wrap_stream(result, lambda: _mark_returned(call_id), lambda: _abandon(call_id))
        _returned(call_id, result)
        return result

    return completion


def _wrap_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        if _in_call.get():
            return await original(*args, **kwargs)
        prepared = _prepare(args, kwargs)
        if prepared is None:
            return await original(*args, **kwargs)
        kw, call_id = prepared
        t1, t2 = _in_call.set(True), _bypass.set(True)
        try:
            result = await original(**kw)
        except BaseException:
            _mark_returned(call_id)
            raise
        finally:
            _bypass.reset(t2)
            _in_call.reset(t1)
        from agentopt.tracking.litellm_logger import flush_async, wrap_async_stream

        if kw.get("stream"):

            async def ended() -> None:
                _mark_returned(call_id)
                await flush_async()

            _mark_streaming(call_id)
            return wrap_async_stream(result, ended, lambda: _abandon(call_id))
        if not _returned(call_id, result):
            await flush_async()
        return result

    return acompletion


# -- the logger's events ------------------------------------------------------------------


def _take(kwargs: dict[str, Any]) -> _Pending | None:
    call_id = kwargs.get("litellm_call_id")
    if not call_id:
        return None
    with _lock:
        return _pending.pop(call_id, None)


def _on_success(kwargs: dict[str, Any], response: Any, start: Any, end: Any) -> None:
    p = _take(kwargs)
    if p is None:
        return
    try:
        from agentopt.tracking.litellm_logger import usage_of

        slo = kwargs.get("standard_logging_object") or {}
        t0 = slo.get("startTime") or p.started
        t_end = slo.get("endTime") or time.time()
        t_first = slo.get("completionStartTime")
        usage, model, body = usage_of(response, slo)
        ex = p.exchange
        ex.provider = slo.get("custom_llm_provider") or ex.provider
        ex.url = str(slo.get("api_base") or ex.url)
        p.pipeline.recorder.record(
            ex,
            status_code=200,
            model=model or ex.model,
            usage=usage,
            response_body=body,
            latency_seconds=max(0.0, float(t_end) - float(t0)),
            ttft_seconds=(max(0.0, float(t_first) - float(t0)) if ex.stream and t_first else None),
        )
    except Exception:
        log.exception("agentopt: could not record a litellm call")
    finally:
        p.mark_done()


def _on_failure(kwargs: dict[str, Any], response: Any, start: Any, end: Any) -> None:
    p = _take(kwargs)
    if p is None:
        return
    try:
        exc = kwargs.get("exception")
        slo = kwargs.get("standard_logging_object") or {}
        t0 = slo.get("startTime") or p.started
        t_end = slo.get("endTime") or time.time()
        status = getattr(exc, "status_code", None)
        ex = p.exchange
        ex.provider = slo.get("custom_llm_provider") or ex.provider
        p.pipeline.recorder.record(
            ex,
            status_code=status if isinstance(status, int) else None,
            model=ex.model,
            usage=Usage(),
            response_body=None,
            latency_seconds=max(0.0, float(t_end) - float(t0)),
            error=f"{type(exc).__name__}: {exc}" if exc is not None else "litellm call failed",
        )
    except Exception:
        log.exception("agentopt: could not record a failed litellm call")
    finally:
        p.mark_done()


def wait_pending(tracker: LLMTracker | None = None, timeout: float = PENDING_TIMEOUT_S) -> int:
    """Wait until the success events of calls that already returned are recorded.

    Returns how many calls were still unrecorded when the wait gave up."""
    if not _pending:
        return 0
    pipeline = tracker._backend.pipeline() if tracker is not None else None
    deadline = time.monotonic() + timeout
    late = 0
    for call_id, p in list(_pending.items()):
        if not p.returned or (pipeline is not None and p.pipeline is not pipeline):
            continue
        if not p.wait(max(0.0, deadline - time.monotonic())):
            late += 1
            with _lock:
                _pending.pop(call_id, None)
            log.warning("agentopt: litellm never reported call %s; it is not recorded", call_id)
    return late
