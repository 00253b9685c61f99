"""The daemon's data plane: OpenAI- and Anthropic-compatible endpoints.

``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``,
``/v1/messages`` and ``/v1/messages/count_tokens`` resolve the model name
(alias, ``provider/model`` or bare name), then hand the call to the shared
:class:`~agentopt.tracking.pipeline.Pipeline`, which passes it through to a
provider of the caller's wire format or translates it through litellm to
another, and records it. The caller always gets its own format back.

Every response carries ``x-agentopt-request-id`` (the record's ``call_id``);
a non-streamed JSON answer also carries ``_cost`` (USD, null when unpriced),
``_latency_ms``, ``_request_id`` and ``_routing``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from agentopt.gateway.asgi import (
    HOP_HEADERS,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    error,
    read_body,
    respond_json,
)
from agentopt.gateway.resolve import GatewayError, Target
from agentopt.gateway.upstream_http import UpstreamClient
from agentopt.tracking.pipeline import BODY_EXTENSION, CALL_ID_EXTENSION
from agentopt.tracking.redact import scrub_url
from agentopt.tracking.wire.translate import TRANSLATION_FAILED_HEADER

if TYPE_CHECKING:
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.sessions import DaemonSession

__all__ = ["ENDPOINTS", "DataPlane", "Endpoint"]

log = logging.getLogger("agentopt.gateway")


@dataclass(frozen=True, slots=True)
class Endpoint:
    wire: str  # the caller's wire format
    suffix: str  # appended to the provider's base URL
    translatable: bool  # may go to a provider of the other wire (through litellm)


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("openai", "/chat/completions", True),
    "/v1/responses": Endpoint("openai", "/responses", False),
    "/v1/embeddings": Endpoint("openai", "/embeddings", False),
    "/v1/messages": Endpoint("anthropic", "/v1/messages", True),
    "/v1/messages/count_tokens": Endpoint("anthropic", "/v1/messages/count_tokens", False),
}

#: Request headers that steer the daemon and never go upstream.
ID_HEADERS = {
    "x-agentopt-data-id": "data_id",
    "x-agentopt-combo-id": "combo_id",
    "x-agentopt-agent-id": "agent_id",
}
_DROP = HOP_HEADERS | {"accept-encoding"}
_OFFICIAL = {"openai": "openai", "anthropic": "anthropic"}


def _new_id() -> str:
    return os.urandom(16).hex()


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers, names lower-cased (a repeated header keeps its last value)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class DataPlane:
    """Serves the provider endpoints of :data:`ENDPOINTS` for one :class:`Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._client: UpstreamClient | None = None
        self._urls: dict[str, httpx.URL] = {}

    def client(self) -> UpstreamClient:
        """The upstream client (its connection pool is made in the serving loop)."""
        if self._client is None:
            t = self.daemon.config.resilience.timeouts
            # read: the longest silence between two chunks (the first byte has its
            # own limit in _attempts)
            self._client = UpstreamClient(connect=t.connect, read=t.idle)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- GET /v1/models ------------------------------------------------------------

    async def models(self, send: Send) -> None:
        d = self.daemon
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "agentopt-alias"}
            for name in sorted(d.aliases)
        ]
        seen = set(d.aliases)
        for a in d.aliases.values():
            for t in a.targets:
                if t not in seen:
                    seen.add(t)
                    data.append({"id": t, "object": "model", "created": 0, "owned_by": "agentopt"})
        await respond_json(send, 200, {"object": "list", "data": data})

    # -- the LLM endpoints -----------------------------------------------------------

    async def call(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        endpoint: Endpoint,
        session: DaemonSession | None = None,
    ) -> None:
        d = self.daemon
        wire = endpoint.wire
        headers = headers_of(scope)
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        limit = d.config.max_body_bytes
        try:
            if declared > limit:
                raise BodyTooLarge(declared)
            body = await read_body(receive, limit)
        except BodyTooLarge:
            await error(
                send,
                413,
                f"agentopt gateway: request body larger than {limit} bytes "
                "(raise max_body_bytes in the config)",
                kind="request_too_large",
                wire=wire,
            )
            return
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            await error(
                send,
                400,
                "agentopt gateway: the body must be a JSON object with a string 'model'",
                kind="invalid_request_error",
                wire=wire,
            )
            return
        requested: str = data["model"]
        ids = {v: headers.get(k) or None for k, v in ID_HEADERS.items()}
        if session is None:
            token = headers.get("x-agentopt-session")
            if token:
                session = d.sessions.get(token)
                if session is None:
                    await error(send, 403, "agentopt gateway: unknown or ended session", wire=wire)
                    return
        session_ids = {**(session.ids() if session else {}), **{k: v for k, v in ids.items() if v}}
        pinned = headers.get("x-agentopt-route")
        try:
            if not pinned and not (session and session.alias) and requested not in d.aliases:
                pinned = d.policy_choice(session, session_ids, requested, data, wire)
            if pinned:  # a remote tracker's own router, or a policy router, already chose
                alias = None
                targets = [d.targets(pinned, wire, data, session_ids, None)[1][0]]
            else:
                alias, targets = d.targets(
                    requested, wire, data, session_ids, session.alias if session else None
                )
        except GatewayError as exc:
            await error(send, exc.status, f"agentopt gateway: {exc}", kind=exc.kind, wire=wire)
            return
        await self._attempts(
            send, endpoint, headers, body, data, requested, alias, targets, session, ids
        )

    async def _attempts(
        self,
        send: Send,
        endpoint: Endpoint,
        headers: dict[str, str],
        body: bytes,
        data: dict[str, Any],
        requested: str,
        alias: Any,
        targets: list[Target],
        session: DaemonSession | None,
        ids: dict[str, str | None],
    ) -> None:
        """Try the targets in order: each with its retry policy (backoff, Retry-After),
        the next one after retries run out, on a connection error or time-out, or on
        a context-length error; a target whose breaker is open is skipped unless it
        is the last. Every attempt is its own record, linked by ``request_id`` (the
        ``x-agentopt-request-id`` the caller gets). Nothing is retried once a byte
        of the response has been sent to the caller."""
        d = self.daemon
        wire = endpoint.wire
        health = d.health_registry
        first_byte = d.config.resilience.timeouts.first_byte
        request_id = _new_id()
        fallback_from: str | None = None
        why_not: list[dict[str, Any]] = []
        response: Any = None
        call_id = ""
        attempt = 0
        target = targets[0]
        for i, target in enumerate(targets):
            last = i == len(targets) - 1
            backend = d.backend(target)
            if not last and not health.available(backend):
                why_not.append({"target": target.choice, "reason": "circuit breaker open"})
                fallback_from = fallback_from or target.choice
                continue
            policy = d.retry_policy(alias, target)
            tries = 0
            next_target = False
            while True:
                tries += 1
                attempt += 1
                call_id = request_id if attempt == 1 else _new_id()
                try:
                    request, pinned = self._request(
                        endpoint, headers, body, data, requested, target
                    )
                except GatewayError as exc:
                    await error(
                        send, exc.status, f"agentopt gateway: {exc}", kind=exc.kind, wire=wire
                    )
                    return
                cs = d.call_session(
                    session, ids, call_id, alias, pinned, request_id=request_id, attempt=attempt
                )
                request.extensions[CALL_ID_EXTENSION] = call_id
                d.wait_for(call_id)
                try:
                    response = await _within(
                        d.pipeline.handle_async(request, cs, self.client().send),
                        first_byte,
                    )
                except (httpx.HTTPError, TimeoutError) as exc:
                    d.take_record(call_id)
                    timed_out = isinstance(exc, TimeoutError | httpx.TimeoutException)
                    reason = "timeout" if timed_out else f"{type(exc).__name__}"
                    health.record(backend, False, reason)
                    decision = policy.decide(
                        attempt=tries, connection_error=not timed_out, timeout=timed_out
                    )
                    if decision.retry and not (not last and not health.available(backend)):
                        await asyncio.sleep(decision.delay)
                        continue
                    if not last:
                        why_not.append({"target": target.choice, "reason": reason})
                        fallback_from = fallback_from or target.choice
                        next_target = True
                        break
                    if isinstance(exc, TimeoutError):
                        exc = httpx.ReadTimeout(f"no response within {first_byte:g} s")
                    await self._upstream_failed(send, exc, target, call_id, wire)
                    return
                status = response.status_code
                if status < 400:
                    broken = await _broken_body(response)
                    if broken is None:
                        health.record(backend, True)
                        break
                    # a 200 whose body was cut or is not JSON: nothing reached the
                    # caller yet, so it is a failed attempt like any other
                    await response.aclose()
                    d.take_record(call_id)
                    health.record(backend, False, broken)
                    decision = policy.decide(attempt=tries, connection_error=True)
                    if decision.retry and (last or health.available(backend)):
                        await asyncio.sleep(decision.delay)
                        continue
                    if not last:
                        why_not.append({"target": target.choice, "reason": broken})
                        fallback_from = fallback_from or target.choice
                        next_target = True
                        break
                    await self._upstream_failed(
                        send, httpx.RemoteProtocolError(broken), target, call_id, wire
                    )
                    return
                if response.headers.get(TRANSLATION_FAILED_HEADER):
                    # litellm could not translate the call: no provider is at fault and
                    # a retry would fail the same way; another target may still answer
                    if not last:
                        await response.aclose()
                        d.take_record(call_id)
                        why_not.append(
                            {
                                "target": target.choice,
                                "reason": "translation failed",
                                "status": status,
                            }
                        )
                        fallback_from = fallback_from or target.choice
                        next_target = True
                    break
                retryable = policy.retryable_status(status)
                if retryable:
                    health.record(backend, False, f"HTTP {status}")
                decision = policy.decide(
                    attempt=tries, status=status, headers=dict(response.headers)
                )
                if decision.retry and (last or health.available(backend)):
                    await response.aclose()
                    d.take_record(call_id)
                    await asyncio.sleep(decision.delay)
                    continue
                if not last and (retryable or await _context_length(response)):
                    await response.aclose()
                    d.take_record(call_id)
                    why_not.append(
                        {"target": target.choice, "reason": f"HTTP {status}", "status": status}
                    )
                    fallback_from = fallback_from or target.choice
                    next_target = True
                break
            if not next_target:
                break
        if alias is not None:
            d.remember_route(request_id, alias, target.choice, session_ids_data(session, ids))
        routing = {
            "alias": alias.name if alias is not None else None,
            "requested": requested,
            "selected_model": target.choice,
            "router": alias.router_name if alias is not None else None,
            "fallback_from": fallback_from,
            "attempts": attempt,
            "not_answered_by": why_not,
        }
        await self._relay(send, response, call_id, routing, target, wire, request_id=request_id)

    def _request(
        self,
        endpoint: Endpoint,
        headers: dict[str, str],
        body: bytes,
        data: dict[str, Any],
        requested: str,
        target: Target,
    ) -> tuple[httpx.Request, str | None]:
        """The upstream request for ``target`` and the choice the route stage applies."""
        d = self.daemon
        spec = target.spec
        pinned: str | None = None
        parsed: dict[str, Any] | None = data  # the JSON of ``body``
        if spec.wire == endpoint.wire:
            if target.model != requested:
                pinned = target.choice
                if not _recorded(endpoint):  # no route stage: rewrite the model here
                    body = json.dumps({**data, "model": target.model}).encode()
                    pinned = parsed = None
            entry = spec
        else:
            if not endpoint.translatable:
                raise GatewayError(
                    400,
                    f"{endpoint.suffix} cannot be translated to {target.choice!r} "
                    f"(a {spec.wire} provider); choose a {endpoint.wire} model",
                )
            entry = d.registry.by_name(_OFFICIAL[endpoint.wire])  # type: ignore[assignment]
            pinned = target.choice
        out, _ = d.keys.outgoing(
            {
                k: v
                for k, v in headers.items()
                if k not in _DROP and not k.startswith("x-agentopt-")
            },
            entry,
        )
        out.append(("accept-encoding", "identity"))
        request = httpx.Request(
            "POST", self._url(entry.base_url + endpoint.suffix), headers=out, content=body
        )
        if parsed is not None:
            request.extensions[BODY_EXTENSION] = parsed
        return request, pinned

    def _url(self, text: str) -> httpx.URL:
        """``httpx.URL(text)``, parsed once per upstream endpoint (parsing is slow)."""
        url = self._urls.get(text)
        if url is None:
            if len(self._urls) > 1024:  # providers registered at run time: stay bounded
                self._urls.clear()
            url = self._urls[text] = httpx.URL(text)
        return url

    async def _upstream_failed(
        self, send: Send, exc: httpx.HTTPError, target: Target, call_id: str, wire: str
    ) -> None:
        where = scrub_url(target.spec.base_url)
        msg = f"agentopt gateway: upstream {where} failed: {type(exc).__name__}: {exc}"
        await error(
            send,
            504 if isinstance(exc, httpx.TimeoutException) else 502,
            self.daemon.scrub(msg),
            kind="upstream_error",
            wire=wire,
            headers=[(b"x-agentopt-request-id", call_id.encode())],
        )

    async def _relay(
        self,
        send: Send,
        response: Any,
        call_id: str,
        routing: dict[str, Any],
        target: Target,
        wire: str,
        *,
        request_id: str | None = None,
    ) -> None:
        d = self.daemon
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"
        ]
        out.append((b"x-agentopt-request-id", (request_id or call_id).encode()))
        ctype = response.headers.get("content-type", "")
        if "event-stream" not in ctype:
            try:
                content = await response.aread()
            except httpx.HTTPError as exc:
                d.take_record(call_id)
                await self._upstream_failed(send, exc, target, call_id, wire)
                return
            finally:
                await response.aclose()
            rec = d.take_record(call_id)
            if rec is not None and d.config.commit_before_answer:
                await d.commit_records()
            if "json" in ctype and response.status_code < 300:
                content = _with_extras(content, rec, request_id or call_id, routing)
            out.append((b"content-length", str(len(content)).encode()))
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": out}
            )
            await send({"type": "http.response.body", "body": content})
            return
        d.take_record(call_id)  # a stream's record comes when it ends; nobody waits for it
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        try:
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            # The status line is gone: end the body; the record says what broke.
            log.warning(
                "agentopt gateway: upstream stream from %s broke: %s",
                scrub_url(target.spec.base_url),
                d.scrub(f"{type(exc).__name__}: {exc}"),
            )
        except OSError:  # the client went away; the record says the stream was abandoned
            return
        finally:
            await response.aclose()
        try:
            await send({"type": "http.response.body", "body": b""})
        except OSError:
            return

    # -- a session's pass-through (/s/<token>/<upstream>/<path>) ---------------------

    async def passthrough(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        url: str,
        spec: Any,
        session: DaemonSession,
    ) -> None:
        """Forward a session's call to the upstream it was registered for,
        through the pipeline (routed by the ``x-agentopt-route`` header a remote
        tracker's router sets, or by the session's alias)."""
        d = self.daemon
        wire = spec.wire
        headers = headers_of(scope)
        try:
            body = await read_body(receive, d.config.max_body_bytes)
        except BodyTooLarge:
            await error(send, 413, "agentopt gateway: request body too large", wire=wire)
            return
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        requested = data.get("model") if isinstance(data, dict) else None
        pinned = headers.get("x-agentopt-route") or None
        alias = None
        choice = pinned or (requested if isinstance(requested, str) else "")
        if pinned is None and session.alias and isinstance(requested, str):
            try:
                alias, targets = d.targets(requested, wire, data, session.ids(), session.alias)
            except GatewayError as exc:
                await error(send, exc.status, f"agentopt gateway: {exc}", kind=exc.kind, wire=wire)
                return
            pinned = choice = targets[0].choice
        elif pinned is None and isinstance(requested, str):
            try:
                pinned = d.policy_choice(session, session.ids(), requested, data, spec.name)
            except GatewayError as exc:
                await error(send, exc.status, f"agentopt gateway: {exc}", kind=exc.kind, wire=wire)
                return
            choice = pinned or choice
        call_id = _new_id()
        cs = d.call_session(session, {}, call_id, alias, pinned)
        out = [
            (k, v) for k, v in headers.items() if k not in _DROP and not k.startswith("x-agentopt-")
        ]
        out.append(("accept-encoding", "identity"))
        request = httpx.Request(
            scope["method"],
            url,
            headers=out,
            content=body,
            extensions={CALL_ID_EXTENSION: call_id},
        )
        target = Target(choice, spec, choice)
        d.wait_for(call_id)
        try:
            response = await d.pipeline.handle_async(request, cs, self.client().send)
        except httpx.HTTPError as exc:
            d.take_record(call_id)
            await self._upstream_failed(send, exc, target, call_id, wire)
            return
        if alias is not None:
            d.remember_route(call_id, alias, choice, session.data_id)
        routing = {
            "alias": alias.name if alias is not None else None,
            "requested": requested,
            "selected_model": pinned or requested,
            "router": alias.router_name if alias is not None else None,
            "fallback_from": None,
        }
        await self._relay(send, response, call_id, routing, target, wire)


def _recorded(endpoint: Endpoint) -> bool:
    return not endpoint.suffix.endswith("/count_tokens")


def session_ids_data(session: DaemonSession | None, ids: Mapping[str, str | None]) -> str | None:
    return ids.get("data_id") or (session.data_id if session is not None else None)


def _with_extras(content: bytes, rec: Any, call_id: str, routing: dict[str, Any]) -> bytes:
    """The JSON object ``content`` with the daemon's fields appended (no re-parse)."""
    stripped = content.rstrip()
    if not stripped.startswith(b"{") or not stripped.endswith(b"}"):
        return content
    extras = {
        "_cost": None if rec is None else rec.cost_usd,
        "_latency_ms": None if rec is None else round(rec.latency_seconds * 1000, 3),
        "_request_id": call_id,
        "_routing": routing,
    }
    head = stripped[:-1].rstrip()
    sep = b"" if head.endswith(b"{") else b","
    return head + sep + json.dumps(extras)[1:].encode()


_CONTEXT_LENGTH = (
    b"context_length_exceeded",
    b"maximum context length",
    b"context window",
    b"prompt is too long",
    b"too many tokens",
)


async def _context_length(response: Any) -> bool:
    """Is this error response a context-length error (worth another target)?
    Reads the (small) error body; the response is closed by the caller."""
    if response.status_code not in (400, 413, 422):
        return False
    try:
        content = await response.aread()
    except httpx.HTTPError:
        return False
    low = content.lower()
    return any(p in low for p in _CONTEXT_LENGTH)


async def _broken_body(response: Any) -> str | None:
    """For a non-streamed answer: read it now (the relay reuses it) and say why it
    is unusable (cut short, not the JSON it claims to be), or None when it is fine."""
    ctype = response.headers.get("content-type", "")
    if "event-stream" in ctype:
        return None
    try:
        content = await response.aread()
    except httpx.HTTPError as exc:
        return f"body cut short ({type(exc).__name__})"
    if "json" in ctype:
        try:
            json.loads(content)
        except ValueError:
            return "body is not valid JSON"
    return None


async def _within(call: Coroutine[Any, Any, Any], seconds: float) -> Any:
    """``await call`` for at most ``seconds``; past that it is cancelled *with the
    reason*, so the attempt's record says it timed out (not a bare cancellation),
    and TimeoutError is raised here."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:  # the caller went away: so does the attempt
        task.cancel()
        raise
    if done or not task.cancel(f"TimeoutError: no response within {seconds:g} s"):
        return task.result()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # this request itself is being cancelled too
    raise TimeoutError(f"no response within {seconds:g} s")
