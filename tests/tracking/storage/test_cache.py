"""ResponseCache: canonical keys, namespaces, hit/miss, TTL, size caps, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from agentopt.exceptions import CacheError, ConfigError
from agentopt.tracking.storage.cache import CachedResponse, ResponseCache, namespace_for

EP = "http://127.0.0.1:1/v1/chat/completions"


def _resp(
    body: bytes = b'{"ok": true}', *, created_at: float | None = None, streamed: bool = False
) -> CachedResponse:
    r = CachedResponse(
        status_code=200,
        headers=[("content-type", "application/json")],
        body=body,
        streamed=streamed,
        latency_seconds=0.25,
        ttft_seconds=0.1 if streamed else None,
        model="m",
    )
    if created_at is not None:
        r.created_at = created_at
    return r


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> ResponseCache:
    c = ResponseCache(None if request.param == "memory" else tmp_path / "cache")
    yield c  # type: ignore[misc]
    c.close()


def test_key_is_canonical_and_ignores_the_stream_flag() -> None:
    a = ResponseCache.key(
        EP, {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}, "ns"
    )
    b = ResponseCache.key(
        EP,
        {
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"content": "hi", "role": "user"}],
            "model": "m",
        },
        "ns",
    )
    assert a == b
    assert a != ResponseCache.key(
        EP, {"model": "m2", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}, "ns"
    )
    assert a != ResponseCache.key(EP.replace("chat/completions", "responses"), {"model": "m"}, "ns")
    assert a != ResponseCache.key(
        EP,
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0},
        "other",
    )


def test_namespaces_hash_keys_and_never_contain_them() -> None:
    n1 = namespace_for({"Authorization": "Bearer sk-one"})
    n2 = namespace_for(httpx.Headers({"authorization": "Bearer sk-two"}))
    assert n1 != n2
    assert n1 == namespace_for({"authorization": "Bearer sk-one", "accept": "x"})
    assert "sk-one" not in n1
    assert namespace_for({"x-api-key": "a"}) != namespace_for({"x-api-key": "b"})
    assert namespace_for({}) == "anonymous"
    g = "https://g/v1beta/models/m:generateContent?key="
    assert namespace_for({}, g + "k1") != namespace_for({}, g + "k2")


def test_miss_then_hit_returns_the_stored_response(cache: ResponseCache) -> None:
    key = ResponseCache.key(EP, {"model": "m"}, "ns")
    assert cache.get(key) is None
    sse = b'data: {"x": 1}\n\ndata: [DONE]\n\n'
    cache.put(key, _resp(sse, streamed=True))
    got = cache.get(key)
    assert got is not None
    assert (got.body, got.streamed, got.latency_seconds, got.ttft_seconds, got.model) == (
        sse,
        True,
        0.25,
        0.1,
        "m",
    )
    assert got.headers == [("content-type", "application/json")]
    assert len(cache) == 1
    cache.clear()
    assert cache.get(key) is None and len(cache) == 0


def test_entries_persist_across_instances(tmp_path: Path) -> None:
    c1 = ResponseCache(tmp_path)
    c1.put("k", _resp(b"abc"))
    c1.close()
    assert c1.get("k") is None  # closed: misses
    with pytest.raises(CacheError, match="closed"):
        c1.put("k2", _resp())
    c2 = ResponseCache(tmp_path)
    got = c2.get("k")
    assert got is not None and got.body == b"abc"
    c2.close()


def test_buffered_entries_are_visible_here_and_elsewhere_after_flush(tmp_path: Path) -> None:
    writer = ResponseCache(tmp_path, batch_size=100, flush_interval=3600)
    reader = ResponseCache(tmp_path)
    writer.put("k", _resp())
    assert writer.get("k") is not None
    assert reader.get("k") is None
    writer.flush()
    assert reader.get("k") is not None
    writer.close()
    reader.close()


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_ttl_expires_entries(where: str, tmp_path: Path) -> None:
    import time

    c = ResponseCache(None if where == "memory" else tmp_path, ttl_seconds=60)
    now = time.time()
    c.put("old", _resp(created_at=now - 120))
    c.put("new", _resp(created_at=now))
    assert c.get("old") is None
    assert c.get("new") is not None
    c.flush()
    assert c.get("old") is None
    c.close()


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_max_entries_evicts_the_oldest(where: str, tmp_path: Path) -> None:
    c = ResponseCache(None if where == "memory" else tmp_path, max_entries=3, batch_size=1)
    for i in range(5):
        c.put(f"k{i}", _resp(created_at=1000.0 + i))
    assert len(c) == 3
    assert [c.get(f"k{i}") is not None for i in range(5)] == [False, False, True, True, True]
    c.close()


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_max_bytes_evicts_the_oldest_and_skips_huge_entries(where: str, tmp_path: Path) -> None:
    size = _resp(b"x" * 100).size
    c = ResponseCache(None if where == "memory" else tmp_path, max_bytes=size * 2, batch_size=1)
    for i in range(4):
        c.put(f"k{i}", _resp(b"x" * 100, created_at=1000.0 + i))
    c.put("huge", _resp(b"y" * (size * 3)))
    assert [c.get(f"k{i}") is not None for i in range(4)] == [False, False, True, True]
    assert c.get("huge") is None
    c.close()


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_entries"):
        ResponseCache(None, max_entries=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheError, match="not a directory"):
        ResponseCache(tmp_path / "file")


def test_many_threads_writing_and_reading(tmp_path: Path) -> None:
    c = ResponseCache(tmp_path, batch_size=5)
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for j in range(30):
                c.put(f"t{t}-{j}", _resp(f"{t}-{j}".encode()))
                got = c.get(f"t{t}-{j}")
                assert got is not None and got.body == f"{t}-{j}".encode()
                c.put("shared", _resp(b"s"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(c) == 20 * 30 + 1
    c.close()


_CHILD = """
import sys
from agentopt.tracking.storage.cache import CachedResponse, ResponseCache
c = ResponseCache(sys.argv[1], batch_size=3, max_entries=10_000)
tag = sys.argv[2]
for i in range(150):
    body = f"{tag}{i}".encode()
    c.put(f"{tag}{i}", CachedResponse(200, [], body, False, 0.1))
    c.put(f"same{i}", CachedResponse(200, [], b"same", False, 0.1))
    got = c.get(f"{tag}{i}")
    assert got is not None and got.body == body
c.close()
"""


def test_two_processes_writing_one_cache(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), t]) for t in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    c = ResponseCache(tmp_path)
    assert len(c) == 450
    got_a, got_b = c.get("a149"), c.get("b0")
    assert got_a is not None and got_a.body == b"a149"
    assert got_b is not None and got_b.body == b"b0"
    c.close()


def test_a_corrupt_cache_file_says_delete_it_or_pass_cache_false(tmp_path: Path) -> None:
    (tmp_path / "responses.sqlite").write_bytes(b"this is not a SQLite database" * 100)
    with pytest.raises(CacheError, match=r"responses\.sqlite.*delete it or pass cache=False"):
        ResponseCache(tmp_path)


def _fill_the_disk(c: ResponseCache) -> list[str]:
    """Cap the database at its current size (SQLite then answers SQLITE_FULL, as
    on a full disk) and record every INSERT the cache attempts."""
    assert c._conn is not None
    pages = c._conn.execute("PRAGMA page_count").fetchone()[0]
    c._conn.execute(f"PRAGMA max_page_count={pages}")
    inserts: list[str] = []
    c._conn.set_trace_callback(lambda sql: inserts.append(sql) if "INSERT" in sql else None)
    return inserts


def test_a_cache_on_a_full_disk_does_not_retry_its_backlog_on_every_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentopt.tracking.storage import cache as cache_mod

    now = [1000.0]
    monkeypatch.setattr(cache_mod, "_monotonic", lambda: now[0])
    c = ResponseCache(tmp_path, batch_size=2, flush_interval=3600, max_pending=50)
    inserts = _fill_the_disk(c)
    big = b"x" * 20_000
    for i in range(40):  # the first full batch fails; the other puts must not retry
        c.put(f"k{i}", _resp(big + str(i).encode()))
    attempts = len(inserts)
    assert 0 < attempts <= 2, f"{attempts} insert attempts for 40 puts on a full disk"
    got = c.get("k39")  # unwritten entries are still served from memory
    assert got is not None and got.body.endswith(b"39")
    for i in range(40, 80):  # past max_pending, the oldest unwritten entries go first
        c.put(f"k{i}", _resp(big + str(i).encode()))
    assert c.dropped == 80 - 50 and c.get("k0") is None and c.get("k79") is not None
    # The disk is freed; once the pause is over, the next put writes the backlog.
    assert c._conn is not None
    c._conn.execute("PRAGMA max_page_count=1073741823")
    now[0] += 61.0
    c.put("k80", _resp(b"after"))  # the backlog is full: k30 makes room for it
    assert c.dropped == 31
    c._conn.set_trace_callback(None)
    c.close()
    again = ResponseCache(tmp_path)
    assert len(again) == 50
    got = again.get("k80")
    assert got is not None and got.body == b"after"
    again.close()


def test_an_explicit_flush_on_a_full_disk_raises_and_keeps_the_entries(tmp_path: Path) -> None:
    c = ResponseCache(tmp_path, batch_size=100, flush_interval=3600)
    _fill_the_disk(c)
    c.put("k", _resp(b"y" * 50_000))
    with pytest.raises(CacheError, match="disk is full"):
        c.flush()
    got = c.get("k")
    assert got is not None and len(got.body) == 50_000
    assert c._conn is not None
    c._conn.set_trace_callback(None)
    c._conn.execute("PRAGMA max_page_count=1073741823")
    c.close()
    assert ResponseCache(tmp_path).get("k") is not None
