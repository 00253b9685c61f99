"""SQLite's column blocks: statistics read through them equal the reference
computation, whatever the blocks hold, after writes, estimate updates, pruning
and the migration of a schema-5 file."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentopt import usage_stats
from agentopt.records import CallRecord
from agentopt.tracking.analytics import usage_blocks
from agentopt.tracking.analytics.usage import normalize, stats_of_records
from agentopt.tracking.storage.sqlite_store import SCHEMA_VERSION, SQLiteRecordStore

BLOCK = 64  # seqs per block here: a few hundred records make several blocks and a tail

QUERIES: list[dict[str, Any]] = [
    {},
    {"group_by": "model"},
    {"group_by": "model,day"},
    {"group_by": "provider,status"},
    {"group_by": "hour"},
    {"group_by": "alias,agent_id"},
    {"group_by": "data_id", "status": "ok"},
    {"group_by": "session_id,requested_model", "provider": "anthropic"},
    {"status": "error", "group_by": "model"},
    {"status": "no_response"},
    {"status": 429, "group_by": "combo_id"},
    {"model": "m1", "group_by": "day"},
    {"alias": "smart", "group_by": "status"},
    {"combo_id": "k3", "agent_id": "solver"},
    {"start_date": "2026-11-03", "end_date": "2026-11-04", "group_by": "model"},
    {"start_date": "2026-11-02T06:30:00", "group_by": "provider"},
    {"data_id": "nope"},
]


def _records(n: int, seed: int, start: datetime) -> list[CallRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        failed = rng.random() < 0.15
        code = rng.choice([429, 500, 503, None]) if failed else rng.choice([200, 200, 201, None])
        out.append(
            CallRecord(
                call_id=f"s{seed}-{i}",
                provider=rng.choice(["openai", "anthropic", None]),
                model=rng.choice(["m1", "m2", "m3", None]),
                requested_model=rng.choice(["m1", "r2", None]),
                alias=rng.choice(["smart", "cheap", None]),
                combo_id=f"k{rng.randrange(5)}",
                data_id=rng.choice([None, *range(8)]),
                agent_id=rng.choice(["planner", "solver", None]),
                session_id=rng.choice([None, "s1", "s2"]),
                status_code=code,
                error="boom" if failed else None,
                prompt_tokens=rng.randrange(0, 5000),
                completion_tokens=rng.randrange(0, 900),
                cached_tokens=rng.randrange(0, 50),
                reasoning_tokens=rng.randrange(0, 30),
                cost_usd=None if rng.random() < 0.2 else rng.uniform(0, 0.02),
                latency_seconds=rng.lognormvariate(0, 1) if rng.random() < 0.97 else 0.0,
                ttft_seconds=None if rng.random() < 0.3 else rng.uniform(0.01, 2),
                cached=rng.random() < 0.1,
                estimated_input_tokens=None if rng.random() < 0.3 else rng.randrange(5000),
                estimated_output_tokens=None if rng.random() < 0.4 else rng.randrange(900),
                response_body=(
                    {"choices": [{"message": {"tool_calls": [{"id": "t"}] * rng.randrange(3)}}]}
                ),
                timestamp=(start + timedelta(seconds=rng.uniform(0, 5 * 86400))).isoformat(),
            )
        )
    return out


def _check(store: SQLiteRecordStore, records: list[CallRecord]) -> None:
    """Every query: the same groups, in the same order, with the same figures
    (integers and percentiles exactly; sums of floats to rounding)."""
    for query in QUERIES:
        filters = dict(query)
        group_by = filters.pop("group_by", None)
        conds, keys = normalize(filters, group_by)
        want = [g.as_dict() for g in stats_of_records(records, conds, keys)]
        got = usage_stats(store, group_by=group_by, **filters).as_dict()["groups"]
        assert [g["key"] for g in got] == [g["key"] for g in want], query
        for g, w in zip(got, want, strict=True):
            for name in ("cost_usd", "cached_latency_seconds", "output_tokens_per_second"):
                a, b = g.pop(name), w.pop(name)
                assert (a is None) == (b is None), (query, name)
                assert a == (None if b is None else pytest.approx(b, rel=1e-12)), (query, name)
            assert g == w, query


def _blocks(store: SQLiteRecordStore) -> list[tuple[int, int]]:
    return [tuple(r) for r in store.sql("SELECT block, last FROM call_blocks ORDER BY block")]


def _stored(path: Path, records: list[CallRecord], **kw: Any) -> SQLiteRecordStore:
    """A store at ``path`` with ``records`` written."""
    store = SQLiteRecordStore(path, **kw)
    for r in records:
        store.append(r)
    store.flush()
    return store


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentopt.tracking.storage.sqlite_store as sqlite_store

    monkeypatch.setattr(usage_blocks, "BLOCK_SEQS", BLOCK)
    monkeypatch.setattr(sqlite_store, "_STAT_CHUNK", 40)


def test_blocks_and_sql_together_equal_the_reference(tmp_path: Path) -> None:
    records = _records(700, 1, datetime(2026, 11, 1, tzinfo=UTC))
    store = _stored(tmp_path / "r.sqlite", records, batch_size=50)
    # the writer sealed every complete block; the last 700 % 64 rows are SQL's
    assert _blocks(store) == [(b, b + BLOCK - 1) for b in range(0, 640, BLOCK)]
    _check(store, records)
    store.stat_blocks = False  # the schema-5 way: SQL over every row
    _check(store, records)
    store.close()


def test_a_changed_row_drops_its_block_and_the_figures_follow(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = _records(200, 2, now - timedelta(days=400))
    new = _records(300, 3, now - timedelta(days=6))
    store = _stored(tmp_path / "r.sqlite", old + new, batch_size=64)
    _check(store, old + new)
    built = _blocks(store)
    assert [b for b, _ in built] == list(range(0, 448, BLOCK))
    # token estimates set later: the block holding those rows is dropped, then rebuilt
    changed = [old[70].call_id, new[10].call_id]  # seqs 71 and 211
    store.set_estimates([(changed[0], 11, 12), (changed[1], 13, 14)])
    assert _blocks(store) == [b for b in built if b[0] not in (64, 192)]
    estimates = {changed[0]: (11, 12), changed[1]: (13, 14)}
    records = [
        r.model_copy(
            update={
                "estimated_input_tokens": estimates[r.call_id][0],
                "estimated_output_tokens": estimates[r.call_id][1],
            }
        )
        if r.call_id in estimates
        else r
        for r in old + new
    ]
    _check(store, records)
    assert _blocks(store) == built
    # pruning deletes the old records (rows of the first blocks): their blocks go
    assert store.prune(older_than_days=100) == 200
    assert [b for b, _ in _blocks(store)] == [256, 320, 384]
    _check(store, records[200:])
    store.clear()
    assert _blocks(store) == []
    _check(store, [])
    store.close()


def test_a_schema_5_file_migrates_and_its_blocks_are_built_when_read(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite"
    records = _records(300, 4, datetime(2026, 11, 1, tzinfo=UTC))
    store = SQLiteRecordStore(path, batch_size=1000)
    for r in records:
        store.append(r)
    store.close()
    conn = sqlite3.connect(path)  # what a version-5 file is: no blocks, no triggers
    conn.execute("DROP TABLE call_blocks")
    for event in ("insert", "update", "delete"):
        conn.execute(f"DROP TRIGGER calls_block_{event}")
    conn.execute("PRAGMA user_version=5")
    conn.commit()
    conn.close()
    store = SQLiteRecordStore(path)
    assert store._rconn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert _blocks(store) == []
    _check(store, records)  # the first query built the complete blocks
    assert _blocks(store) == [(b, b + BLOCK - 1) for b in range(0, 256, BLOCK)]
    more = _records(100, 5, datetime(2026, 11, 2, tzinfo=UTC))
    for r in more:
        store.append(r)
    _check(store, records + more)
    store.close()


def test_a_block_of_another_format_or_type_is_left_to_sql(tmp_path: Path) -> None:
    records = _records(150, 6, datetime(2026, 11, 1, tzinfo=UTC))
    store = _stored(tmp_path / "r.sqlite", records, batch_size=1000)
    head = b'{"format":999,"n":0,"cols":{}}'
    with store._writer.write_lock:
        store._wconn.execute(
            "UPDATE call_blocks SET data = ? WHERE block = 64",
            (len(head).to_bytes(4, "little") + head,),
        )
    _check(store, records)
    # a value SQLite holds in a column of another type: no block is built of it
    assert usage_blocks.build_block([("x",) * len(usage_blocks.BLOCK_COLUMNS)]) is None
    assert usage_blocks.build_block([]) is None
    store.close()


@pytest.mark.parametrize("blocks", [True, False])
def test_an_ungrouped_filter_that_misses_whole_ranges(tmp_path: Path, blocks: bool) -> None:
    """A range of seqs with no matching call adds nothing (it once raised:
    SQL answers an ungrouped query over no row with one row of NULLs)."""
    records = [
        CallRecord(call_id=f"c{i}", model="a" if i < 300 else "b", latency_seconds=i / 100)
        for i in range(400)
    ]
    store = SQLiteRecordStore(tmp_path / "r.sqlite")
    store.stat_blocks = blocks
    for r in records:
        store.append(r)
    t = usage_stats(store, model="b").total
    assert (t.requests, t.latency_seconds["p50"]) == (100, 3.49)
    assert usage_stats(store, model="c").total.requests == 0
    _check(store, records)
    store.close()
