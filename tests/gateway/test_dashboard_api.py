"""The dashboard's JSON API against figures computed by hand on a fixed record set,
over a SQLite file and over a real PostgreSQL database (started by the tests)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from agentopt.gateway.dashboard import create_dashboard_app
from agentopt.records import CallRecord, Observation
from agentopt.selectors.run.fingerprint import CellKey
from agentopt.selectors.run.store import JSONLStore
from agentopt.tracking.storage.pg_store import PostgresRecordStore
from agentopt.tracking.storage.sql_store import SQLRecordStore
from agentopt.tracking.storage.store import SQLiteRecordStore
from tests.tracking.storage.pg_server import PgServer

_names = itertools.count()


def _rec(i: int, **kw: object) -> CallRecord:
    base: dict[str, object] = {
        "call_id": f"c{i:02d}",
        "timestamp": f"2026-12-01T10:{i:02d}:00+00:00",
        "provider": "openai",
        "requested_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "latency_seconds": 0.1 * (i + 1),
        "cost_usd": 0.001,
        "status_code": 200,
        "request_body": {"messages": [{"role": "user", "content": f"q{i}"}]},
        "response_body": {"id": f"r{i}"},
    }
    base.update(kw)
    return CallRecord.model_validate(base)


# 10 calls: 6 to gpt-4o-mini, 3 routed to gpt-4o (requested gpt-4o-mini), 1 unpriced
# local model; one failed, one cached, two streamed with TTFT.
RECORDS = [
    _rec(0, data_id="d1", agent_id="planner", combo_id="A"),
    _rec(1, data_id="d1", agent_id="solver", combo_id="A", stream=True, ttft_seconds=0.05),
    _rec(2, data_id="d2", agent_id="planner", combo_id="A", cached=True, cost_usd=0.001),
    _rec(
        3,
        data_id="d2",
        agent_id="solver",
        combo_id="A",
        error="HTTP 500",
        status_code=500,
        cost_usd=None,
        prompt_tokens=0,
        completion_tokens=0,
    ),
    _rec(4, data_id="d3", agent_id="planner", combo_id="B", model="gpt-4o", cost_usd=0.011),
    _rec(
        5,
        data_id="d3",
        agent_id="solver",
        combo_id="B",
        model="gpt-4o",
        cost_usd=0.011,
        stream=True,
        ttft_seconds=0.15,
    ),
    _rec(6, data_id="d4", agent_id="planner", combo_id="B", model="gpt-4o", cost_usd=0.011),
    _rec(7, data_id="d4", agent_id="solver", combo_id="B"),
    _rec(8, provider="local", requested_model="my-llama", model="my-llama", cost_usd=None),
    _rec(9, data_id="d5", agent_id="planner", combo_id="A"),
]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = PgServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The fixed records in a SQLite file (its path) or a PostgreSQL database (its URL)."""
    if request.param == "sqlite":
        where: Path | str = tmp_path / "records.sqlite"
        store: SQLRecordStore = SQLiteRecordStore(where)
    else:
        server: PgServer = request.getfixturevalue("pg")
        where = server.new_database(f"dash{os.getpid()}_{next(_names)}")
        store = PostgresRecordStore(where)
    for r in RECORDS:
        store.append(r)
    store.close()
    return where


@pytest.fixture()
def client(store_path: Path | str, tmp_path: Path) -> Iterator[TestClient]:
    obs_path = tmp_path / "observations.jsonl"
    obs = JSONLStore(obs_path)
    # combo X: 4 evaluations, scores 1,1,0,1; combo Y: 2 evaluations, then eliminated
    rows = [("X", 1.0), ("Y", 0.0), ("X", 1.0), ("Y", 0.0), ("X", 0.0), ("X", 1.0)]
    for i, (m, s) in enumerate(rows):
        obs.append(
            CellKey("agent@1", "eval_fn@1", f"solver={m}", f"d{i}"),
            Observation(
                combo={"solver": m},
                datapoint=i,
                score=s,
                cost_usd=0.01 if m == "X" else 0.001,
                latency_seconds=1.0,
                timestamp=f"2026-12-01T11:00:{i:02d}+00:00",
            ),
        )
    obs.close()
    app = create_dashboard_app(store_path, selections=[obs_path])
    with TestClient(app) as c:  # its lifespan closes the store
        yield c


def test_summary_matches_hand_computed_totals(client: TestClient) -> None:
    s = client.get("/dashboard/api/summary").json()
    assert s["requests"] == 10
    assert s["errors"] == 1
    assert s["error_rate"] == pytest.approx(0.1)
    # priced: c00, c01, c02 (a cache hit), c07, c09 at 0.001 and three gpt-4o calls at 0.011
    assert s["cost_usd"] == pytest.approx(5 * 0.001 + 3 * 0.011)
    assert s["unpriced_requests"] == 2  # the failed call and the local model: never $0
    assert s["input_tokens"] == 900 and s["output_tokens"] == 90
    assert s["cache_hits"] == 1
    # latency over answered, uncached calls (c02 cached and c03 failed left out), nearest rank
    assert s["latency_seconds"]["p50"] == pytest.approx(0.6)
    assert s["latency_seconds"]["p99"] == pytest.approx(1.0)
    assert s["ttft_seconds"]["p50"] == pytest.approx(0.05)


def test_summary_is_usage_stats(client: TestClient, store_path: Path | str) -> None:
    """The page's numbers are agentopt.usage_stats' numbers, filters included."""
    from agentopt import usage_stats
    from agentopt.tracking.storage.store import get_store

    store = get_store(store_path)
    try:
        want = usage_stats(store, model="gpt-4o", start_date="2026-12-01").total.as_dict()
    finally:
        store.close()
    got = client.get("/dashboard/api/summary", params={"model": "gpt-4o", "start": "2026-12-01"})
    assert got.json() == want


def test_filters_apply_to_every_view(client: TestClient) -> None:
    s = client.get("/dashboard/api/summary", params={"model": "gpt-4o"}).json()
    assert s["requests"] == 3 and s["cost_usd"] == pytest.approx(0.033)
    s = client.get("/dashboard/api/summary", params={"status": "error"}).json()
    assert s["requests"] == 1
    s = client.get("/dashboard/api/summary", params={"agent_id": "solver", "combo_id": "B"}).json()
    assert s["requests"] == 2
    s = client.get(
        "/dashboard/api/summary",
        params={"start": "2026-12-01T10:03:00+00:00", "end": "2026-12-01T10:06:00+00:00"},
    ).json()
    assert s["requests"] == 3  # c03, c04, c05
    calls = client.get("/dashboard/api/calls", params={"data_id": "d2"}).json()["calls"]
    assert [c["call_id"] for c in calls] == ["c03", "c02"]
    assert client.get("/dashboard/api/summary", params={"status": "bogus"}).status_code == 400
    assert (
        client.get("/dashboard/api/summary", params={"provider": "local"}).json()["requests"] == 1
    )


def test_calls_newest_first_and_paged_by_seq(client: TestClient) -> None:
    calls = client.get("/dashboard/api/calls", params={"limit": 4}).json()["calls"]
    assert [c["call_id"] for c in calls] == ["c09", "c08", "c07", "c06"]
    older = client.get(
        "/dashboard/api/calls", params={"limit": 4, "before": calls[-1]["seq"]}
    ).json()["calls"]
    assert [c["call_id"] for c in older] == ["c05", "c04", "c03", "c02"]
    newer = client.get("/dashboard/api/calls", params={"after": older[0]["seq"]}).json()["calls"]
    assert [c["call_id"] for c in newer] == ["c09", "c08", "c07", "c06"]
    failed = next(c for c in older if c["call_id"] == "c03")
    assert failed["ok"] is False and failed["cost_usd"] is None


def test_call_detail_has_request_and_response(client: TestClient) -> None:
    c = client.get("/dashboard/api/calls/c04").json()
    assert c["model"] == "gpt-4o" and c["requested_model"] == "gpt-4o-mini"
    assert c["request_body"]["messages"][0]["content"] == "q4"
    assert client.get("/dashboard/api/calls/nope").status_code == 404


def test_timeseries_latency_errors(client: TestClient) -> None:
    ts = client.get("/dashboard/api/timeseries").json()
    assert ts["bucket"] == "minute" and len(ts["buckets"]) == 10
    assert ts["buckets"][0] == "2026-12-01 10:00"
    assert sum(ts["series"]["gpt-4o"]["requests"]) == 3
    assert sum(ts["series"]["gpt-4o"]["cost_usd"]) == pytest.approx(0.033)
    assert sum(x for x in ts["cache_hit_rate"] if x) == pytest.approx(1.0)
    hourly = client.get("/dashboard/api/timeseries", params={"bucket": "hour"}).json()
    assert hourly["buckets"] == ["2026-12-01 10:00"]
    assert hourly["series"]["gpt-4o-mini"]["requests"] == [6]
    lat = client.get("/dashboard/api/latency").json()
    assert lat["latency"]["gpt-4o"]["p50"] == pytest.approx(0.6)
    assert lat["ttft"]["gpt-4o"]["p50"] == pytest.approx(0.15)
    errs = client.get("/dashboard/api/errors").json()["providers"]
    assert {e["provider"]: e["errors"] for e in errs} == {"local": 0, "openai": 1}


def test_routing_share_and_savings(client: TestClient) -> None:
    aliases = client.get("/dashboard/api/routing").json()["aliases"]
    assert [a["alias"] for a in aliases] == ["gpt-4o-mini"]  # my-llama was never routed
    a = aliases[0]
    shares = {t["model"]: t["share"] for t in a["targets"]}
    assert shares == pytest.approx({"gpt-4o": 3 / 9, "gpt-4o-mini": 6 / 9})
    # most expensive per token: gpt-4o at 0.011 / 110 tokens; priced tokens: 8 calls × 110
    assert a["most_expensive_target"] == "gpt-4o"
    assert a["cost_if_most_expensive_usd"] == pytest.approx(0.011 * 8)
    assert a["actual_cost_usd"] == pytest.approx(5 * 0.001 + 0.033)
    assert a["saved_usd"] == pytest.approx(0.088 - 0.038)


def test_selection_view_table_pareto_and_elimination(client: TestClient) -> None:
    listed = client.get("/dashboard/api/selections").json()["selections"]
    assert [s["name"] for s in listed] == ["observations.jsonl"]
    v = client.get("/dashboard/api/selections/0").json()
    assert v["observations"] == 6
    x, y = v["combinations"]
    assert x["combo"] == "solver=X" and x["n"] == 4 and x["mean_score"] == pytest.approx(0.75)
    assert x["ci_low"] < 0.75 < x["ci_high"]
    assert y["last_evaluated"] == 4 and y["stopped_early"] is True
    assert x["stopped_early"] is False
    assert x["pareto"] and y["pareto"]  # Y is cheaper, X scores higher
    assert client.get("/dashboard/api/selections/5").status_code == 404


def test_api_key_required_for_everything_but_static(store_path: Path | str) -> None:
    with TestClient(create_dashboard_app(store_path, api_key="s3cret")) as c:
        _check_api_key(c)


def _check_api_key(c: TestClient) -> None:
    assert c.get("/dashboard/api/summary").status_code == 401
    assert c.get("/dashboard", follow_redirects=False).status_code == 303
    assert c.get("/dashboard/api/summary", headers={"x-api-key": "s3cret"}).status_code == 200
    ok = c.get("/dashboard/api/summary", headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert c.post("/dashboard/login", content="key=wrong").status_code == 401
    login = c.post("/dashboard/login", content="key=s3cret", follow_redirects=False)
    assert login.status_code == 303 and "s3cret" not in login.headers["set-cookie"]
    assert c.get("/dashboard/api/summary").status_code == 200  # the cookie now
    assert c.get("/dashboard/static/app.js").status_code == 200


def test_page_and_assets_ship_in_the_package(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "/dashboard/static/chart.umd.min.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    js = client.get("/dashboard/static/chart.umd.min.js")
    assert js.status_code == 200 and b"Chart.js v4" in js.content[:200]
    assert client.get("/dashboard/static/../app.py").status_code == 404


def test_a_missing_store_file_is_refused_by_name(tmp_path: Path) -> None:
    from agentopt.exceptions import StoreError
    from agentopt.gateway.dashboard.cli import DashboardServer

    missing = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match=r"nope\.sqlite' does not exist"):
        DashboardServer(missing)
    assert not missing.exists()  # not created by the attempt


def test_a_store_without_sql_is_refused_with_what_it_needs() -> None:
    from agentopt.exceptions import ConfigError
    from agentopt.gateway.dashboard.data import DashboardData
    from agentopt.tracking.storage.store import MemoryRecordStore

    with pytest.raises(ConfigError, match=r"needs a SQL record store .*MemoryRecordStore"):
        DashboardData(MemoryRecordStore())
