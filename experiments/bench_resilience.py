"""The daemon in front of a misbehaving provider: how many calls still succeed, at what cost in latency.

A simulated world whose two models fail at the rates of issue 10 (5 % HTTP 500,
2 % 429 with Retry-After, 1 % hangs, 1 % truncated bodies), behind an alias
``safe`` = [primary, fallback] with the default retry policy. N requests
(non-streamed: a stream cut after its first byte cannot be retried, by design)
go through the daemon at a fixed concurrency; then the same requests go
straight to the simulator (no retries) for comparison. Reported: the share
answered successfully, p50/p99 latency of both paths and the p99 added by
retries, and whether the store holds exactly one record per attempt (each
linked to its request id).

A second phase kills a backend mid-run: its breaker opens (calls move to the
fallback) and, once it is back, a probe returns it to service within one
probe interval.

    python experiments/bench_resilience.py --requests 20000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agentopt.gateway.config import GatewayConfig
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer

FAULTS = {
    "errors": {500: 0.05, 429: 0.02},
    "retry_after_s": 0.05,
    "hang": 0.01,
    "hang_s": 5.0,
    "truncate": 0.01,
}


def world(seed: int) -> dict[str, Any]:
    base = {
        "provider": "openai",
        "skills": {"general": 0.8},
        "plan": 0.0,
        "latency": {"ttft_s": 0.02, "per_token_s": 0.0005},
        "output_tokens": {"median": 40},
        "faults": FAULTS,
    }
    return {
        "name": "flaky-issue-10",
        "seed": seed,
        "models": [{"name": "gpt-4o-mini", **base}, {"name": "gpt-4.1-nano", **base}],
    }


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


async def drive(url: str, model: str, n: int, concurrency: int) -> tuple[int, list[float]]:
    ok = 0
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as c:

        async def one(i: int) -> None:
            nonlocal ok
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await c.post(
                        url,
                        json={
                            "model": model,
                            "messages": [{"role": "user", "content": f"Say something about {i}."}],
                        },
                    )
                    good = r.status_code == 200 and "choices" in r.json()
                except (httpx.HTTPError, ValueError):
                    good = False
                lat.append(time.perf_counter() - t0)
                ok += good

        await asyncio.gather(*(one(i) for i in range(n)))
    return ok, lat


def phase_one(n: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, SimServer(world(1), time_scale=1.0) as sim:
        cfg = GatewayConfig.model_validate(
            {
                "providers": {"backup": {"base_url": sim.openai_base_url}},
                "aliases": {
                    "safe": {
                        "targets": ["openai/gpt-4o-mini", "backup/gpt-4.1-nano"],
                        "router": "fallback",
                    }
                },
                "resilience": {
                    "timeouts": {"first_byte": 1.0},
                    "breaker": {"failure_threshold": 50, "cooldown": 1},
                },
                "telemetry": {"metrics": False},
            }
        )
        daemon = Daemon(
            cfg, store=Path(tmp) / "records.sqlite", openai_base_url=sim.openai_base_url
        )
        with DaemonServer(daemon) as server:
            t0 = time.perf_counter()
            ok, lat = asyncio.run(
                drive(server.url + "/v1/chat/completions", "safe", n, concurrency)
            )
            wall = time.perf_counter() - t0
            daemon.store.flush()
            recs = daemon.store.all()
        # what reached the provider through the daemon (a hang also counts as ok later)
        served = sim.stats["ok"] + sum(
            v for k, v in sim.stats.items() if k.startswith("fault_") and k != "fault_hang"
        )
        direct_ok, direct_lat = asyncio.run(
            drive(sim.openai_base_url + "/chat/completions", "gpt-4o-mini", n, concurrency)
        )
    by_request: dict[str, list[int]] = {}
    for r in recs:
        by_request.setdefault(r.request_id or r.call_id, []).append(r.attempt or 1)
    linked = all(sorted(a) == list(range(1, len(a) + 1)) for a in by_request.values())
    return {
        "requests": n,
        "answered_ok": ok,
        "success_rate": ok / n,
        "direct_success_rate": direct_ok / n,
        "latency_p50_s": statistics.median(lat),
        "latency_p99_s": pct(lat, 99),
        "direct_latency_p50_s": statistics.median(direct_lat),
        "direct_latency_p99_s": pct(direct_lat, 99),
        "added_latency_p99_s": pct(lat, 99) - pct(direct_lat, 99),
        "records": len(recs),
        "requests_recorded": len(by_request),
        "attempts_linked_and_numbered": linked,
        "upstream_attempts_seen_by_provider": served,
        "wall_s": wall,
    }


def phase_two(interval: float = 0.5) -> dict[str, Any]:
    """A backend killed mid-run, then revived on the same port."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        SimServer(
            world(2) | {"models": [{**world(2)["models"][0], "faults": {}}]}, time_scale=0.0
        ) as main,
    ):
        backup = SimServer(
            {**world(3), "models": [{**world(3)["models"][1], "faults": {}}]}, time_scale=0.0
        )
        backup.start()
        port = backup.port
        cfg = GatewayConfig.model_validate(
            {
                "providers": {"backup": {"base_url": backup.openai_base_url}},
                "aliases": {
                    "safe": {
                        "targets": ["backup/gpt-4.1-nano", "openai/gpt-4o-mini"],
                        "router": "fallback",
                    }
                },
                "resilience": {
                    "retries": {"max_attempts": 1},
                    "breaker": {"failure_threshold": 3, "cooldown": 3600},
                    "health_checks": {
                        "backup": {"path": "/models", "interval": interval, "failure_threshold": 3}
                    },
                },
            }
        )
        daemon = Daemon(cfg, store=Path(tmp) / "r.sqlite", openai_base_url=main.openai_base_url)
        out: dict[str, Any] = {"probe_interval_s": interval, "breaker_threshold": 3}
        with DaemonServer(daemon) as server, httpx.Client(timeout=30) as c:

            def call() -> str:
                r = c.post(
                    server.url + "/v1/chat/completions",
                    json={"model": "safe", "messages": [{"role": "user", "content": "hi"}]},
                )
                return str(r.json()["_routing"]["selected_model"])

            assert call() == "backup/gpt-4.1-nano"
            backup.stop()
            killed = time.perf_counter()
            picks = [call() for _ in range(10)]
            out["failed_attempts_before_open"] = daemon.health_registry.backend(
                "backup"
            ).breaker.total_failures
            out["calls_after_kill_answered_by_fallback"] = picks.count("openai/gpt-4o-mini")
            while daemon.health_registry.available("backup"):
                time.sleep(0.01)
            out["breaker_open_after_s"] = time.perf_counter() - killed
            revived = SimServer(
                {**world(3), "models": [{**world(3)["models"][1], "faults": {}}]},
                time_scale=0.0,
                port=port,
            )
            revived.start()
            back = time.perf_counter()
            while not daemon.health_registry.available("backup"):
                time.sleep(0.01)
            out["back_in_service_after_s"] = time.perf_counter() - back
            out["next_call_answered_by"] = call()
            revived.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    one = phase_one(args.requests, args.concurrency)
    two = phase_two()
    print(json.dumps({"flaky": one, "killed_backend": two}, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"flaky": one, "killed_backend": two}, indent=2))


if __name__ == "__main__":
    main()
