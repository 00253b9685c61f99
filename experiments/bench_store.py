"""Record store at scale: 100,000 records, query latency by data_id, memory.

Run: ``.venv/bin/python experiments/bench_store.py [n_records]``. ``bench_store()``
returns the figures as a dict so that ``experiments/bench_tracker.py`` can call it.
Figures on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking.storage.store import MemoryRecordStore, RecordStore, SQLiteRecordStore


def _records(n: int, n_data: int) -> list[CallRecord]:
    return [
        CallRecord(
            data_id=str(i % n_data),
            combo_id=f"combo{i % 7}",
            agent_id=f"agent{i % 3}",
            session_id=f"s{i // 4}",
            model="gpt-4o-mini",
            requested_model="gpt-4o-mini",
            prompt_tokens=120,
            completion_tokens=40,
            latency_seconds=0.5,
            cost_usd=0.0001,
            request_body={
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi " * 10}],
            },
            response_body={"choices": [{"message": {"content": "ok " * 10}}]},
            status_code=200,
        )
        for i in range(n)
    ]


def _query_ms(store: RecordStore, n_data: int, repeats: int = 2000) -> float:
    times = []
    for k in range(repeats):
        t0 = time.perf_counter()
        store.query(data_id=k % n_data)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_store(n: int = 100_000, n_data: int = 10_000) -> dict[str, Any]:
    """Append ``n`` records (``n / n_data`` per datapoint) to each store and time queries."""
    out: dict[str, Any] = {"records": n, "datapoints": n_data}
    gc.collect()
    tracemalloc.start()
    records = _records(n, n_data)
    out["records_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
    base = tracemalloc.get_traced_memory()[0]
    mem = MemoryRecordStore()
    t0 = time.perf_counter()
    for r in records:
        mem.append(r)
    out["memory_append_us"] = (time.perf_counter() - t0) / n * 1e6
    out["memory_index_mb"] = (tracemalloc.get_traced_memory()[0] - base) / 2**20
    tracemalloc.stop()
    out["memory_query_ms"] = _query_ms(mem, n_data)

    with tempfile.TemporaryDirectory() as tmp:
        sq = SQLiteRecordStore(Path(tmp) / "r.sqlite")
        t0 = time.perf_counter()
        for r in records:
            sq.append(r)
        sq.flush()
        out["sqlite_append_us"] = (time.perf_counter() - t0) / n * 1e6
        out["sqlite_query_ms"] = _query_ms(sq, n_data, repeats=500)
        out["sqlite_file_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
        sq.close()
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    res = bench_store(n)
    print(f"records: {res['records']:,} over {res['datapoints']:,} datapoints")
    print(
        f"memory store: append {res['memory_append_us']:.2f} µs/record, "
        f"query by data_id median {res['memory_query_ms']:.4f} ms, "
        f"memory: records {res['records_mb']:.0f} MB + indexes {res['memory_index_mb']:.1f} MB"
    )
    print(
        f"sqlite store: append {res['sqlite_append_us']:.2f} µs/record (batched), "
        f"query by data_id median {res['sqlite_query_ms']:.4f} ms, file {res['sqlite_file_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
