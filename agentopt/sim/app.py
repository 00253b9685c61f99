"""The simulator as a raw ASGI app (no framework: routing is three string compares).

Every world model answers on every wire format, like a multi-provider gateway:
OpenAI ``POST /v1/chat/completions`` and ``POST /v1/responses``, Anthropic
``POST /v1/messages`` (with or without the ``/v1`` prefix), plus
``GET /v1/models`` and ``GET /health``. Any other path is a 404 ``not found``.

A request header ``x-sim-fault: 429|500|529|…|hang|drop|truncate|malformed``
forces a fault on that one request, whatever the world says; tests use it.
Successful responses carry ``x-sim-model`` (the canonical model name),
``x-sim-ttft-ms`` and ``x-sim-latency-ms`` (the modelled, unscaled timing) and,
for a known task question, ``x-sim-correct: 1|0``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from agentopt.sim import wire_anthropic, wire_openai, wire_responses
from agentopt.sim.engine import Reply, SimRequest, answer, estimate_tokens, tools_tokens
from agentopt.sim.faults import FaultInjector, fault_message
from agentopt.sim.wire import BadRequest, Event
from agentopt.sim.world import SimModel, World, load_world

__all__ = ["SimApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_OPENAI, _ANTHROPIC, _RESPONSES = "openai", "anthropic", "responses"
_ROUTES = {
    "/v1/chat/completions": _OPENAI,
    "/chat/completions": _OPENAI,
    "/v1/responses": _RESPONSES,
    "/responses": _RESPONSES,
    "/v1/messages": _ANTHROPIC,
    "/messages": _ANTHROPIC,
}
_WIRES: dict[str, Any] = {
    _OPENAI: wire_openai,
    _ANTHROPIC: wire_anthropic,
    _RESPONSES: wire_responses,
}
_ID_PREFIX = {_OPENAI: "chatcmpl-sim", _ANTHROPIC: "msg_sim", _RESPONSES: "resp_sim"}


class SimApp:
    """ASGI app serving a :class:`World`. ``stats`` counts requests by outcome."""

    def __init__(
        self, world: World, *, time_scale: float = 1.0, clock: Callable[[], float] | None = None
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self.world = world
        self.time_scale = float(time_scale)
        self.clock = clock or time.time  # the ``created`` stamps (fixed: byte-identical runs)
        self.stats: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self.faults = FaultInjector(world.seed, self.stats)
        self._replay: Any = None
        if world.replay:
            from agentopt.sim.replay import ReplayAnswerer

            self._replay = ReplayAnswerer(world)
        self._models_body = self._render_models()
        self._lookup: dict[str, SimModel | None] = {}

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Wake every hanging request (call from the server's loop)."""
        self.faults.release()

    def _render_models(self) -> tuple[bytes, bytes]:
        created = 1_700_000_000
        oai = {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "created": created, "owned_by": m.provider}
                for m in self.world.models
            ],
        }
        ant = {
            "data": [
                {
                    "type": "model",
                    "id": m.name,
                    "display_name": m.published_as or m.name,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                for m in self.world.models
            ],
            "has_more": False,
            "first_id": self.world.models[0].name if self.world.models else None,
            "last_id": self.world.models[-1].name if self.world.models else None,
        }
        return json.dumps(oai).encode(), json.dumps(ant).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    @staticmethod
    async def _respond(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        hdrs = [*(headers or _JSON), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    async def _error(
        self,
        send: Send,
        fmt: str,
        status: int,
        message: str,
        param: str | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.stats[f"error_{status}"] += 1
        body = _WIRES[fmt].error_body(status, message, param)
        await self._respond(send, status, body, [*_JSON, *(extra or [])])

    # ------------------------------------------------------------------ routing
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        fmt = _ROUTES.get(path)
        if fmt is not None and method == "POST":
            await self._completion(scope, send, fmt, await _read_body(receive))
            return
        if method == "POST" and path in ("/v1/messages/count_tokens", "/messages/count_tokens"):
            await self._count_tokens(receive, send)
            return
        if method == "GET" and path in ("/v1/models", "/models"):
            headers = dict(scope["headers"])
            is_anthropic = b"anthropic-version" in headers
            await self._respond(send, 200, self._models_body[1 if is_anthropic else 0])
            return
        if method == "GET" and path in ("/health", "/"):
            await self._respond(send, 200, b'{"status":"ok"}')
            return
        if fmt is not None:
            await self._error(send, _OPENAI, 405, f"{method} {path}: method not allowed")
            return
        self.stats["error_404"] += 1
        anthropic = b"anthropic-version" in dict(scope["headers"])
        await self._respond(send, 404, _not_found(method, path, anthropic))

    async def _count_tokens(self, receive: Receive, send: Send) -> None:
        """Anthropic's token counter: the same estimate the messages endpoint reports."""
        raw = await _read_body(receive)
        try:
            req = wire_anthropic.parse({"max_tokens": 1, **json.loads(raw)})
        except (ValueError, TypeError) as exc:
            await self._error(send, _ANTHROPIC, 400, str(exc))
            return
        n = estimate_tokens(req.text, req.n_messages) + tools_tokens(req.tools)
        await self._respond(send, 200, b'{"input_tokens":%d}' % n)

    # ------------------------------------------------------------------ completions
    async def _completion(self, scope: Scope, send: Send, fmt: str, raw: bytes) -> None:
        wire = _WIRES[fmt]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            body = json.loads(raw)
        except ValueError as exc:
            await self._error(send, fmt, 400, f"malformed JSON in the request body: {exc}")
            return
        if self.world.require_key is True and not _has_key(headers, fmt):
            await self._error(send, fmt, 401, _missing_key(fmt))
            return
        try:
            req: SimRequest = wire.parse(body)
        except BadRequest as exc:
            await self._error(send, fmt, 400, str(exc), exc.param)
            return
        model = self._lookup.get(req.model)
        if model is None:
            model = self.world.get(req.model)
            if len(self._lookup) < 4096:
                self._lookup[req.model] = model
        if model is None:
            msg = f"The model `{req.model}` does not exist or you do not have access to it."
            await self._error(send, fmt, 404, msg, "model")
            return
        if self.world.needs_key(model) and not _has_key(headers, fmt):
            await self._error(send, fmt, 401, _missing_key(fmt))
            return
        if not model.accepts_stream_options and fmt == _OPENAI and "stream_options" in body:
            msg = "Unrecognized request argument supplied: stream_options"
            await self._error(send, fmt, 400, msg, "stream_options")
            return

        fault = self.faults.draw(model, headers.get(b"x-sim-fault"))
        if fault is not None and fault.isdigit():
            status = int(fault)
            extra = []
            if status == 429:
                after = model.faults.retry_after_s * self.time_scale
                extra = [
                    (b"retry-after", f"{after:g}".encode()),
                    (b"retry-after-ms", str(round(after * 1000)).encode()),
                ]
            await self._error(send, fmt, status, fault_message(status, model.name), None, extra)
            return
        if fault == "hang":
            await self.faults.hang(model.faults.hang_s)
        if fault == "drop":
            await _drop(send)
            return

        reply, error = self._answer(model, req)
        if error is not None:
            await self._error(send, fmt, error[0], error[1])
            return
        assert reply is not None
        rid = _request_id(fmt, next(self._ids))
        created = int(self.clock())
        extra = [
            (b"x-request-id", rid.encode()),
            (b"x-sim-model", model.name.encode("ascii", "replace")),
            (b"x-sim-ttft-ms", b"%.1f" % (reply.ttft_s * 1000)),
            (b"x-sim-latency-ms", b"%.1f" % (reply.duration_s * 1000)),
        ]
        if reply.correct is not None:
            extra.append((b"x-sim-correct", b"1" if reply.correct else b"0"))
        if fault is None or fault == "hang":
            self.stats["ok"] += 1
        echo = {"echo": req.echo} if fmt == _RESPONSES else {}
        if req.stream:
            events = wire.render_stream(reply, req.model, rid, created, req.include_usage, **echo)
            await self._stream(send, events, extra, fault, wire.MALFORMED_EVENT)
            return
        data = wire.render(reply, req.model, rid, created, **echo)
        delay = reply.duration_s * self.time_scale
        if delay > 0:
            await asyncio.sleep(delay)
        if fault == "malformed":
            data = data[: len(data) // 2] + b"<!-- not json -->"
        elif fault == "truncate":
            start = {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_JSON, *extra, (b"content-length", str(len(data)).encode())],
            }
            await send(start)
            await send(
                {"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True}
            )
            await _drop(send)
            return
        await self._respond(send, 200, data, [*_JSON, *extra])

    def _answer(
        self, model: SimModel, req: SimRequest
    ) -> tuple[Reply | None, tuple[int, str] | None]:
        if self._replay is not None:
            result: tuple[Reply | None, tuple[int, str] | None] = self._replay.answer(model, req)
            return result
        return answer(self.world, model, req), None

    async def _stream(
        self,
        send: Send,
        events: list[Event],
        extra: list[tuple[bytes, bytes]],
        fault: str | None,
        malformed: bytes,
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE, *extra]})
        if fault == "truncate":
            events = [e for e in events if not e.terminal][: max(1, len(events) // 2)]
        elif fault == "malformed":
            half = len(events) // 2
            events = [*events[:half], Event(0.0, malformed), *events[half:]]
        scale = self.time_scale
        if scale == 0 or all(e.delay_s == 0 for e in events):
            await send({"type": "http.response.body", "body": b"".join(e.data for e in events)})
            return
        for e in events:
            if e.delay_s > 0:
                await asyncio.sleep(e.delay_s * scale)
            await send({"type": "http.response.body", "body": e.data, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


def _has_key(headers: dict[bytes, bytes], fmt: str) -> bool:
    auth = headers.get(b"authorization", b"")
    if auth.lower().startswith(b"bearer ") and auth[7:].strip():
        return True
    return fmt == _ANTHROPIC and bool(headers.get(b"x-api-key", b"").strip())


def _missing_key(fmt: str) -> str:
    if fmt == _ANTHROPIC:
        return "x-api-key header is required"
    return "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."


def _request_id(fmt: str, n: int) -> str:
    return f"{_ID_PREFIX[fmt]}{n:012x}"


def _not_found(method: str, path: str, anthropic: bool) -> bytes:
    """The 404 body each provider sends for a path it does not serve."""
    if anthropic:
        return wire_anthropic.error_body(404, f"Not found: {method} {path}")
    err = {
        "message": f"Invalid URL ({method} {path})",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    return json.dumps({"error": err}).encode()


async def _drop(send: Send) -> None:
    """Close the connection without (the rest of) a response."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.close()
        await asyncio.sleep(0)
        return
    raise ConnectionAbortedError("simulated dropped connection")


def create_app(
    world: str | Path | World | dict[str, Any] = "default",
    *,
    seed: int | None = None,
    time_scale: float = 1.0,
    clock: Callable[[], float] | None = None,
) -> SimApp:
    """An ASGI app serving ``world`` (a name, a file, a dict or a :class:`World`).
    ``clock`` gives the ``created`` stamps (default: the wall clock); with a fixed
    clock, the same requests in the same order get byte-identical answers."""
    return SimApp(load_world(world, seed=seed), time_scale=time_scale, clock=clock)
