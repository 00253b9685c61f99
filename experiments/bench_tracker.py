"""What tracking costs: per-call overhead, session open/close, store queries.

Against the simulated provider with zero latency, served by a child process
(``--sim-in-process`` serves it from a thread of this process instead, where
its CPU competes with the client's for the GIL). Untracked and tracked calls
alternate one by one (the order flips every pair) so that load from other
processes hits both sides alike. For each case the script prints the number
of calls per side, the median wall time and the median process CPU time
(``time.process_time``: every thread of this process, so litellm's logging
threads and our callbacks count) of an untracked and a tracked call, and what
tracking adds: the difference of the medians and, steadier under load, the
median of the paired differences (the verdict uses the paired wall figure).
The CPU window of each call ends after a short settle pause (``--settle-ms``;
0 makes calls back to back) so that background work a call leaves behind
(litellm's logging thread) is charged to that call and not to the next one.
Streamed cases also print how many SSE events each response had.

On a loaded 2-core machine (other processes running) the wall figures are
noisy: they move by several tenths of a millisecond from run to run, and a
single run can say OVER or ok by chance. The CPU figures are steadier, and
the paired figures steadier than differences of medians. The "pipeline only,
mock" rows use an in-memory transport (no sockets, no server) to show the
tracker's own cost. Run:

    .venv/bin/python experiments/bench_tracker.py [--calls 400]

Targets (issue 4): openai SDK +0.5 ms/call (streamed and not), litellm
+0.3 ms/call, track() open+close 0.2 ms, query by data_id on 100,000
records < 1 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MSG: Any = [{"role": "user", "content": "What is 2 + 2?"}]


@dataclass
class Side:
    """Per-call wall and CPU seconds of one side (untracked or tracked)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def report(name: str, plain: Side, tracked: Side, target_ms: float, extra: str = "") -> None:
    """One line per case: medians of both sides and what tracking adds, as the
    difference of the medians and as the median of the paired differences (call
    i untracked vs call i tracked, made back to back: steadier under load)."""
    (pw, pc), (tw, tc) = plain.medians(), tracked.medians()
    pair_wall = statistics.median(t - p for p, t in zip(plain.wall, tracked.wall, strict=True))
    pair_cpu = statistics.median(t - p for p, t in zip(plain.cpu, tracked.cpu, strict=True))
    verdict = "ok" if pair_wall * 1e3 <= target_ms else "OVER"
    print(
        f"{name:<32} n={len(plain.wall)}/side | wall {pw * 1e3:6.3f} -> {tw * 1e3:6.3f} ms, "
        f"added {(tw - pw) * 1e3:+.3f} (paired {pair_wall * 1e3:+.3f}) | cpu {pc * 1e3:6.3f} -> "
        f"{tc * 1e3:6.3f} ms, added {(tc - pc) * 1e3:+.3f} (paired {pair_cpu * 1e3:+.3f}) | "
        f"target {target_ms} ms: {verdict}{extra}"
    )


def paired(call: Callable[[], object], tracker: object, n: int, settle: float) -> tuple[Side, Side]:
    """Alternate untracked and tracked calls (order flipped each pair)."""
    from agentopt.tracking import LLMTracker

    assert isinstance(tracker, LLMTracker)
    plain, tracked = Side(), Side()
    for i in range(n):
        for on in (False, True) if i % 2 == 0 else (True, False):
            side = tracked if on else plain
            if on:
                tracker.start()
                session = tracker.track(data_id="bench")
                session.__enter__()
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            t1 = time.perf_counter()
            if settle:
                time.sleep(settle)  # background work of this call lands in its CPU window
            c1 = time.process_time()
            if on:
                session.__exit__(None, None, None)
                tracker.stop()
            side.wall.append(t1 - t0)
            side.cpu.append(c1 - c0)
    return plain, tracked


def bench_sdk(sim_url: str, n: int, settle: float) -> None:
    import openai

    from agentopt.tracking import LLMTracker

    client = openai.OpenAI(base_url=sim_url, api_key="x", max_retries=0)
    events: list[int] = []

    def call() -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    def stream() -> object:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        events.append(len(chunks) + 1)  # the SDK yields every event but [DONE]
        return chunks

    for _ in range(20):
        call()
        stream()
    tracker = LLMTracker(cache=False)
    report("openai SDK, not streamed", *paired(call, tracker, n, settle), 0.5)
    events.clear()
    plain, tracked = paired(stream, tracker, n, settle)
    per = (
        f"  ({min(events)}-{max(events)} SSE events/response, median {statistics.median(events):g})"
    )
    report("openai SDK, streamed", plain, tracked, 0.5, per)
    assert len(tracker.records) == 2 * n, "every tracked call is recorded once"
    tracker.close()


def _sse_body(n_events: int) -> bytes:
    """A Chat Completions stream shaped like the simulator's, ``n_events`` events."""
    import json

    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1}
    head.update({"model": "gpt-4o-mini", "system_fingerprint": "fp_x"})

    def chunk(delta: dict[str, object], finish: str | None = None, usage: object = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = {**head, "choices": [choice] if delta is not None else [], "usage": usage}
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"word {i} of the answer "}) for i in range(n_events - 4)]
    parts.append(chunk({}, finish="stop"))
    usage = {"prompt_tokens": 8, "completion_tokens": n_events, "total_tokens": n_events + 8}
    parts.append(chunk(None, usage=usage))  # type: ignore[arg-type]
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def bench_cpu(n: int, n_events: int = 120) -> None:
    """The tracker's own CPU cost: an in-memory transport, no sockets."""
    import json

    import httpx

    from agentopt.tracking import LLMTracker, TrackingTransport

    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello " * 50}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 60},
        }
    ).encode()
    sse = _sse_body(n_events)
    events = sse.split(b"\n\n")[:-1]

    class Events(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for e in events:
                yield e + b"\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content:
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=Events()
            )
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    mock = httpx.MockTransport(handler)
    plain = httpx.Client(transport=mock)
    tracked = httpx.Client(transport=TrackingTransport(mock))
    url = "http://sim.test/v1/chat/completions"
    tracker = LLMTracker(cache=False)
    for label, req in (
        ("not streamed", {"model": "gpt-4o-mini", "messages": MSG}),
        ("streamed", {"model": "gpt-4o-mini", "messages": MSG, "stream": True}),
    ):
        a, b = Side(), Side()
        for i in range(n):
            for on in (False, True) if i % 2 == 0 else (True, False):
                client, side = (tracked, b) if on else (plain, a)
                if on:
                    tracker.start()
                    session = tracker.track(data_id="cpu")
                    session.__enter__()
                c0, t0 = time.process_time(), time.perf_counter()
                with client.stream("POST", url, json=req) as r:
                    for _ in r.iter_bytes():
                        pass
                side.wall.append(time.perf_counter() - t0)
                side.cpu.append(time.process_time() - c0)
                if on:
                    session.__exit__(None, None, None)
                    tracker.stop()
        extra = f"  ({len(events)} SSE events/response)" if req.get("stream") else ""
        report(f"pipeline only, mock, {label}", a, b, 0.5, extra)
    tracker.close()


def bench_litellm(sim_url: str, n: int, settle: float) -> None:
    import litellm

    from agentopt.tracking import LLMTracker

    litellm.suppress_debug_info = True

    def call() -> object:
        return litellm.completion(
            model="openai/gpt-4o-mini", messages=MSG, api_base=sim_url, api_key="x"
        )

    for _ in range(20):
        call()
    tracker = LLMTracker(cache=False)
    tracker.start()  # registers agentopt's (then idle) logger before any untracked call
    tracker.stop()
    report("litellm.completion", *paired(call, tracker, n, settle), 0.3)
    assert len(tracker.records) == n, "every tracked call is recorded once"
    tracker.close()


def bench_session(n: int = 20000) -> None:
    from agentopt.tracking import LLMTracker

    tracker = LLMTracker(cache=False).start()
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        with tracker.track(data_id=i, combo_id="c", agent_id="a"):
            pass
        times.append(time.perf_counter() - t0)
    tracker.close()
    med = statistics.median(times) * 1e3
    print(
        f"{'track() open + close':<34} median {med:.4f} ms  (target ≤ 0.2 ms: {'ok' if med <= 0.2 else 'OVER'})"
    )


def bench_store(n: int = 100_000) -> None:
    from agentopt.records import CallRecord
    from agentopt.tracking.storage.store import MemoryRecordStore

    gc.collect()
    tracemalloc.start()
    store = MemoryRecordStore()
    for i in range(n):
        store.append(
            CallRecord(
                data_id=str(i % 1000),
                combo_id=f"c{i % 7}",
                agent_id="solver",
                model="gpt-4o-mini",
                prompt_tokens=100,
                completion_tokens=50,
                cost_usd=1e-5,
                request_body={"model": "gpt-4o-mini", "messages": MSG},
            )
        )
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    times = []
    for i in range(2000):
        t0 = time.perf_counter()
        rows = store.query(data_id=str(i % 1000))
        times.append(time.perf_counter() - t0)
    assert len(rows) == n // 1000
    med = statistics.median(times) * 1e3
    print(
        f"{'query by data_id, 100k records':<34} median {med:.4f} ms  (target < 1 ms: "
        f"{'ok' if med < 1 else 'OVER'}); memory {mem / 2**20:.0f} MiB "
        f"({mem / n:.0f} B/record, small request bodies)"
    )


@contextmanager
def sim_server(in_process: bool) -> Iterator[str]:
    """The simulator's OpenAI base URL: served by a child process, or a thread here."""
    if in_process:
        from agentopt.sim import SimServer

        with SimServer("default", time_scale=0.0, seed=0) as sim:
            yield sim.openai_base_url
        return
    code = (
        "import sys\n"
        "from agentopt.sim import SimServer\n"
        "s = SimServer('default', time_scale=0.0, seed=0).start()\n"
        "print(s.openai_base_url, flush=True)\n"
        "sys.stdin.read()\n"  # serve until the parent closes our stdin
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the simulator did not start")
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per side and case")
    ap.add_argument("--settle-ms", type=float, default=2.0, help="pause after each call")
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--sim-in-process", action="store_true")
    args = ap.parse_args()
    settle = args.settle_ms / 1e3

    print(
        f"agentopt tracker overhead ({os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}; "
        f"simulator {'in this process' if args.sim_in_process else 'in a child process'})"
    )
    bench_cpu(1000)
    with sim_server(args.sim_in_process) as url:
        bench_sdk(url, args.calls, settle)
        if not args.skip_litellm:
            bench_litellm(url, args.calls, settle)
    bench_session()
    bench_store()


if __name__ == "__main__":
    main()
