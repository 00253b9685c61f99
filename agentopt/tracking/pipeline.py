"""The one call path: route → cache → forward → record.

Every front-end that holds an HTTP request (the httpx transport wrapper, the
loopback gateway) hands it to a :class:`Pipeline`. Stable entry points::

    Pipeline.handle(request, session, send) -> httpx.Response
    await Pipeline.handle_async(request, session, async_send) -> httpx.Response

- ``request``: the ``httpx.Request`` as the caller made it (read or not).
- ``session``: the :class:`SessionInfo` whose ids the record carries, or None
  (the record then has no ids, and the call is not routed).
- ``send`` / ``async_send``: forwards a request upstream and returns the
  response **unread**, so that streams stream: a transport's
  ``handle_request``, or ``lambda r: client.send(r, stream=True)``.

The returned response streams the provider's bytes unchanged; the record is
made when its body ends or when it is closed, so the caller must consume or
close it (SDKs do). A request that is no LLM call (no provider matches) is
sent unchanged and not recorded. Nested capture is prevented by a ContextVar
set while forwarding (see :func:`bypass_capture`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.exceptions import RoutingError
from agentopt.tracking.capture.tee import (
    STRIP_USAGE,
    USAGE_ASKED,
    CallState,
    replay_headers,
    split_events,
    streams_for,
)
from agentopt.tracking.capture.usage_strip import (
    UsageStripper,
    ask_for_usage,
    asks_for_usage,
    is_chat_path,
    strip_events,
)
from agentopt.tracking.providers import ProviderRegistry, ProviderSpec
from agentopt.tracking.recorder import Exchange, Recorder, usage_or_unknown
from agentopt.tracking.routing import RouteState
from agentopt.tracking.session import SessionInfo
from agentopt.tracking.wire.parsing import (
    ParsedResponse,
    StreamParser,
    is_stream_request,
    parse_body,
    request_model,
    with_model,
)

if TYPE_CHECKING:
    from agentopt.tracking.storage.cache import Cache, CachedResponse
    from agentopt.tracking.wire.translate import Translator

__all__ = [
    "BODY_EXTENSION",
    "CALL_ID_EXTENSION",
    "AsyncSend",
    "Pipeline",
    "Plan",
    "Send",
    "bypass_capture",
    "capture_bypassed",
]

log = logging.getLogger("agentopt.tracking")

Send = Callable[[Any], Any]  # httpx.Request -> httpx.Response (unread)
AsyncSend = Callable[[Any], Awaitable[Any]]

_bypass: ContextVar[bool] = ContextVar("agentopt_bypass_capture", default=False)

#: A request extension a front-end may set to choose the record's ``call_id``
#: (the gateway daemon answers with it as ``x-agentopt-request-id``).
CALL_ID_EXTENSION = "agentopt.call_id"
#: A request extension a front-end that already decoded the request's JSON body
#: may set to that object (the pipeline then does not parse it again; it never
#: mutates it).
BODY_EXTENSION = "agentopt.body"


def capture_bypassed() -> bool:
    """True while the current context must not be captured again."""
    return _bypass.get()


@contextlib.contextmanager
def bypass_capture() -> Iterator[None]:
    """Within this block, httpx traffic is not captured (it is already being
    recorded by another front-end, e.g. litellm's own upstream calls)."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


@dataclass(slots=True)
class Plan:
    """One LLM call after routing: what to send, where, and under which cache key."""

    request: Any  # an httpx (or httpx-fork) Request
    body: Any
    exchange: Exchange
    cache_key: str | None
    target: ProviderSpec | None  # set when the call is translated to another provider
    target_model: str | None
    # the request (and body) as it was before we asked for usage: sent instead when
    # the provider refuses ``stream_options`` (see :meth:`Pipeline._unasked`)
    plain: tuple[Any, Any] | None = None


class Pipeline:
    """Route, cache, forward and record HTTP LLM calls."""

    def __init__(
        self,
        registry: ProviderRegistry,
        recorder: Recorder,
        routes: RouteState,
        cache: Cache | None = None,
        translator: Translator | None = None,
    ) -> None:
        self.registry = registry
        self.recorder = recorder
        self.routes = routes
        self.cache = cache
        self._translator = translator
        self._open: dict[int, CallState] = {}
        self._open_lock = threading.Lock()
        # endpoints that refused ``stream_options``: never asked again
        self._refuse_usage_ask: set[str] = set()

    # -- the two entry points -------------------------------------------------

    def handle(self, request: Any, session: SessionInfo | None, send: Send) -> Any:
        """Run one request through the pipeline (sync)."""
        if _bypass.get():
            return send(request)
        lib = _lib_of(request)
        url = request.url if lib is httpx else httpx.URL(str(request.url))
        spec = self.registry.match(request.method, url)
        if spec is None:
            return send(request)
        try:
            content = request.content
        except lib.RequestNotRead:
            content = request.read()
        plan = self._safe_plan(request, url, content, spec, session, lib)
        if plan is None:
            return send(request)
        hit = self._replay(plan, lib)
        if hit is not None:
            return hit
        target = plan.target
        if target is not None:
            self.translator.prepare()  # one-off set-up is not the provider's latency
        state = self._state(plan)
        token = _bypass.set(True)
        try:
            response = self.translator.send(plan, lib) if target is not None else send(plan.request)
            if self._may_refuse_usage_ask(plan, response):
                response.read()
                if self._refused_usage_ask(plan, response):
                    response.close()
                    response = send(self._unasked(plan))
        except BaseException as exc:
            state.fail(exc)
            raise
        finally:
            _bypass.reset(token)
        return self._watch(response, state, streams_for(lib)[0])

    async def handle_async(self, request: Any, session: SessionInfo | None, send: AsyncSend) -> Any:
        """Run one request through the pipeline (async)."""
        if _bypass.get():
            return await send(request)
        lib = _lib_of(request)
        url = request.url if lib is httpx else httpx.URL(str(request.url))
        spec = self.registry.match(request.method, url)
        if spec is None:
            return await send(request)
        try:
            content = request.content
        except lib.RequestNotRead:
            content = await request.aread()
        plan = self._safe_plan(request, url, content, spec, session, lib)
        if plan is None:
            return await send(request)
        hit = self._replay(plan, lib)
        if hit is not None:
            return hit
        if plan.target is not None:
            self.translator.prepare()  # one-off set-up is not the provider's latency
        state = self._state(plan)
        token = _bypass.set(True)
        try:
            if plan.target is not None:
                response = await self.translator.asend(plan, lib)
            else:
                response = await send(plan.request)
                if self._may_refuse_usage_ask(plan, response):
                    await response.aread()
                    if self._refused_usage_ask(plan, response):
                        await response.aclose()
                        response = await send(self._unasked(plan))
        except BaseException as exc:
            state.fail(exc)
            raise
        finally:
            _bypass.reset(token)
        return self._watch(response, state, streams_for(lib)[1])

    # -- a provider that refuses the usage we asked for -------------------------

    @staticmethod
    def _may_refuse_usage_ask(plan: Plan, response: Any) -> bool:
        return plan.plain is not None and response.status_code in (400, 422)

    def _refused_usage_ask(self, plan: Plan, response: Any) -> bool:
        """Whether the provider's error (a read 400/422) names the option we added:
        some OpenAI-compatible servers reject ``stream_options``. The caller did not
        send it, so the caller must not get that error."""
        body = response.content
        if b"stream_options" not in body and b"include_usage" not in body:
            return False
        self._refuse_usage_ask.add(_endpoint(plan.request.url))
        log.info(
            "agentopt: %s refuses stream_options; its streams are sent as the caller "
            "wrote them and recorded with unknown usage",
            _endpoint(plan.request.url),
        )
        return True

    @staticmethod
    def _unasked(plan: Plan) -> Any:
        """The request as it was before we asked for usage, for the same record."""
        assert plan.plain is not None
        request, body = plan.plain
        ex = plan.exchange
        ex.request_body = body
        ex.extra[STRIP_USAGE] = False
        ex.extra[USAGE_ASKED] = False
        return request

    # -- stages ---------------------------------------------------------------

    @property
    def translator(self) -> Translator:
        if self._translator is None:
            from agentopt.tracking.wire.translate import Translator

            self._translator = Translator()
        return self._translator

    def _safe_plan(
        self,
        request: Any,
        url: httpx.URL,
        content: bytes,
        spec: ProviderSpec,
        session: SessionInfo | None,
        lib: ModuleType,
    ) -> Plan | None:
        """:meth:`plan`, except that a tracker bug never breaks the caller's call:
        the request then goes out untracked (routing errors still reach the caller)."""
        try:
            return self.plan(request, url, content, spec, session, lib)
        except RoutingError:
            raise
        except Exception:
            log.exception("agentopt: could not plan a call to %s; sent untracked", url)
            return None

    def plan(
        self,
        request: Any,
        url: httpx.URL,
        content: bytes,
        spec: ProviderSpec,
        session: SessionInfo | None,
        lib: ModuleType = httpx,
    ) -> Plan:
        """Route the call and compute its cache key. ``url`` is ``request.url``
        as an ``httpx.URL``; ``lib`` is the request's httpx flavour."""
        body: Any = request.extensions.get(BODY_EXTENSION)
        if body is None:
            try:
                body = json.loads(content) if content else None
            except ValueError:
                body = None
        wire = spec.wire
        requested = request_model(wire, url, body)
        stream = is_stream_request(wire, url, body)
        model = requested
        provider = spec.name
        target: ProviderSpec | None = None
        target_model: str | None = None
        choice = self.routes.route(session, requested, body, spec.name)
        if choice:
            target, name = self.resolve_target(choice, spec)
            if target is None and name == requested:
                pass  # the caller's own model
            elif target is None:
                if isinstance(body, dict) or wire == "gemini":
                    url, body = with_model(wire, url, body if isinstance(body, dict) else {}, name)
                    request = _rebuilt(request, url, body, lib)
                    model = name
            else:
                model, target_model, provider = name, name, target.name
                url = httpx.URL(target.base_url + _ENDPOINT_PATHS.get(target.wire, ""))
        extra: dict[str, Any] = {}
        plain: tuple[Any, Any] | None = None
        path = url.path if target is None else "/chat/completions"
        if wire == "openai" and stream and is_chat_path(path) and isinstance(body, dict):
            # Usage not reported is unknown: ask for it, and hide it from a caller
            # that did not (see agentopt.tracking.capture.usage_strip); not from an
            # endpoint that refused the option once (then usage stays unknown).
            fuller = None if _endpoint(url) in self._refuse_usage_ask else ask_for_usage(path, body)
            if fuller is not None:
                extra[STRIP_USAGE] = True
                if target is None:
                    plain = (request, body)
                    body = fuller
                    request = _rebuilt(request, url, body, lib)
            extra[USAGE_ASKED] = fuller is not None or asks_for_usage(body)
        key = None
        if self.cache is not None and isinstance(body, dict):
            from agentopt.tracking.storage.cache import namespace_for

            endpoint = (
                f"{target.name}:{target_model}"
                if target is not None
                else f"{url.scheme}://{url.netloc.decode()}{url.path}"
            )
            try:
                key = self.cache.key(endpoint, body, namespace_for(request.headers, url))
            except Exception:
                log.exception("agentopt: could not compute a cache key")
        ex = Exchange(
            provider=provider,
            wire=wire,
            url=str(url),
            request_body=body if body is not None else _text(content),
            requested_model=requested,
            model=model,
            stream=stream,
            session=session,
            call_id=request.extensions.get(CALL_ID_EXTENSION),
            alias=getattr(session, "alias", None),
            extra=extra,
        )
        return Plan(request, body, ex, key, target, target_model, plain)

    def resolve_target(self, choice: str, spec: ProviderSpec) -> tuple[ProviderSpec | None, str]:
        """Where a routed model lives. ``"name/model"``, where ``name`` is a
        registered provider at another endpoint or with another wire format than
        the caller's, sends the call there (translated through litellm); any
        other answer is a model of the caller's own provider."""
        prefix, sep, rest = choice.partition("/")
        if sep and rest:
            other = self.registry.by_name(prefix)
            if other is not None:
                same = other.wire == spec.wire and (
                    other.name == spec.name or other.base_url == spec.base_url
                )
                return (None, rest) if same else (other, rest)
        return None, choice

    def _state(self, plan: Plan) -> CallState:
        state = CallState(
            plan.exchange,
            self.recorder,
            cache=self.cache if plan.cache_key is not None else None,
            cache_key=plan.cache_key,
            on_done=self._done,
        )
        with self._open_lock:
            self._open[id(state)] = state
        return state

    def _done(self, state: CallState) -> None:
        with self._open_lock:
            self._open.pop(id(state), None)

    def _watch(self, response: Any, state: CallState, tee: type[Any]) -> Any:
        state.begin(response)
        strip = None
        if state.exchange.extra.get(STRIP_USAGE) and _is_event_stream(response):
            strip = UsageStripper()
        if hasattr(response, "_content"):  # already read (mock transports, translations)
            state.whole(response.content)
            state.finish(complete=True)
            if strip is not None:
                response._content = strip.feed(response.content) + strip.flush()
                if "content-length" in response.headers:
                    response.headers["content-length"] = str(len(response._content))
            return response
        if strip is not None:  # the caller gets decoded, rewritten bytes
            for name in ("content-encoding", "content-length"):
                if name in response.headers:
                    del response.headers[name]
        response.stream = tee(response.stream, state, strip)
        return response

    def _replay(self, plan: Plan, lib: ModuleType = httpx) -> Any:
        """The cached response for ``plan`` (and its record), or None on a miss."""
        if self.cache is None or plan.cache_key is None:
            return None
        try:
            hit = self.cache.get(plan.cache_key)
        except Exception:
            log.exception("agentopt: could not read the response cache")
            return None
        if hit is None or (plan.exchange.stream and not hit.streamed):
            return None  # a whole body cannot be replayed as a stream: miss, then stored
        parsed = self._parse_hit(plan.exchange, hit)
        if hit.streamed and not plan.exchange.stream:
            # A stored stream answers a non-streamed request with its assembled body.
            if parsed.error is not None or not isinstance(parsed.body, dict):
                return None
            body = json.dumps(parsed.body).encode()
            self._record_hit(plan.exchange, hit, parsed, stream=False)
            headers = [
                (k, v) for k, v in replay_headers(hit.headers) if k.lower() != "content-type"
            ]
            headers.append(("content-type", "application/json"))
            return lib.Response(hit.status_code, headers=headers, content=body)
        self._record_hit(plan.exchange, hit, parsed, stream=hit.streamed)
        headers = replay_headers(hit.headers)
        if hit.streamed:
            replay = streams_for(lib)[2]
            events = split_events(hit.body)
            if plan.exchange.extra.get(STRIP_USAGE):
                events = list(strip_events(events))
            return lib.Response(hit.status_code, headers=headers, stream=replay(events))
        return lib.Response(hit.status_code, headers=headers, content=hit.body)

    @staticmethod
    def _parse_hit(ex: Exchange, hit: CachedResponse) -> ParsedResponse:
        if hit.streamed:
            parser = StreamParser(ex.wire)  # type: ignore[arg-type]
            parser.feed_all(hit.body)
            return parser.finish(complete=True)
        return parse_body(ex.wire, hit.status_code, hit.body)  # type: ignore[arg-type]

    def _record_hit(
        self, ex: Exchange, hit: CachedResponse, parsed: ParsedResponse, *, stream: bool
    ) -> None:
        self.recorder.record(
            ex,
            status_code=hit.status_code,
            model=hit.model or parsed.model,
            usage=usage_or_unknown(parsed.usage, parsed.usage_found, hit.status_code),
            response_body=parsed.body,
            latency_seconds=hit.latency_seconds,
            ttft_seconds=hit.ttft_seconds if stream else None,
            cached=True,
            error=parsed.error,
        )

    def finish_open(self) -> int:
        """Record every call still streaming as abandoned (used by ``stop()``)."""
        with self._open_lock:
            states = list(self._open.values())
        for s in states:
            s.finish(complete=False)
        return len(states)


# The endpoint a translated call reaches, under the target's base URL (for records).
_ENDPOINT_PATHS = {"openai": "/chat/completions", "anthropic": "/v1/messages"}


def _lib_of(obj: object) -> ModuleType:
    """The httpx flavour an object comes from (``httpx``, or a fork like ``httpx2``)."""
    name = type(obj).__module__.partition(".")[0]
    if name == "httpx":
        return httpx
    return sys.modules.get(name, httpx)


def _rebuilt(request: Any, url: httpx.URL, body: dict[str, Any], lib: ModuleType) -> Any:
    headers = lib.Headers(request.headers)
    for name in ("content-length", "transfer-encoding"):
        if name in headers:
            del headers[name]
    content = json.dumps(body, separators=(",", ":")).encode()
    return lib.Request(
        request.method,
        url if lib is httpx else str(url),
        headers=headers,
        content=content,
        extensions={**request.extensions, BODY_EXTENSION: body},
    )


def _is_event_stream(response: Any) -> bool:
    ctype = response.headers.get("content-type", "")
    return bool(response.status_code < 400 and "event-stream" in ctype)


def _text(content: bytes) -> str | None:
    if not content:
        return None
    return content[:2000].decode("utf-8", "replace")


def _endpoint(url: Any) -> str:
    """scheme://host:port/path of a request URL (no query)."""
    u = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    return f"{u.scheme}://{u.netloc.decode()}{u.path}"
