"""litellm-specific pieces of the litellm front-end (imported only once litellm is).

The process-wide CustomLogger, reading usage out of litellm's responses,
stream wrappers that note when the caller reached the end, and the flush of
litellm's async logging queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from agentopt.records import Usage

__all__ = ["flush_async", "make_logger", "usage_of", "wrap_async_stream", "wrap_stream"]

log = logging.getLogger("agentopt.tracking")

Event = Callable[[dict[str, Any], Any, Any, Any], None]


def make_logger(on_success: Event, on_failure: Event) -> Any:
    """One CustomLogger whose sync and async hooks call ``on_success`` / ``on_failure``."""
    from litellm.integrations.custom_logger import CustomLogger

    class AgentOptLogger(CustomLogger):
        def log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            on_success(kwargs, response_obj, start_time, end_time)

        def log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            on_failure(kwargs, response_obj, start_time, end_time)

        async def async_log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            on_success(kwargs, response_obj, start_time, end_time)

        async def async_log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            on_failure(kwargs, response_obj, start_time, end_time)

    return AgentOptLogger()


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def usage_of(response: Any, slo: dict[str, Any]) -> tuple[Usage, str | None, Any]:
    """Usage, the answering model and a JSON body of a litellm response."""
    u = _get(response, "usage")
    if u is not None:
        usage = Usage(
            prompt_tokens=_int(_get(u, "prompt_tokens")),
            completion_tokens=_int(_get(u, "completion_tokens")),
            cached_tokens=_int(_get(_get(u, "prompt_tokens_details"), "cached_tokens")),
            reasoning_tokens=_int(_get(_get(u, "completion_tokens_details"), "reasoning_tokens")),
        )
    else:
        usage = Usage(
            prompt_tokens=_int(slo.get("prompt_tokens")),
            completion_tokens=_int(slo.get("completion_tokens")),
        )
    model = _get(response, "model") or slo.get("model")
    body: Any = None
    dump = getattr(response, "model_dump", None)
    if dump is not None:
        try:
            body = dump(mode="json")
        except Exception:
            body = None
    return usage, model if isinstance(model, str) else None, body


class _Stream:
    """A litellm stream that tells us when the caller reached its end, or left early."""

    def __init__(
        self, inner: Any, ended: Callable[[], None], abandoned: Callable[[], None]
    ) -> None:
        self._inner = inner
        self._ended = ended
        self._abandoned = abandoned
        self._over = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._inner)
        except StopIteration:
            self._over = True
            self._ended()
            raise

    def close(self) -> None:
        if not self._over:
            self._over = True
            self._abandoned()
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        if not self._over:
            self._over = True
            with contextlib.suppress(Exception):  # never raise from a finaliser
                self._abandoned()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncStream:
    def __init__(
        self, inner: Any, ended: Callable[[], Awaitable[None]], abandoned: Callable[[], None]
    ) -> None:
        self._inner = inner
        self._ended = ended
        self._abandoned = abandoned
        self._over = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._over = True
            await self._ended()
            raise

    async def aclose(self) -> None:
        if not self._over:
            self._over = True
            self._abandoned()
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()

    def __del__(self) -> None:
        if not self._over:
            self._over = True
            with contextlib.suppress(Exception):  # never raise from a finaliser
                self._abandoned()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def wrap_stream(inner: Any, ended: Callable[[], None], abandoned: Callable[[], None]) -> Any:
    """``inner`` calling ``ended()`` at its end and ``abandoned()`` if left before."""
    return _Stream(inner, ended, abandoned)


def wrap_async_stream(
    inner: Any, ended: Callable[[], Awaitable[None]], abandoned: Callable[[], None]
) -> Any:
    """The async twin of :func:`wrap_stream`."""
    return _AsyncStream(inner, ended, abandoned)


async def flush_async() -> None:
    """Let litellm's async logging worker deliver the events queued so far."""
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await asyncio.sleep(0)
        await GLOBAL_LOGGING_WORKER.flush()
    except Exception:  # an older/newer litellm without the worker: events are direct
        log.debug("agentopt: no litellm logging worker to flush", exc_info=True)
