"""Opening shared SQLite files: a lock held by another process is waited out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentopt.exceptions import StoreError
from agentopt.tracking.storage import sqlite_db
from agentopt.tracking.storage.sqlite_db import connect_sqlite


def _writer_holding_the_lock(path: Path) -> sqlite3.Connection:
    """Another connection in the middle of a write transaction on a new
    (rollback-journal) file: switching to WAL now fails at once, busy timeout or not."""
    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    return other


@pytest.mark.parametrize("kind", ["bare", "record store", "cache", "observation store"])
def test_opening_a_new_file_another_process_is_writing_retries_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = tmp_path / ("responses.sqlite" if kind == "cache" else "db.sqlite")
    other = _writer_holding_the_lock(path)
    waits: list[float] = []

    def fake_sleep(seconds: float) -> None:  # the other writer finishes while we wait
        waits.append(seconds)
        if other.in_transaction:
            other.execute("COMMIT")

    monkeypatch.setattr(sqlite_db, "_sleep", fake_sleep)
    if kind == "bare":
        conn = connect_sqlite(path, what="test db", schema="CREATE TABLE IF NOT EXISTS u (y);")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
    elif kind == "record store":
        from agentopt.tracking.storage.store import SQLiteRecordStore

        SQLiteRecordStore(path).close()
    elif kind == "cache":
        from agentopt.tracking.storage.cache import ResponseCache

        ResponseCache(tmp_path).close()
    else:
        from agentopt.selectors.run.store import SQLiteStore

        SQLiteStore(path).close()
    assert waits, "the lock was never met: the test did not exercise the retry"
    other.close()


def test_a_lock_that_never_ends_is_an_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite"
    other = _writer_holding_the_lock(path)
    monkeypatch.setattr(sqlite_db, "_sleep", lambda s: None)
    with pytest.raises(StoreError, match=r"test db at .*db\.sqlite.*locked"):
        connect_sqlite(path, what="test db", timeout=0.05)
    other.close()
