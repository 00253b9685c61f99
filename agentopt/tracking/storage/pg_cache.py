"""The response cache in PostgreSQL, shared by every gateway replica of one database.

:class:`PostgresResponseCache` answers like :class:`~agentopt.tracking.storage.cache.ResponseCache`
(same keys, same :class:`~agentopt.tracking.storage.cache.CachedResponse` entries,
``max_entries`` / ``max_bytes`` / ``ttl_seconds``), but its entries live in the
``response_cache`` table of the database the record store uses, so a response
cached by one replica is a hit on every other, and ``clear()`` on one clears
them all. A ``put`` is written at once (one ``INSERT … ON CONFLICT``), so another
replica sees it as soon as the call that made it has answered. While the
database is unreachable, ``get`` misses (a miss costs only a call) and new
entries wait in memory (at most ``max_pending``, oldest dropped first and
counted in ``dropped``), readable here and written when it returns.

>>> cache = PostgresResponseCache("postgresql://app@db/agentopt")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from agentopt.exceptions import CacheError
from agentopt.tracking.storage.cache import CachedResponse, ResponseCache, check_limits
from agentopt.tracking.storage.pg_pool import PgPool, db_errors
from agentopt.tracking.storage.pg_store import migrate

__all__ = ["PostgresResponseCache"]

log = logging.getLogger("agentopt.cache")
_monotonic = time.monotonic  # indirection: tests drive the retry pause without sleeping
_COLUMNS = "key, created_at, size, status, headers, body, streamed, latency, ttft, model"


class PostgresResponseCache:
    """Whole responses by key in PostgreSQL; see the module docstring."""

    @staticmethod
    def key(endpoint: str, body: Mapping[str, Any], namespace: str) -> str:
        """The cache key: the same as :meth:`ResponseCache.key`."""
        return ResponseCache.key(endpoint, body, namespace)

    def __init__(
        self,
        url: str,
        *,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        ttl_seconds: float | None = None,
        max_pending: int = 1024,
        pool_size: int = 4,
        timeout: float = 5.0,
    ) -> None:
        check_limits(
            "response cache", max_entries=max_entries, max_bytes=max_bytes, ttl_seconds=ttl_seconds
        )
        self._db = PgPool(
            url,
            what="response cache",
            name="agentopt-cache",
            error=CacheError,
            size=pool_size,
            timeout=timeout,
            on_open=migrate,
        )
        self.url = self._db.url
        self.where = self._db.where
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.max_pending = max(1, max_pending)
        self.pool_size = pool_size
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, CachedResponse] = OrderedDict()  # not written yet
        self.dropped = 0
        self._retry_at = 0.0
        self._backoff = 0.0
        self._failing = False
        self._closed = False

    # -- the database ----------------------------------------------------------------

    def _conn(self) -> Any:
        if self._closed:
            raise CacheError(f"response cache {self.where} is closed")
        return self._db.connection()

    def _expired(self, entry: CachedResponse, now: float) -> bool:
        return entry.expired(self.ttl_seconds, now)

    # -- the cache's API ---------------------------------------------------------------

    def get(self, key: str) -> CachedResponse | None:
        """The stored response, or None (missing, expired, or the database is down)."""
        now = time.time()
        with self._lock:
            if self._closed:
                return None
            entry = self._pending.get(key)
        if entry is not None:
            return None if self._expired(entry, now) else entry
        try:
            with self._conn() as conn:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM response_cache WHERE key = %s", (key,)
                ).fetchone()
        except db_errors() as exc:
            self._failed(CacheError(f"cannot read the response cache {self.where}: {exc}"))
            return None
        if row is None:
            return None
        entry = CachedResponse.from_columns(
            row[3], row[4], row[5], row[6], row[7], row[8], row[9], created_at=row[1]
        )
        return None if self._expired(entry, now) else entry

    def put(self, key: str, response: CachedResponse) -> None:
        """Store (or replace) an entry, written at once (see the module docstring).
        An entry larger than ``max_bytes`` is not kept."""
        if self.max_bytes is not None and response.size > self.max_bytes:
            return
        with self._lock:
            if self._closed:
                raise CacheError("response cache is closed")
            self._pending.pop(key, None)
            self._pending[key] = response
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                self.dropped += 1
            if _monotonic() < self._retry_at:
                return  # the last write failed: wait before trying the backlog again
        try:
            self.flush()
        except CacheError as exc:
            self._failed(exc)

    def flush(self) -> None:
        """Write the entries waiting in memory (after a failure) now."""
        with self._lock:
            if self._closed or not self._pending:
                return
            batch = dict(self._pending)
        rows = [
            (
                k,
                r.created_at,
                r.size,
                r.status_code,
                json.dumps(r.headers),
                r.body,
                r.streamed,
                r.latency_seconds,
                r.ttft_seconds,
                r.model,
            )
            for k, r in batch.items()
        ]
        try:
            with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO response_cache ({_COLUMNS}) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET"
                    " created_at = EXCLUDED.created_at, size = EXCLUDED.size,"
                    " status = EXCLUDED.status, headers = EXCLUDED.headers,"
                    " body = EXCLUDED.body, streamed = EXCLUDED.streamed,"
                    " latency = EXCLUDED.latency, ttft = EXCLUDED.ttft, model = EXCLUDED.model",
                    rows,
                )
                self._evict(cur)
        except db_errors() as exc:
            raise CacheError(
                f"cannot write {len(rows)} entr(y/ies) to the response cache {self.where}: {exc}"
            ) from exc
        with self._lock:
            for k, r in batch.items():
                if self._pending.get(k) is r:
                    del self._pending[k]
            recovered = self._failing
            self._failing, self._backoff, self._retry_at = False, 0.0, 0.0
        if recovered:
            log.warning("agentopt: the response cache %s is writable again", self.where)

    def _evict(self, cur: Any) -> None:
        if self.ttl_seconds is not None:
            cur.execute(
                "DELETE FROM response_cache WHERE created_at < %s",
                (time.time() - self.ttl_seconds,),
            )
        if self.max_entries is not None:
            cur.execute(
                "DELETE FROM response_cache WHERE key IN (SELECT key FROM response_cache"
                " ORDER BY created_at DESC, key OFFSET %s)",
                (self.max_entries,),
            )
        if self.max_bytes is not None:
            cur.execute(
                "DELETE FROM response_cache WHERE key IN (SELECT key FROM (SELECT key,"
                " SUM(size) OVER (ORDER BY created_at DESC, key) AS total FROM response_cache)"
                " t WHERE total > %s)",
                (self.max_bytes,),
            )

    def _failed(self, exc: CacheError) -> None:
        with self._lock:
            self._backoff = min(self._backoff * 2, 60.0) if self._backoff else 1.0
            self._retry_at = _monotonic() + self._backoff
            first = not self._failing
            self._failing = True
        if first:
            log.warning(
                "agentopt: %s; keeping up to %d new entries in memory, retrying in %.0f s",
                exc,
                self.max_pending,
                self._backoff,
            )

    def clear(self) -> None:
        """Remove every entry, for every replica sharing the database."""
        with self._lock:
            self._pending.clear()
        try:
            with self._conn() as conn:
                conn.execute("DELETE FROM response_cache")
        except db_errors() as exc:
            raise CacheError(f"cannot clear the response cache {self.where}: {exc}") from exc

    def __len__(self) -> int:
        with contextlib.suppress(CacheError):
            self.flush()
        try:
            with self._conn() as conn:
                row = conn.execute("SELECT count(*) FROM response_cache").fetchone()
        except db_errors() as exc:
            raise CacheError(f"cannot count entries in {self.where}: {exc}") from exc
        return int(row[0]) + len(self._pending)

    def close(self) -> None:
        """Write what waits and close; idempotent. A closed cache misses on every get."""
        if self._closed:
            return
        try:
            self.flush()
        except CacheError as exc:
            log.warning("agentopt: %s; %d entr(y/ies) not kept", exc, len(self._pending))
        finally:
            self._closed = True
            self._db.close()

    def __repr__(self) -> str:
        return f"PostgresResponseCache({self.where})"
