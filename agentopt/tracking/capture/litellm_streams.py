"""litellm-specific pieces of the litellm front-end (imported only once litellm is).

Reading usage out of litellm's responses, the stream wrappers that feed a
:class:`~agentopt.tracking.capture.pending.PendingCall` and note when the caller
reached the end (or left), and cached answers played back as litellm objects.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from agentopt.records import Usage

if TYPE_CHECKING:
    from agentopt.tracking.capture.pending import PendingCall

__all__ = [
    "body_of",
    "replay_async_stream",
    "replay_response",
    "replay_stream",
    "usage_of",
    "wrap_async_stream",
    "wrap_stream",
]

log = logging.getLogger("agentopt.tracking")


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


def usage_of(response: Any) -> tuple[Usage, str | None, bool]:
    """Usage, the answering model, and whether the response reported usage at all."""
    u = _get(response, "usage")
    usage = Usage()
    if u is not None:
        usage = Usage(
            prompt_tokens=_int(_get(u, "prompt_tokens")),
            completion_tokens=_int(_get(u, "completion_tokens")),
            cached_tokens=_int(_get(_get(u, "prompt_tokens_details"), "cached_tokens")),
            reasoning_tokens=_int(_get(_get(u, "completion_tokens_details"), "reasoning_tokens")),
        )
    model = _get(response, "model")
    return usage, model if isinstance(model, str) else None, u is not None


def body_of(response: Any) -> Any:
    """A JSON body of a litellm response (None when it cannot be dumped)."""
    dump = getattr(response, "model_dump", None)
    if dump is None:
        return None
    try:
        return dump(mode="json")
    except Exception:
        return None


def _strip(chunk: Any) -> Any:
    """``chunk`` without the usage the caller did not ask for (None: skip it)."""
    if getattr(chunk, "usage", None) is None:
        return chunk
    choices = getattr(chunk, "choices", None) or ()
    useful = any(
        getattr(c, "finish_reason", None)
        or any(
            getattr(getattr(c, "delta", None), k, None)
            for k in ("content", "tool_calls", "function_call", "reasoning_content")
        )
        for c in choices
    )
    if not useful:
        return None
    with contextlib.suppress(Exception):
        delattr(chunk, "usage")
    return chunk


class _Stream:
    """A litellm stream that feeds its PendingCall and records it at its end."""

    def __init__(self, inner: Any, call: PendingCall) -> None:
        self._inner = inner
        self._call = call
        self._over = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        call = self._call
        while True:
            try:
                chunk = next(self._inner)
            except StopIteration:
                self._end(complete=True)
                raise
            except BaseException as exc:
                self._over = True
                call.failed(exc)
                raise
            call.chunk(chunk, self._inner)
            if call.strip_usage:
                chunk = _strip(chunk)
                if chunk is None:
                    continue
            return chunk

    def _end(self, *, complete: bool) -> None:
        if not self._over:
            self._over = True
            self._call.stream_over(self._inner, complete=complete)

    def close(self) -> None:
        self._end(complete=False)
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # never raise from a finaliser
            self._end(complete=False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncStream(_Stream):
    """The async twin of :class:`_Stream`."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        call = self._call
        while True:
            try:
                chunk = await self._inner.__anext__()
            except StopAsyncIteration:
                self._end(complete=True)
                raise
            except BaseException as exc:
                self._over = True
                call.failed(exc)
                raise
            call.chunk(chunk, self._inner)
            if call.strip_usage:
                chunk = _strip(chunk)
                if chunk is None:
                    continue
            return chunk

    async def aclose(self) -> None:
        self._end(complete=False)
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()


def wrap_stream(inner: Any, call: PendingCall) -> Any:
    """``inner``, feeding ``call`` and recording it at its end (or when left)."""
    return _Stream(inner, call)


def wrap_async_stream(inner: Any, call: PendingCall) -> Any:
    """The async twin of :func:`wrap_stream`."""
    return _AsyncStream(inner, call)


# -- cached answers played back ------------------------------------------------------------


def replay_response(body: dict[str, Any]) -> Any:
    """A stored whole response as litellm's ``ModelResponse``."""
    import litellm

    return litellm.ModelResponse(**body)


def _chunks(events: list[dict[str, Any]], strip: bool) -> list[Any]:
    import litellm

    out = []
    for obj in events:
        chunk = litellm.ModelResponseStream(**obj)
        if strip:
            chunk = _strip(chunk)
        if chunk is not None:
            out.append(chunk)
    return out


def replay_stream(events: list[dict[str, Any]], *, strip: bool) -> Iterator[Any]:
    """A stored stream's chunks as litellm's ``ModelResponseStream`` objects."""
    return iter(_chunks(events, strip))


async def replay_async_stream(events: list[dict[str, Any]], *, strip: bool) -> AsyncIterator[Any]:
    """The async twin of :func:`replay_stream`."""
    for chunk in _chunks(events, strip):
        yield chunk
