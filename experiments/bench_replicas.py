"""Gateway replicas on one PostgreSQL: records per second, and what a call pays.

Run: ``.venv/bin/python experiments/bench_replicas.py [--url postgresql://...]
[--records 20000] [--calls 600] [--latency-calls 300]``. Without ``--url`` it
starts a throwaway PostgreSQL from Debian's binaries, as the tests do.

1. **Records into one database**: two processes (each a ``PostgresRecordStore``,
   what ``agentopt serve --store postgresql://…`` writes with) append
   ``--records`` records each as fast as they can and flush: records per second
   is all records over the wall time until both have flushed.
2. **Two replicas end to end**: two ``agentopt serve --store postgresql://…``
   processes in front of the simulator (no upstream delay), 8 client threads
   alternating between them: calls answered per second, every record checked
   present and unique at the end.
3. **Latency per call**: one daemon, sequential calls, with a SQLite store, a
   PostgreSQL store, and PostgreSQL with ``commit_before_answer`` (each call
   waits for its record's transaction): median and p95, and the difference
   from SQLite.

4. **A replica that starts on a long history** (``--history N``): ``N`` rows in
   the shared feedback log and ``N`` in the usage log (one alias, two models, a
   Thompson router with a budget): the time of the new replica's first sync,
   which folds the whole feedback log row by row (router learning depends on
   order) and reads the usage log summed in the database.

Timing figures: run un-niced and read them next to the machine's load (printed).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _fresh_db(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


# -- 1. records into one database -------------------------------------------------


def _writer(url: str, tag: str, n: int, start: Any, out: Any) -> None:
    from agentopt.records import CallRecord
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

    store = PostgresRecordStore(url)
    records = [
        CallRecord(
            call_id=f"{tag}-{i}",
            data_id=str(i % 100),
            model="gpt-4o-mini",
            prompt_tokens=120,
            completion_tokens=40,
            cost_usd=0.0001,
            latency_seconds=0.5,
            request_body={"messages": [{"role": "user", "content": "hi " * 10}]},
            response_body={"choices": [{"message": {"content": "ok " * 10}}]},
        )
        for i in range(n)
    ]
    start.wait()
    t0 = time.perf_counter()
    for r in records:
        store.append(r)
    store.flush()
    out.put(time.perf_counter() - t0)
    store.close()


def records_per_second(url: str, n: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, t, n, start, out)) for t in ("a", "b")]
    for p in procs:
        p.start()
    time.sleep(3)  # both stores open and their records built before the clock starts
    t0 = time.perf_counter()
    start.set()
    times = [out.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    import psycopg

    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT call_id) FROM records").fetchone()
    assert stored == (2 * n, 2 * n), stored
    return {"records": 2 * n, "wall_s": wall, "per_s": 2 * n / wall, "slowest_s": max(times)}


# -- 2. two replicas end to end ------------------------------------------------------


class _Serve:
    def __init__(self, url: str, sim: Any, config: Path | None = None) -> None:
        cmd = [sys.executable, "-m", "agentopt.cli", "serve", "--port", "0", "--store", url]
        cmd += ["--openai-base-url", sim.openai_base_url]
        if config is not None:
            cmd += ["--config", str(config)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={
                **os.environ,
                "OPENAI_API_KEY": "sk-bench",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            },
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.url = line.rsplit(" ", 1)[1].strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=60)


def two_replicas(url: str, sim: Any, calls: int) -> dict[str, float]:
    replicas = [_Serve(url, sim), _Serve(url, sim)]
    local = threading.local()

    def call(i: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
        r = client.post(
            replicas[i % 2].url + "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]},
        )
        r.raise_for_status()
        return r.headers["x-agentopt-request-id"]

    try:
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(call, range(40)))  # warm up
            t0 = time.perf_counter()
            ids = list(ex.map(call, range(40, 40 + calls)))
            wall = time.perf_counter() - t0
    finally:
        for r in replicas:
            r.stop()  # drains and flushes
    import psycopg

    with psycopg.connect(url) as conn:
        stored = {row[0] for row in conn.execute("SELECT call_id FROM records")}
    assert set(ids) <= stored and len(stored) == calls + 40
    return {"calls": calls, "wall_s": wall, "per_s": calls / wall}


# -- 3. latency per call ---------------------------------------------------------------


def latency(store: str, sim: Any, n: int, commit: bool = False) -> dict[str, float]:
    from agentopt.gateway.config import GatewayConfig
    from agentopt.gateway.daemon import Daemon
    from agentopt.gateway.service import DaemonServer

    daemon = Daemon(
        GatewayConfig(commit_before_answer=commit),
        store=store,
        openai_base_url=sim.openai_base_url,
        environ={"OPENAI_API_KEY": "sk-bench"},
    )
    server = DaemonServer(daemon, drain_seconds=5)
    server.start()
    times = []
    try:
        with httpx.Client(timeout=60) as client:
            for i in range(n + 30):
                t0 = time.perf_counter()
                r = client.post(
                    server.url + "/v1/chat/completions",
                    json={
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": f"{i}"}],
                    },
                )
                r.raise_for_status()
                if i >= 30:  # warm-up left out
                    times.append(time.perf_counter() - t0)
    finally:
        server.stop()
    times.sort()
    return {
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * times[int(0.95 * len(times)) - 1],
    }


# -- 4. a replica that starts on a long history ---------------------------------------


def first_sync(url: str, n: int) -> dict[str, float]:
    """Fill the feedback and usage logs with ``n`` rows each, then time a new
    replica's first sync (see the module docstring, 4)."""
    from types import SimpleNamespace

    import psycopg

    from agentopt.gateway.replicas import SharedRouters
    from agentopt.routers import ThompsonRouter
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

    models = ("openai/gpt-4o-mini", "openai/gpt-4.1")
    store = PostgresRecordStore(url)  # creates the tables
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO router_feedback (alias, credit_key, event, origin, created_at)"
            " SELECT 'pick', 'call:' || i,"
            " json_build_object('reward', (i %% 3)::float / 2, 'models',"
            " json_build_array(CASE WHEN i %% 2 = 0 THEN %s ELSE %s END))::text,"
            " 'bench', extract(epoch from now()) FROM generate_series(1, %s) AS i",
            (models[0], models[1], n),
        )
        conn.execute(
            "INSERT INTO router_usage (alias, model, calls, cost_usd, at, origin)"
            " SELECT 'pick', CASE WHEN i %% 2 = 0 THEN %s ELSE %s END, 1, 0.0001,"
            " extract(epoch from now()) - 86400 + i * 0.001, 'bench:' || (i %% 4)"
            " FROM generate_series(1, %s) AS i",
            (models[0], models[1], n),
        )
    router = ThompsonRouter(list(models), budget_usd=1e6, seed=0)
    replica = SharedRouters(store, {"pick": SimpleNamespace(router=router)}, origin="new")  # type: ignore[dict-item]
    try:
        t0 = time.perf_counter()
        folded = replica.sync()
        wall = time.perf_counter() - t0
        spend = router.limits.total_spend
    finally:
        replica.close()
        store.close()
    assert folded == n, folded
    assert abs(spend - 0.0001 * n) < 1e-6 * max(1, n), spend
    return {"rows": n, "wall_s": wall, "per_s": n / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a PostgreSQL server URL (default: start one)")
    ap.add_argument("--records", type=int, default=20_000, help="records per writer process")
    ap.add_argument("--calls", type=int, default=600, help="calls through the two replicas")
    ap.add_argument("--latency-calls", type=int, default=300, help="sequential calls per store")
    ap.add_argument(
        "--history", type=int, default=100_000, help="rows in each log a new replica folds"
    )
    args = ap.parse_args()

    from agentopt.sim import SimServer

    pg = None
    if args.url is None:
        from tests.tracking.storage.pg_server import PgServer

        pg = PgServer()
        server_url = pg.url
    else:
        server_url = args.url
    try:
        with SimServer("default", time_scale=0.0, seed=0) as sim:
            print(f"load before: {_load()}")
            r1 = records_per_second(_fresh_db(server_url, "bench_writes"), args.records)
            print(
                f"records into one PostgreSQL from 2 processes: {r1['per_s']:,.0f} records/s"
                f" ({r1['records']:,} records in {r1['wall_s']:.2f} s)   load {_load()}"
            )
            r2 = two_replicas(_fresh_db(server_url, "bench_replicas"), sim, args.calls)
            print(
                f"two `agentopt serve` replicas, 8 client threads: {r2['per_s']:,.0f} calls/s"
                f" ({r2['calls']} calls in {r2['wall_s']:.2f} s), every record stored once"
                f"   load {_load()}"
            )
            with tempfile.TemporaryDirectory() as tmp:
                rows = {
                    "SQLite": latency(str(Path(tmp) / "r.sqlite"), sim, args.latency_calls),
                    "PostgreSQL": latency(
                        _fresh_db(server_url, "bench_latency"), sim, args.latency_calls
                    ),
                    "PostgreSQL, commit_before_answer": latency(
                        _fresh_db(server_url, "bench_commit"), sim, args.latency_calls, True
                    ),
                }
            base = rows["SQLite"]["median_ms"]
            print(f"latency per call, one daemon, {args.latency_calls} sequential calls:")
            for name, row in rows.items():
                print(
                    f"  {name:34s} median {row['median_ms']:6.2f} ms  p95 {row['p95_ms']:6.2f} ms"
                    f"  added vs SQLite {row['median_ms'] - base:+6.2f} ms"
                )
            r4 = first_sync(_fresh_db(server_url, "bench_history"), args.history)
            print(
                f"a replica that starts on {r4['rows']:,} feedback rows and as many usage rows:"
                f" first sync {r4['wall_s']:.2f} s ({r4['per_s']:,.0f} feedback rows/s)"
                f"   load {_load()}"
            )
            print(f"load after: {_load()}")
    finally:
        if pg is not None:
            pg.close()


if __name__ == "__main__":
    main()
