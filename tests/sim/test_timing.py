"""time_scale shrinks the modelled delays; usage and modelled timing stay the same."""

from __future__ import annotations

import time

import httpx

from agentopt.sim import SimServer

WORLD = {
    "name": "slow",
    "models": [
        {
            "name": "slow",
            "latency": {
                "ttft_s": 2.0,
                "ttft_sigma": 0.0,
                "per_token_s": 0.0,
                "per_token_sigma": 0.0,
            },
            "output_tokens": {"median": 50, "sigma": 0.0},
        }
    ],
}
BODY = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}


def test_scaled_delay_is_waited_and_usage_is_unchanged() -> None:
    with SimServer(WORLD, time_scale=0.0) as fast:
        instant = httpx.post(fast.openai_base_url + "/chat/completions", json=BODY)
    with SimServer(WORLD, time_scale=0.05) as s:
        t0 = time.perf_counter()
        r = httpx.post(s.openai_base_url + "/chat/completions", json=BODY, timeout=10)
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.1  # 2 s modelled × 0.05 (a lower bound: the server sleeps at least that)
    assert r.json()["usage"] == instant.json()["usage"]
    assert r.headers["x-sim-ttft-ms"] == instant.headers["x-sim-ttft-ms"] == "2000.0"
    assert r.headers["x-sim-latency-ms"] == "2000.0"


def test_stream_sends_its_first_event_before_the_ttft_wait() -> None:
    body = {**BODY, "stream": True}
    with SimServer(WORLD, time_scale=0.05) as s:
        t0 = time.perf_counter()
        with httpx.stream(
            "POST", s.openai_base_url + "/chat/completions", json=body, timeout=10
        ) as r:
            events = []
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append((time.perf_counter() - t0, line))
    first_t, first = events[0]
    content_t = next(
        t for t, line in events if '"content":"' in line and '"content":""' not in line
    )
    assert '"role":"assistant"' in first
    assert content_t >= 0.1  # the content waited for the scaled ttft
    assert first_t <= content_t
    assert events[-1][1] == "data: [DONE]"
