"""``agentopt serve`` as a process: start, serve, SIGTERM with calls in flight, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agentopt._serving import ThreadedServer
from agentopt.sim import SimServer
from agentopt.tracking.storage.store import SQLiteRecordStore
from tests.gateway.daemon_kit import PLANTED, CannedUpstream, ServeProcess, sim_args

pytestmark = pytest.mark.xdist_group("daemon")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as s:
        yield s


def test_serve_records_survive_a_restart_and_errors_print_no_traceback(
    sim: SimServer, tmp_path: Path
) -> None:
    store = tmp_path / "records.sqlite"
    d = ServeProcess("--store", str(store), *sim_args(sim))
    client = openai.OpenAI(base_url=d.url + "/v1", api_key="anything", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    # the upstream drops the connection half-way through the body, on every attempt
    # (the header forces the fault): 3 attempts, each recorded, then a 502
    broken = httpx.post(
        d.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "b"}]},
        headers={"x-sim-fault": "truncate"},
    )
    # a CLI agent in another process, pointed at the daemon by its base URL only
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import openai; c = openai.OpenAI();"
            "r = c.chat.completions.create(model='gpt-4.1', messages=[{'role': 'user', 'content': 'c'}]);"
            "print(r.model)",
        ],
        env={**os.environ, "OPENAI_BASE_URL": d.url + "/v1", "OPENAI_API_KEY": "whatever"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, out, err = d.stop()
    assert child.returncode == 0 and child.stdout.strip() == "gpt-4.1", child.stderr
    assert broken.status_code == 502 and "upstream" in broken.json()["error"]["message"]
    assert code == 0, err
    assert "Traceback" not in err and "Traceback" not in out
    for key in PLANTED.values():
        assert key not in out + err
    assert "5 records" in out
    d2 = ServeProcess("--store", str(store), *sim_args(sim))
    httpx.post(
        d2.url + "/v1/messages",
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "d"}],
        },
    )
    count = httpx.get(d2.url + "/agentopt/v1/records/count").json()["count"]
    code2, out2, _ = d2.stop()
    assert code2 == 0 and count == 6 and "6 records" in out2
    s = SQLiteRecordStore(store)
    recs = s.all()
    s.close()
    assert [r.requested_model for r in recs] == [
        *["gpt-4o-mini"] * 4,
        "gpt-4.1",
        "claude-haiku-4-5",
    ]
    # the broken call's three attempts are recorded as failed, linked to one request
    assert all(r.error is not None for r in recs[1:4])
    assert [r.attempt for r in recs[1:4]] == [1, 2, 3]
    assert len({r.request_id for r in recs[1:4]}) == 1
    report = subprocess.run(
        [sys.executable, "-m", "agentopt.cli", "report", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0 and "claude-haiku-4-5" in report.stdout


class GatedUpstream(CannedUpstream):
    """Holds every answer until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def before_answer(self, scope: Any) -> None:
        await asyncio.to_thread(self.release.wait, 60)


def test_sigterm_drains_calls_in_flight_and_flushes_every_record(tmp_path: Path) -> None:
    gate = GatedUpstream()
    store = tmp_path / "records.sqlite"
    with ThreadedServer(gate, name="gated-upstream") as upstream:
        d = ServeProcess("--store", str(store), "--openai-base-url", upstream.url + "/v1")

        def call(i: int) -> int:
            r = httpx.post(
                d.url + "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": str(i)}]},
                timeout=60,
            )
            return r.status_code

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(call, i) for i in range(4)]
            while httpx.get(d.url + "/internal/health").json()["in_flight"] < 4:
                pass
            d.proc.send_signal(signal.SIGTERM)
            # the daemon stops accepting new connections, then waits for the four
            while True:
                try:
                    httpx.get(d.url + "/healthz", timeout=1)
                except httpx.TransportError:
                    break
            gate.release.set()
            statuses = [f.result() for f in futures]
        _out, err = d.proc.communicate(timeout=60)
    assert d.proc.returncode == 0, err
    assert statuses == [200, 200, 200, 200]
    s = SQLiteRecordStore(store)
    recs = s.all()
    s.close()
    assert len(recs) == 4 and all(r.error is None and r.status_code == 200 for r in recs)
    assert len({r.call_id for r in recs}) == 4


def test_bad_config_file_names_the_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("aliases:\n  smart:\n    targets: [gpt-4o]\nkeys: everyone\n")
    r = subprocess.run(
        [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert str(cfg) in r.stderr
    assert "aliases.smart.targets" in r.stderr and "provider/model" in r.stderr
    assert "'keys'" in r.stderr and "engine" in r.stderr
