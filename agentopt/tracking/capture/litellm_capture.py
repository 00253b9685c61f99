"""The litellm front-end: route before the call, then cache, forward and record.

While a tracker runs and litellm is imported, ``litellm.completion`` and
``litellm.acompletion`` are wrapped. The wrapper asks the session's router
for the model, looks the call up in the tracker's response cache, tags the
call with a ``litellm_call_id`` and marks the context so that litellm's own
httpx traffic is not captured a second time. It records the call itself
(:class:`~agentopt.tracking.capture.pending.PendingCall`): a whole response before
``completion`` returns, a stream when the caller reaches its end or leaves it,
a failure when the call raises. So the record is in the store by the time the
caller can look, and nothing waits for litellm's logging thread. A call sent
to a tracker's own loopback gateway is left to the gateway, which records it.

litellm is never imported by this module on its own: if it is not imported
when a tracker starts, an import hook patches it the moment user code imports
it (:mod:`agentopt.tracking.capture.import_hooks`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import random
import sys
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agentopt.tracking.capture.import_hooks import cancel, when_imported
from agentopt.tracking.capture.pending import PendingCall
from agentopt.tracking.pipeline import Pipeline, _bypass
from agentopt.tracking.providers import is_ignored_origin
from agentopt.tracking.recorder import Exchange, usage_or_unknown
from agentopt.tracking.session import SessionInfo

if TYPE_CHECKING:
    from agentopt.tracking.tracker import LLMTracker

__all__ = ["abandon_streams", "calling_litellm", "install", "installed", "uninstall"]

log = logging.getLogger("agentopt.tracking")

_lock = threading.Lock()
_trackers: list[LLMTracker] = []
_originals: dict[str, Any] = {}
_in_call: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentopt_in_litellm", default=False
)
_streams: dict[int, tuple[PendingCall, Any]] = {}  # streams handed out, not over yet


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
    mod.suppress_debug_info = True  # type: ignore[attr-defined]
    _originals["completion"] = mod.completion
    _originals["acompletion"] = mod.acompletion
    mod.completion = _wrap_sync(mod.completion)  # type: ignore[attr-defined]
    mod.acompletion = _wrap_async(mod.acompletion)  # type: ignore[attr-defined]


# -- before the call: route, tag, look up the cache ---------------------------------------


def _resolve() -> tuple[Pipeline, SessionInfo | None] | None:
    from agentopt.tracking.capture.httpx_capture import resolve

    return resolve()


#: Where litellm sends a provider's calls when no ``api_base`` is given, in its order.
_BASE_ENV = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"),
    "anthropic": ("ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL"),
}


def _api_base(kwargs: dict[str, Any], model: Any) -> str | None:
    """The base URL litellm will call (as far as it can be told before the call)."""
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if base:
        return str(base)
    provider = model.split("/", 1)[0] if isinstance(model, str) and "/" in model else "openai"
    for var in _BASE_ENV.get(provider, ()):
        value = os.environ.get(var)
        if value:
            return value
    return None


def _own_gateway(url: str | None) -> bool:
    """Whether ``url`` is a tracker's own loopback gateway (which records its calls)."""
    if not url:
        return False
    try:
        return is_ignored_origin(url)
    except Exception:
        return False


def _prepare(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], PendingCall] | None:
    """Route the call and tag it: new kwargs and the pending call (None: not ours)."""
    found = _resolve()
    if found is None:
        return None
    pipeline, session = found
    kwargs = dict(kwargs)
    for name, value in zip(("model", "messages"), args, strict=False):
        kwargs[name] = value
    requested = kwargs.get("model")
    if _own_gateway(_api_base(kwargs, requested)):
        return None  # the gateway routes, caches and records it (once)
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
    strip = False
    if (
        kwargs.get("stream")
        and not kwargs.get("stream_options")
        and _endpoint_of(kwargs) not in _refuse_usage_ask
    ):
        # Usage not reported is unknown: ask for it (litellm reports 0 tokens for
        # streams to a custom api_base otherwise), and hide it from the caller.
        kwargs["stream_options"] = {"include_usage": True}
        strip = True
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
    call = PendingCall(pipeline, ex, strip_usage=strip, cache_key=_cache_key(pipeline, kwargs))
    return kwargs, call


# endpoints (api_base, else the provider) that refused ``stream_options``: not asked again
_refuse_usage_ask: set[str] = set()


def _endpoint_of(kwargs: dict[str, Any]) -> str:
    base = kwargs.get("api_base") or kwargs.get("base_url")
    if base:
        return str(base)
    model = kwargs.get("model")
    return model.split("/", 1)[0] if isinstance(model, str) and "/" in model else ""


def _unasked(kwargs: dict[str, Any], call: PendingCall, exc: Exception) -> dict[str, Any] | None:
    """The caller's own kwargs when the provider refused the ``stream_options`` we
    added (some OpenAI-compatible servers do): the caller did not send it, so it
    must not get that error. The call's usage is then unknown. None: not that."""
    if not call.strip_usage or "stream_options" not in str(exc):
        return None
    _refuse_usage_ask.add(_endpoint_of(kwargs))
    log.info(
        "agentopt: %s refuses stream_options; usage of its streams is unknown", _endpoint_of(kwargs)
    )
    call.strip_usage = False
    call.exchange.request_body = {
        k: v for k, v in call.exchange.request_body.items() if k != "stream_options"
    }
    return {k: v for k, v in kwargs.items() if k != "stream_options"}


_BODY_KEYS = frozenset(
    {"model", "messages", "tools", "tool_choice", "temperature", "max_tokens", "response_format"}
)
# kwargs that do not change the answer (transport, retries, bookkeeping)
_NOT_IN_KEY = frozenset(
    {
        "api_key",
        "api_base",
        "base_url",
        "stream",
        "stream_options",
        "litellm_call_id",
        "metadata",
        "num_retries",
        "max_retries",
        "timeout",
        "request_timeout",
        "client",
        "litellm_logging_obj",
        "extra_headers",
        "headers",
    }
)


def _cache_key(pipeline: Pipeline, kwargs: dict[str, Any]) -> str | None:
    """The call's key in the tracker's response cache (None: caching is off)."""
    cache = pipeline.cache
    if cache is None:
        return None
    try:
        from agentopt.tracking.storage.cache import namespace_for

        key = kwargs.get("api_key")
        namespace = namespace_for({"authorization": str(key)} if key else {})
        endpoint = f"litellm:{kwargs.get('api_base') or kwargs.get('base_url') or ''}"
        body = {k: v for k, v in kwargs.items() if k not in _NOT_IN_KEY}
        return cache.key(endpoint, body, namespace)
    except Exception:
        log.exception("agentopt: could not compute a cache key for a litellm call")
        return None


def _replay(call: PendingCall, *, is_async: bool) -> Any:
    """The cached answer of ``call`` as litellm would give it (and its record), or None."""
    cache = call.pipeline.cache
    if cache is None or call.cache_key is None:
        return None
    try:
        hit = cache.get(call.cache_key)
    except Exception:
        log.exception("agentopt: could not read the response cache")
        return None
    ex = call.exchange
    if hit is None or hit.streamed != ex.stream:
        return None
    try:
        from agentopt.tracking.capture import litellm_streams as ll
        from agentopt.tracking.capture.tee import split_events
        from agentopt.tracking.wire.parsing import StreamParser, parse_body

        if hit.streamed:
            parser = StreamParser("openai")
            parser.feed_all(hit.body)
            parsed = parser.finish(complete=True)
            events = [
                json.loads(e.partition(b"data:")[2])
                for e in split_events(hit.body)
                if b"data:" in e and b"[DONE]" not in e
            ]
            answer: Any = (
                ll.replay_async_stream(events, strip=call.strip_usage)
                if is_async
                else ll.replay_stream(events, strip=call.strip_usage)
            )
        else:
            parsed = parse_body("openai", hit.status_code, hit.body)
            answer = ll.replay_response(json.loads(hit.body))
        call.done = True
        call.pipeline.recorder.record(
            ex,
            status_code=hit.status_code,
            model=hit.model or parsed.model,
            usage=usage_or_unknown(parsed.usage, parsed.usage_found, hit.status_code),
            response_body=parsed.body,
            latency_seconds=hit.latency_seconds,
            ttft_seconds=hit.ttft_seconds if hit.streamed else None,
            cached=True,
            error=parsed.error,
        )
        return answer
    except Exception:
        log.exception("agentopt: could not replay a cached litellm answer")
        return None


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
        from agentopt.tracking.wire.translate import litellm_target

        model, api_base = litellm_target(spec, choice.split("/", 1)[1])
        kwargs["model"] = model
        if api_base is not None:
            kwargs["api_base"] = api_base


# -- streams left open -------------------------------------------------------------------


def _opened(call: PendingCall, stream: Any) -> None:
    with _lock:
        for k in [k for k, (c, _) in _streams.items() if c.done]:
            del _streams[k]
        _streams[id(call)] = (call, stream)


def abandon_streams(tracker: LLMTracker) -> int:
    """Record the tracker's litellm streams still open as abandoned (``stop()``)."""
    pipeline = tracker._backend.pipeline()
    with _lock:
        mine = [(k, c, s) for k, (c, s) in _streams.items() if c.pipeline is pipeline]
        for k, _, _ in mine:
            del _streams[k]
    n = 0
    for _, call, stream in mine:
        if not call.done:
            call.stream_over(stream, complete=False)
            n += 1
    return n


# -- the wrappers -----------------------------------------------------------------------


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def completion(*args: Any, **kwargs: Any) -> Any:
        if _in_call.get():
            return original(*args, **kwargs)
        prepared = _prepare(args, kwargs)
        if prepared is None:
            return original(*args, **kwargs)
        kw, call = prepared
        hit = _replay(call, is_async=False)
        if hit is not None:
            return hit
        t1, t2 = _in_call.set(True), _bypass.set(True)
        try:
            try:
                result = original(**kw)
            except Exception as exc:
                plain = _unasked(kw, call, exc)
                if plain is None:
                    raise
                kw = plain
                result = original(**kw)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _bypass.reset(t2)
            _in_call.reset(t1)
        if kw.get("stream"):
            from agentopt.tracking.capture.litellm_streams import wrap_stream

            wrapped = wrap_stream(result, call)
            _opened(call, result)
            return wrapped
        call.returned(result)
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
        kw, call = prepared
        hit = _replay(call, is_async=True)
        if hit is not None:
            return hit
        t1, t2 = _in_call.set(True), _bypass.set(True)
        try:
            try:
                result = await original(**kw)
            except Exception as exc:
                plain = _unasked(kw, call, exc)
                if plain is None:
                    raise
                kw = plain
                result = await original(**kw)
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _bypass.reset(t2)
            _in_call.reset(t1)
        if kw.get("stream"):
            from agentopt.tracking.capture.litellm_streams import wrap_async_stream

            wrapped = wrap_async_stream(result, call)
            _opened(call, result)
            return wrapped
        call.returned(result)
        return result

    return acompletion
