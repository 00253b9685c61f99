"""Writing records off the caller's path, and surviving a store that fails.

:class:`BufferedWriter` sits between ``append`` and a SQL store: ``put`` only
adds the record to an in-memory buffer (it never waits on I/O and never
raises because the database does); a background thread writes the buffer in
batches (``write_batch``), every ``batch_size`` records or ``flush_interval``
seconds. When a write fails (disk full, database locked or read-only, server
down) the records stay in the buffer, the failure is logged once and shown by
:meth:`BufferedWriter.health`, and the writer tries again after a pause that
doubles up to ``max_backoff`` seconds; when the store recovers, the buffer is
written in order and the recovery is logged. Nothing is dropped silently: the
buffer holds at most ``max_buffer`` records; when it is full and the store is
healthy but slower than the callers, the caller writes (backpressure); only
while the store fails is a record refused, logged as an error and counted in
``health().dropped``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from agentopt.exceptions import StoreError
from agentopt.records import CallRecord, utc_now_iso

__all__ = ["BufferedWriter", "StoreHealth"]

log = logging.getLogger("agentopt.store")

_monotonic = time.monotonic  # indirection: tests drive the retry pause without sleeping


@dataclass(frozen=True)
class StoreHealth:
    """The state of a record store's writes.

    ``ok`` is False while writes fail; ``pending`` records wait in memory to be
    written; ``dropped`` were refused because the buffer was full (each logged);
    ``written`` were written by this process; ``last_error`` and
    ``failing_since`` (ISO time) describe the current failure, and
    ``last_success`` the last good write.
    """

    ok: bool
    where: str
    pending: int
    dropped: int
    written: int
    max_buffer: int
    last_error: str | None = None
    failing_since: str | None = None
    last_success: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BufferedWriter:
    """A buffer of records and the thread that writes it; see the module docstring.

    ``write_batch(records)`` must write all of them in one transaction (ignoring
    call ids already stored) or raise. ``where`` names the store in messages.
    """

    def __init__(
        self,
        write_batch: Callable[[list[CallRecord]], None],
        *,
        where: str,
        batch_size: int = 256,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        max_backoff: float = 30.0,
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._write_batch = write_batch
        self.where = where
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_buffer = max(self.batch_size, max_buffer)
        self.max_backoff = max_backoff
        self._on_idle = on_idle
        self._init_state()
        self._pending: dict[str, CallRecord] = {}
        self.dropped = 0
        self.written = 0
        self._last_error: str | None = None
        self._failing_since: str | None = None
        self._last_success: str | None = None
        _WRITERS.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()  # the buffer and the counters
        self.write_lock = threading.RLock()  # one write at a time (and clear())
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stop = False
        self._backoff = 0.0
        self._retry_at = 0.0
        self._pid = os.getpid()

    # -- the caller's side ----------------------------------------------------

    def put(self, record: CallRecord) -> None:
        """Buffer ``record`` for the writer thread (a call id already buffered is
        ignored). Never blocks on I/O."""
        if len(self._pending) >= self.max_buffer and self._last_error is None:
            # A healthy store that cannot keep up: the caller writes (backpressure),
            # a record is never dropped for speed.
            with contextlib.suppress(StoreError):
                self.flush()
        with self._lock:
            if self._stop:
                raise StoreError(f"record store {self.where} is closed")
            if record.call_id in self._pending:
                return
            if len(self._pending) >= self.max_buffer:
                self.dropped += 1
                n = self.dropped
            else:
                self._pending[record.call_id] = record
                n = 0
                if self._thread is None or self._pid != os.getpid():
                    self._start()
                if len(self._pending) >= self.batch_size:
                    self._wake.notify()
        if n and (n == 1 or n % 1000 == 0):
            log.error(
                "agentopt: record store %s: %d record(s) DROPPED so far: %d records already"
                " wait unwritten in memory (max_buffer) while the store fails (%s)",
                self.where,
                n,
                self.max_buffer,
                self._last_error,
            )

    def pending(self) -> list[CallRecord]:
        """The records not written yet, oldest first."""
        with self._lock:
            return list(self._pending.values())

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def healthy(self) -> bool:
        return self._last_error is None

    def health(self) -> StoreHealth:
        with self._lock:
            return StoreHealth(
                ok=self._last_error is None and self.dropped == 0,
                where=self.where,
                pending=len(self._pending),
                dropped=self.dropped,
                written=self.written,
                max_buffer=self.max_buffer,
                last_error=self._last_error,
                failing_since=self._failing_since,
                last_success=self._last_success,
            )

    def flush(self) -> None:
        """Write every buffered record now, in this thread. Raises a
        :class:`StoreError` saying how many records wait and how to save them
        when the store cannot take them (they stay buffered)."""
        while True:
            with self.write_lock:
                batch = self._take()
                if not batch:
                    return
                self._write(batch)

    def discard(self) -> None:
        """Forget the buffered records (for ``clear()``; hold ``write_lock``)."""
        with self._lock:
            self._pending.clear()

    def close(self) -> None:
        """Stop the thread and write what is buffered (raises like :meth:`flush`)."""
        with self._lock:
            self._stop = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    # -- the writer's side ------------------------------------------------------

    def _start(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self),), name="agentopt-store-writer", daemon=True
        )
        self._thread.start()

    def _take(self) -> list[CallRecord]:
        with self._lock:
            return list(self._pending.values())[: self.batch_size * 16]

    def _write(self, batch: list[CallRecord]) -> None:
        try:
            self._write_batch(batch)
        except Exception as exc:
            self._failed(exc)
            with self._lock:
                n = len(self._pending)
            raise StoreError(
                f"cannot write {n} record(s) to {self.where} ({exc}); they are kept in memory"
                " and written when the store recovers (see store.health()); to save them"
                " elsewhere now, call tracker.export_jsonl(path) or store.export_jsonl(path)"
            ) from exc
        with self._lock:
            for r in batch:
                if self._pending.get(r.call_id) is r:
                    del self._pending[r.call_id]
            self.written += len(batch)
            recovered = self._last_error is not None
            self._last_error = None
            self._failing_since = None
            self._last_success = utc_now_iso()
            self._backoff = 0.0
            self._retry_at = 0.0
            left = len(self._pending)
        if recovered:
            log.warning(
                "agentopt: record store %s recovered; %d record(s) left to write", self.where, left
            )

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self._last_error is None
            self._last_error = f"{type(exc).__name__}: {exc}"
            if first:
                self._failing_since = utc_now_iso()
            self._backoff = min(self._backoff * 2, self.max_backoff) if self._backoff else 0.5
            self._retry_at = _monotonic() + self._backoff
            n = len(self._pending)
        if first:
            log.error(
                "agentopt: cannot write to record store %s (%s); %d record(s) kept in memory"
                " (up to %d) and retried until it recovers",
                self.where,
                exc,
                n,
                self.max_buffer,
            )

    def _loop_once(self) -> bool:
        """One turn of the writer thread; False when it should end."""
        with self._lock:
            if not self._stop and len(self._pending) < self.batch_size:
                self._wake.wait(self.flush_interval)
            if self._stop:
                return False
            due = self._pending and _monotonic() >= self._retry_at
        if due:
            try:
                with self.write_lock:
                    batch = self._take()
                    if batch:
                        self._write(batch)
            except StoreError:
                pass  # logged once by _failed; retried after the pause
        elif self._on_idle is not None and self.healthy:
            try:
                self._on_idle()
            except Exception:
                log.exception("agentopt: record store %s: maintenance failed", self.where)
        return True


def _run(ref: weakref.ReferenceType[BufferedWriter]) -> None:
    while True:
        writer = ref()
        if writer is None or not writer._loop_once():
            return
        del writer


_WRITERS: weakref.WeakSet[BufferedWriter] = weakref.WeakSet()


def _after_fork() -> None:
    # A forked child has no writer thread and may have inherited held locks:
    # fresh locks, and a thread started by the next put.
    for w in list(_WRITERS):
        w._init_state()


os.register_at_fork(after_in_child=_after_fork)


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
