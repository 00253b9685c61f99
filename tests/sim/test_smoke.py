"""The simulator starts, serves both wire formats, and stops cleanly."""

from __future__ import annotations

import httpx
import pytest

from agentopt.exceptions import SimulatorError
from agentopt.sim import SimServer


def test_server_serves_both_formats_and_stops() -> None:
    with SimServer("default", time_scale=0.0, seed=0) as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        assert sim.openai_base_url == sim.url + "/v1"
        r = httpx.post(
            sim.openai_base_url + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 200
        assert r.json()["usage"]["completion_tokens"] > 0
        r = httpx.post(
            sim.anthropic_base_url + "/v1/messages",
            json={
                "model": "gpt-4o-mini",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert r.status_code == 200
        assert r.json()["type"] == "message"
        url = sim.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=1)


def test_start_stop_methods_and_url_before_start() -> None:
    sim = SimServer("default", time_scale=0.0)
    with pytest.raises(SimulatorError):
        _ = sim.url
    sim.start()
    try:
        assert httpx.get(sim.url + "/health").json() == {"status": "ok"}
    finally:
        sim.stop()
    sim.stop()  # idempotent
