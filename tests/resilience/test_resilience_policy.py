"""Retry policy, circuit breaker and health registry, driven with a fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from agentopt.exceptions import ConfigError
from agentopt.resilience import CircuitBreaker, HealthRegistry, RetryPolicy, parse_retry_after
from agentopt.resilience.health import ProbeConfig


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    date = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(7.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_after_is_honoured_and_capped() -> None:
    p = RetryPolicy(max_attempts=3, max_retry_after=10, seed=0)
    d = p.decide(attempt=1, status=429, headers={"Retry-After": "4"})
    assert d.retry and d.delay == 4.0 and d.reason == "Retry-After"
    assert p.decide(attempt=1, status=503, headers={"retry-after-ms": "250"}).delay == 0.25
    too_long = p.decide(attempt=1, status=429, headers={"Retry-After": "120"})
    assert not too_long.retry and "exceeds" in too_long.reason


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529, 599, 408])
def test_retryable_statuses(status: int) -> None:
    assert RetryPolicy(seed=0).decide(attempt=1, status=status).retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    assert not RetryPolicy(seed=0).decide(attempt=1, status=status).retry


def test_never_retried_after_the_stream_started_or_past_the_limit() -> None:
    p = RetryPolicy(max_attempts=3, seed=0)
    assert not p.decide(attempt=1, status=500, started=True).retry
    assert not p.decide(attempt=3, status=500).retry
    assert p.decide(attempt=2, connection_error=True).retry
    assert p.decide(attempt=1, timeout=True).retry
    assert not RetryPolicy(retry_on_timeout=False).decide(attempt=1, timeout=True).retry


def test_backoff_is_jittered_exponential_and_capped() -> None:
    p = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4.0, seed=1)
    for attempt in range(1, 9):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        draws = [p.backoff(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # full jitter spans the range
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)


def test_breaker_opens_after_threshold_half_opens_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        b.record_failure("HTTP 500")
    assert b.state == "closed" and b.allow()
    b.record_failure("HTTP 500")
    assert b.state == "open" and not b.allow() and not b.available()
    clock.t += 9.9
    assert b.state == "open"
    clock.t += 0.2
    assert b.state == "half_open"
    assert b.allow()  # the one trial
    assert not b.allow()  # no second trial while the first is out
    b.record_failure("still down")
    assert b.state == "open" and b.opened == 2
    clock.t += 10
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow()
    assert b.snapshot()["times_opened"] == 2


def test_success_resets_the_consecutive_count() -> None:
    b = CircuitBreaker(failure_threshold=2, cooldown=1)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"


def test_probes_open_and_close_a_backend() -> None:
    clock = Clock()
    reg = HealthRegistry(failure_threshold=5, cooldown=60, clock=clock)
    reg.configure_probe(
        "sim", ProbeConfig(url="http://sim/healthz", interval=1, failure_threshold=2)
    )
    down = True

    async def probe(url: str) -> str | None:
        assert url == "http://sim/healthz"
        return "connection refused" if down else None

    async def run() -> None:
        nonlocal down
        assert await reg.probe_once("sim", probe) is False
        assert reg.available("sim")  # one failed probe is below the threshold
        await reg.probe_once("sim", probe)
        assert not reg.available("sim")
        snap = reg.snapshot()["sim"]
        assert snap["breaker"]["state"] == "open" and snap["probe"]["consecutive_failures"] == 2
        down = False
        assert await reg.probe_once("sim", probe)  # back: one probe returns it to service
        assert reg.available("sim")

    asyncio.run(run())


def test_passive_signals_from_real_calls() -> None:
    reg = HealthRegistry(failure_threshold=2, cooldown=5, clock=Clock())
    reg.record("a", ok=False, error="HTTP 503")
    reg.record("a", ok=False, error="HTTP 503")
    assert not reg.available("a") and reg.available("never-seen")
    assert reg.snapshot()["a"]["calls_failed"] == 2


def test_run_probes_until_stopped() -> None:
    reg = HealthRegistry()
    reg.configure_probe("x", ProbeConfig(url="http://x/", interval=0.01))
    seen: list[str] = []

    async def probe(url: str) -> str | None:
        seen.append(url)
        if len(seen) >= 3:
            stop.set()
        return None

    stop = asyncio.Event()

    async def run() -> None:
        await asyncio.wait_for(reg.run_probes(stop, probe), timeout=30)

    asyncio.run(run())
    assert len(seen) >= 3
