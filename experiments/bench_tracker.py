"""What tracking costs: per-call overhead, session open/close, store queries.

Against the simulated provider on loopback with zero latency. Overheads are
differences of medians of untracked and tracked calls made alternately, one
by one, so that load from other processes hits both sides alike; the
"pipeline CPU only" row uses an in-memory transport to show the tracker's
own cost without socket noise. Run:

    .venv/bin/python experiments/bench_tracker.py [--calls 300]

Targets (issue 4): openai SDK +0.5 ms/call (streamed and not), litellm
+0.3 ms/call, track() open+close 0.2 ms, query by data_id on 100,000
records < 1 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MSG = [{"role": "user", "content": "What is 2 + 2?"}]


def per_call(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def row(name: str, base: float, tracked: float, target_ms: float) -> None:
    added = (tracked - base) * 1e3
    verdict = "ok" if added <= target_ms else "OVER"
    print(
        f"{name:<34} untracked {base * 1e3:7.3f} ms  tracked {tracked * 1e3:7.3f} ms  "
        f"added {added:+7.3f} ms  (target ≤ {target_ms} ms: {verdict})"
    )


def paired(call: Callable[[], object], tracker: object, n: int) -> tuple[float, float]:
    """Alternate untracked and tracked calls one by one (so that load from other
    processes hits both alike); median seconds of each side."""
    from agentopt.tracking import LLMTracker

    assert isinstance(tracker, LLMTracker)
    plain: list[float] = []
    tracked: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        plain.append(time.perf_counter() - t0)
        tracker.start()
        with tracker.track(data_id="bench"):
            t0 = time.perf_counter()
            call()
            tracked.append(time.perf_counter() - t0)
        tracker.stop()
    return statistics.median(plain), statistics.median(tracked)


def bench_sdk(sim_url: str, n: int) -> None:
    import openai

    from agentopt.tracking import LLMTracker

    client = openai.OpenAI(base_url=sim_url, api_key="x", max_retries=0)

    def call() -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    def stream() -> object:
        return list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=MSG,
                stream=True,
                stream_options={"include_usage": True},
            )
        )

    for _ in range(20):
        call()
        stream()
    tracker = LLMTracker(cache=False)
    row("openai SDK, not streamed", *paired(call, tracker, n), 0.5)
    row("openai SDK, streamed", *paired(stream, tracker, n), 0.5)
    assert len(tracker.records) == 2 * n, "every tracked call is recorded once"
    tracker.close()


def bench_cpu(n: int) -> None:
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
    mock = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "application/json"}, content=body)
    )
    plain = httpx.Client(transport=mock)
    tracked = httpx.Client(transport=TrackingTransport(mock))
    req = {"model": "gpt-4o-mini", "messages": MSG}
    url = "http://sim.test/v1/chat/completions"
    tracker = LLMTracker(cache=False)
    a: list[float] = []
    b: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        plain.post(url, json=req)
        a.append(time.perf_counter() - t0)
        tracker.start()
        with tracker.track(data_id="cpu"):
            t0 = time.perf_counter()
            tracked.post(url, json=req)
            b.append(time.perf_counter() - t0)
        tracker.stop()
    row("pipeline CPU only (mock transport)", statistics.median(a), statistics.median(b), 0.5)
    tracker.close()


def bench_litellm(sim_url: str, n: int) -> None:
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
    row("litellm.completion", *paired(call, tracker, n), 0.3)
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
    from agentopt.tracking.store import MemoryRecordStore

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--skip-litellm", action="store_true")
    args = ap.parse_args()
    from agentopt.sim import SimServer

    print(f"agentopt tracker overhead ({os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f})")
    bench_cpu(2000)
    with SimServer("default", time_scale=0.0, seed=0) as sim:
        bench_sdk(sim.openai_base_url, args.calls)
        if not args.skip_litellm:
            bench_litellm(sim.openai_base_url, args.calls)
    bench_session()
    bench_store()


if __name__ == "__main__":
    main()
