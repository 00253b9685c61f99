"""CallRecords in a SQLite file: written off the caller's path, aggregated in SQL.

Two tables: ``records`` (``seq``, the unique ``call_id``, the ids and the whole
record as ``json``: what ``agentopt report`` and older versions read) and
``calls`` (the flat columns of :mod:`agentopt.tracking.storage.store_columns`, one row
per record, same ``seq``), which totals, usage statistics and dataframes read
without touching any JSON; ``call_blocks`` holds its columns in blocks for
statistics (:mod:`agentopt.tracking.storage.sqlite_blocks`). The schema is
versioned (``PRAGMA user_version``) and a file of an older version is migrated
when it is opened.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking.analytics.usage_sql import SQLITE
from agentopt.tracking.storage.sql_store import SQLRecordStore
from agentopt.tracking.storage.sqlite_blocks import BLOCKS_DDL, CallBlocks
from agentopt.tracking.storage.sqlite_db import connect_sqlite, is_disk_full
from agentopt.tracking.storage.store_columns import COLUMNS, day_hour, microseconds, row_of

if TYPE_CHECKING:
    from agentopt.tracking.analytics.usage import UsageGroup

__all__ = ["SCHEMA_VERSION", "SQLiteRecordStore"]

#: The schema version this code writes (``PRAGMA user_version``).
SCHEMA_VERSION = 6

#: Columns added after version 2, with the value of records written before them
#: (SQL over the JSON; those derived from other columns are in _DERIVED).
_ADDED = {"first_byte_seconds": "NULL", "usage_known": "1"}
_DERIVED = {
    "day": "agentopt_day(ts)",
    "hour": "agentopt_hour(ts)",
    "fast_latency_us": "CASE WHEN ok = 1 AND cached = 0 THEN agentopt_us(latency_seconds) END",
    "fast_ttft_us": "CASE WHEN ok = 1 AND cached = 0 THEN agentopt_us(ttft_seconds) END",
}
#: Readers usage statistics spread their scan over (threads; WAL lets them read at once).
_STAT_READERS = 2
#: Rows (by seq) one statistics query reads: its GROUP BY sorts this many at most.
_STAT_CHUNK = 65536

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
        for c in (
            "ts",
            "model_label",
            "provider",
            "alias",
            "data_id",
            "combo_id",
            "agent_id",
            "session_id",
        )
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


class SQLiteRecordStore(SQLRecordStore):
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

    dialect = SQLITE
    _ph = "?"

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
        self.where = repr(str(self.path))
        if self.path.is_dir():
            raise StoreError(f"record store path {str(self.path)!r} is a directory, not a file")
        self._pid = os.getpid()
        self._rlock = threading.RLock()  # the read connection
        self._wconn = self._open()
        self._rconn = self._open_reader()
        # more readers, for statistics, opened when first used
        self._stat_conns: list[tuple[sqlite3.Connection, threading.Lock]] = []
        self._stat_lock = threading.Lock()
        #: Statistics read column blocks (False: SQL over every row, as schema 5 did).
        self.stat_blocks = True
        self.blocks = CallBlocks(self._read, self._write_conn, lambda: self._writer.write_lock)
        self._start(
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            retention_days=retention_days,
        )

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

    def _open_reader(self) -> sqlite3.Connection:
        conn = self._open()
        # Statistics scan the flat table: read it through a memory map and a
        # larger page cache rather than a read() per 4 kB page.
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Version 1 (``records`` only) → 2: add ``calls``, filled from the JSON;
        2 → 3 → 4 → 5: add the columns each version added (3: ``first_byte_seconds``,
        ``usage_known``; 4: ``request_id``, ``attempt``; 5: ``day``, ``hour``,
        ``fast_latency_us``, ``fast_ttft_us`` derived from the other columns, and
        the token estimates), filled from the JSON; → 6: the (empty) table of
        column blocks and the triggers that drop a block when its rows change
        (blocks are built when statistics first read their range)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in filter(None, (x.strip() for x in _CALLS.split(";\n"))):
                    conn.execute(statement)
                have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
                _derive_functions(conn)
                for name, kind in _CALL_COLUMNS:
                    if name in have:
                        continue
                    conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {kind}")
                    if name in _DERIVED:
                        conn.execute(f"UPDATE calls SET {name} = {_DERIVED[name]}")
                        continue
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
                for statement in BLOCKS_DDL:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write_conn(self) -> sqlite3.Connection:
        self._reopen_if_forked()
        return self._wconn

    def _reopen_if_forked(self) -> None:
        if os.getpid() != self._pid:  # a forked child must not share the parent's handles
            self._pid = os.getpid()
            self._rlock = threading.RLock()
            self._wconn = self._open()
            self._rconn = self._open_reader()
            self._stat_conns = []
            self._stat_lock = threading.Lock()

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
        self.blocks.seal(len(batch))

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._rlock:
            try:
                return self._rconn.execute(sql, tuple(args)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read records from {str(self.path)!r}: {exc}") from exc

    def usage_groups(
        self,
        conds: list[tuple[str, str, Any]],
        keys: tuple[str, ...],
        *,
        percentiles: bool = True,
    ) -> list[UsageGroup]:
        """Usage statistics: numpy over the column blocks of the calls table
        (:mod:`agentopt.tracking.analytics.usage_blocks`; a missing block is built
        first), SQLite over the rows no block holds yet, in ranges of ``seq``
        spread over two reader connections (:mod:`agentopt.tracking.analytics.usage_sql`),
        the partial sums added up; while records wait unwritten, computed over
        all records in Python."""
        from agentopt.tracking.analytics.usage import stats_of_records
        from agentopt.tracking.analytics.usage_blocks import Unsupported, block_groups
        from agentopt.tracking.analytics.usage_sql import (
            _key_sql,
            add_chunks,
            chunked,
            finish,
            usage_groups_chunked,
        )

        if self._sync():
            return stats_of_records(self.iter_records(), conds, keys)
        span = [c for c in conds if c[0] == "ts"]
        # min() and max() apart: each is then one step of an index (together,
        # unfiltered, SQLite scans the table)
        where = " AND ".join(f"{col} {op} ?" for col, op, _ in span) or "1=1"
        ((lo, hi),) = self._read(
            f"SELECT (SELECT min(seq) FROM calls WHERE {where}),"
            f" (SELECT max(seq) FROM calls WHERE {where})",
            [v for _, _, v in span] * 2,
        )
        bounds = (0, 0) if lo is None else (int(lo) - 1, int(hi))
        if self.stat_blocks:
            parts: dict[tuple[Any, ...], Any] = {}
            try:
                blobs, spans = self.blocks.covering(bounds, span)
                sql_keys = tuple(_key_sql(k, SQLITE) for k in keys)
                block_groups(blobs, conds, sql_keys, parts, percentiles=percentiles)
            except Unsupported:
                pass
            else:
                ranges = chunked(spans, _STAT_CHUNK)
                add_chunks(self._stat_runs(), ranges, conds, keys, parts, percentiles=percentiles)
                return finish(parts, keys)
        return usage_groups_chunked(
            self._stat_runs(), bounds, conds, keys, percentiles=percentiles, chunk=_STAT_CHUNK
        )

    def _stat_runs(self) -> list[Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]]:
        """One query function per statistics reader (each its own connection)."""
        with self._stat_lock:
            try:
                while len(self._stat_conns) < _STAT_READERS:
                    self._stat_conns.append((self._open_reader(), threading.Lock()))
            except StoreError:
                if not self._stat_conns:
                    raise
            readers = list(self._stat_conns)
        return [self._runner(conn, lock) for conn, lock in readers]

    def _runner(
        self, conn: sqlite3.Connection, lock: threading.Lock
    ) -> Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]:
        def run(sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
            with lock:
                try:
                    return conn.execute(sql, tuple(args)).fetchall()
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot read records from {str(self.path)!r}: {exc}") from exc

        return run

    def _json_field(self, name: str) -> str:
        return f"json_extract(records.json, '$.{name}')"

    def _update_estimates(self, rows: list[tuple[str, int, int]]) -> None:
        self._reopen_if_forked()
        conn = self._wconn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE calls SET estimated_input_tokens = ?, estimated_output_tokens = ?"
                " WHERE seq = (SELECT seq FROM records WHERE call_id = ?)",
                [(i, o, c) for c, i, o in rows],
            )
            conn.executemany(
                "UPDATE records SET json = json_set(json, '$.estimated_input_tokens', ?,"
                " '$.estimated_output_tokens', ?) WHERE call_id = ?",
                [(i, o, c) for c, i, o in rows],
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _delete_before(self, cutoff: float) -> int:
        conn = self._wconn
        try:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                "DELETE FROM records WHERE seq IN (SELECT seq FROM calls WHERE ts < ?)", (cutoff,)
            )
            conn.execute("DELETE FROM calls WHERE ts < ?", (cutoff,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot prune {str(self.path)!r}: {exc}") from exc
        return int(cur.rowcount)

    def _delete_all(self) -> None:
        conn = self._wconn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM call_blocks")
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM calls")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot clear {str(self.path)!r}: {exc}") from exc

    def _close_connections(self) -> None:
        self._wconn.close()
        self._rconn.close()
        with self._stat_lock:
            for conn, _ in self._stat_conns:
                conn.close()
            self._stat_conns = []

    def _rescue_dirs(self) -> list[Path]:
        return [self.path.parent, *super()._rescue_dirs()]

    def _rescue_name(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"SQLiteRecordStore({str(self.path)!r})"


def _derive_functions(conn: sqlite3.Connection) -> None:
    """The Python functions the migration to version 5 fills derived columns
    with (the very ones new rows get theirs from)."""
    conn.create_function("agentopt_day", 1, lambda ts: day_hour(ts)[0], deterministic=True)
    conn.create_function("agentopt_hour", 1, lambda ts: day_hour(ts)[1], deterministic=True)
    conn.create_function("agentopt_us", 1, microseconds, deterministic=True)
