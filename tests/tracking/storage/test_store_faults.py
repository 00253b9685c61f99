"""The SQLite record store when things go wrong: full disk, buffer bound, exit,
and what a daemon needs of it (background writes, one record per call,
retention, migration of older files, SQL totals that load no record)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking import LLMTracker, TrackingTransport
from agentopt.tracking.analytics.usage import usage_stats
from agentopt.tracking.storage.sqlite_store import SCHEMA_VERSION, SQLiteRecordStore
from agentopt.tracking.storage.store import get_store

MSG = [{"role": "user", "content": "hi"}]
BIG = 2**30  # max_page_count that frees the "disk" again


def _fill_the_disk(store: SQLiteRecordStore) -> None:
    """Cap the writer's database at its current size: SQLite then answers
    SQLITE_FULL ("database or disk is full") exactly as on a full disk."""
    pages = store._wconn.execute("PRAGMA page_count").fetchone()[0]
    store._wconn.execute(f"PRAGMA max_page_count={pages}")


def _free_the_disk(store: SQLiteRecordStore) -> None:
    store._wconn.execute(f"PRAGMA max_page_count={BIG}")


def _rec(i: int, **kw: Any) -> CallRecord:
    base: dict[str, Any] = {
        "call_id": f"c{i}",
        "data_id": i % 3,
        "model": "m",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.01,
        "request_body": {"messages": [{"role": "user", "content": "x" * 2000}]},
    }
    base.update(kw)
    return CallRecord(**base)


def _quiet(path: Path, **kw: Any) -> SQLiteRecordStore:
    """A store whose writer thread never writes on its own during the test."""
    return SQLiteRecordStore(path, batch_size=10**6, flush_interval=3600, **kw)


def _provider(body: dict[str, Any]) -> httpx.Client:
    return httpx.Client(
        transport=TrackingTransport(httpx.MockTransport(lambda req: httpx.Response(200, json=body)))
    )


def test_a_full_disk_loses_no_record_reads_work_and_the_error_says_how_to_save_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "records.sqlite"
    body = {
        "id": "x",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    tracker = LLMTracker(cache=False, store=_quiet(path))
    store = tracker.store
    assert isinstance(store, SQLiteRecordStore)
    _fill_the_disk(store)
    client = _provider(body)
    request = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 5000}]}
    with (
        pytest.raises(StoreError, match=r"cannot write 5 record.*export_jsonl"),
        tracker,
        tracker.track(data_id=1),
    ):
        for _ in range(5):
            client.post("http://mock.test/v1/chat/completions", json=request)
    # Every read still works, from the file and memory together.
    assert len(tracker.records) == 5 and len(store) == 5
    assert tracker.get_usage() == {"gpt-4o-mini": (15, 20)}
    assert tracker.get_cost() is not None and tracker.get_cost() > 0  # type: ignore[operator]
    assert len(tracker.to_dataframe()) == 5
    assert tracker.export_jsonl(tmp_path / "saved.jsonl") == 5
    health = store.health()
    assert (health.ok, health.pending) == (False, 5) and "full" in (health.last_error or "")
    # Space comes back: everything is written, once.
    _free_the_disk(store)
    store.flush()
    assert store.health().ok and store.health().pending == 0
    tracker.close()
    again = SQLiteRecordStore(path)
    assert len(again) == 5 and len({r.call_id for r in again.all()}) == 5
    again.close()


def test_records_unwritable_at_exit_are_saved_to_a_file_named_on_stderr(tmp_path: Path) -> None:
    code = f"""
from agentopt.records import CallRecord
from agentopt.tracking.storage.sqlite_store import SQLiteRecordStore
s = SQLiteRecordStore({str(tmp_path / "r.sqlite")!r}, batch_size=10**6, flush_interval=3600)
pages = s._wconn.execute("PRAGMA page_count").fetchone()[0]
s._wconn.execute(f"PRAGMA max_page_count={{pages}}")
for i in range(7):
    s.append(CallRecord(call_id=f"c{{i}}", request_body="x" * 5000))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "7 record(s) could not be written" in out.stderr
    saved = next(tmp_path.glob("r.sqlite.unsaved-*.jsonl"))
    assert str(saved) in out.stderr
    lines = saved.read_text().splitlines()
    assert [CallRecord.model_validate_json(x).call_id for x in lines] == [f"c{i}" for i in range(7)]


def test_a_failing_store_shows_in_health_and_writes_everything_in_order_when_it_recovers(
    tmp_path: Path,
) -> None:
    store = _quiet(tmp_path / "r.sqlite")
    store.append(_rec(0))
    store.flush()
    _fill_the_disk(store)
    for i in range(1, 21):
        store.append(_rec(i))
    with pytest.raises(StoreError, match="20 record"):
        store.flush()
    h = store.health()
    assert (h.ok, h.pending, h.dropped, h.written) == (False, 20, 0, 1)
    assert h.failing_since is not None and "full" in (h.last_error or "")
    assert [r.call_id for r in store.query()] == [f"c{i}" for i in range(21)]
    assert [r.call_id for r in store.query(data_id=1)] == [f"c{i}" for i in range(1, 21, 3)]
    assert usage_stats(store).total.requests == 21
    _free_the_disk(store)
    store.flush()
    h = store.health()
    assert (h.ok, h.pending, h.written, h.last_error) == (True, 0, 21, None)
    rows = store._rconn.execute("SELECT call_id FROM records ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [f"c{i}" for i in range(21)]
    store.close()


def test_past_the_buffer_bound_records_are_dropped_loudly_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The first write is of all five records (whoever makes it: the writer thread, woken
    # by the fifth, or the sixth append finding the buffer full) and meets the full disk.
    # With batch_size=1, a background write of one small record alone could still fit in
    # the free space of the database's last page, and the counts depended on timing.
    store = SQLiteRecordStore(
        tmp_path / "r.sqlite", batch_size=5, flush_interval=3600, max_buffer=5
    )
    _fill_the_disk(store)
    with caplog.at_level(logging.ERROR, logger="agentopt.store"):
        for i in range(8):
            store.append(_rec(i))
    h = store.health()
    assert (h.ok, h.pending, h.dropped) == (False, 5, 3)
    assert any("DROPPED" in m for m in caplog.messages)
    _free_the_disk(store)
    store.close()
    again = SQLiteRecordStore(tmp_path / "r.sqlite")
    assert [r.call_id for r in again.all()] == [f"c{i}" for i in range(5)]
    again.close()


def test_records_are_written_by_the_background_writer_not_the_caller(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "r.sqlite", batch_size=3, flush_interval=3600)
    written = threading.Event()
    writers: list[str] = []
    original = store._writer._write_batch

    def spy(batch: list[CallRecord]) -> None:
        writers.append(threading.current_thread().name)
        original(batch)
        written.set()

    store._writer._write_batch = spy
    for i in range(3):
        store.append(_rec(i))
    assert written.wait(timeout=60)
    assert writers[0] == "agentopt-store-writer"
    other = sqlite3.connect(tmp_path / "r.sqlite")
    assert other.execute("SELECT count(*) FROM records").fetchone()[0] == 3
    other.close()
    store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_each_call_gets_its_own_record_whatever_id_the_provider_sends(
    tmp_path: Path, kind: str
) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1}
    bodies = [
        {"id": "chatcmpl-same", "model": "gpt-4o-mini", "usage": usage},
        {"id": "chatcmpl-same", "model": "gpt-4o-mini", "usage": usage},
        {"model": "gpt-4o-mini", "usage": usage},  # no id at all
        {"model": "gpt-4o-mini", "usage": usage},
    ]
    replies = iter(bodies)
    client = httpx.Client(
        transport=TrackingTransport(
            httpx.MockTransport(lambda req: httpx.Response(200, json=next(replies)))
        )
    )
    store = None if kind == "memory" else tmp_path / "r.sqlite"
    with LLMTracker(cache=False, store=store) as t, t.track(data_id=1):
        for _ in bodies:
            client.post("http://mock.test/v1/chat/completions", json={"model": "gpt-4o-mini"})
    assert len(t.records) == 4 and len({r.call_id for r in t.records}) == 4
    assert usage_stats(t).total.requests == 4
    t.close()


def test_retention_days_prunes_old_records_on_open_and_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    store = SQLiteRecordStore(path)
    store.append(_rec(0, timestamp="2020-01-01T00:00:00+00:00"))
    store.append(_rec(1, timestamp="2020-06-01T00:00:00+00:00"))
    store.append(_rec(2))  # now
    store.close()
    kept = get_store(path, retention_days=30)
    assert [r.call_id for r in kept.all()] == ["c2"]  # type: ignore[union-attr]
    assert usage_stats(kept).total.requests == 1
    assert kept.prune(older_than_days=1e-9) == 1  # type: ignore[attr-defined]
    assert len(kept) == 0
    kept.close()
    with pytest.raises(StoreError, match="retention_days"):
        SQLiteRecordStore(path, retention_days=0)


def test_a_file_of_the_first_schema_is_migrated_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL UNIQUE,
            session_id TEXT, data_id TEXT, combo_id TEXT, agent_id TEXT, json TEXT NOT NULL);
        """
    )
    for i in range(3):
        r = _rec(i, cost_usd=None if i == 2 else 0.5)
        old.execute(
            "INSERT INTO records (call_id, data_id, json) VALUES (?, ?, ?)",
            (r.call_id, r.data_id, r.model_dump_json()),
        )
    old.commit()
    old.close()
    store = SQLiteRecordStore(path)
    assert store._rconn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    t = usage_stats(store).total
    assert (t.requests, t.cost_usd, t.unpriced_requests) == (3, 1.0, 1)
    store.append(_rec(3))
    assert [r.call_id for r in store.all()] == ["c0", "c1", "c2", "c3"]
    store.close()


def test_a_file_of_the_second_schema_gains_the_new_columns_from_its_json(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    store = SQLiteRecordStore(path)
    store.append(_rec(0).model_copy(update={"usage_known": False, "first_byte_seconds": 0.25}))
    store.append(_rec(1))
    store.close()
    conn = sqlite3.connect(path)
    for column in ("first_byte_seconds", "usage_known"):  # what a version-2 file lacks
        conn.execute(f"ALTER TABLE calls DROP COLUMN {column}")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    store = SQLiteRecordStore(path)
    frame = store.to_dataframe()
    assert list(frame["usage_known"]) == [False, True]
    assert frame["first_byte_seconds"][0] == 0.25
    store.close()


def test_the_usage_queries_have_their_indexes(tmp_path: Path) -> None:
    store = SQLiteRecordStore(tmp_path / "r.sqlite")
    names = {row[1] for row in store._rconn.execute("PRAGMA index_list(calls)")}
    for col in ("ts", "model_label", "provider", "alias", "data_id", "combo_id", "agent_id"):
        assert f"calls_{col}" in names
    store.close()


def test_totals_dataframes_and_exports_load_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.sqlite"
    tracker = LLMTracker(cache=False, store=path)
    store = tracker.store
    for i in range(2500):
        store.append(_rec(i, model=f"m{i % 2}", cost_usd=0.001, latency_seconds=0.5))
    store.flush()

    def no_parse(self: object, text: str) -> CallRecord:
        raise AssertionError("a total parsed a record's JSON")

    monkeypatch.setattr(SQLiteRecordStore, "_parse", no_parse)
    monkeypatch.setattr(CallRecord, "model_validate_json", no_parse)
    biggest = [0]
    original = SQLiteRecordStore._read

    def counting(self: SQLiteRecordStore, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        rows = original(self, sql, args)
        if "json" in sql:
            biggest[0] = max(biggest[0], len(rows))
        return rows

    monkeypatch.setattr(SQLiteRecordStore, "_read", counting)
    assert tracker.get_cost() == pytest.approx(2.5)
    assert tracker.get_usage() == {"m0": (12500, 6250), "m1": (12500, 6250)}
    assert tracker.get_cost(data_id=1) == pytest.approx(0.001 * 833)
    assert tracker.get_cached_latency() == 0.0
    frame = tracker.to_dataframe()
    assert len(frame) == 2500 and "request_body" not in frame.columns
    assert list(frame["call_id"][:2]) == ["c0", "c1"]
    assert tracker.export_jsonl(tmp_path / "out.jsonl") == 2500
    assert biggest[0] <= 1000  # the export was read in chunks, never all at once
    tracker.close()


def test_a_healthy_store_slower_than_its_callers_makes_them_wait_never_drops(
    tmp_path: Path,
) -> None:
    store = SQLiteRecordStore(
        tmp_path / "r.sqlite", batch_size=5, flush_interval=3600, max_buffer=5
    )
    for i in range(40):
        store.append(_rec(i))
        assert len(store.pending()) <= 5
    h = store.health()
    assert (h.ok, h.dropped) == (True, 0)
    store.close()
    again = SQLiteRecordStore(tmp_path / "r.sqlite")
    assert len(again) == 40
    again.close()


def test_a_version_2_store_gains_the_attempt_columns(tmp_path: Path) -> None:
    """Opening a store written before gateway attempts existed adds their columns
    and keeps every record (NULL attempt for the old ones)."""
    import sqlite3

    path = tmp_path / "v2.sqlite"
    store = SQLiteRecordStore(path)
    store.append(_rec(0))
    store.close()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE calls2 AS SELECT * FROM calls")
    db.execute("DROP TABLE calls")
    cols = [
        r[1]
        for r in db.execute("PRAGMA table_info(calls2)")
        if r[1] not in ("request_id", "attempt")
    ]
    db.execute(f"CREATE TABLE calls AS SELECT {', '.join(cols)} FROM calls2")
    db.execute("DROP TABLE calls2")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    store = SQLiteRecordStore(path)
    store.append(_rec(1, request_id="req-1", attempt=2))
    got = {r.call_id: r for r in store.all()}
    assert len(got) == 2
    assert store._rconn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = dict(store._rconn.execute("SELECT request_id, attempt FROM calls").fetchall())
    store.close()
    assert rows == {None: None, "req-1": 2}
