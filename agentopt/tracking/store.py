"""Where CallRecords live: in memory, or in a SQLite file.

Both stores append in O(1) under a lock, ignore a record whose ``call_id`` is
already stored (so nothing is counted twice), and answer queries by
``data_id``, ``combo_id``, ``agent_id`` and ``session_id`` from an index.

>>> store = get_store(None)
>>> store.append(CallRecord(call_id="a", data_id=1)); store.append(CallRecord(call_id="a", data_id=1))
>>> [r.call_id for r in store.query(data_id=1)]
['a']
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from agentopt.exceptions import ConfigError, StoreError
from agentopt.records import CallRecord
from agentopt.tracking.sqlite_db import connect_sqlite

__all__ = [
    "INDEXED_FIELDS",
    "MemoryRecordStore",
    "RecordStore",
    "SQLiteRecordStore",
    "connect_sqlite",
    "get_store",
]

#: The record fields every store indexes.
INDEXED_FIELDS = ("data_id", "combo_id", "agent_id", "session_id")

IdLike = str | int | None


@runtime_checkable
class RecordStore(Protocol):
    """What the tracker needs from a record store."""

    def append(self, record: CallRecord) -> None: ...

    def query(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
    ) -> list[CallRecord]: ...

    def all(self) -> list[CallRecord]: ...

    def __len__(self) -> int: ...

    def clear(self) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _filters(
    data_id: IdLike, combo_id: IdLike, agent_id: IdLike, session_id: IdLike
) -> dict[str, str]:
    # Records store ids as strings (CallRecord coerces ints), so queries do too.
    given = {
        "data_id": data_id,
        "combo_id": combo_id,
        "agent_id": agent_id,
        "session_id": session_id,
    }
    return {k: v if isinstance(v, str) else str(v) for k, v in given.items() if v is not None}


class MemoryRecordStore:
    """Records in a dict, with one dict index per indexed field."""

    def __init__(self, records: Iterable[CallRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, CallRecord] = {}
        self._index: dict[str, dict[str, list[CallRecord]]] = {f: {} for f in INDEXED_FIELDS}
        for r in records:
            self.append(r)

    def append(self, record: CallRecord) -> None:
        with self._lock:
            if record.call_id in self._records:
                return
            self._records[record.call_id] = record
            for field, index in self._index.items():
                value = getattr(record, field)
                if value is not None:
                    bucket = index.get(value)
                    if bucket is None:
                        index[value] = [record]
                    else:
                        bucket.append(record)

    def query(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
    ) -> list[CallRecord]:
        filters = _filters(data_id, combo_id, agent_id, session_id)
        with self._lock:
            if not filters:
                return list(self._records.values())
            buckets = [(self._index[f].get(v, ()), f) for f, v in filters.items()]
            smallest, field = min(buckets, key=lambda b: len(b[0]))
            rest = [(f, v) for f, v in filters.items() if f != field]
            if not rest:
                return list(smallest)
            return [r for r in smallest if all(getattr(r, f) == v for f, v in rest)]

    def all(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._records

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            for index in self._index.values():
                index.clear()

    def flush(self) -> None:
        """Nothing to flush: records are in memory."""

    def close(self) -> None:
        """Nothing to close; records stay queryable."""

    def __repr__(self) -> str:
        return f"MemoryRecordStore({len(self)} records)"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE,
    session_id TEXT, data_id TEXT, combo_id TEXT, agent_id TEXT,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_data_id ON records(data_id);
CREATE INDEX IF NOT EXISTS records_combo_id ON records(combo_id);
CREATE INDEX IF NOT EXISTS records_agent_id ON records(agent_id);
CREATE INDEX IF NOT EXISTS records_session_id ON records(session_id);
"""


class SQLiteRecordStore:
    """Records in a SQLite file (WAL), indexed by SQL indexes.

    Appends are buffered and written in batches (every ``batch_size`` records or
    ``flush_interval`` seconds, and on every read, ``flush()`` and ``close()``);
    ``INSERT OR IGNORE`` on the unique ``call_id`` keeps records single across
    threads, processes and reopenings. Reads see every flushed record, including
    those of other processes.
    """

    def __init__(
        self, path: str | Path, *, batch_size: int = 256, flush_interval: float = 1.0
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"record store path {str(self.path)!r} is a directory, not a file")
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self._lock = threading.RLock()
        self._pending: dict[str, CallRecord] = {}
        self._last_flush = time.monotonic()
        self._closed = False
        self._pid = os.getpid()
        self._conn = self._open()
        ref = weakref.ref(self)
        atexit.register(_flush_at_exit, ref)

    def _open(self) -> sqlite3.Connection:
        return connect_sqlite(self.path, what="record store", schema=_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"record store {str(self.path)!r} is closed")
        if os.getpid() != self._pid:  # a forked child must not share the parent's handle
            self._pid = os.getpid()
            self._conn = self._open()
        return self._conn

    def append(self, record: CallRecord) -> None:
        with self._lock:
            if self._closed:
                raise StoreError(f"record store {str(self.path)!r} is closed")
            self._pending.setdefault(record.call_id, record)
            if (
                len(self._pending) >= self.batch_size
                or time.monotonic() - self._last_flush >= self.flush_interval
            ):
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        rows = [
            (
                r.call_id,
                r.session_id,
                r.data_id,
                r.combo_id,
                r.agent_id,
                r.model_dump_json(),
            )
            for r in self._pending.values()
        ]
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR IGNORE INTO records"
                " (call_id, session_id, data_id, combo_id, agent_id, json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Keep the pending records: nothing is lost, a later flush retries.
            raise StoreError(
                f"cannot write {len(rows)} record(s) to {str(self.path)!r}: {exc}"
            ) from exc
        self._pending.clear()

    def _select(self, where: str = "", args: tuple[str, ...] = ()) -> list[CallRecord]:
        with self._lock:
            self._flush_locked()
            try:
                rows = (
                    self._connection()
                    .execute(f"SELECT json FROM records {where} ORDER BY seq", args)
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read records from {str(self.path)!r}: {exc}") from exc
        out = []
        for (text,) in rows:
            try:
                out.append(CallRecord.model_validate_json(text))
            except ValueError as exc:
                raise StoreError(
                    f"record store {str(self.path)!r} holds a malformed record: {exc}"
                ) from exc
        return out

    def query(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
    ) -> list[CallRecord]:
        filters = _filters(data_id, combo_id, agent_id, session_id)
        if not filters:
            return self._select()
        where = "WHERE " + " AND ".join(f"{f} = ?" for f in filters)
        return self._select(where, tuple(filters.values()))

    def all(self) -> list[CallRecord]:
        return self._select()

    def __len__(self) -> int:
        with self._lock:
            self._flush_locked()
            try:
                row = self._connection().execute("SELECT count(*) FROM records").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot count records in {str(self.path)!r}: {exc}") from exc
        return int(row[0])

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            try:
                self._connection().execute("DELETE FROM records")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot clear {str(self.path)!r}: {exc}") from exc

    def close(self) -> None:
        """Flush and close; idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
            finally:
                self._closed = True
                self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteRecordStore({str(self.path)!r})"


def _flush_at_exit(ref: weakref.ReferenceType[SQLiteRecordStore]) -> None:
    store = ref()
    if store is not None:
        with contextlib.suppress(Exception):
            store.close()


def get_store(store: str | Path | RecordStore | None) -> RecordStore:
    """Resolve a store argument: None → in memory; a path (or ``sqlite:///path``)
    → SQLite; a store → itself."""
    if store is None:
        return MemoryRecordStore()
    if isinstance(store, str | Path):
        text = str(store)
        if text in ("", ":memory:", "memory"):
            return MemoryRecordStore()
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///") :]
        elif "://" in text:
            raise ConfigError(f"store={text!r}: only file paths and sqlite:/// URLs are supported")
        return SQLiteRecordStore(text)
    if isinstance(store, RecordStore):
        return store
    raise ConfigError(f"store must be None, a path or a RecordStore, got {type(store).__name__}")
