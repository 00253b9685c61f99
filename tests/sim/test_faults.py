"""Fault injection: every kind, from the world file and from the x-sim-fault header."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from agentopt.exceptions import SimulatorError
from agentopt.sim import SimServer

MSG: Any = [{"role": "user", "content": "hello"}]
FAULTY: dict[str, Any] = {
    "name": "faulty",
    "seed": 1,
    "models": [
        {"name": "ok"},
        {"name": "rate-limited", "faults": {"errors": {429: 1.0}, "retry_after_s": 2.0}},
        {"name": "broken", "faults": {"errors": {500: 1.0}}},
        {"name": "overloaded", "faults": {"errors": {529: 1.0}}},
        {"name": "hangs", "faults": {"hang": 1.0, "hang_s": 60}},
        {"name": "drops", "faults": {"drop": 1.0}},
        {"name": "truncates", "faults": {"truncate": 1.0}},
        {"name": "garbles", "faults": {"malformed": 1.0}},
        {"name": "flaky", "faults": {"errors": {500: 0.3}, "drop": 0.1}},
    ],
}
for _m in FAULTY["models"]:
    _m["latency"] = {"ttft_s": 0.0, "per_token_s": 0.0}  # only retry-after is scaled here


@pytest.fixture(scope="module")
def faulty() -> Iterator[SimServer]:
    with SimServer(FAULTY, time_scale=0.5) as server:
        yield server


def _oai(sim: SimServer, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="x", max_retries=0, **kw)


def _ant(sim: SimServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)


def _post(sim: SimServer, model: str, **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": MSG, **kw}
    return httpx.post(sim.openai_base_url + "/chat/completions", json=body, timeout=5)


def test_429_has_scaled_retry_after_in_both_shapes(faulty: SimServer) -> None:
    with pytest.raises(openai.RateLimitError) as e:
        _oai(faulty).chat.completions.create(model="rate-limited", messages=MSG)
    assert e.value.response.headers["retry-after"] == "1"  # 2 s × time scale 0.5
    assert e.value.response.headers["retry-after-ms"] == "1000"
    assert e.value.response.json()["error"]["type"] == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as a:
        _ant(faulty).messages.create(model="rate-limited", max_tokens=10, messages=MSG)
    assert a.value.response.json()["error"]["type"] == "rate_limit_error"


def test_500_and_529(faulty: SimServer) -> None:
    with pytest.raises(openai.InternalServerError) as e:
        _oai(faulty).chat.completions.create(model="broken", messages=MSG)
    assert e.value.status_code == 500
    with pytest.raises(anthropic.APIStatusError) as a:
        _ant(faulty).messages.create(model="overloaded", max_tokens=10, messages=MSG)
    assert a.value.status_code == 529
    assert a.value.response.json()["error"]["type"] == "overloaded_error"


def test_hang_times_out_the_client_and_does_not_block_stop() -> None:
    server = SimServer(FAULTY, time_scale=0.0).start()
    try:
        with pytest.raises(openai.APITimeoutError):
            _oai(server, timeout=0.3).chat.completions.create(model="hangs", messages=MSG)
    finally:
        server.stop(timeout=5)
    assert server._thread is None


def test_drop_closes_the_connection_without_a_response(faulty: SimServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        _post(faulty, "drops")
    with pytest.raises(openai.APIConnectionError):
        _oai(faulty).chat.completions.create(model="drops", messages=MSG)
    with pytest.raises(anthropic.APIConnectionError):
        _ant(faulty).messages.create(model="drops", max_tokens=10, messages=MSG)


def test_truncated_stream_ends_without_done_or_usage(faulty: SimServer) -> None:
    body = {
        "model": "truncates",
        "messages": MSG,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", faulty.openai_base_url + "/chat/completions", json=body) as r:
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert r.status_code == 200 and lines
    assert "data: [DONE]" not in lines and all('"usage":{' not in ln for ln in lines)
    abody = {"model": "truncates", "max_tokens": 100, "messages": MSG, "stream": True}
    with httpx.stream("POST", faulty.url + "/v1/messages", json=abody) as r:
        events = [ln for ln in r.iter_lines() if ln.startswith("event: ")]
    assert "event: message_start" in events and "event: message_stop" not in events


def test_truncated_body_is_cut_short(faulty: SimServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        _post(faulty, "truncates")


def test_malformed_json_body_and_stream_event(faulty: SimServer) -> None:
    r = _post(faulty, "garbles")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    with pytest.raises(json.JSONDecodeError):  # what the openai SDK raises on a non-JSON body
        _oai(faulty).chat.completions.create(model="garbles", messages=MSG)
    stream = _oai(faulty).chat.completions.create(model="garbles", messages=MSG, stream=True)
    with pytest.raises(json.JSONDecodeError):
        list(stream)
    ant = _ant(faulty)
    with (
        pytest.raises(json.JSONDecodeError),
        ant.messages.stream(model="garbles", max_tokens=100, messages=MSG) as astream,
    ):
        astream.get_final_message()


def test_fault_rates_follow_a_seeded_sequence() -> None:
    def outcomes() -> list[int | str]:
        with SimServer(FAULTY, time_scale=0.0) as s, httpx.Client(timeout=5) as c:
            out: list[int | str] = []
            for _ in range(200):
                try:
                    r = c.post(
                        s.openai_base_url + "/chat/completions",
                        json={"model": "flaky", "messages": MSG},
                    )
                    out.append(r.status_code)
                except httpx.RemoteProtocolError:
                    out.append("drop")
            return out

    first = outcomes()
    assert first == outcomes()  # same world seed, same sequence
    # 200 draws: 500 at rate 0.3 (sd 6.5 calls), drop at 0.1 (sd 4.2)
    assert 60 - 20 <= first.count(500) <= 60 + 20
    assert 20 - 13 <= first.count("drop") <= 20 + 13
    assert first.count(200) == 200 - first.count(500) - first.count("drop")


@pytest.mark.parametrize("kind", ["429", "500", "529", "drop", "malformed"])
def test_header_forces_a_fault_on_a_healthy_model(faulty: SimServer, kind: str) -> None:
    headers = {"x-sim-fault": kind}
    if kind == "drop":
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(
                faulty.openai_base_url + "/chat/completions",
                json={"model": "ok", "messages": MSG},
                headers=headers,
            )
        return
    r = httpx.post(
        faulty.openai_base_url + "/chat/completions",
        json={"model": "ok", "messages": MSG},
        headers=headers,
    )
    if kind == "malformed":
        assert r.status_code == 200 and not r.text.endswith("}")
    else:
        assert r.status_code == int(kind) and "error" in r.json()
    assert _post(faulty, "ok").status_code == 200  # the next request is healthy


def test_openai_client_retries_through_429_using_retry_after() -> None:
    world = {
        "name": "retry",
        "models": [{"name": "m", "faults": {"errors": {429: 0.5}, "retry_after_s": 1.0}}],
    }
    with SimServer(world, time_scale=0.001) as s:
        client = _oai(s)
        client = client.with_options(max_retries=8)
        for _ in range(10):
            r = client.chat.completions.create(model="m", messages=MSG)
            assert r.choices[0].message.content
        assert s.app.stats["fault_429"] > 0


def test_inject_queues_faults_for_the_next_requests(faulty: SimServer) -> None:
    faulty.inject("ok", 503, times=2)
    faulty.inject("ok", "drop")
    assert [_post(faulty, "ok").status_code for _ in range(2)] == [503, 503]
    with pytest.raises(httpx.RemoteProtocolError):
        _post(faulty, "ok")
    assert _post(faulty, "ok").status_code == 200


def test_inject_rejects_unknown_models_and_faults(faulty: SimServer) -> None:
    with pytest.raises(SimulatorError, match="no model"):
        faulty.inject("nope", 500)
    with pytest.raises(SimulatorError, match="unknown fault"):
        faulty.inject("ok", "explode")
