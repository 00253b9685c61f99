"""Opening SQLite files that many threads and processes share.

:func:`connect_sqlite` is the one way agentopt opens a SQLite file (record
store, response cache, observation store): WAL mode, a busy timeout, and a
retried open. The busy timeout does not cover everything a first open does:
two processes switching a *new* file to WAL at once, or creating its schema,
can get ``database is locked`` at once, without waiting. Those steps are
retried here with a short, growing pause until ``timeout`` seconds have passed.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from agentopt.exceptions import StoreError

__all__ = ["connect_sqlite", "is_busy", "is_disk_full"]

# Indirection so tests can observe (and act on) each retry without sleeping.
_sleep = time.sleep


def is_busy(exc: BaseException) -> bool:
    """Whether a SQLite error is another connection's lock (worth retrying)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error says the disk (or the database's size limit) is full."""
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or getattr(exc, "errno", None) == 28


def connect_sqlite(
    path: Path, *, what: str, schema: str | None = None, timeout: float = 30.0
) -> sqlite3.Connection:
    """A WAL-mode connection for many threads (behind the caller's lock) and
    processes, with ``schema`` (SQL statements) applied. Retries the open while
    another process holds the file's lock; a :class:`StoreError` naming ``what``
    and ``path`` when it cannot be opened."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot open {what} at {str(path)!r}: {exc}") from exc
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                str(path), timeout=timeout, check_same_thread=False, isolation_level=None
            )
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if schema:
                conn.executescript(schema)
            return conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            if is_busy(exc) and time.monotonic() < deadline:
                _sleep(pause * (1 + random.random()))
                pause = min(pause * 2, 0.25)
                continue
            raise StoreError(f"cannot open {what} at {str(path)!r}: {exc}") from exc
        except OSError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open {what} at {str(path)!r}: {exc}") from exc
