"""time_scale shrinks the modelled delays; usage and modelled timing stay the same."""

from __future__ import annotations

import time

import httpx
import pytest

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


def _event_times(url: str, body: dict[str, object]) -> list[tuple[float, str]]:
    t0 = time.perf_counter()
    with httpx.stream("POST", url, json=body, timeout=10) as r:
        return [
            (time.perf_counter() - t0, line) for line in r.iter_lines() if line.startswith("data: ")
        ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**BODY, "stream": True}),
        ("/v1/responses", {"model": "slow", "input": "hi", "stream": True}),
        ("/v1/messages", {**BODY, "max_tokens": 100, "stream": True}),
    ],
)
def test_no_stream_event_before_the_modelled_time_to_first_token(
    path: str, body: dict[str, object]
) -> None:
    with SimServer(WORLD, time_scale=0.05) as s:
        events = _event_times(s.url + path, body)
    first_t, _ = events[0]
    assert first_t >= 0.1  # 2 s modelled ttft × 0.05: not even the role chunk comes earlier
    assert len(events) > 2
