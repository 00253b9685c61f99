"""Throughput and first-byte latency of the simulated provider.

Starts ``agentopt sim --time-scale 0`` in its own process (uvicorn, httptools,
uvloop), then measures from this process over loopback:

1. non-streamed requests/s with 32 concurrent keep-alive connections, using a
   minimal asyncio HTTP/1.1 client (so the client is not the bottleneck), and
   again with ``httpx.AsyncClient`` for reference;
2. time from the last request byte sent to the first SSE byte received, for
   sequential streamed requests, with zero latency and with the default world's
   real latencies (time scale 1: no event is sent before the modelled ttft, so
   this is the ttft itself plus the server's part);
3. in process, without sockets: time from the ASGI call to the app's first
   body message (the server's own part of the first byte).

Usage: ``.venv/bin/python experiments/bench_sim.py [--seconds 5] [--concurrency 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import MutableMapping
from typing import Any

_CL = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def start_server(time_scale: float) -> tuple[subprocess.Popen[str], str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentopt.cli", "sim", "--time-scale", str(time_scale)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator exited before printing its URL")
        if line.startswith("http://"):
            url = line.strip()
            host, port = url.removeprefix("http://").rsplit(":", 1)
            return proc, host, int(port)


def request_bytes(host: str, port: int, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer x\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


async def raw_throughput(
    host: str, port: int, reqs: list[bytes], seconds: float, conc: int, stream: bool = False
) -> float:
    """Requests/s over ``conc`` keep-alive connections, cycling through ``reqs``."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker(k: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            writer.write(reqs[(done + k) % len(reqs)])
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            if stream:
                await reader.readuntil(b"\r\n0\r\n\r\n")  # chunked terminator
            else:
                m = _CL.search(head)
                assert m is not None
                await reader.readexactly(int(m.group(1)))
            done += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(conc)))
    return done / (time.perf_counter() - t0)


async def httpx_throughput(url: str, body: dict[str, object], seconds: float, conc: int) -> float:
    import httpx

    deadline = time.perf_counter() + seconds
    done = 0
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return done / (time.perf_counter() - t0)


async def first_sse_byte(host: str, port: int, req: bytes, n: int) -> list[float]:
    """Milliseconds from the request written to the first SSE data byte read."""
    reader, writer = await asyncio.open_connection(host, port)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        writer.write(req)
        await reader.readuntil(b"\r\n\r\n")  # status line and headers
        await reader.readuntil(b"data: ")  # first chunk-size line, then the first event
        out.append((time.perf_counter() - t0) * 1000)
        await reader.readuntil(b"0\r\n\r\n")  # drain to the chunked terminator
    writer.close()
    return out


async def app_first_body(time_scale: float, body: dict[str, object], n: int) -> list[float]:
    """Milliseconds from the ASGI call to the app's first body message, in process
    (no sockets, no HTTP parsing): the server's own share of the first byte."""
    from agentopt.sim import create_app

    app = create_app("default", time_scale=time_scale)
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    out: list[float] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    for _ in range(n):
        t0 = time.perf_counter()
        first: list[float] = []

        async def send(
            msg: MutableMapping[str, Any], first: list[float] = first, t0: float = t0
        ) -> None:
            if msg["type"] == "http.response.body" and not first:
                first.append((time.perf_counter() - t0) * 1000)

        await app(scope, receive, send)
        out.append(first[0])
    return out


def mixed_bodies() -> list[dict[str, object]]:
    """200 mcq and 200 arithmetic questions over three models."""
    from agentopt.sim.tasks import load_task

    items = load_task("mcq")[:200] + load_task("arithmetic")[:200]
    models = ["gpt-4o-mini", "claude-opus-4-6", "gpt-5-nano"]
    return [
        {"model": models[i % 3], "messages": [{"role": "user", "content": it.prompt}]}
        for i, it in enumerate(items)
    ]


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
        client_loop = "uvloop"
    except ImportError:
        client_loop = "asyncio"
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Summarise the benefits of caching."}],
    }
    stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    print(f"client loop: {client_loop}; {args.concurrency} connections, {args.seconds:g} s per run")
    proc, host, port = start_server(0.0)
    try:
        req = request_bytes(host, port, body)
        asyncio.run(raw_throughput(host, port, [req], 1.0, args.concurrency))  # warm-up
        rps = asyncio.run(raw_throughput(host, port, [req], args.seconds, args.concurrency))
        print(f"non-streamed, raw asyncio client:  {rps:8.0f} requests/s   (target >= 1,500)")
        mixed = [request_bytes(host, port, b) for b in mixed_bodies()]
        rps_m = asyncio.run(raw_throughput(host, port, mixed, args.seconds, args.concurrency))
        print(f"non-streamed, 400 task questions:  {rps_m:8.0f} requests/s")
        sreq = request_bytes(host, port, stream_body)
        rps_s = asyncio.run(
            raw_throughput(host, port, [sreq], args.seconds, args.concurrency, True)
        )
        print(f"streamed (SSE), raw asyncio:       {rps_s:8.0f} requests/s")
        rps_x = asyncio.run(
            httpx_throughput(f"http://{host}:{port}", body, args.seconds, args.concurrency)
        )
        print(f"non-streamed, httpx.AsyncClient:   {rps_x:8.0f} requests/s   (client-bound)")
        sse = asyncio.run(first_sse_byte(host, port, request_bytes(host, port, stream_body), 1000))
        print(
            f"first SSE byte, zero latency:      median {statistics.median(sse):.3f} ms, "
            f"p99 {pct(sse, 0.99):.3f} ms (target <= 2 ms)"
        )
    finally:
        proc.terminate()
        proc.wait(10)
    proc, host, port = start_server(1.0)
    try:
        small = {**stream_body, "model": "gpt-4.1-nano", "max_tokens": 3}
        sse = asyncio.run(first_sse_byte(host, port, request_bytes(host, port, small), 20))
        print(
            f"first SSE byte, time scale 1:      median {statistics.median(sse):.3f} ms, "
            f"p99 {pct(sse, 0.99):.3f} ms (the modelled ttft: nothing is sent before it)"
        )
    finally:
        proc.terminate()
        proc.wait(10)
    small = {**stream_body, "model": "gpt-4.1-nano", "max_tokens": 3}
    for scale, n in ((0.0, 2000), (1.0, 10)):
        inner = asyncio.run(app_first_body(scale, small, n))
        print(
            f"first SSE body message inside the app, time scale {scale:g}: "
            f"median {statistics.median(inner):.3f} ms, p99 {pct(inner, 0.99):.3f} ms"
        )
    print("note: 2 cores shared with other jobs; figures are noisy.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
