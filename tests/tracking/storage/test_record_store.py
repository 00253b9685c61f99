"""Record stores: indexed queries, no double counting, persistence, threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentopt.exceptions import ConfigError, StoreError
from agentopt.records import CallRecord
from agentopt.tracking.storage.store import (
    MemoryRecordStore,
    RecordStore,
    SQLiteRecordStore,
    get_store,
)


def _rec(i: int, **kw: object) -> CallRecord:
    base: dict[str, object] = {
        "call_id": f"c{i}",
        "data_id": i % 10,
        "combo_id": f"combo{i % 3}",
        "agent_id": f"agent{i % 2}",
        "session_id": f"s{i % 5}",
        "model": "m",
        "prompt_tokens": i,
    }
    base.update(kw)
    return CallRecord(**base)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RecordStore:
    if request.param == "memory":
        return MemoryRecordStore()
    return SQLiteRecordStore(tmp_path / "records.sqlite", batch_size=7)


def test_queries_are_filtered_by_each_index_and_their_combination(store: RecordStore) -> None:
    records = [_rec(i) for i in range(60)]
    for r in records:
        store.append(r)
    assert len(store) == 60
    assert [r.call_id for r in store.query(data_id=3)] == [f"c{i}" for i in range(3, 60, 10)]
    assert {r.call_id for r in store.query(data_id="3")} == {
        r.call_id for r in store.query(data_id=3)
    }
    assert len(store.query(combo_id="combo1")) == 20
    assert len(store.query(agent_id="agent0")) == 30
    assert len(store.query(session_id="s4")) == 12
    both = store.query(data_id=4, combo_id="combo1")
    assert [r.call_id for r in both] == [
        r.call_id for r in records if r.data_id == "4" and r.combo_id == "combo1"
    ]
    assert store.query(data_id="nope") == []
    assert [r.call_id for r in store.query()] == [r.call_id for r in records]
    assert store.all()[5] == records[5]


def test_a_call_id_is_never_counted_twice(store: RecordStore) -> None:
    store.append(_rec(1))
    store.append(_rec(1, prompt_tokens=999))
    store.flush()
    store.append(_rec(1, prompt_tokens=555))
    assert len(store) == 1
    assert store.query(data_id=1)[0].prompt_tokens == 1
    assert len(store.query(combo_id="combo1")) == 1


def test_clear_empties_every_index(store: RecordStore) -> None:
    for i in range(10):
        store.append(_rec(i))
    store.clear()
    assert len(store) == 0
    assert store.query(data_id=1) == []
    store.append(_rec(1))
    assert len(store.query(data_id=1)) == 1


def test_fifty_threads_appending_lose_and_double_nothing(store: RecordStore) -> None:
    barrier = threading.Barrier(50)

    def work(t: int) -> None:
        barrier.wait()
        for j in range(40):
            store.append(_rec(t * 1000 + j, data_id=f"d{t}"))
            store.append(
                _rec(j, call_id=f"shared{j}", data_id="shared")
            )  # the same 40 ids from every thread

    threads = [threading.Thread(target=work, args=(t,)) for t in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(store) == 50 * 40 + 40
    assert all(len(store.query(data_id=f"d{t}")) == 40 for t in range(50))
    assert len(store.query(data_id="shared")) == 40


def test_sqlite_store_persists_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.sqlite"
    s = SQLiteRecordStore(path)
    for i in range(25):
        s.append(_rec(i, response_body={"text": "é"}))
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.append(_rec(99))
    again = SQLiteRecordStore(path)
    assert len(again) == 25
    assert again.query(data_id=2)[0].response_body == {"text": "é"}
    again.append(_rec(3))  # already stored before reopening: ignored
    assert len(again) == 25
    again.close()


def test_sqlite_store_batches_until_read_or_flush(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    writer = SQLiteRecordStore(path, batch_size=1000, flush_interval=3600)
    reader = SQLiteRecordStore(path)
    writer.append(_rec(1))
    assert len(reader) == 0  # still buffered in the writer
    writer.flush()
    assert len(reader) == 1
    writer.close()
    reader.close()


_CHILD = """
import sys
from agentopt.records import CallRecord
from agentopt.tracking.storage.store import SQLiteRecordStore
s = SQLiteRecordStore(sys.argv[1], batch_size=5)
tag = sys.argv[2]
for i in range(200):
    s.append(CallRecord(call_id=f"{tag}{i}", data_id=tag))
    s.append(CallRecord(call_id=f"same{i}", data_id="same"))
s.close()
"""


def test_two_processes_append_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(path), tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    s = SQLiteRecordStore(path)
    assert len(s) == 600
    assert len(s.query(data_id="a")) == 200
    assert len(s.query(data_id="same")) == 200
    s.close()


def test_get_store_resolves_its_argument(tmp_path: Path) -> None:
    assert isinstance(get_store(None), MemoryRecordStore)
    assert isinstance(get_store(":memory:"), MemoryRecordStore)
    sq = get_store(tmp_path / "x.sqlite")
    assert isinstance(sq, SQLiteRecordStore)
    sq.close()
    sq2 = get_store(f"sqlite:///{tmp_path / 'y.sqlite'}")
    assert isinstance(sq2, SQLiteRecordStore) and sq2.path == tmp_path / "y.sqlite"
    sq2.close()
    mine = MemoryRecordStore()
    assert get_store(mine) is mine
    with pytest.raises(ConfigError, match="postgresql://"):
        get_store("mysql://db/x")
    with pytest.raises(ConfigError, match="int"):
        get_store(3)  # type: ignore[arg-type]


def test_bad_store_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        SQLiteRecordStore(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.sqlite"):
        SQLiteRecordStore(junk)


def test_buffered_records_are_flushed_when_the_process_exits(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    code = (
        "import sys\n"
        "from agentopt.records import CallRecord\n"
        "from agentopt.tracking.storage.store import SQLiteRecordStore\n"
        "s = SQLiteRecordStore(sys.argv[1], batch_size=1000, flush_interval=3600)\n"
        "for i in range(3): s.append(CallRecord(call_id=f'x{i}', data_id='exit'))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    s = SQLiteRecordStore(path)
    assert len(s.query(data_id="exit")) == 3
    s.close()
