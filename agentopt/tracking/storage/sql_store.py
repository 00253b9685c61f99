"""What the SQL record stores (SQLite, PostgreSQL) share: the buffered writer,
reads that merge unwritten records, streamed exports, dataframes from the flat
columns, usage statistics in SQL, retention and rescue at exit.

A subclass provides the database: ``_read(sql, args)``, ``_write_batch(records)``,
``_delete_before(cutoff)``, ``_delete_all()``, ``_close_connections()``,
``_reopen_if_forked()``, the placeholder ``_ph``, the SQL ``dialect`` of
:mod:`agentopt.tracking.analytics.usage_sql`, ``_json_field(name)`` (SQL reading a
field from the JSON) and ``where`` (how messages name the store).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord
from agentopt.tracking.storage.store_columns import COLUMN_NAMES
from agentopt.tracking.storage.store_writer import BufferedWriter, StoreHealth, iter_chunks

if TYPE_CHECKING:
    import pandas as pd

    from agentopt.tracking.analytics.usage import UsageGroup
    from agentopt.tracking.analytics.usage_sql import Dialect

__all__ = ["SQLRecordStore"]

log = logging.getLogger("agentopt.store")

IdLike = str | int | None

_CALL_COLUMNS = frozenset(("seq", *COLUMN_NAMES)) - {"call_id"}  # call_id: in records
_OPERATORS = frozenset(("=", "<", "<=", ">", ">=", "!="))


class SQLRecordStore:
    """The shared half of the SQL record stores; see the module docstring."""

    where: str
    dialect: Dialect
    _ph: str = "?"
    retention_days: float | None = None

    @property
    def placeholder(self) -> str:
        """The query parameter marker of this store's driver (``?`` or ``%s``)."""
        return self._ph

    def _start(
        self,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffer: int,
        retention_days: float | None,
        max_backoff: float = 30.0,
    ) -> None:
        """Called by the subclass once its database is open."""
        if retention_days is not None and retention_days <= 0:
            raise StoreError(f"retention_days must be positive, got {retention_days!r}")
        self.retention_days = retention_days
        self._closed = False
        self._last_prune = 0.0
        self._writer = BufferedWriter(
            self._write_batch,
            where=self.where,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_buffer=max_buffer,
            max_backoff=max_backoff,
            on_idle=self._maintain,
        )
        if retention_days is not None:
            self.prune()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- what a subclass provides ---------------------------------------------------

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _write_batch(self, batch: list[CallRecord]) -> None:
        raise NotImplementedError

    def _delete_before(self, cutoff: float) -> int:
        raise NotImplementedError

    def _delete_all(self) -> None:
        raise NotImplementedError

    def _close_connections(self) -> None:
        raise NotImplementedError

    def _reopen_if_forked(self) -> None:
        raise NotImplementedError

    def _json_field(self, name: str) -> str:
        raise NotImplementedError

    def _update_estimates(self, rows: list[tuple[str, int, int]]) -> None:
        raise NotImplementedError

    def _rescue_dirs(self) -> list[Path]:
        return [Path(tempfile.gettempdir())]

    def _rescue_name(self) -> str:
        return "agentopt-records"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"record store {self.where} is closed")
        self._reopen_if_forked()

    # -- writing -------------------------------------------------------------------

    def append(self, record: CallRecord) -> None:
        """Buffer ``record``; the writer thread stores it (see the class docstring)."""
        if self._closed:
            raise StoreError(f"record store {self.where} is closed")
        self._writer.put(record)

    def flush(self) -> None:
        """Write every buffered record now (raises a :class:`StoreError` saying
        how many wait and how to save them when the file cannot take them)."""
        if not self._closed:
            self._reopen_if_forked()
            self._writer.flush()

    def set_estimates(self, rows: list[tuple[str, int, int]]) -> None:
        """Set ``(call_id, input, output)`` token estimates on records already
        written (those still buffered carry theirs when written). Under the
        write lock, so a record is never written between the two; a store that
        fails keeps the records unchanged (logged)."""
        if self._closed or not rows:
            return
        try:
            with self._writer.write_lock:
                self._update_estimates(rows)
        except Exception as exc:
            log.warning("agentopt: token estimates of %d call(s) not stored: %s", len(rows), exc)

    def flush_if_healthy(self) -> bool:
        """Write the buffer now unless writes are failing (records then wait for
        the writer's retry); never raises. True when nothing is left unwritten.
        Callers that flush together share one transaction (each waits for the
        write in progress, then finds its record written)."""
        if self._closed or not self._writer.healthy:
            return False
        try:
            self._reopen_if_forked()
            self._writer.flush()
        except StoreError:
            return False
        return True

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
        for chunk in iter_chunks([r.call_id for r in waiting], 500):
            marks = ",".join([self._ph] * len(chunk))
            q = f"SELECT call_id FROM records WHERE call_id IN ({marks})"
            stored.update(row[0] for row in self._read(q, tuple(chunk)))
        return [r for r in waiting if r.call_id not in stored]

    # -- reading ----------------------------------------------------------------

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
            raise StoreError(f"record store {self.where} holds a malformed record: {exc}") from exc

    def iter_json(
        self, filters: dict[str, str] | None = None, *, chunk: int = 1000
    ) -> Iterator[str]:
        """Each matching record's JSON text in order, read ``chunk`` rows at a
        time (a large store is never loaded at once), then unwritten ones."""
        filters = filters or {}
        waiting = self._sync()
        where, args = where_clause(filters, self._ph)
        cond = (where + " AND" if where else "WHERE") + f" seq > {self._ph}"
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
        from agentopt.tracking.storage.store import id_filters

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
        from agentopt.tracking.storage.store import id_filters

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

        from agentopt.tracking.storage.store import id_filters

        fields = [f for f in CallRecord.model_fields if f not in ("request_body", "response_body")]
        waiting = self._sync()
        select = []
        for f in fields:
            if f == "call_id":
                select.append("records.call_id")
            elif f in COLUMN_NAMES:
                select.append(f"calls.{f}")
            else:  # a field without a flat column: read from the JSON
                select.append(self._json_field(f))
        where, args = where_clause(id_filters(**filters), self._ph)
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

    def calls_where(
        self, conds: Sequence[tuple[str, str, Any]], extra: Sequence[tuple[str, str, Any]] = ()
    ) -> tuple[str, list[Any]]:
        """``WHERE calls.col op ? AND …`` (empty when there is no condition) for
        :func:`agentopt.tracking.analytics.usage.normalize`'s conditions, plus ``extra``
        ones; every column must be one of the flat columns or ``seq``."""
        clauses, args = [], []
        for col, op, value in (*conds, *extra):
            if col not in _CALL_COLUMNS or op not in _OPERATORS:
                raise StoreError(f"record store {self.where}: cannot filter on {col} {op}")
            clauses.append(f"calls.{col} {op} {self._ph}")
            args.append(value)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def read_calls(
        self,
        conds: Sequence[tuple[str, str, Any]],
        columns: Sequence[str],
        *,
        newest_first: bool = False,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of the matching calls (``conds`` as from
        :func:`~agentopt.tracking.analytics.usage.normalize`), oldest first or newest first,
        with ``columns`` among the flat columns, ``seq``, ``call_id`` and ``json``
        (the whole record); ``after``/``before`` page by ``seq`` (keyset), and
        ``limit`` bounds the rows. Buffered records are written first."""
        names = []
        for c in columns:
            if c == "json":
                names.append("records.json")
            elif c == "call_id":
                names.append("records.call_id")
            elif c in _CALL_COLUMNS:
                names.append(f"calls.{c}")
            else:
                raise StoreError(f"record store {self.where}: no column {c!r}")
        extra = [("seq", ">", after)] if after is not None else []
        if before is not None:
            extra.append(("seq", "<", before))
        where, args = self.calls_where(conds, extra)
        sql = (
            f"SELECT {', '.join(names)} FROM calls JOIN records ON records.seq = calls.seq"
            f" {where} ORDER BY calls.seq {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.sql(sql, args)

    def usage_groups(
        self,
        conds: list[tuple[str, str, Any]],
        keys: tuple[str, ...],
        *,
        percentiles: bool = True,
    ) -> list[UsageGroup]:
        """Usage statistics computed by SQLite (see :func:`agentopt.usage_stats`).
        While records wait unwritten, they are computed over all records in Python."""
        from agentopt.tracking.analytics.usage import stats_of_records
        from agentopt.tracking.analytics.usage_sql import usage_groups

        if self._sync():
            return stats_of_records(self.iter_records(), conds, keys)
        return usage_groups(self._read, conds, keys, self.dialect, percentiles=percentiles)

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
            deleted = self._delete_before(cutoff)
        self._last_prune = time.monotonic()
        return deleted

    def _maintain(self) -> None:
        if self.retention_days is not None and time.monotonic() - self._last_prune > 3600:
            self.prune()

    def clear(self) -> None:
        """Forget every record, buffered or stored."""
        self._check_open()
        with self._writer.write_lock:
            self._writer.discard()
            self._delete_all()

    def close(self) -> None:
        """Write what is buffered and close; idempotent. Raises like :meth:`flush`
        when records cannot be written (they stay in :meth:`pending`)."""
        if self._closed:
            return
        self._writer.close()
        self._closed = True
        self._close_connections()

    def rescue(self) -> Path | None:
        """Save the records that cannot be written to a JSONL file (next to a
        SQLite file, else in the temp directory); returns its path (None if none wait)."""
        waiting = self._writer.pending()
        if not waiting:
            return None
        name = f"{self._rescue_name()}.unsaved-{os.getpid()}-{int(time.time())}.jsonl"
        for folder in self._rescue_dirs():
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


def _close_at_exit(ref: weakref.ReferenceType[SQLRecordStore]) -> None:
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
            f"agentopt: {n} record(s) could not be written to {store.where} ({exc}); {where}",
            file=sys.stderr,
        )


def where_clause(
    filters: dict[str, str], ph: str, table: str = "records"
) -> tuple[str, tuple[str, ...]]:
    """``WHERE table.f = ? AND …`` for id filters (empty when there are none)."""
    if not filters:
        return "", ()
    return "WHERE " + " AND ".join(f"{table}.{f} = {ph}" for f in filters), tuple(filters.values())
