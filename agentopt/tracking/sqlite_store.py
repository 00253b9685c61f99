"""CallRecords in a SQLite file: written off the caller's path, aggregated in SQL.

Two tables: ``records`` (``seq``, the unique ``call_id``, the ids and the whole
record as ``json``: what ``agentopt report`` and older versions read) and
``calls`` (the flat columns of :mod:`agentopt.tracking.store_columns`, one row
per record, same ``seq``), which totals, usage statistics and dataframes read
without touching any JSON. The schema is versioned (``PRAGMA user_version``)
and a file of an older version is migrated when it is opened.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking.sqlite_db import connect_sqlite, is_disk_full
from agentopt.tracking.store_columns import COLUMN_NAMES, COLUMNS, row_of
from agentopt.tracking.store_writer import BufferedWriter, StoreHealth, iter_chunks

if TYPE_CHECKING:
    import pandas as pd

    from agentopt.tracking.usage import UsageGroup

__all__ = ["SCHEMA_VERSION", "SQLiteRecordStore"]

#: The schema version this code writes (``PRAGMA user_version``).
SCHEMA_VERSION = 3

#: Columns added after version 2, with the value of records written before them.
_ADDED = {"first_byte_seconds": "NULL", "usage_known": "1"}

_RECORDS = """
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

_CALL_COLUMNS = tuple(c for c in COLUMNS if c[0] != "call_id")
_CALL_NAMES = tuple(name for name, _ in _CALL_COLUMNS)
_CALLS = (
    "CREATE TABLE IF NOT EXISTS calls (seq INTEGER PRIMARY KEY, "
    + ", ".join(f"{n} {t}" for n, t in _CALL_COLUMNS)
    + ");\n"
    # What usage statistics filter and group by: time first, then the keys.
    + "".join(
        f"CREATE INDEX IF NOT EXISTS calls_{c} ON calls({c});\n"
        for c in ("ts", "model_label", "provider", "alias", "data_id", "combo_id", "agent_id")
    )
)

_INSERT_RECORD = (
    "INSERT OR IGNORE INTO records (call_id, session_id, data_id, combo_id, agent_id, json)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CALL = (
    "INSERT OR IGNORE INTO calls (seq, "
    + ", ".join(_CALL_NAMES)
    + ") VALUES ((SELECT seq FROM records WHERE call_id = ?), "
    + ", ".join("?" for _ in _CALL_NAMES)
    + ")"
)

IdLike = str | int | None


def _where(filters: dict[str, str], table: str = "records") -> tuple[str, tuple[str, ...]]:
    if not filters:
        return "", ()
    return "WHERE " + " AND ".join(f"{table}.{f} = ?" for f in filters), tuple(filters.values())


class SQLiteRecordStore:
    """Records in a SQLite file (WAL), for a tracker or the ``agentopt serve`` daemon.

    ``append`` buffers the record and returns: a background thread writes the
    buffer in batches (every ``batch_size`` records or ``flush_interval``
    seconds); ``INSERT OR IGNORE`` on the unique ``call_id`` keeps each record
    once across threads, processes and reopenings. Reads (``query``, ``all``,
    ``len``, ``iter_records``, ``to_dataframe``, ``export_jsonl``, usage
    statistics) first write what is buffered, then read SQL, so they see every
    record, including other processes' written ones.

    If writing fails (disk full, locked, read-only) nothing is lost and calls
    are not held up: up to ``max_buffer`` records wait in memory, reads merge
    them with the file, :meth:`health` reports the failure, the writer retries
    with a growing pause, and everything is written once the store recovers.
    :meth:`flush` and :meth:`close` raise a :class:`StoreError` saying how many
    records wait and how to save them; at interpreter exit, records that still
    cannot be written are saved to a JSONL file whose path is printed.

    ``retention_days`` deletes records older than that many days, when the
    store opens and hourly while it runs (:meth:`prune`).

    >>> import tempfile, pathlib
    >>> store = SQLiteRecordStore(pathlib.Path(tempfile.mkdtemp()) / "records.sqlite")
    >>> store.append(CallRecord(call_id="a", model="m", cost_usd=0.5))
    >>> [r.call_id for r in store.query()], store.health().ok
    (['a'], True)
    >>> store.close()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        retention_days: float | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"record store path {str(self.path)!r} is a directory, not a file")
        if retention_days is not None and retention_days <= 0:
            raise StoreError(f"retention_days must be positive, got {retention_days!r}")
        self.retention_days = retention_days
        self._closed = False
        self._pid = os.getpid()
        self._rlock = threading.RLock()  # the read connection
        self._wconn = self._open()
        self._rconn = self._open()
        self._last_prune = 0.0
        self._writer = BufferedWriter(
            self._write_batch,
            where=repr(str(self.path)),
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            on_idle=self._maintain,
        )
        if retention_days is not None:
            self.prune()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- connections -------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = connect_sqlite(self.path, what="record store", schema=_RECORDS)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                self._migrate(conn)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"record store {str(self.path)!r} has schema version {version};"
                    f" this agentopt reads up to {SCHEMA_VERSION}: upgrade agentopt"
                )
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"record store {str(self.path)!r} is not usable: {exc}") from exc
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Version 1 (``records`` only) → 2: add ``calls``, filled from the JSON;
        2 → 3: add the columns of :data:`_ADDED`, filled from the JSON."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in filter(None, (x.strip() for x in _CALLS.split(";\n"))):
                    conn.execute(statement)
                have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
                for name, kind in _CALL_COLUMNS:
                    if name in have:
                        continue
                    conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {kind}")
                    conn.execute(
                        f"UPDATE calls SET {name} = (SELECT COALESCE("
                        f"json_extract(records.json, '$.{name}'), {_ADDED.get(name, 'NULL')})"
                        " FROM records WHERE records.seq = calls.seq)"
                    )
                last = 0
                while True:
                    rows = conn.execute(
                        "SELECT seq, json FROM records WHERE seq > ? AND seq NOT IN"
                        " (SELECT seq FROM calls) ORDER BY seq LIMIT 5000",
                        (last,),
                    ).fetchall()
                    if not rows:
                        break
                    out = []
                    for seq, text in rows:
                        cols = row_of(CallRecord.model_validate_json(text))
                        out.append((seq, *cols[1:]))
                    conn.executemany(
                        "INSERT OR IGNORE INTO calls (seq, "
                        + ", ".join(_CALL_NAMES)
                        + ") VALUES (?, "
                        + ", ".join("?" for _ in _CALL_NAMES)
                        + ")",
                        out,
                    )
                    last = rows[-1][0]
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _reopen_if_forked(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not share the parent's handles
            self._pid = os.getpid()
            self._rlock = threading.RLock()
            self._wconn = self._open()
            self._rconn = self._open()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"record store {str(self.path)!r} is closed")
        self._reopen_if_forked()

    # -- writing -------------------------------------------------------------------

    def append(self, record: CallRecord) -> None:
        """Buffer ``record``; the writer thread stores it (see the class docstring)."""
        if self._closed:
            raise StoreError(f"record store {str(self.path)!r} is closed")
        self._writer.put(record)

    def _write_batch(self, batch: list[CallRecord]) -> None:
        """One transaction for the batch (called by the writer, under its lock)."""
        self._reopen_if_forked()
        conn = self._wconn
        records = [
            (r.call_id, r.session_id, r.data_id, r.combo_id, r.agent_id, r.model_dump_json())
            for r in batch
        ]
        calls = [(c[0], *c[1:]) for c in map(row_of, batch)]
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT_RECORD, records)
            conn.executemany(_INSERT_CALL, calls)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if is_disk_full(exc):
                raise StoreError(f"the disk is full ({exc})") from exc
            raise

    def flush(self) -> None:
        """Write every buffered record now (raises a :class:`StoreError` saying
        how many wait and how to save them when the file cannot take them)."""
        if not self._closed:
            self._reopen_if_forked()
            self._writer.flush()

    def health(self) -> StoreHealth:
        """Whether writes succeed, how many records wait, how many were dropped."""
        return self._writer.health()

    def pending(self) -> list[CallRecord]:
        """Records buffered and not written yet."""
        return self._writer.pending()

    def _sync(self) -> list[CallRecord]:
        """Before a read: write the buffer if the store is healthy. Returns the
        records that are still unwritten (not in the file) after that."""
        self._check_open()
        if self._writer.healthy and len(self._writer):
            with contextlib.suppress(StoreError):
                self._writer.flush()
        waiting = self._writer.pending()
        if not waiting:
            return []
        stored: set[str] = set()
        with self._rlock:
            for chunk in iter_chunks([r.call_id for r in waiting], 500):
                marks = ",".join("?" * len(chunk))
                q = f"SELECT call_id FROM records WHERE call_id IN ({marks})"
                stored.update(row[0] for row in self._read(q, tuple(chunk)))
        return [r for r in waiting if r.call_id not in stored]

    # -- reading ----------------------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._rlock:
            try:
                return self._rconn.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read records from {str(self.path)!r}: {exc}") from exc

    def sql(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on this store (after writing the buffer); the
        records still unwritten are not in its answer (see :meth:`unwritten`)."""
        self._sync()
        return self._read(sql, args)

    def unwritten(self) -> list[CallRecord]:
        """After writing what it can: the records that are only in memory."""
        return self._sync()

    def _parse(self, text: str) -> CallRecord:
        try:
            return CallRecord.model_validate_json(text)
        except ValueError as exc:
            raise StoreError(
                f"record store {str(self.path)!r} holds a malformed record: {exc}"
            ) from exc

    def iter_json(
        self, filters: dict[str, str] | None = None, *, chunk: int = 1000
    ) -> Iterator[str]:
        """Each matching record's JSON text in order, read ``chunk`` rows at a
        time (a large store is never loaded at once), then unwritten ones."""
        filters = filters or {}
        waiting = self._sync()
        where, args = _where(filters)
        cond = (where + " AND" if where else "WHERE") + " seq > ?"
        last = 0
        while True:
            rows = self._read(
                f"SELECT seq, json FROM records {cond} ORDER BY seq LIMIT {int(chunk)}",
                (*args, last),
            )
            for _, text in rows:
                yield text
            if len(rows) < chunk:
                break
            last = rows[-1][0]
        for r in waiting:
            if all(getattr(r, f) == v for f, v in filters.items()):
                yield r.model_dump_json()

    def iter_records(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
        chunk: int = 1000,
    ) -> Iterator[CallRecord]:
        """Matching records in order, streamed (see :meth:`iter_json`)."""
        from agentopt.tracking.store import id_filters

        filters = id_filters(data_id, combo_id, agent_id, session_id)
        for text in self.iter_json(filters, chunk=chunk):
            yield self._parse(text)

    def query(
        self,
        *,
        data_id: IdLike = None,
        combo_id: IdLike = None,
        agent_id: IdLike = None,
        session_id: str | None = None,
    ) -> list[CallRecord]:
        return list(
            self.iter_records(
                data_id=data_id, combo_id=combo_id, agent_id=agent_id, session_id=session_id
            )
        )

    def all(self) -> list[CallRecord]:
        return list(self.iter_records())

    def __len__(self) -> int:
        waiting = self._sync()
        return int(self._read("SELECT count(*) FROM records")[0][0]) + len(waiting)

    def export_jsonl(self, path: str | Path, **filters: IdLike) -> int:
        """Write matching records, one JSON line each, streamed; returns how many."""
        from agentopt.tracking.store import id_filters

        n = 0
        with Path(path).open("w", encoding="utf-8") as f:
            for text in self.iter_json(id_filters(**filters)):
                f.write(text)
                f.write("\n")
                n += 1
        return n

    def to_dataframe(self, **filters: IdLike) -> pd.DataFrame:
        """One row per record (bodies left out), built from the flat columns."""
        import pandas as pd

        from agentopt.tracking.store import id_filters

        fields = [f for f in CallRecord.model_fields if f not in ("request_body", "response_body")]
        waiting = self._sync()
        select = []
        for f in fields:
            if f == "call_id":
                select.append("records.call_id")
            elif f in COLUMN_NAMES:
                select.append(f"calls.{f}")
            else:  # a field without a flat column: read from the JSON
                select.append(f"json_extract(records.json, '$.{f}')")
        where, args = _where(id_filters(**filters))
        rows = self._read(
            f"SELECT {', '.join(select)} FROM records JOIN calls USING (seq) {where} ORDER BY seq",
            args,
        )
        frame = pd.DataFrame(rows, columns=fields)
        for f in ("cached", "stream", "usage_known"):
            if f in frame:
                frame[f] = frame[f].astype(bool)
        flt = id_filters(**filters)
        extra = [
            r.model_dump(exclude={"request_body", "response_body"})
            for r in waiting
            if all(getattr(r, f) == v for f, v in flt.items())
        ]
        if extra:
            frame = pd.concat([frame, pd.DataFrame(extra, columns=fields)], ignore_index=True)
        return frame

    def usage_groups(
        self, conds: list[tuple[str, str, Any]], keys: tuple[str, ...]
    ) -> list[UsageGroup]:
        """Usage statistics computed by SQLite (see :func:`agentopt.usage_stats`).
        While records wait unwritten, they are computed over all records in Python."""
        from agentopt.tracking.usage import stats_of_records
        from agentopt.tracking.usage_sql import SQLITE, usage_groups

        if self._sync():
            return stats_of_records(self.iter_records(), conds, keys)
        return usage_groups(self._read, conds, keys, SQLITE)

    # -- maintenance --------------------------------------------------------------

    def prune(self, older_than_days: float | None = None) -> int:
        """Delete records older than ``older_than_days`` (default: ``retention_days``);
        returns how many were deleted."""
        days = self.retention_days if older_than_days is None else older_than_days
        if days is None:
            return 0
        cutoff = time.time() - days * 86400.0
        self._check_open()
        with self._writer.write_lock:
            conn = self._wconn
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "DELETE FROM records WHERE seq IN (SELECT seq FROM calls WHERE ts < ?)",
                    (cutoff,),
                )
                conn.execute("DELETE FROM calls WHERE ts < ?", (cutoff,))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"cannot prune {str(self.path)!r}: {exc}") from exc
        self._last_prune = time.monotonic()
        return int(cur.rowcount)

    def _maintain(self) -> None:
        if self.retention_days is not None and time.monotonic() - self._last_prune > 3600:
            self.prune()

    def clear(self) -> None:
        self._check_open()
        with self._writer.write_lock:
            self._writer.discard()
            try:
                self._wconn.execute("BEGIN IMMEDIATE")
                self._wconn.execute("DELETE FROM records")
                self._wconn.execute("DELETE FROM calls")
                self._wconn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._wconn.in_transaction:
                    self._wconn.execute("ROLLBACK")
                raise StoreError(f"cannot clear {str(self.path)!r}: {exc}") from exc

    def close(self) -> None:
        """Write what is buffered and close; idempotent. Raises like :meth:`flush`
        when records cannot be written (they stay in :meth:`pending`)."""
        if self._closed:
            return
        self._writer.close()
        self._closed = True
        self._wconn.close()
        self._rconn.close()

    def rescue(self) -> Path | None:
        """Save the records that cannot be written to a JSONL file next to the
        store (else in the temp directory); returns its path (None if none wait)."""
        waiting = self._writer.pending()
        if not waiting:
            return None
        name = f"{self.path.name}.unsaved-{os.getpid()}-{int(time.time())}.jsonl"
        for folder in (self.path.parent, Path(tempfile.gettempdir())):
            target = folder / name
            try:
                with target.open("w", encoding="utf-8") as f:
                    for r in waiting:
                        f.write(r.model_dump_json() + "\n")
                return target
            except OSError:
                with contextlib.suppress(OSError):
                    target.unlink()
        return None

    def __repr__(self) -> str:
        return f"SQLiteRecordStore({str(self.path)!r})"


def _close_at_exit(ref: weakref.ReferenceType[SQLiteRecordStore]) -> None:
    store = ref()
    if store is None or store._closed:
        return
    try:
        store.close()
    except Exception as exc:
        n = len(store.pending())
        saved = store.rescue()
        where = f"saved to {saved}" if saved else "LOST: no file could be written"
        print(
            f"agentopt: {n} record(s) could not be written to {str(store.path)!r} ({exc}); {where}",
            file=sys.stderr,
        )
