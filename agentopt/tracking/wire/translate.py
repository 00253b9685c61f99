"""Cross-provider forwarding: send a call to another wire format through litellm.

When a router sends an OpenAI-format call to an Anthropic model (or the
reverse), the pipeline cannot pass bytes through. The :class:`Translator`
calls litellm with the target model and converts the answer back to the
caller's wire format, streamed or not, so the caller's SDK never notices:

- OpenAI chat-completions callers: ``litellm.completion`` / ``acompletion``;
  the answer is litellm's OpenAI-shaped response (chunks become SSE events).
- Anthropic messages callers: the request is converted with litellm's
  Anthropic adapter, sent with ``litellm.completion``, and the answer (or the
  stream, as Anthropic SSE events) converted back by the same adapter.
- Gemini callers are not translated: the caller gets a 501 naming the limit.

Provider errors come back as HTTP errors in the caller's format, with the
provider's status. litellm is imported on first translation.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.tracking.providers import OFFICIAL_BASE_URLS, ProviderSpec

if TYPE_CHECKING:
    from agentopt.tracking.pipeline import Plan

__all__ = ["TRANSLATION_FAILED_HEADER", "Translator", "litellm_target"]

log = logging.getLogger("agentopt.tracking")

_SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
_JSON_HEADERS = {"content-type": "application/json"}
# Request keys that are not model parameters (transport or SDK details).
_DROP = frozenset({"model", "stream", "stream_options"})


def litellm_target(spec: ProviderSpec, model: str) -> tuple[str, str | None]:
    """litellm's model string and api_base for ``model`` at provider ``spec``."""
    official = OFFICIAL_BASE_URLS.get(spec.wire)
    api_base = None if spec.base_url == official else spec.base_url
    return f"{spec.wire}/{model}", api_base


def _api_key(spec: ProviderSpec) -> str | None:
    """``<NAME>_API_KEY`` for a registered provider, if the environment has it."""
    return os.environ.get(f"{spec.name.upper().replace('-', '_')}_API_KEY")


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


#: Set on a translation's error response when litellm itself failed (it could not
#: translate the request or the answer): no provider was at fault, so a retry
#: would fail the same way and the provider's health is not affected.
TRANSLATION_FAILED_HEADER = "x-agentopt-translation-failed"

# Where litellm's exception texts stop being a message and become debugging dumps.
_CUTS = (
    "Traceback (most recent call last)",
    "Received Messages=",
    "Received Model Group=",
    "This looks like a bug",
)


def _summary(exc: BaseException, secret: str | None) -> str:
    """One clean line saying what failed: the exception's name and message, without
    the traceback, request dump or advice litellm appends to its messages."""
    text = str(exc)
    for cut in _CUTS:
        text = text.split(cut, 1)[0]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = text.removeprefix("litellm.")
    name = type(exc).__name__
    if not text.startswith(name):
        text = f"{name}: {text}" if text else name
    if secret:
        text = text.replace(secret, "***")
    return text if len(text) <= 600 else text[:600] + "…"


def _litellm_failed(exc: BaseException) -> bool:
    """Whether litellm failed on its own (a Python error while translating), not
    because a provider answered with an error or could not be reached."""
    if isinstance(getattr(exc, "status_code", None), int) and type(exc).__name__ not in (
        "APIConnectionError",
        "InternalServerError",
    ):
        return False  # the provider (or litellm's request validation) said no: a real status
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError | TimeoutError | httpx.TransportError):
            return False
        if type(link).__module__.startswith(("aiohttp", "httpcore", "openai", "anthropic")):
            return False
        link = link.__cause__ or link.__context__
    return "Traceback (most recent call last)" in str(exc) or not isinstance(
        getattr(exc, "status_code", None), int
    )


def _error(
    plan: Plan, exc: BaseException, lib: ModuleType = httpx, secret: str | None = None
) -> Any:
    """The caller's error response for a failed translation: a clean JSON error in
    the caller's format naming the target; the traceback goes to the log only."""
    target = f"{plan.exchange.provider}/{plan.target_model}"
    summary = _summary(exc, secret)
    headers = dict(_JSON_HEADERS)
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or status < 400 or status > 599:
        status = 502
    if isinstance(exc, NotImplementedError):  # a limit of ours, said as such
        status = 501
        headers[TRANSLATION_FAILED_HEADER] = "1"
    else:
        trace = "".join(traceback.format_exception(exc))
        log.warning(
            "agentopt: translating a %s-format call to %s failed:\n%s",
            plan.exchange.wire,
            target,
            trace.replace(secret, "***") if secret else trace,
        )
        if _litellm_failed(exc):
            status = 500
            headers[TRANSLATION_FAILED_HEADER] = "1"
    message = (
        f"agentopt: translating this {plan.exchange.wire}-format call to {target} failed: {summary}"
    )
    kind = "api_error" if status >= 500 else "invalid_request_error"
    if plan.exchange.wire == "anthropic":
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"message": message, "type": kind, "code": status}}
    return lib.Response(status, headers=headers, content=json.dumps(body).encode())


def _sse_openai(chunks: Iterator[Any]) -> Iterator[bytes]:
    for chunk in chunks:
        yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _asse_openai(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


class _IterStream(httpx.SyncByteStream):
    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it

    def __iter__(self) -> Iterator[bytes]:
        yield from self._it

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class _AsyncIterStream(httpx.AsyncByteStream):
    def __init__(self, it: AsyncIterator[bytes]) -> None:
        self._it = it

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._it:
            yield chunk

    async def aclose(self) -> None:
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            await aclose()


def _flavour(cls: type[Any], base: type[Any]) -> type[Any]:
    """``cls`` made an instance of ``base`` too (for httpx forks' isinstance checks)."""
    if issubclass(cls, base):
        return cls
    return type(cls.__name__, (cls, base), {})


def _json_body(result: Any) -> bytes:
    if isinstance(result, dict):
        return json.dumps(result).encode()
    dump = getattr(result, "model_dump_json", None)
    if dump is not None:
        return dump().encode()
    return json.dumps(dict(result)).encode()


class Translator:
    """Forward a routed call to another provider through litellm.

    ``api_key_for(spec)`` supplies the target provider's key (default: the
    ``<NAME>_API_KEY`` environment variable)."""

    def __init__(self, api_key_for: Callable[[ProviderSpec], str | None] | None = None) -> None:
        self._api_key_for = api_key_for or _api_key

    def _secret(self, plan: Plan) -> str | None:
        """The key a translation of ``plan`` sends (kept out of its error texts)."""
        try:
            return self._api_key_for(plan.target) if plan.target is not None else None
        except Exception:
            return None

    def prepare(self) -> None:
        """Import litellm now (seconds, once), so that the pipeline does not time
        it as the provider's latency."""
        _litellm()

    def _kwargs(self, plan: Plan) -> tuple[str, dict[str, Any]]:
        assert plan.target is not None and plan.target_model is not None
        model, api_base = litellm_target(plan.target, plan.target_model)
        body = plan.body if isinstance(plan.body, dict) else {}
        kw = {k: v for k, v in body.items() if k not in _DROP}
        if api_base is not None:
            kw["api_base"] = api_base
        key = self._api_key_for(plan.target)
        if key is not None:
            kw["api_key"] = key
        if plan.exchange.stream:
            kw["stream"] = True
        return model, kw

    def _unsupported(self, plan: Plan) -> Exception | None:
        if plan.exchange.wire in ("openai", "anthropic") and "/responses" not in plan.exchange.url:
            return None
        return NotImplementedError(
            f"cross-provider routing from the {plan.exchange.wire} wire "
            f"({plan.exchange.url}) is not supported; route within the provider"
        )

    def _request(self, plan: Plan) -> tuple[str, dict[str, Any], dict[str, str] | None]:
        """litellm's model, ``completion`` kwargs and (Anthropic callers) the tool-name map."""
        model, kw = self._kwargs(plan)
        mapping: dict[str, str] | None = None
        if plan.exchange.wire == "anthropic":
            body = {k: v for k, v in (plan.body or {}).items() if k not in _DROP - {"model"}}
            req, mapping = _adapter().translate_anthropic_to_openai(body)
            transport: dict[str, Any] = {
                k: kw[k] for k in ("api_base", "api_key", "stream") if k in kw
            }
            kw = {**{k: v for k, v in dict(req).items() if k != "model"}, **transport}
        if plan.exchange.stream:
            kw["stream_options"] = {"include_usage": True}
        kw["drop_params"] = True
        return model, kw, mapping

    def _whole(
        self, plan: Plan, result: Any, mapping: dict[str, str] | None, lib: ModuleType
    ) -> Any:
        if plan.exchange.wire == "anthropic":
            answer = _adapter().translate_openai_response_to_anthropic(result, mapping)
            content = json.dumps(answer, default=_jsonable).encode()
        else:
            content = _json_body(result)
        return lib.Response(200, headers=_JSON_HEADERS, content=content)

    def send(self, plan: Plan, lib: ModuleType = httpx) -> Any:
        """The translated answer, in the caller's wire format (sync)."""
        from agentopt.tracking.capture.litellm_capture import calling_litellm

        bad = self._unsupported(plan)
        if bad is not None:
            return _error(plan, bad, lib)
        try:
            model, kw, mapping = self._request(plan)
            with calling_litellm():
                result = _litellm().completion(model=model, **kw)
        except Exception as exc:
            return _error(plan, exc, lib, self._secret(plan))
        if not plan.exchange.stream:
            return self._whole(plan, result, mapping, lib)
        if plan.exchange.wire == "anthropic":
            chunks = _anthropic_stream(result, plan, mapping).anthropic_sse_wrapper()
        else:
            chunks = _sse_openai(result)
        return lib.Response(
            200, headers=_SSE_HEADERS, stream=_flavour(_IterStream, lib.SyncByteStream)(chunks)
        )

    async def asend(self, plan: Plan, lib: ModuleType = httpx) -> Any:
        """The translated answer, in the caller's wire format (async)."""
        from agentopt.tracking.capture.litellm_capture import calling_litellm

        bad = self._unsupported(plan)
        if bad is not None:
            return _error(plan, bad, lib)
        try:
            model, kw, mapping = self._request(plan)
            with calling_litellm():
                result = await _litellm().acompletion(model=model, **kw)
        except Exception as exc:
            return _error(plan, exc, lib, self._secret(plan))
        if not plan.exchange.stream:
            return self._whole(plan, result, mapping, lib)
        if plan.exchange.wire == "anthropic":
            achunks = _anthropic_stream(result, plan, mapping).async_anthropic_sse_wrapper()
        else:
            achunks = _asse_openai(result)
        return lib.Response(
            200,
            headers=_SSE_HEADERS,
            stream=_flavour(_AsyncIterStream, lib.AsyncByteStream)(achunks),
        )


def _adapter() -> Any:
    _litellm()  # the environment it needs before its first import
    from litellm.llms.anthropic.pass_through.adapters.transformation import (
        LiteLLMAnthropicMessagesAdapter,
    )

    return LiteLLMAnthropicMessagesAdapter()


def _anthropic_stream(result: Any, plan: Plan, mapping: dict[str, str] | None) -> Any:
    _litellm()
    from litellm.llms.anthropic.pass_through.adapters.streaming_iterator import (
        AnthropicStreamWrapper,
    )

    return AnthropicStreamWrapper(
        completion_stream=result, model=plan.target_model or "", tool_name_mapping=mapping
    )


def _jsonable(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if dump is not None else str(obj)
