"""The column blocks of a SQLite store's ``calls`` table (schema version 6).

Usage statistics over many records read numpy arrays, not rows
(:mod:`agentopt.tracking.analytics.usage_blocks`): block ``b`` holds the columns
of the calls with ``b <= seq <= last`` (``BLOCK_SEQS`` seqs) as one BLOB in
``call_blocks``. A block is built once its range is complete: after the write
that completes it, or by the first statistics query that needs it. Triggers
drop a block when any of its rows is inserted, changed or deleted (a late
record, an estimate filled in, retention), so a stored block is never stale; its
range is read by SQL until it is rebuilt.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BLOCKS_DDL", "CallBlocks"]

# block ``b`` holds the calls with ``b <= seq <= last``; a change to any of those rows drops it
BLOCKS_DDL = (
    "CREATE TABLE IF NOT EXISTS call_blocks (block INTEGER PRIMARY KEY,"
    " last INTEGER NOT NULL, ts_min REAL, ts_max REAL, data BLOB NOT NULL)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS calls_block_{event.lower()} AFTER {event} ON calls"
        " BEGIN DELETE FROM call_blocks WHERE block = (SELECT max(block) FROM call_blocks"
        f" WHERE block <= {row}.seq) AND last >= {row}.seq; END"
        for event, row in (("INSERT", "new"), ("UPDATE", "old"), ("DELETE", "old"))
    ),
)

Reader = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
Built = dict[int, tuple[float, float, bytes]]


class CallBlocks:
    """Builds, stores and finds the column blocks of one store.

    ``read`` runs a query on a read connection; ``write_conn`` returns the
    store's write connection and ``write_lock`` the lock its writer holds while
    writing (blocks are built under it, so no write comes between reading a
    block's rows and storing it).
    """

    def __init__(
        self,
        read: Reader,
        write_conn: Callable[[], sqlite3.Connection],
        write_lock: Callable[[], threading.RLock],
    ) -> None:
        self._read = read
        self._write_conn = write_conn
        self._write_lock = write_lock
        self._sealed_top: int | None = None  # records.seq's max after the last write

    def seal(self, written: int) -> None:
        """After a write of ``written`` records (under the write lock): build the
        blocks the write completed (a failure leaves them to the next query)."""
        from agentopt.tracking.analytics import usage_blocks

        size = usage_blocks.BLOCK_SEQS
        try:
            ((top,),) = self._write_conn().execute("SELECT max(seq) FROM records").fetchall()
        except sqlite3.Error:
            return
        top = int(top or 0)
        before = self._sealed_top if self._sealed_top is not None else top - written
        self._sealed_top = top
        ends = range((before + 1) // size, (top + 1) // size)  # blocks sealed by this write
        if ends:
            self.build([e * size for e in ends], size)

    def covering(
        self, bounds: tuple[int, int], span: list[tuple[str, str, Any]]
    ) -> tuple[list[bytes], list[tuple[int, int]]]:
        """The blocks of the calls with ``lo < seq <= hi`` (building the missing
        ones whose range is complete; leaving out those whose times miss the
        ``ts`` conditions ``span``), and the ``(lo, hi]`` spans of seq no block
        holds (for SQL)."""
        from agentopt.tracking.analytics import usage_blocks

        lo, hi = bounds
        if hi <= lo:
            return [], []
        size = usage_blocks.BLOCK_SEQS
        have = {
            int(b): (int(last), t0, t1)
            for b, last, t0, t1 in self._read(
                "SELECT block, last, ts_min, ts_max FROM call_blocks"
                " WHERE last > ? AND block <= ? ORDER BY block",
                (lo, hi),
            )
        }
        ((top,),) = self._read("SELECT max(seq) FROM records", ())
        sealed = int(top or 0) + 1  # a block ending before this holds every row it ever will
        missing = [
            b
            for b in range(lo // size * size, hi + 1, size)
            if b + size <= sealed and b not in have
        ]
        built = self.build(missing, size)
        for b, (t0, t1, _) in built.items():
            have[b] = (b + size - 1, t0, t1)
        take = [b for b in sorted(have) if _overlaps(have[b][1], have[b][2], span)]
        blobs = [built[b][2] for b in take if b in built]
        stored = [b for b in take if b not in built]
        for i in range(0, len(stored), 64):
            part = stored[i : i + 64]
            marks = ",".join("?" * len(part))
            rows = self._read(f"SELECT block, data FROM call_blocks WHERE block IN ({marks})", part)
            found: dict[int, bytes] = dict(rows)
            for b in part:
                if b in found:
                    blobs.append(found[b])
                else:  # dropped since: its range goes to SQL
                    del have[b]
        spans = []
        at = lo
        for b in sorted(have):
            last = have[b][0]
            if b - 1 > at:
                spans.append((at, min(b - 1, hi)))
            at = max(at, last)
            if at >= hi:
                break
        if at < hi:
            spans.append((at, hi))
        return blobs, [(a, z) for a, z in spans if z > a]

    def build(self, starts: list[int], size: int) -> Built:
        """Build and store the blocks starting at ``starts`` (each in its own
        write transaction, reading the rows under the write lock); a block that
        cannot be built or stored is left to SQL."""
        from agentopt.tracking.analytics.usage_blocks import BLOCK_COLUMNS, build_block

        out: Built = {}
        if not starts:
            return out
        select = (
            f"SELECT {', '.join(BLOCK_COLUMNS)} FROM calls WHERE seq >= ? AND seq < ? ORDER BY seq"
        )
        with self._write_lock():
            conn = self._write_conn()
            for b in starts:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    built = build_block(conn.execute(select, (b, b + size)).fetchall())
                    if built is not None:
                        conn.execute(
                            "INSERT OR REPLACE INTO call_blocks VALUES (?, ?, ?, ?, ?)",
                            (b, b + size - 1, *built),
                        )
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    return out
                if built is not None:
                    out[b] = built
        return out


def _overlaps(t0: float | None, t1: float | None, span: list[tuple[str, str, Any]]) -> bool:
    """Whether a block whose times run from ``t0`` to ``t1`` can hold a call the
    ``ts`` conditions ``span`` keep."""
    for _, op, v in span:
        if op == ">=" and t1 is not None and t1 < v:
            return False
        if op == "<" and t0 is not None and t0 >= v:
            return False
    return True
