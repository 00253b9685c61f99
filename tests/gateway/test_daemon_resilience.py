"""Retries, fallbacks, breakers, probes and time-outs of the daemon, against the simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentopt.gateway.config import GatewayConfig
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import serving


@pytest.fixture()
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s


def _msg(text: str = "What is 2+2?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _post(url: str, model: str, **kw: Any) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": _msg(), **kw},
        timeout=60,
    )


def _cfg(sim: SimServer, **extra: Any) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            # a second provider on the same simulator: its own breaker
            "providers": {"backup": {"base_url": sim.openai_base_url}},
            "aliases": {
                "safe": {
                    "targets": ["openai/gpt-4o", "backup/gpt-4o-mini"],
                    "router": "fallback",
                }
            },
            **extra,
        }
    )


def test_a_500_is_retried_and_every_attempt_recorded_once(sim: SimServer) -> None:
    with serving(sim) as (d, server):
        sim.inject("gpt-4o-mini", 500)
        sim.inject("gpt-4o-mini", 429)  # Retry-After 0 at time scale 0
        r = _post(server.url, "gpt-4o-mini")
        assert r.status_code == 200
        rid = r.headers["x-agentopt-request-id"]
        assert r.json()["_request_id"] == rid and r.json()["_routing"]["attempts"] == 3
        d.store.flush()
        recs = sorted(d.store.all(), key=lambda x: x.attempt or 0)
    assert [x.attempt for x in recs] == [1, 2, 3]
    assert {x.request_id for x in recs} == {rid}
    assert [x.status_code for x in recs] == [500, 429, 200]
    assert len({x.call_id for x in recs}) == 3


def test_retry_after_is_honoured() -> None:
    """A 429 saying "Retry-After: 2" is retried after 2 s, not at once (no backoff here)."""
    with SimServer("default", time_scale=0.01, seed=0) as s:
        model = s.world.get("gpt-4o-mini")
        assert model is not None
        object.__setattr__(model.faults, "retry_after_s", 200.0)  # × time scale 0.01 = 2 s
        cfg = GatewayConfig.model_validate({"resilience": {"retries": {"base_delay": 0}}})
        with serving(s, cfg) as (_d, server):
            t0 = time.perf_counter()
            assert _post(server.url, "gpt-4o-mini").status_code == 200
            plain = time.perf_counter() - t0
            s.inject("gpt-4o-mini", 429)
            t0 = time.perf_counter()
            r = _post(server.url, "gpt-4o-mini")
            waited = time.perf_counter() - t0
    assert r.status_code == 200 and r.json()["_routing"]["attempts"] == 2
    assert plain < 2.0 <= waited


def test_client_errors_are_not_retried(sim: SimServer) -> None:
    with serving(sim) as (d, server):
        sim.inject("gpt-4o-mini", 400)
        r = _post(server.url, "gpt-4o-mini")
        d.store.flush()
        assert r.status_code == 400
        assert len(d.store.all()) == 1


def test_no_retry_once_the_stream_has_started(sim: SimServer) -> None:
    with serving(sim) as (d, server):
        sim.inject("gpt-4o-mini", "truncate")
        with httpx.stream(
            "POST",
            server.url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": _msg(), "stream": True},
            timeout=60,
        ) as r:
            assert r.status_code == 200
            body = b"".join(r.iter_raw())
        d.store.flush()
        recs = d.store.all()
    assert body  # the caller got the beginning, once
    assert len(recs) == 1 and recs[0].error is not None


def test_fallback_after_retries_says_why(sim: SimServer) -> None:
    cfg = _cfg(sim, resilience={"retries": {"max_attempts": 2, "base_delay": 0}})
    with serving(sim, cfg) as (d, server):
        sim.inject("gpt-4o", 503, times=2)
        r = _post(server.url, "safe")
        routing = r.json()["_routing"]
        d.store.flush()
        recs = d.store.all()
    assert r.status_code == 200
    assert routing["selected_model"] == "backup/gpt-4o-mini"
    assert routing["fallback_from"] == "openai/gpt-4o"
    assert routing["not_answered_by"] == [
        {"target": "openai/gpt-4o", "reason": "HTTP 503", "status": 503}
    ]
    assert [x.status_code for x in sorted(recs, key=lambda x: x.attempt or 0)] == [503, 503, 200]


def test_context_length_error_falls_back_without_retrying(sim: SimServer) -> None:
    with serving(sim, _cfg(sim)) as (_d, server):
        sim.inject("gpt-4o", 400)
        # the simulator's 400 is not a context-length error: no fallback
        r = _post(server.url, "safe")
        assert r.status_code == 400


def test_breaker_opens_moves_traffic_and_recovers(sim: SimServer) -> None:
    cfg = _cfg(
        sim,
        resilience={
            "retries": {"max_attempts": 1},
            "breaker": {"failure_threshold": 2, "cooldown": 30},
        },
    )
    now = [1000.0]
    with serving(sim, cfg) as (d, server):
        d.health_registry.clock = lambda: now[0]  # the breakers' time, driven by the test
        sim.inject("gpt-4o", 500, times=2)
        for _ in range(2):
            assert _post(server.url, "safe").status_code == 200  # fell back each time
        health = httpx.get(server.url + "/internal/health", timeout=30).json()
        assert health["backends"]["openai"]["breaker"]["state"] == "open"
        r = _post(server.url, "safe")  # excluded while open: not even attempted
        assert r.json()["_routing"]["selected_model"] == "backup/gpt-4o-mini"
        assert r.json()["_routing"]["attempts"] == 1
        d.store.flush()
        assert sum(x.model == "gpt-4o" for x in d.store.all()) == 2  # the two failures
        now[0] += 29.9
        assert d.health_registry.backend("openai").breaker.state.value == "open"
        now[0] += 0.2  # the cool-down is over: half-open
        assert d.health_registry.backend("openai").breaker.state.value == "half_open"
        r = _post(server.url, "safe")  # the half-open trial succeeds: back in service
        assert r.json()["_routing"]["selected_model"] == "openai/gpt-4o"
        assert d.health_registry.backend("openai").breaker.state.value == "closed"


def test_probes_take_a_dead_backend_out_and_back(tmp_path: Any) -> None:
    with SimServer("default", time_scale=0.0) as main_sim:
        backup = SimServer("default", time_scale=0.0)
        backup.start()
        port = backup.port
        cfg = GatewayConfig.model_validate(
            {
                "providers": {"backup": {"base_url": backup.openai_base_url}},
                "resilience": {
                    "health_checks": {
                        "backup": {"path": "/models", "interval": 0.05, "failure_threshold": 1}
                    },
                    "breaker": {"failure_threshold": 1, "cooldown": 3600},
                },
            }
        )
        with serving(main_sim, cfg) as (d, _server):
            reg = d.health_registry

            def state() -> str:
                return str(reg.backend("backup").breaker.state.value)

            deadline = time.monotonic() + 30
            while reg.backend("backup").probes < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert state() == "closed"
            backup.stop()
            while state() != "open":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            revived = SimServer("default", time_scale=0.0, port=port)
            revived.start()
            try:
                while state() != "closed":  # one probe interval, not the hour of cool-down
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            finally:
                revived.stop()


def test_a_hung_upstream_times_out_and_is_recorded(sim: SimServer) -> None:
    cfg = GatewayConfig.model_validate(
        {"resilience": {"timeouts": {"first_byte": 0.5}, "retries": {"max_attempts": 1}}}
    )
    with serving(sim, cfg) as (d, server):
        sim.inject("gpt-4o-mini", "hang")
        t0 = time.perf_counter()
        r = _post(server.url, "gpt-4o-mini")
        elapsed = time.perf_counter() - t0
        d.store.flush()
        recs = d.store.all()
    assert r.status_code == 504
    assert elapsed < 20
    assert len(recs) == 1
    assert recs[0].error == "TimeoutError: no response within 0.5 s"  # not a bare cancellation


def test_bad_resilience_config_names_the_key(tmp_path: Any) -> None:
    from agentopt.exceptions import ConfigError
    from agentopt.gateway.config import load_config

    p = tmp_path / "gw.yaml"
    p.write_text("resilience:\n  retries: {max_attempts: 0}\n")
    with pytest.raises(ConfigError, match=r"resilience\.retries\.max_attempts"):
        load_config(p)


@pytest.mark.parametrize("fault", ["drop", "malformed", "truncate", 529])
def test_each_fault_before_the_first_byte_is_retried(sim: SimServer, fault: Any) -> None:
    """A dropped connection, a 200 that is not JSON, a body cut short, an overload:
    nothing reached the caller yet, so the next attempt answers."""
    with serving(sim) as (d, server):
        sim.inject("gpt-4o-mini", fault)
        r = _post(server.url, "gpt-4o-mini")
        body = r.json()
        recs = sorted(d.records(), key=lambda x: x.attempt or 0)
    assert r.status_code == 200 and body["_routing"]["attempts"] == 2
    assert [x.attempt for x in recs] == [1, 2]
    assert recs[0].error is not None or (recs[0].status_code or 0) >= 400
    assert recs[1].ok
