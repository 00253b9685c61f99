"""Totals, dataframes and exports over 100,000 realistic records in SQLite.

Run: ``.venv/bin/python experiments/bench_store_totals.py [n_records] [--no-before]``
(``--no-before`` skips the slow "before" column).

Each record carries bodies like a real agent call (a system prompt, a few turns
of history and a tool definition in the request; an answer with a tool call in
the response): about 6 kB of JSON. For each operation the script prints its
time and its peak Python memory (tracemalloc, in a second run), first as the
store does it now (SQL aggregates, streamed export, dataframe from flat
columns), then as it was done before (every record loaded, then summed), and
the in-memory size of one record. Figures on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import gc
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking import LLMTracker
from agentopt.tracking.analytics import summary
from agentopt.tracking.storage.sqlite_store import SQLiteRecordStore

_SYSTEM = (
    "You are a careful research assistant. Answer with a short justification, cite the "
    "tool results you used, and say when you are unsure. "
) * 12
_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the knowledge base for passages relevant to a query.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
            "required": ["query"],
        },
    },
}


def realistic_record(i: int, rng: random.Random) -> CallRecord:
    """One call as an agent makes it: ~6 kB of request and response JSON."""
    model = rng.choice(["gpt-4o-mini", "gpt-4o", "claude-haiku-4-5"])
    turns = [
        {"role": "user", "content": f"Question {i}: " + "what does the report say about it? " * 8},
        {"role": "assistant", "content": "Let me look that up. " * 10},
        {"role": "user", "content": "Please also compare with last year's figures. " * 6},
    ]
    answer = "According to the search results, the figure rose by 12% year on year. " * 6
    return CallRecord(
        session_id=f"s{i // 4}",
        data_id=str(i % 10_000),
        combo_id=f"combo{i % 7}",
        agent_id=rng.choice(["planner", "solver", "critic"]),
        provider="openai",
        requested_model=model,
        model=model,
        prompt_tokens=rng.randint(800, 2400),
        completion_tokens=rng.randint(50, 400),
        cached_tokens=rng.choice([0, 0, 512]),
        latency_seconds=rng.uniform(0.3, 4.0),
        ttft_seconds=rng.uniform(0.1, 0.8),
        cost_usd=None if model == "claude-haiku-4-5" and i % 50 == 0 else rng.uniform(1e-4, 1e-2),
        request_url="https://api.openai.com/v1/chat/completions",
        request_body={
            "model": model,
            "messages": [{"role": "system", "content": _SYSTEM}, *turns],
            "tools": [_TOOL],
            "temperature": 0.2,
        },
        response_body={
            "id": f"chatcmpl-{i:012d}",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if i % 3 == 0 else "stop",
                    "message": {
                        "role": "assistant",
                        "content": answer,
                        "tool_calls": (
                            [
                                {
                                    "id": f"call_{i}",
                                    "type": "function",
                                    "function": {"name": "search", "arguments": '{"query":"x"}'},
                                }
                            ]
                            if i % 3 == 0
                            else None
                        ),
                    },
                }
            ],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 200, "total_tokens": 1400},
        },
        status_code=200,
        stream=i % 2 == 0,
    )


def measure(fn: Callable[[], Any]) -> tuple[float, float]:
    """(seconds, peak MB of Python allocations) of ``fn()``."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


def bytes_per_record(n: int = 5000) -> float:
    """Python memory one realistic record holds (tracemalloc over ``n`` records)."""
    rng = random.Random(1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    records = [realistic_record(i, rng) for i in range(n)]
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del records
    return held / n


def main() -> None:
    import pandas  # noqa: F401  (imported once here, not inside the first timing)

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    with_before = "--no-before" not in sys.argv
    rng = random.Random(0)
    per = bytes_per_record()
    json_kb = len(realistic_record(0, rng).model_dump_json()) / 1000
    print(f"one realistic record: {json_kb:.1f} kB of JSON, {per / 1000:.1f} kB in memory")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.sqlite"
        store = SQLiteRecordStore(path, batch_size=2000)
        t0 = time.perf_counter()
        for i in range(n):
            store.append(realistic_record(i, rng))
        store.flush()
        print(
            f"{n:,} records appended and written in {time.perf_counter() - t0:.1f} s;"
            f" file {path.stat().st_size / 2**20:.0f} MB"
        )
        tracker = LLMTracker(cache=False, store=store)
        out = Path(tmp) / "out.jsonl"
        rows: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
            ("get_cost()", tracker.get_cost, lambda: summary.total_cost(store.all())),
            ("get_usage()", tracker.get_usage, lambda: summary.usage_by_model(store.all())),
            ("get_cost(data_id=7)", lambda: tracker.get_cost(data_id=7), None),
            (
                "to_dataframe()",
                tracker.to_dataframe,
                lambda: summary.to_dataframe(store.all()),
            ),
            (
                "export_jsonl()",
                lambda: tracker.export_jsonl(out),
                lambda: summary.export_jsonl(store.all(), out),
            ),
        ]
        print(f"{'operation':<22} {'now: s':>8} {'peak MB':>8}   {'before: s':>9} {'peak MB':>8}")
        for name, now, before in rows:
            s_now, m_now = measure(now)
            line = f"{name:<22} {s_now:>8.3f} {m_now:>8.1f}"
            if before is not None and with_before:
                s_old, m_old = measure(before)
                line += f"   {s_old:>9.3f} {m_old:>8.1f}"
            print(line, flush=True)
        tracker.close()


if __name__ == "__main__":
    main()
