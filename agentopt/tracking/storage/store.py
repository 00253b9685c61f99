"""Where CallRecords live: in memory, in a SQLite file, or in PostgreSQL.

``get_store(None | path | url | store)`` picks one (see :func:`get_store`).
Every store appends without waiting on I/O, ignores a record whose ``call_id``
is already stored (so nothing is counted twice; every call gets its own
``call_id`` from agentopt, whatever id the provider's response carries), and
answers queries by ``data_id``, ``combo_id``, ``agent_id`` and ``session_id``.
SQL stores also stream exports, build dataframes and compute usage statistics
in the database (:func:`agentopt.usage_stats`), keep records in memory while
the database fails (:meth:`health`), and prune old records (``retention_days``).

>>> store = get_store(None)
>>> store.append(CallRecord(call_id="a", data_id=1)); store.append(CallRecord(call_id="a", data_id=1))
>>> [r.call_id for r in store.query(data_id=1)]
['a']
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agentopt.exceptions import ConfigError
from agentopt.records import CallRecord
from agentopt.tracking.storage.sqlite_db import connect_sqlite
from agentopt.tracking.storage.sqlite_store import SQLiteRecordStore
from agentopt.tracking.storage.store_writer import StoreHealth

__all__ = [
    "INDEXED_FIELDS",
    "MemoryRecordStore",
    "RecordStore",
    "SQLiteRecordStore",
    "StoreHealth",
    "connect_sqlite",
    "get_store",
    "id_filters",
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


def id_filters(
    data_id: IdLike = None,
    combo_id: IdLike = None,
    agent_id: IdLike = None,
    session_id: IdLike = None,
) -> dict[str, str]:
    """The id filters given (not None), as strings: what every store matches on."""
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
        filters = id_filters(data_id, combo_id, agent_id, session_id)
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


def get_store(
    store: str | Path | RecordStore | None,
    *,
    retention_days: float | None = None,
    **options: Any,
) -> RecordStore:
    """The record store an argument names.

    - ``None``, ``""``, ``":memory:"`` → a :class:`MemoryRecordStore`;
    - a path or ``sqlite:///path`` → a :class:`SQLiteRecordStore` (WAL; records
      written in batches by a background thread; see its docstring);
    - ``postgresql://…`` (or ``postgres://…``) → a PostgreSQL store (the
      ``postgres`` extra: ``pip install 'agentopt[postgres]'``);
    - a store object → itself.

    ``retention_days`` and ``options`` (``batch_size``, ``flush_interval``,
    ``max_buffer``) go to the SQL store built from a path or URL.
    """
    if store is None:
        return MemoryRecordStore()
    if isinstance(store, str | Path):
        text = str(store)
        if text in ("", ":memory:", "memory"):
            return MemoryRecordStore()
        if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            from agentopt.tracking.storage.pg_store import PostgresRecordStore

            return PostgresRecordStore(text, retention_days=retention_days, **options)
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///") :]
        elif "://" in text:
            raise ConfigError(
                f"store={text!r}: give a file path, a sqlite:/// URL or a postgresql:// URL"
            )
        return SQLiteRecordStore(text, retention_days=retention_days, **options)
    if isinstance(store, RecordStore):
        return store
    raise ConfigError(f"store must be None, a path or a RecordStore, got {type(store).__name__}")
