"""usage_stats over 1,000,000 records stored in SQLite (target: under 1 s each).

Run: ``.venv/bin/python experiments/bench_usage_stats.py [n_records] [--keep PATH]``.

Builds a store of ``n`` records (3 providers, 6 models, 30 days, 200 combos,
5 % errors, 2 % unpriced, 10 % cache hits; small bodies, which statistics never
read: they read the flat ``calls`` table only), then times each query (best of
3, after one warm-up: the OS page cache is warm, as on a running daemon), wall
and CPU (SQLite's scan is spread over two threads: CPU can exceed wall).
``--keep PATH`` keeps (or reuses) the store file. Figures on a shared 2-core
machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking.analytics.usage import usage_stats
from agentopt.tracking.storage.sqlite_store import SQLiteRecordStore

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-sonnet-4-6"),
    ("gemini", "gemini-2.5-flash"),
    ("gemini", "gemini-2.5-pro"),
]
START = datetime(2026, 11, 1, tzinfo=UTC)


def _record(i: int, rng: random.Random) -> CallRecord:
    provider, model = MODELS[i % len(MODELS)]
    failed = rng.random() < 0.05
    return CallRecord(
        call_id=f"{i:012x}",
        data_id=i % 5000,
        combo_id=f"combo{i % 200}",
        agent_id=("planner", "solver")[i % 2],
        provider=provider,
        model=model,
        requested_model=model,
        prompt_tokens=rng.randint(100, 3000),
        completion_tokens=0 if failed else rng.randint(10, 600),
        latency_seconds=rng.lognormvariate(0, 0.6),
        ttft_seconds=rng.uniform(0.05, 0.9) if i % 2 else None,
        cost_usd=None if rng.random() < 0.02 else rng.uniform(1e-5, 1e-2),
        status_code=rng.choice([429, 500, 503]) if failed else 200,
        error="upstream error" if failed else None,
        cached=rng.random() < 0.1,
        timestamp=(START + timedelta(seconds=i * 30 * 86400 / 1_000_000)).isoformat(),
        request_body={"model": model, "messages": [{"role": "user", "content": f"q{i}"}]},
        response_body={"choices": [{"message": {"content": "a"}}]},
    )


def build(path: Path, n: int) -> None:
    store = SQLiteRecordStore(path, batch_size=5000)
    have = len(store)
    rng = random.Random(0)
    t0 = time.perf_counter()
    for i in range(have, n):
        store.append(_record(i, rng))
    store.close()
    if n > have:
        print(f"built {n - have:,} records in {time.perf_counter() - t0:.0f} s")


def best_of(fn: Callable[[], Any], k: int = 3) -> tuple[float, float]:
    """Best wall time and best CPU time (all threads of the process) of ``k`` runs."""
    fn()
    walls, cpus = [], []
    for _ in range(k):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    with TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "records.sqlite"
        build(path, args.n)
        store = SQLiteRecordStore(path)
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(f"{len(store):,} records, file {path.stat().st_size / 2**20:.0f} MB")
        cases: list[tuple[str, dict[str, Any]]] = [
            ("all calls, no grouping", {}),
            ("group_by=model", {"group_by": "model"}),
            ("group_by=model,day", {"group_by": "model,day"}),
            ("group_by=provider,status", {"group_by": "provider,status"}),
            ("one day (start/end_date)", {"start_date": "2026-11-10", "end_date": "2026-11-10"}),
            ("model=gpt-4o, group_by=day", {"model": "gpt-4o", "group_by": "day"}),
            ("combo_id=combo7", {"combo_id": "combo7"}),
            ("status=error, group_by=model", {"status": "error", "group_by": "model"}),
        ]
        for name, kw in cases:
            wall, cpu = best_of(lambda kw=kw: usage_stats(store, **kw))
            groups = len(usage_stats(store, **kw))
            print(f"{name:<32} {wall:7.3f} s  (CPU {cpu:.3f} s, {groups} groups)", flush=True)
        store.close()


if __name__ == "__main__":
    main()
