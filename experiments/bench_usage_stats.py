"""usage_stats over 1,000,000 records stored in SQLite (target: under 1 s each).

Run: ``.venv/bin/python experiments/bench_usage_stats.py [n_records] [--keep PATH]``.

Builds a store of ``n`` records (3 providers, 6 models, 30 days, 200 combos,
5 % errors, 2 % unpriced, 10 % cache hits; small bodies, which statistics never
read: they read the flat ``calls`` table and its column blocks only), then times
each query (best of 3, after one warm-up: the OS page cache is warm, as on a
running daemon), wall and CPU (SQLite's scans are spread over two threads: CPU
can exceed wall), two ways side by side: ``new``, numpy over the column blocks
(schema 6) plus SQL over the rows no block holds yet, and ``old``, SQL over
every row (schema 5's way, still the fallback), checking that both give the
same figures. ``--keep PATH`` keeps (or reuses) the store file; a file of
schema 5 is migrated when opened and its blocks are built by the first query
(timed apart). ``uptime``'s load is printed before and after: figures on a
shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import random
import subprocess
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
        data_id=str(i % 5000),
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


def _uptime() -> None:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"uptime: {out} ({os.cpu_count()} cores)")


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Same groups and figures; sums of floats equal to rounding (added in
    another order)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for k in x:
            u, v = x[k], y[k]
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-12):
                    return False
            elif u != v:
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    with TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "records.sqlite"
        build(path, args.n)
        store = SQLiteRecordStore(path)
        print(f"{len(store):,} records, file {path.stat().st_size / 2**20:.0f} MB")
        blocks = store.sql("SELECT count(*) FROM call_blocks")[0][0]
        t0 = time.perf_counter()
        usage_stats(store)
        made = store.sql("SELECT count(*) FROM call_blocks")[0][0] - blocks
        print(
            f"first query: {time.perf_counter() - t0:.2f} s ({blocks} column blocks there,"
            f" {made} built by it)"
        )
        _uptime()
        print(f"{'query':<32} {'new (blocks)':>26}   {'old (SQL, schema 5)':>26}")
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
            cells = []
            answers = []
            for blocks_on in (True, False):
                store.stat_blocks = blocks_on
                wall, cpu = best_of(functools.partial(usage_stats, store, **kw))
                answers.append(usage_stats(store, **kw).as_dict()["groups"])
                cells.append(f"{wall:7.3f} s (CPU {cpu:.3f} s)")
            store.stat_blocks = True
            same = _same(*answers)
            print(
                f"{name:<32} {cells[0]:>26}   {cells[1]:>26}  {len(answers[0])} groups,"
                f" {'same figures' if same else 'FIGURES DIFFER'}",
                flush=True,
            )
        _uptime()
        store.close()


if __name__ == "__main__":
    main()
