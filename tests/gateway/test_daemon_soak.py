"""The soak at small scale: concurrent clients, injected faults, SIGTERM while they
send; every answered request has its records (one per attempt), none extra, none twice.
(``experiments/bench_gateway.py --soak 60`` runs it with 200 clients for a minute.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentopt.sim import SimServer
from agentopt.tracking.storage.store import get_store

pytestmark = pytest.mark.xdist_group("daemon")

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 2+2?"}]}
CLIENTS = 20
EACH_BEFORE_SIGTERM = 5  # requests every client has answered before the daemon is stopped


async def _clients(base: str, daemon: subprocess.Popen[str]) -> dict[str, int | None]:
    """Clients send until the daemon refuses them; SIGTERM goes once each has had
    EACH_BEFORE_SIGTERM answers (so calls are in flight when it arrives)."""
    answered: dict[str, int | None] = {}
    counts = [0] * CLIENTS
    stopped = asyncio.Event()
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one(i: int) -> None:
            n = 0
            while True:
                stream = (i + n) % 4 == 0
                n += 1
                body = {**BODY, "stream": True} if stream else BODY
                try:
                    async with client.stream("POST", base + "/v1/chat/completions", json=body) as r:
                        rid = r.headers["x-agentopt-request-id"]
                        attempts = None
                        try:
                            content = await r.aread()
                            if r.status_code == 200 and not stream:
                                attempts = json.loads(content)["_routing"]["attempts"]
                        except httpx.HTTPError:
                            pass  # a stream cut short upstream is still an answer
                        answered[rid] = attempts
                except httpx.TransportError:
                    if stopped.is_set():
                        return  # the daemon has gone
                    raise
                counts[i] += 1
                if not stopped.is_set() and min(counts) >= EACH_BEFORE_SIGTERM:
                    stopped.set()
                    daemon.send_signal(signal.SIGTERM)

        await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    return answered


def test_sigterm_under_load_with_faults_loses_and_duplicates_no_record(tmp_path: Path) -> None:
    store = tmp_path / "records.sqlite"
    with SimServer("soak", time_scale=0.0) as sim:  # 5 % injected faults
        daemon = subprocess.Popen(
            [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", "--store", str(store),
             "--openai-base-url", sim.openai_base_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "OPENAI_API_KEY": "sk-soak"},
        )  # fmt: skip
        try:
            assert daemon.stdout is not None
            line = daemon.stdout.readline()
            assert "listening on" in line, line
            base = line.split("listening on", 1)[1].strip()
            answered = asyncio.run(_clients(base, daemon))
            said = daemon.stdout.read()
            assert daemon.wait(120) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    records: list[Any] = get_store(store).query()
    assert f"{len(records)} records" in said
    by_request: dict[str, list[int]] = {}
    for r in records:
        assert r.request_id is not None
        by_request.setdefault(r.request_id, []).append(r.attempt)
    assert len(answered) >= CLIENTS * EACH_BEFORE_SIGTERM
    # records written = requests answered: each answered request is recorded, and
    # nothing is recorded that no client got an answer to
    assert set(by_request) == set(answered)
    # none duplicated: one record per attempt, attempts numbered 1..n
    assert max(Counter(r.call_id for r in records).values()) == 1
    for rid, attempts in by_request.items():
        assert sorted(attempts) == list(range(1, len(attempts) + 1)), rid
        if answered[rid] is not None:  # the answer said how many attempts it took
            assert len(attempts) == answered[rid], rid
