"""The response cache: a whole provider response, replayed for the same request.

Keys are :meth:`ResponseCache.key` (endpoint + canonical request body without
the stream flag + a namespace derived from the API key), so different API keys
never share an entry. Entries live in memory (``cache_dir=None``) or in a SQLite
file (WAL) under ``cache_dir`` shared safely by threads and processes. Writes
are buffered and committed in short batches (every ``batch_size`` puts or
``flush_interval`` seconds, and on ``flush()``/``close()``); reads in this
process see buffered entries at once. ``max_entries``/``max_bytes`` evict the
oldest entries; ``ttl_seconds`` expires them. When a write fails (a full
disk), the unwritten entries stay readable in memory (at most ``max_pending``,
the oldest dropped first and counted in ``dropped``), the failure is logged
once, and the next write is tried after a pause that doubles up to a minute,
never on every put. A cache file that cannot be opened is an error that says
to delete it or pass ``cache=False``.

>>> cache = ResponseCache(None)
>>> k = ResponseCache.key("http://h/v1/chat/completions", {"model": "m", "stream": True}, "ns")
>>> k == ResponseCache.key("http://h/v1/chat/completions", {"model": "m"}, "ns")
True
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from agentopt.exceptions import CacheError, ConfigError, StoreError
from agentopt.tracking.storage.sqlite_db import connect_sqlite, is_disk_full

__all__ = ["CACHE_FILE", "Cache", "CachedResponse", "ResponseCache", "namespace_for"]

log = logging.getLogger("agentopt.cache")
_monotonic = time.monotonic  # indirection: tests drive the retry pause without sleeping

#: File name of the SQLite cache under ``cache_dir``.
CACHE_FILE = "responses.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, created_at REAL NOT NULL, size INTEGER NOT NULL,
    status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,
    streamed INTEGER NOT NULL, latency REAL NOT NULL, ttft REAL, model TEXT);
CREATE INDEX IF NOT EXISTS entries_created ON entries(created_at);
"""
# Said with every error about the cache file: it only holds copies of responses.
_HINT = " (the cache only holds copies of responses: delete it or pass cache=False)"

_EXCLUDED = ("stream", "stream_options")
_KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")
_KEY_PARAMS = ("key",)


@dataclass
class CachedResponse:
    """One stored response: the whole body (for streams, the raw SSE bytes)."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes
    streamed: bool
    latency_seconds: float
    ttft_seconds: float | None = None
    model: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers)

    def expired(self, ttl_seconds: float | None, now: float) -> bool:
        """Older than ``ttl_seconds`` at ``now`` (never, without a TTL)."""
        return ttl_seconds is not None and now - self.created_at > ttl_seconds

    @classmethod
    def from_columns(
        cls,
        status_code: int,
        headers_json: str,
        body: Any,
        streamed: Any,
        latency_seconds: float,
        ttft_seconds: float | None,
        model: str | None,
        created_at: float,
    ) -> CachedResponse:
        """An entry from its stored columns (headers as JSON pairs), for any SQL cache."""
        return cls(
            status_code=status_code,
            headers=[(str(k), str(v)) for k, v in json.loads(headers_json)],
            body=bytes(body),
            streamed=bool(streamed),
            latency_seconds=latency_seconds,
            ttft_seconds=ttft_seconds,
            model=model,
            created_at=created_at,
        )


def check_limits(owner: str, **limits: float | None) -> None:
    """Each given cache limit (entries, bytes, TTL) must be positive: ConfigError naming it."""
    for name, value in limits.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{owner}: {name} must be positive, got {value!r}")


class Cache(Protocol):
    """What the pipeline needs from a response cache: :class:`ResponseCache`
    (memory or SQLite) or :class:`~agentopt.tracking.storage.pg_cache.PostgresResponseCache`."""

    @staticmethod
    def key(endpoint: str, body: Mapping[str, Any], namespace: str) -> str: ...

    def get(self, key: str) -> CachedResponse | None: ...

    def put(self, key: str, response: CachedResponse) -> None: ...

    def flush(self) -> None: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


def namespace_for(
    headers: Mapping[str, str] | httpx.Headers, url: httpx.URL | str | None = None
) -> str:
    """A short hash of the credentials a request carries (``Authorization``,
    ``x-api-key``, ``x-goog-api-key``, ``api-key``, and Gemini's ``?key=`` when
    ``url`` is given). Never the key itself; no credentials → ``"anonymous"``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    parts = [f"{h}={lowered[h]}" for h in _KEY_HEADERS if lowered.get(h)]
    if url is not None:
        params = url.params if isinstance(url, httpx.URL) else httpx.URL(str(url)).params
        parts += [f"?{p}={params[p]}" for p in _KEY_PARAMS if params.get(p)]
    if not parts:
        return "anonymous"
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


class ResponseCache:
    """Whole responses by key, in memory or in SQLite; see the module docstring."""

    def __init__(
        self,
        cache_dir: str | Path | None,
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        ttl_seconds: float | None = None,
        batch_size: int = 32,
        flush_interval: float = 0.5,
        max_pending: int = 1024,
    ) -> None:
        check_limits(
            "ResponseCache", max_entries=max_entries, max_bytes=max_bytes, ttl_seconds=ttl_seconds
        )
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self._lock = threading.RLock()
        self._mem: OrderedDict[str, CachedResponse] = OrderedDict()  # memory mode
        self._mem_bytes = 0
        self._pending: dict[str, CachedResponse] = {}  # SQLite mode: not yet committed
        self.max_pending = max(self.batch_size, max_pending)
        self.dropped = 0  # unwritten entries dropped because the backlog was full
        self._retry_at = 0.0
        self._backoff = 0.0
        self._failing = False
        self._last_flush = _monotonic()
        self._closed = False
        self.path: Path | None = None
        self._conn: sqlite3.Connection | None = None
        if cache_dir is not None:
            directory = Path(cache_dir)
            if directory.exists() and not directory.is_dir():
                raise CacheError(f"cache_dir {str(directory)!r} exists and is not a directory")
            self.path = directory / CACHE_FILE
            self._pid = os.getpid()
            self._conn = self._open()
            atexit.register(_close_at_exit, weakref.ref(self))

    # -- keys ------------------------------------------------------------

    @staticmethod
    def key(endpoint: str, body: Mapping[str, Any], namespace: str) -> str:
        """The cache key: sha256 of namespace, endpoint and the canonical body
        (sorted keys, no whitespace, ``stream``/``stream_options`` left out)."""
        canonical = json.dumps(
            {k: v for k, v in body.items() if k not in _EXCLUDED},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        h = hashlib.sha256()
        h.update(namespace.encode())
        h.update(b"\0")
        h.update(endpoint.encode())
        h.update(b"\0")
        h.update(canonical.encode())
        return h.hexdigest()

    # -- SQLite plumbing ---------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        assert self.path is not None
        try:
            return connect_sqlite(self.path, what="response cache", schema=_SCHEMA)
        except StoreError as exc:
            raise CacheError(f"{exc}{_HINT}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._closed or self._conn is None:
            raise CacheError(f"response cache {str(self.path)!r} is closed")
        if os.getpid() != self._pid:  # a forked child opens its own handle
            self._pid = os.getpid()
            self._conn = self._open()
        return self._conn

    def _expired(self, entry: CachedResponse, now: float) -> bool:
        return entry.expired(self.ttl_seconds, now)

    # -- public API --------------------------------------------------------

    def get(self, key: str) -> CachedResponse | None:
        """The stored response, or None (missing or expired)."""
        now = time.time()
        with self._lock:
            if self._closed:
                return None
            if self._conn is None:
                entry = self._mem.get(key)
                if entry is not None and self._expired(entry, now):
                    self._mem_bytes -= self._mem.pop(key).size
                    return None
                return entry
            entry = self._pending.get(key)
            if entry is not None:
                return None if self._expired(entry, now) else entry
            try:
                row = (
                    self._connection()
                    .execute(
                        "SELECT status, headers, body, streamed, latency, ttft, model, created_at"
                        " FROM entries WHERE key = ?",
                        (key,),
                    )
                    .fetchone()
                )
            except sqlite3.Error as exc:
                raise CacheError(
                    f"cannot read the response cache {str(self.path)!r}: {exc}{_HINT}"
                ) from exc
        if row is None:
            return None
        entry = CachedResponse.from_columns(*row[:8])
        return None if self._expired(entry, now) else entry

    def put(self, key: str, response: CachedResponse) -> None:
        """Store (or replace) an entry. An entry larger than ``max_bytes`` is not kept."""
        if self.max_bytes is not None and response.size > self.max_bytes:
            return
        with self._lock:
            if self._closed:
                raise CacheError("response cache is closed")
            if self._conn is None:
                old = self._mem.pop(key, None)
                if old is not None:
                    self._mem_bytes -= old.size
                self._mem[key] = response
                self._mem_bytes += response.size
                self._evict_memory()
                return
            self._pending.pop(key, None)
            self._pending[key] = response
            self._bound_backlog()
            now = _monotonic()
            if now < self._retry_at:
                return  # the last write failed: wait before trying the backlog again
            if (
                len(self._pending) >= self.batch_size
                or now - self._last_flush >= self.flush_interval
            ):
                try:
                    self._flush_locked()
                except CacheError as exc:
                    self._failed(exc)

    def _failed(self, exc: CacheError) -> None:
        """A write failed (a full disk, a lock held too long): keep the backlog,
        try again after a pause that doubles up to a minute, and say so once."""
        self._backoff = min(self._backoff * 2, 60.0) if self._backoff else 1.0
        self._retry_at = _monotonic() + self._backoff
        if not self._failing:
            self._failing = True
            log.warning(
                "agentopt: %s; keeping up to %d entries in memory and retrying in %.0f s",
                exc,
                self.max_pending,
                self._backoff,
            )

    def _bound_backlog(self) -> None:
        """Keep at most ``max_pending`` unwritten entries (oldest dropped: a cache
        entry lost only costs a future miss)."""
        while len(self._pending) > self.max_pending:
            self._pending.pop(next(iter(self._pending)))
            self.dropped += 1

    def _evict_memory(self) -> None:
        while self._mem and (
            (self.max_entries is not None and len(self._mem) > self.max_entries)
            or (self.max_bytes is not None and self._mem_bytes > self.max_bytes)
        ):
            _, old = self._mem.popitem(last=False)
            self._mem_bytes -= old.size
        if self.ttl_seconds is not None:
            now = time.time()
            while self._mem:
                oldest = next(iter(self._mem.values()))
                if not self._expired(oldest, now):
                    break
                _, old = self._mem.popitem(last=False)
                self._mem_bytes -= old.size

    def flush(self) -> None:
        """Commit buffered entries so other processes see them."""
        with self._lock:
            if self._conn is not None and not self._closed:
                self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = _monotonic()
        if not self._pending:
            return
        rows = [
            (
                k,
                r.created_at,
                r.size,
                r.status_code,
                json.dumps(r.headers),
                r.body,
                int(r.streamed),
                r.latency_seconds,
                r.ttft_seconds,
                r.model,
            )
            for k, r in self._pending.items()
        ]
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            self._evict_sqlite(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            full = " (the disk is full)" if is_disk_full(exc) else ""
            raise CacheError(
                f"cannot write {len(rows)} entr(y/ies) to the response cache"
                f" {str(self.path)!r}{full}: {exc}"
            ) from exc
        self._pending.clear()
        if self._failing:
            log.warning("agentopt: the response cache %s is writable again", self.path)
        self._failing, self._backoff, self._retry_at = False, 0.0, 0.0

    def _evict_sqlite(self, conn: sqlite3.Connection) -> None:
        if self.ttl_seconds is not None:
            conn.execute(
                "DELETE FROM entries WHERE created_at < ?", (time.time() - self.ttl_seconds,)
            )
        if self.max_entries is not None:
            conn.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries"
                " ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (self.max_entries,),
            )
        if self.max_bytes is not None:
            conn.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, SUM(size) OVER"
                " (ORDER BY created_at DESC, rowid DESC) AS total FROM entries) WHERE total > ?)",
                (self.max_bytes,),
            )

    def clear(self) -> None:
        """Remove every entry (of every namespace)."""
        with self._lock:
            self._mem.clear()
            self._mem_bytes = 0
            self._pending.clear()
            if self._conn is not None and not self._closed:
                try:
                    self._connection().execute("DELETE FROM entries")
                except sqlite3.Error as exc:
                    raise CacheError(f"cannot clear {str(self.path)!r}: {exc}") from exc

    def __len__(self) -> int:
        with self._lock:
            if self._conn is None:
                return len(self._mem)
            self._flush_locked()
            try:
                row = self._connection().execute("SELECT count(*) FROM entries").fetchone()
            except sqlite3.Error as exc:
                raise CacheError(f"cannot count entries in {str(self.path)!r}: {exc}") from exc
        return int(row[0])

    def close(self) -> None:
        """Commit and close; idempotent. A closed cache misses on every get."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._conn is not None:
                    self._flush_locked()
            finally:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                self._mem.clear()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"ResponseCache({where!r})"


def _close_at_exit(ref: weakref.ReferenceType[ResponseCache]) -> None:
    cache = ref()
    if cache is not None:
        with contextlib.suppress(Exception):
            cache.close()
