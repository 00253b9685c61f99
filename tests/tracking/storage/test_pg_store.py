"""The PostgreSQL record store against a real server started by the tests."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pg_server import PgServer
from usage_records import RECORDS

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking import LLMTracker, TrackingTransport
from agentopt.tracking.analytics.usage import normalize, stats_of_records, usage_stats
from agentopt.tracking.storage.pg_store import MIGRATIONS, PostgresRecordStore, redact_url
from agentopt.tracking.storage.store import get_store

pytestmark = pytest.mark.xdist_group("postgres")

_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    pg = PgServer()
    yield pg
    pg.close()


@pytest.fixture
def url(server: PgServer) -> str:
    """A fresh database on the server."""
    return server.new_database(f"t{next(_names)}")


def _rec(i: int, **kw: Any) -> CallRecord:
    return CallRecord(call_id=f"c{i}", data_id=i % 4, model="m", cost_usd=0.001, **kw)


def test_get_store_and_the_tracker_take_a_postgresql_url(url: str) -> None:
    store = get_store(url)
    assert isinstance(store, PostgresRecordStore)
    store.close()
    body = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    client = httpx.Client(
        transport=TrackingTransport(httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    )
    with LLMTracker(cache=False, store=url) as t, t.track(data_id=5):
        for _ in range(3):
            client.post("http://mock.test/v1/chat/completions", json={"model": "gpt-4o-mini"})
    assert t.get_usage() == {"gpt-4o-mini": (9, 12)}
    t.close()
    again = PostgresRecordStore(url)  # another process (a replica) sees them
    assert [r.data_id for r in again.query(data_id=5)] == ["5", "5", "5"]
    assert len({r.call_id for r in again.all()}) == 3
    again.close()


def test_records_round_trip_with_filters_dataframe_and_export(url: str, tmp_path: Path) -> None:
    store = PostgresRecordStore(url, batch_size=7)
    for i in range(30):
        store.append(_rec(i))
    store.append(_rec(3))  # a call id already stored is ignored
    assert len(store) == 30
    assert [r.call_id for r in store.query(data_id=2)] == [f"c{i}" for i in range(2, 30, 4)]
    frame = store.to_dataframe(data_id=1)
    assert list(frame["call_id"]) == [f"c{i}" for i in range(1, 30, 4)]
    assert store.export_jsonl(tmp_path / "out.jsonl") == 30
    store.clear()
    assert len(store) == 0
    store.close()


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"group_by": "model"},
        {"group_by": "provider,status"},
        {"group_by": "day"},
        {"group_by": "hour", "status": "ok"},
        {"start_date": "2026-12-02", "end_date": "2026-12-02", "group_by": "model"},
        {"model": "a", "data_id": 1},
    ],
)
def test_usage_statistics_in_postgres_equal_the_reference(url: str, kw: dict[str, Any]) -> None:
    store = PostgresRecordStore(url)
    for r in RECORDS:
        store.append(r)
    got = usage_stats(store, **kw)
    conds, keys = normalize({k: v for k, v in kw.items() if k != "group_by"}, kw.get("group_by"))
    want = stats_of_records(RECORDS, conds, keys)
    assert [g.key for g in got] == [g.key for g in want]
    for a, b in zip(got, want, strict=True):
        da, db = a.as_dict(), b.as_dict()
        for k in da:
            if isinstance(db[k], float):
                assert da[k] == pytest.approx(db[k]), k
            else:
                assert da[k] == db[k], k
    store.close()


def test_migrations_run_once_when_replicas_open_together(url: str) -> None:
    stores: list[PostgresRecordStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(PostgresRecordStore(url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(stores) == 4
    assert stores[0].schema_version() == MIGRATIONS[-1][0]
    rows = stores[0]._read("SELECT version FROM agentopt_schema_migrations")
    assert sorted(r[0] for r in rows) == [v for v, _ in MIGRATIONS]
    indexes = {r[0] for r in stores[0]._read("SELECT indexname FROM pg_indexes")}
    assert {"calls_ts", "calls_model_label", "records_data_id"} <= indexes
    for s in stores:
        s.close()


def test_a_database_restart_mid_load_loses_no_record(server: PgServer, url: str) -> None:
    store = PostgresRecordStore(url, batch_size=50, flush_interval=0.05, timeout=2, max_backoff=0.2)
    halfway, resumed = threading.Event(), threading.Event()
    n = 3000

    def load() -> None:
        for i in range(n):
            store.append(_rec(i, request_body={"i": i}))
            if i == n // 3:
                halfway.set()
                assert resumed.wait(timeout=120)

    loader = threading.Thread(target=load)
    loader.start()
    assert halfway.wait(timeout=120)
    server.stop()  # the database goes away mid-load
    with pytest.raises(StoreError, match=r"postgres.*kept in memory"):
        store.flush()
    assert not store.health().ok and store.health().pending > 0
    resumed.set()  # calls keep coming while it is down
    loader.join(timeout=300)
    server.start()
    store.flush()  # written once it is back
    h = store.health()
    assert (h.ok, h.pending, h.dropped) == (True, 0, 0)
    rows = store._read("SELECT count(*), count(DISTINCT call_id) FROM records")
    assert rows[0] == (n, n)
    assert store._read("SELECT count(*) FROM calls")[0][0] == n
    store.close()


def test_a_password_never_reaches_messages() -> None:
    assert redact_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    with pytest.raises(StoreError) as info:
        PostgresRecordStore("postgresql://bob:s3cret@127.0.0.1:1/x", timeout=1)
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
