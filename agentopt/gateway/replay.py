"""Replay a wire capture against any endpoint, or serve it as a world that answers as recorded.

- :func:`replay_capture` sends each captured request again to ``against`` (the
  daemon, a provider, the simulator: anything OpenAI/Anthropic-compatible) and
  compares what comes back with what was captured: status, model, tokens, cost,
  latency, time to first byte and the body (:class:`ReplayResult`). Bodies are
  compared twice: byte for byte, and with the fields that differ between any
  two answers (``id``, ``created``, ``created_at``, ``system_fingerprint``)
  masked. ``speed=1.0`` keeps the captured spacing between requests (``2.0``
  twice as fast); ``speed=None`` ("max") sends them one after another at once.
- :class:`CaptureWorld` is an ASGI app that answers each request with the
  captured response to the same request (same method, path, query and body,
  JSON bodies compared by value): same status, headers and bytes, stream
  chunks at their captured times × ``time_scale``. An incident captured in
  production can so be reproduced offline. Identical requests captured several
  times are answered in capture order (the last one repeats).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from agentopt._serving import ThreadedServer
from agentopt.exceptions import ConfigError, DataError
from agentopt.gateway.capture import Exchange, read_capture

__all__ = [
    "CaptureWorld",
    "CaptureWorldServer",
    "ReplayResult",
    "canonical_request",
    "replay_capture",
    "summarise",
]

_HOP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "accept-encoding",
    }
)
_VOLATILE = re.compile(
    rb'"(id|created|created_at|system_fingerprint)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|null)'
)


def _mask(body: bytes) -> bytes:
    return _VOLATILE.sub(rb'"\1":"*"', body)


@dataclass
class Outcome:
    """What one response said: parsed from its bytes the way the tracker parses."""

    status: int | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    latency_seconds: float | None
    ttfb_seconds: float | None
    error: str | None


def _outcome(
    path: str,
    status: int | None,
    headers: Sequence[Sequence[str]],
    body: bytes,
    ttfb: float | None,
    duration: float | None,
) -> Outcome:
    from agentopt.pricing import default_price_book
    from agentopt.tracking.providers import infer_wire
    from agentopt.tracking.wire.parsing import parse_body
    from agentopt.tracking.wire.sse import StreamParser

    wire = infer_wire(path)
    model = prompt = completion = None
    error: str | None = None
    cost: float | None = None
    if wire is not None and status is not None:
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if "text/event-stream" in ctype:
            parser = StreamParser(wire, status_code=status)
            parser.feed_all(body)
            parsed = parser.finish()
        else:
            parsed = parse_body(wire, status, body)
        model, error = parsed.model, parsed.error
        if parsed.usage_found:
            prompt, completion = parsed.usage.prompt_tokens, parsed.usage.completion_tokens
            cost = default_price_book().cost_usd(
                model,
                parsed.usage.prompt_tokens,
                parsed.usage.completion_tokens,
                cached_tokens=parsed.usage.cached_tokens,
                reasoning_tokens=parsed.usage.reasoning_tokens,
            )
    return Outcome(status, model, prompt, completion, cost, duration, ttfb, error)


@dataclass
class ReplayResult:
    """One replayed exchange: the captured and the replayed outcome, and their differences."""

    id: str
    method: str
    target: str
    captured: Outcome
    replayed: Outcome
    identical: bool  # response bytes equal
    same_body: bool  # equal with id/created/... masked
    error: str | None = None  # the replay itself failed (connection refused, …)

    @property
    def differences(self) -> list[str]:
        """Fields that differ (latency and TTFB are measurements, not differences)."""
        out = [
            name
            for name in ("status", "model", "prompt_tokens", "completion_tokens", "cost_usd")
            if getattr(self.captured, name) != getattr(self.replayed, name)
        ]
        if not self.same_body:
            out.append("body")
        if self.error:
            out.append("error")
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["differences"] = self.differences
        return d


def _join(against: str, target: str) -> str:
    base = httpx.URL(against)
    prefix = base.path.rstrip("/")
    path = target if (prefix and target.startswith(prefix + "/")) else prefix + target
    return str(base.copy_with(raw_path=path.encode("latin-1")))


def _request_headers(ex: Exchange, api_key: str | None) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in ex.request_headers if k.lower() not in _HOP and v != "<redacted>"]
    if api_key is not None:
        headers = [(k, v) for k, v in headers if k.lower() not in ("authorization", "x-api-key")]
        headers.append(("authorization", f"Bearer {api_key}"))
        if ex.header("x-api-key", "request") is not None:
            headers.append(("x-api-key", api_key))
    return headers


async def _send_one(
    client: httpx.AsyncClient, ex: Exchange, against: str, api_key: str | None
) -> ReplayResult:
    captured = _outcome(
        ex.path, ex.status, ex.response_headers, ex.response_body, ex.ttfb, ex.duration
    )
    chunks: list[bytes] = []
    t0 = time.perf_counter()
    ttfb: float | None = None
    try:
        req = client.build_request(
            ex.method,
            _join(against, ex.target),
            headers=_request_headers(ex, api_key),
            content=ex.request_body or None,
        )
        resp = await client.send(req, stream=True)
        try:
            async for chunk in resp.aiter_raw():
                if chunk:
                    if ttfb is None:
                        ttfb = time.perf_counter() - t0
                    chunks.append(chunk)
        finally:
            await resp.aclose()
    except httpx.HTTPError as exc:
        failed = Outcome(None, None, None, None, None, time.perf_counter() - t0, None, str(exc))
        return ReplayResult(
            ex.id,
            ex.method,
            ex.target,
            captured,
            failed,
            False,
            False,
            error=f"{type(exc).__name__}: {exc}",
        )
    body = b"".join(chunks)
    replayed = _outcome(
        ex.path,
        resp.status_code,
        list(resp.headers.multi_items()),
        body,
        ttfb,
        time.perf_counter() - t0,
    )
    return ReplayResult(
        ex.id,
        ex.method,
        ex.target,
        captured,
        replayed,
        identical=body == ex.response_body,
        same_body=_mask(body) == _mask(ex.response_body),
    )


async def replay_capture(
    exchanges: Iterable[Exchange],
    against: str,
    *,
    speed: float | None = 1.0,
    api_key: str | None = None,
    timeout: float = 600.0,
) -> list[ReplayResult]:
    """Send every exchange's request to ``against``; see the module docstring."""
    if speed is not None and speed <= 0:
        raise ConfigError(f"speed={speed}: expected a positive number, or None for 'max'")
    items = list(exchanges)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        if speed is None:
            return [await _send_one(client, ex, against, api_key) for ex in items]
        starts = [datetime.fromisoformat(ex.time).timestamp() for ex in items]
        first = min(starts, default=0.0)
        t0 = time.perf_counter()

        async def at_offset(ex: Exchange, offset: float) -> ReplayResult:
            delay = offset / speed - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            return await _send_one(client, ex, against, api_key)

        return list(
            await asyncio.gather(
                *(at_offset(ex, s - first) for ex, s in zip(items, starts, strict=True))
            )
        )


def summarise(results: Sequence[ReplayResult]) -> dict[str, Any]:
    """Counts of differences and the latency change, for the report's footer."""
    n = len(results)
    diffs: dict[str, int] = {}
    for r in results:
        for d in r.differences:
            diffs[d] = diffs.get(d, 0) + 1
    lat = [
        (r.replayed.latency_seconds or 0.0) - (r.captured.latency_seconds or 0.0)
        for r in results
        if r.error is None
    ]
    return {
        "requests": n,
        "identical": sum(r.identical for r in results),
        "same_body": sum(r.same_body for r in results),
        "with_differences": sum(bool(r.differences) for r in results),
        "differences": diffs,
        "mean_latency_change_seconds": sum(lat) / len(lat) if lat else None,
    }


# --------------------------------------------------------------------------- the capture world
def canonical_request(method: str, path: str, query: str, body: bytes) -> tuple[str, str, str, str]:
    """The key a request is matched by: JSON bodies by value, others by bytes."""
    try:
        text = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        text = body.decode("latin-1")
    return (method.upper(), path, query, text)


Scope = MutableMapping[str, Any]


class CaptureWorld:
    """ASGI app answering each request as the capture did; see the module docstring."""

    def __init__(self, exchanges: Iterable[Exchange], *, time_scale: float = 1.0) -> None:
        if time_scale < 0:
            raise ConfigError(f"time_scale={time_scale}: expected ≥ 0")
        self.time_scale = time_scale
        self._answers: dict[tuple[str, str, str, str], deque[Exchange]] = {}
        self.served = 0
        self.unmatched = 0
        for ex in exchanges:
            if ex.status is None:
                continue  # the app never answered: nothing to replay
            key = canonical_request(ex.method, ex.path, ex.query, ex.request_body)
            self._answers.setdefault(key, deque()).append(ex)
        if not self._answers:
            raise DataError("capture world: the capture holds no answered exchange")

    @classmethod
    def from_path(cls, path: str | Path, *, time_scale: float = 1.0) -> CaptureWorld:
        return cls(read_capture(path), time_scale=time_scale)

    def __len__(self) -> int:
        return sum(len(q) for q in self._answers.values())

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            msg = await receive()
            body.extend(msg.get("body") or b"")
            if not msg.get("more_body"):
                break
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        key = canonical_request(scope["method"], scope["path"], query, bytes(body))
        queue = self._answers.get(key)
        if not queue:
            self.unmatched += 1
            detail = json.dumps(
                {
                    "error": {
                        "type": "not_captured",
                        "message": f"no captured exchange matches {scope['method']}"
                        f" {scope['path']} with this body",
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": detail})
            return
        ex = queue.popleft() if len(queue) > 1 else queue[0]
        self.served += 1
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in ex.response_headers
            if k.lower() not in ("content-length", "transfer-encoding", "date", "server")
        ]
        streamed = len(ex.chunks) > 1 or any(
            "text/event-stream" in v for k, v in ex.response_headers if k.lower() == "content-type"
        )
        if not streamed:
            headers.append((b"content-length", str(len(ex.response_body)).encode()))
        t0 = time.perf_counter()
        first = ex.chunks[0][0] if ex.chunks else 0.0
        start_delay = first * self.time_scale
        if start_delay > 0:  # the status line arrives with the first byte, as captured
            await asyncio.sleep(start_delay)
        await send({"type": "http.response.start", "status": ex.status, "headers": headers})
        for i, (at, data) in enumerate(ex.chunks):
            delay = at * self.time_scale - (time.perf_counter() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            await send(
                {"type": "http.response.body", "body": data, "more_body": i < len(ex.chunks) - 1}
            )
        if not ex.chunks:
            await send({"type": "http.response.body", "body": b""})


class CaptureWorldServer(ThreadedServer):
    """A :class:`CaptureWorld` served on loopback in a background thread."""

    def __init__(
        self,
        capture: str | Path,
        *,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.world = CaptureWorld.from_path(capture, time_scale=time_scale)
        super().__init__(
            self.world,
            host=host,
            port=port,
            name="agentopt-capture-world",
            error=ConfigError,
            lifespan="on",
        )
