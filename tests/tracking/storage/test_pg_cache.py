"""The response cache in PostgreSQL, against a real server started by the tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from pg_server import PgServer

from agentopt.tracking.storage import pg_cache
from agentopt.tracking.storage.cache import CachedResponse, ResponseCache
from agentopt.tracking.storage.pg_cache import PostgresResponseCache

pytestmark = pytest.mark.xdist_group("postgres")

_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    pg = PgServer()
    yield pg
    pg.close()


@pytest.fixture
def url(server: PgServer) -> str:
    return server.new_database(f"c{next(_names)}")


def _entry(body: bytes = b'{"ok": true}', created_at: float | None = None) -> CachedResponse:
    e = CachedResponse(200, [("content-type", "application/json")], body, False, 0.25, None, "m")
    if created_at is not None:
        e.created_at = created_at
    return e


def test_entries_are_shared_between_caches_and_cleared_for_all(url: str) -> None:
    a, b = PostgresResponseCache(url), PostgresResponseCache(url)
    key = a.key("http://h/v1/chat/completions", {"model": "m", "stream": True}, "ns")
    assert key == ResponseCache.key("http://h/v1/chat/completions", {"model": "m"}, "ns")
    assert b.get(key) is None
    a.put(key, _entry())
    got = b.get(key)  # written at once: the other replica hits
    assert got is not None and got.body == b'{"ok": true}' and got.latency_seconds == 0.25
    assert got.headers == [("content-type", "application/json")] and got.model == "m"
    b.clear()
    assert a.get(key) is None and len(a) == 0
    a.close()
    b.close()
    assert a.get(key) is None  # a closed cache misses


def test_max_entries_and_ttl_evict_the_oldest(url: str) -> None:
    cache = PostgresResponseCache(url, max_entries=2, ttl_seconds=60)
    for i in range(3):
        cache.put(f"k{i}", _entry(created_at=time.time() + i))
    assert len(cache) == 2 and cache.get("k0") is None and cache.get("k2") is not None
    cache.put("old", _entry(created_at=1.0))  # older than the ttl: never served
    assert cache.get("old") is None
    cache.close()


def test_a_database_outage_misses_and_keeps_new_entries_until_it_returns(
    server: PgServer, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PostgresResponseCache(url, timeout=1)
    cache.put("before", _entry())
    server.stop()
    try:
        assert cache.get("before") is None  # a miss, not an error
        cache.put("during", _entry(b"kept"))
        got = cache.get("during")
        assert got is not None and got.body == b"kept"  # readable here while it waits
    finally:
        server.start()
    clock = [10.0**9]
    monkeypatch.setattr(pg_cache, "_monotonic", lambda: clock[0])  # past the retry pause
    cache.put("after", _entry())
    cache.flush()
    other = PostgresResponseCache(url)
    assert other.get("during") is not None and other.get("after") is not None
    cache.close()
    other.close()
