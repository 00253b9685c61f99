"""The daemon and its record store: failure and recovery, one record per call, usage."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from agentopt.gateway.config import AliasConfig, GatewayConfig
from agentopt.sim import SimServer
from agentopt.tracking.storage.sqlite_store import SQLiteRecordStore
from tests.gateway.daemon_kit import serving

pytestmark = pytest.mark.xdist_group("daemon")
MSG = [{"role": "user", "content": "hi"}]


def test_calls_are_served_while_the_store_fails_and_written_when_it_recovers(
    sim: SimServer, tmp_path: Path
) -> None:
    store = SQLiteRecordStore(tmp_path / "r.sqlite", batch_size=10**6, flush_interval=3600)
    with serving(sim, store=store) as (_, server):
        ok = httpx.post(
            server.url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": MSG}
        )
        assert ok.status_code == 200
        pages = store._wconn.execute("PRAGMA page_count").fetchone()[0]
        store._wconn.execute(f"PRAGMA max_page_count={pages}")  # the disk is full
        ids = [ok.headers["x-agentopt-request-id"]]
        for i in range(5):
            r = httpx.post(
                server.url + "/v1/chat/completions",
                json={
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": "y" * 4000 + str(i)}],
                },
            )
            assert r.status_code == 200  # calls keep being served
            ids.append(r.headers["x-agentopt-request-id"])
        with pytest.raises(Exception):  # noqa: B017 - the write fails: that is the point
            store.flush()
        health = httpx.get(server.url + "/internal/health").json()
        assert health["status"] == "degraded"
        assert health["store_health"]["ok"] is False and health["store_health"]["pending"] >= 5
        store._wconn.execute("PRAGMA max_page_count=1073741824")  # space again
        store.flush()
        healed = httpx.get(server.url + "/internal/health").json()
        assert healed["status"] == "ok" and healed["store_health"]["pending"] == 0
    reopened = SQLiteRecordStore(tmp_path / "r.sqlite")
    assert sorted(r.call_id for r in reopened.all()) == sorted(ids)
    reopened.close()


def test_every_call_gets_its_own_record_even_with_repeated_provider_ids(sim: SimServer) -> None:
    with serving(sim, cache_dir=None) as (d, server):
        ids = set()
        for _ in range(3):  # the same request three times: same answer, same provider id
            r = httpx.post(
                server.url + "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": MSG, "seed": 1},
            )
            ids.add(r.headers["x-agentopt-request-id"])
        assert len(ids) == 3 and len(d.store) == 3


def test_alias_is_on_the_record_and_usage_is_served(sim: SimServer) -> None:
    cfg = GatewayConfig(
        aliases={"cheap": AliasConfig(targets=["openai/gpt-4o-mini"], router="fallback")}
    )
    with serving(sim, cfg) as (d, server):
        httpx.post(server.url + "/v1/chat/completions", json={"model": "cheap", "messages": MSG})
        httpx.post(server.url + "/v1/chat/completions", json={"model": "gpt-4.1", "messages": MSG})
        usage = httpx.get(server.url + "/agentopt/v1/usage", params={"group_by": "alias"}).json()
        bad = httpx.get(server.url + "/agentopt/v1/usage", params={"colour": "red"})
    assert [r.alias for r in d.records()] == ["cheap", None]
    by_alias = {g["key"]["alias"]: g["requests"] for g in usage["groups"]}
    assert by_alias == {"cheap": 1, None: 1}
    assert bad.status_code == 400
