"""Two gateway replicas sharing one real PostgreSQL: records, usage, routers, cache, faults."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentopt.exceptions import StoreError
from agentopt.gateway.config import AliasConfig, GatewayConfig
from agentopt.gateway.daemon import Daemon
from agentopt.gateway.service import DaemonServer
from agentopt.sim import SimServer
from tests.gateway.daemon_kit import PLANTED, serving
from tests.tracking.storage.pg_server import PgServer

pytestmark = pytest.mark.xdist_group("postgres")

X, Y = "openai/gpt-4o-mini", "openai/gpt-4.1"
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    pg = PgServer()
    yield pg
    pg.close()


@pytest.fixture
def url(server: PgServer) -> str:
    """A fresh database on the server."""
    return server.new_database(f"r{os.getpid()}_{next(_names)}")


def _db(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _exec(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _call(base: str, content: str, model: str = "gpt-4o-mini", **headers: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        headers=headers,
        timeout=60,
    )


def _load(n: int, call: Callable[[int], str | None], workers: int = 6) -> list[str]:
    """``call(i)`` for i < n from ``workers`` threads; the request ids answered."""
    with ThreadPoolExecutor(workers) as ex:
        return [rid for rid in ex.map(call, range(n)) if rid is not None]


def _routed(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    return str(r.json()["_routing"]["selected_model"])


def _feedbacks(d: Daemon) -> int:
    return int(d.aliases["pick"].router.stats()["feedbacks"])


def _arms(server: DaemonServer) -> dict[str, tuple[int, float | None]]:
    stats = httpx.get(server.url + "/agentopt/v1/routers").json()["pick"]["arms"]
    return {arm: (s["rewards"], s["mean_reward"]) for arm, s in stats.items()}


def test_two_replicas_record_every_call_once_and_serve_one_usage_view(
    sim: SimServer, url: str
) -> None:
    cfg = GatewayConfig(
        aliases={"pick": AliasConfig(targets=[X, Y], router="thompson", options={"seed": 1})}
    )
    with serving(sim, cfg, store=url) as (a, sa), serving(sim, cfg, store=url) as (b, sb):
        bases = [sa.url, sb.url]

        def call(i: int) -> str:
            model = "pick" if i % 3 else "gpt-4o-mini"
            r = _call(bases[i % 2], f"q{i}", model, **{"x-agentopt-data-id": str(i % 10)})
            assert r.status_code == 200, r.text
            return r.headers["x-agentopt-request-id"]

        ids = _load(160, call)
        # token estimates are counted in the background: let both finish, so the
        # two views read the same rows (records and estimates alike)
        for d in (a, b):
            assert d.estimator is None or d.estimator.wait(timeout=120)
        a.store.flush()
        b.store.flush()
        rows = _db(url, "SELECT call_id FROM records")
        assert len(rows) == 160 and sorted(r[0] for r in rows) == sorted(ids)
        assert _db(url, "SELECT count(*) FROM calls")[0][0] == 160
        views = [
            httpx.get(s.url + "/v1/usage/stats", params={"group_by": "alias,model"}).json()
            for s in (sa, sb)
        ]
        counts = [httpx.get(s.url + "/agentopt/v1/records/count").json() for s in (sa, sb)]
        # each replica's dashboard reads the shared database too
        pages = [httpx.get(s.url + "/dashboard/api/summary").json() for s in (sa, sb)]
        routed = httpx.get(sa.url + "/dashboard/api/routing").json()["aliases"]
    assert views[0] == views[1]
    assert sum(g["requests"] for g in views[0]["groups"]) == 160
    assert counts == [{"count": 160}, {"count": 160}]
    assert pages[0] == pages[1] and pages[0]["requests"] == 160
    assert [r["alias"] for r in routed] == ["pick"]


def test_feedback_to_one_replica_changes_the_other_replicas_decisions_once(
    sim: SimServer, url: str
) -> None:
    # greedy (ε = 0): each replica routes to the best mean so far, deterministically
    cfg = GatewayConfig(
        aliases={
            "pick": AliasConfig(
                targets=[X, Y], router="epsilon_greedy", options={"epsilon": 0.0, "seed": 0}
            )
        },
        router_sync_seconds=3600,  # this test folds by hand: the thread never runs
    )
    with serving(sim, cfg, store=url) as (a, sa), serving(sim, cfg, store=url) as (b, sb):
        for i in range(2):  # each replica tries each target once (untried first)
            _routed(_call(sb.url, f"b{i}", "pick"))
        first = [_call(sa.url, f"a{i}", "pick") for i in range(2)]
        good = _routed(first[0])
        bad = _routed(first[1])
        assert {good, bad} == {X, Y}
        for r, score in ((first[0], 1.0), (first[1], 0.0)):
            fb = httpx.post(
                sa.url + "/v1/feedback",
                json={"request_id": r.headers["x-agentopt-request-id"], "score": score},
            )
            assert fb.json()["credited"] == ["pick"]
        assert _feedbacks(a) == 2  # the receiver folded at once
        assert _feedbacks(b) == 0  # not folded yet
        assert b.sync_routers() == 2
        assert [_routed(_call(sb.url, f"b2{i}", "pick")) for i in range(3)] == [good] * 3

        # five zeros for `good` through replica A: its mean falls below `bad`'s
        calls = [_call(sa.url, f"a2{i}", "pick") for i in range(5)]
        assert [_routed(r) for r in calls] == [good] * 5
        a.store.flush()  # so that replica B can resolve A's request from the database
        for i, r in enumerate(calls):
            target = sb if i == 4 else sa  # the last one is sent to B: it was A's request
            fb = httpx.post(
                target.url + "/v1/feedback",
                json={"request_id": r.headers["x-agentopt-request-id"], "score": 0.0},
            )
            assert fb.status_code == 200 and fb.json()["credited"] == ["pick"], fb.text
        # B received one of them (and folded everything before it); A has not folded it
        assert _routed(_call(sa.url, "a3", "pick")) == good
        assert a.sync_routers() == 1
        assert b.sync_routers() == 0
        assert [_routed(_call(sb.url, f"b3{i}", "pick")) for i in range(3)] == [bad] * 3
        assert _routed(_call(sa.url, "a4", "pick")) == bad

        # the same feedback again, to the other replica: not credited twice
        again = httpx.post(
            sb.url + "/v1/feedback",
            json={"request_id": first[0].headers["x-agentopt-request-id"], "score": 1.0},
        )
        assert again.json() == {
            "credited": [],
            "already_credited": ["pick"],
            "calls_credited": 0,
            "models": [good],
        }
        assert a.sync_routers() == 0 and b.sync_routers() == 0
        arms_a, arms_b = _arms(sa), _arms(sb)
    assert arms_a == arms_b
    assert arms_a[good] == (6, pytest.approx(1 / 6)) and arms_a[bad] == (1, 0.0)
    assert _db(url, "SELECT count(*) FROM router_feedback")[0][0] == 7


def test_feedback_by_datapoint_reaches_every_replica_within_the_sync_interval(
    sim: SimServer, url: str
) -> None:
    cfg = GatewayConfig(
        aliases={"pick": AliasConfig(targets=[X, Y], router="ucb", options={"seed": 0})},
        router_sync_seconds=0.05,
    )
    with serving(sim, cfg, store=url) as (a, sa), serving(sim, cfg, store=url) as (b, sb):
        rids = []
        for i in range(3):  # datapoint 7's calls go through both replicas
            r = _call((sa, sb)[i % 2].url, f"d{i}", "pick", **{"x-agentopt-data-id": "7"})
            _routed(r)
            rids.append(r.headers["x-agentopt-request-id"])
        a.store.flush()
        b.store.flush()
        fb = httpx.post(sa.url + "/v1/feedback", json={"data_id": "7", "score": 1.0})
        assert fb.json()["credited"] == ["pick"]
        deadline = time.monotonic() + 30
        while _feedbacks(b) < 1:  # B's thread folds it: poll with a deadline
            assert time.monotonic() < deadline, "replica B never folded the feedback"
            time.sleep(0.01)
        # every call of the datapoint, from both replicas, credited once on each
        assert sum(n for n, _ in _arms(sa).values()) == 3
        assert _arms(sa) == _arms(sb)
        assert fb.json()["calls_credited"] == 3
        # the same calls again, by datapoint or by request, to either replica: not credited
        dup = httpx.post(sb.url + "/v1/feedback", json={"data_id": "7", "score": 0.0})
        assert dup.json()["already_credited"] == ["pick"]
        one = httpx.post(sb.url + "/v1/feedback", json={"request_id": rids[1], "score": 0.0})
        assert one.json()["already_credited"] == ["pick"]
        assert b.sync_routers() == 0 and _arms(sa) == _arms(sb)
        health = httpx.get(sb.url + "/internal/health").json()
    assert health["shared_routers"]["applied_seq"] >= 1


def test_the_response_cache_is_shared_and_cleared_for_every_replica(
    sim: SimServer, url: str
) -> None:
    with (
        serving(sim, store=url, cache_dir=url) as (a, sa),
        serving(sim, store=url, cache_dir=url) as (b, sb),
    ):
        first = _call(sa.url, "cache me")
        hit = _call(sb.url, "cache me")  # the other replica answers from the cache
        assert hit.json()["choices"] == first.json()["choices"]
        assert httpx.post(sb.url + "/agentopt/v1/cache/clear").json() == {"cache": True}
        miss = _call(sa.url, "cache me")
        a.store.flush()
        b.store.flush()
        cached = {
            r[0]: r[1]
            for r in _db(url, "SELECT call_id, cached FROM records JOIN calls USING (seq)")
        }
    ids = [r.headers["x-agentopt-request-id"] for r in (first, hit, miss)]
    assert [cached[i] for i in ids] == [0, 1, 0]


def _flush_when_back(d: Daemon, within: float = 60.0) -> None:
    """Flush ``d``'s records, polling (with a deadline) until the database takes them."""
    deadline = time.monotonic() + within
    while True:
        try:
            d.store.flush()
            return
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _Replica:
    """``agentopt serve`` in a child process (to be killed without warning)."""

    def __init__(self, sim: SimServer, url: str, config: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentopt.cli",
                "serve",
                "--port",
                "0",
                "--store",
                url,
                "--config",
                str(config),
                "--openai-base-url",
                sim.openai_base_url,
                "--anthropic-base-url",
                sim.anthropic_base_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **PLANTED, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.url = line.rsplit(" ", 1)[1].strip()


def test_a_replica_killed_mid_load_loses_no_record_of_a_call_it_answered(
    sim: SimServer, url: str, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("commit_before_answer: true\n")
    killed = _Replica(sim, url, config)
    cfg = GatewayConfig(commit_before_answer=True)
    answered: dict[str, str] = {}  # request id → the replica that answered
    lock = threading.Lock()
    halfway = threading.Event()
    with serving(sim, cfg, store=url) as (b, sb):

        def call(i: int) -> str:
            for base in (killed.url, sb.url) if i % 2 else (sb.url,):
                try:  # the load balancer: the next replica when one does not answer
                    r = _call(base, f"k{i}")
                except httpx.TransportError:
                    continue
                assert r.status_code == 200, r.text
                rid = r.headers["x-agentopt-request-id"]
                with lock:
                    answered[rid] = base
                    if len(answered) >= 50:
                        halfway.set()
                return rid
            raise AssertionError("no replica answered")

        with ThreadPoolExecutor(6) as ex:
            futures = [ex.submit(call, i) for i in range(160)]
            assert halfway.wait(timeout=120)
            killed.proc.send_signal(signal.SIGKILL)  # no drain, no flush
            killed.proc.wait(timeout=30)
            for f in futures:
                f.result()
        b.store.flush()
    by_killed = {rid for rid, base in answered.items() if base == killed.url}
    assert by_killed and len(answered) == 160
    rows = _db(url, "SELECT call_id FROM records")
    stored = [r[0] for r in rows]
    assert len(stored) == len(set(stored))  # none twice
    assert set(answered) <= set(stored)  # every answered call recorded, the killed one's too


def test_calls_are_answered_through_a_database_restart_and_every_record_arrives(
    sim: SimServer, server: PgServer, url: str
) -> None:
    cfg = GatewayConfig(
        aliases={"pick": AliasConfig(targets=[X, Y], router="thompson", options={"seed": 3})}
    )
    answered: list[str] = []
    lock = threading.Lock()
    down, resumed = threading.Event(), threading.Event()
    with (
        serving(sim, cfg, store=url) as (a, sa),
        serving(sim, cfg, store=url) as (b, sb),
    ):

        def call(i: int) -> str:
            r = _call((sa, sb)[i % 2].url, f"db{i}", "pick" if i % 2 else "gpt-4o-mini")
            assert r.status_code == 200, r.text
            rid = r.headers["x-agentopt-request-id"]
            with lock:
                answered.append(rid)
                n = len(answered)
            if n == 60:
                down.set()
                assert resumed.wait(timeout=120)
            return rid

        with ThreadPoolExecutor(6) as ex:
            futures = [ex.submit(call, i) for i in range(240)]
            assert down.wait(timeout=120)
            server.stop()  # the database goes away mid-load
            refused = httpx.post(
                sa.url + "/v1/feedback", json={"request_id": "x", "score": 1}, timeout=60
            )
            resumed.set()  # calls keep coming while it is down
            for f in futures[:180]:
                f.result()
            with pytest.raises(StoreError, match="kept in memory"):
                a.store.flush()
            mid = httpx.get(sa.url + "/internal/health").json()
            server.start()
            for f in futures[180:]:
                f.result()
        for d in (a, b):
            _flush_when_back(d)  # written once it is back
            h = d.store.health()  # type: ignore[attr-defined]
            assert (h.ok, h.pending, h.dropped) == (True, 0, 0)
    assert refused.status_code == 503 and "nothing was credited" in refused.text
    assert mid["status"] == "degraded" and mid["store_health"]["pending"] > 0
    stored = [r[0] for r in _db(url, "SELECT call_id FROM records")]
    assert len(stored) == len(set(stored)) == 240
    assert sorted(stored) == sorted(answered)


def test_state_dir_is_not_used_with_a_shared_database(sim: SimServer, url: str) -> None:
    cfg = GatewayConfig(aliases={"pick": AliasConfig(targets=[X, Y], router="thompson")})
    d = Daemon(cfg, store=url, openai_base_url=sim.openai_base_url, environ=dict(PLANTED))
    try:
        assert d.state_dir is None and d.shared is not None
        assert all(a.state_path is None for a in d.aliases.values())
    finally:
        d.close()


def _spent(d: Daemon) -> float:
    return float(d.aliases["pick"].router.limits.total_spend)


def test_a_budget_is_one_limit_for_every_replica_and_each_call_counts_once(
    sim: SimServer, url: str
) -> None:
    """An alias's budget counts the calls of every replica: spend on one replica
    exhausts it on the other after a sync, and each call's spend counts once on
    every replica (its own not folded back)."""
    cfg = GatewayConfig(
        aliases={
            "pick": AliasConfig(
                targets=[X, Y], router="thompson", options={"seed": 1, "budget_usd": 1e-9}
            )
        },
        router_sync_seconds=3600,  # no background fold: the test syncs
    )
    with serving(sim, cfg, store=url) as (a, sa), serving(sim, cfg, store=url) as (b, sb):
        _routed(_call(sa.url, "first", "pick"))  # each replica's first call: under budget
        _routed(_call(sb.url, "second", "pick"))
        assert _spent(a) > 0 and _spent(b) > 0
        a.sync_routers()  # A appends its usage
        b.sync_routers()  # B appends its own and folds A's
        a.sync_routers()  # A folds B's
        a.store.flush()
        b.store.flush()
        total = float(_db(url, "SELECT sum(cost_usd) FROM calls")[0][0])
        assert _spent(a) == pytest.approx(total) and _spent(b) == pytest.approx(total)
        again = [a.sync_routers(), b.sync_routers()]
        assert _spent(a) == pytest.approx(total)  # nothing counted twice
        over = [_call(s.url, "third", "pick") for s in (sa, sb)]
        health = httpx.get(sb.url + "/internal/health").json()["shared_routers"]
    assert again == [0, 0]
    assert [r.status_code for r in over] == [429, 429]
    assert "over its quota or budget" in over[1].json()["error"]["message"]
    assert health["usage_folded"] >= 1 and health["usage_unsent"] == 0


def test_a_quota_counts_the_calls_of_every_replica(sim: SimServer, url: str) -> None:
    cfg = GatewayConfig(
        aliases={
            "pick": AliasConfig(
                targets=[X], router="thompson", options={"seed": 1, "quotas": {X: [2, 3600]}}
            )
        },
        router_sync_seconds=3600,
    )
    with serving(sim, cfg, store=url) as (a, sa), serving(sim, cfg, store=url) as (b, sb):
        assert _routed(_call(sa.url, "one", "pick")) == X
        assert _routed(_call(sb.url, "two", "pick")) == X
        for d in (a, b, a):
            d.sync_routers()
        third = [_call(s.url, "three", "pick") for s in (sa, sb)]
    assert [r.status_code for r in third] == [429, 429]
    assert "over its quota or budget" in third[0].json()["error"]["message"]


def test_a_restarted_replica_keeps_counting_what_it_spent_before(sim: SimServer, url: str) -> None:
    cfg = GatewayConfig(
        aliases={
            "pick": AliasConfig(
                targets=[X, Y], router="thompson", options={"seed": 1, "budget_usd": 1.0}
            )
        },
        router_sync_seconds=3600,
    )
    with serving(sim, cfg, store=url) as (a, sa):
        for i in range(3):
            _routed(_call(sa.url, f"q{i}", "pick"))
        before = _spent(a)
    # stopped without an explicit sync: closing appends what it counted
    with serving(sim, cfg, store=url) as (a2, _):
        after = _spent(a2)
    assert before > 0 and after == pytest.approx(before)


class _Flaky:
    """A store whose database can be made unreachable (connection() raises)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.where = store.where
        self.down = False

    def connection(self) -> Any:
        import psycopg

        if self.down:
            raise psycopg.OperationalError("connection refused (the test took the database down)")
        return self.store.connection()


def test_usage_counted_while_the_database_is_down_is_appended_when_it_returns(url: str) -> None:
    from types import SimpleNamespace

    from agentopt.gateway.replicas import SharedRouters
    from agentopt.routers import RandomRouter
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

    store = PostgresRecordStore(url)
    flaky = _Flaky(store)
    mine = RandomRouter([X, Y], budget_usd=10.0, seed=0)
    theirs = RandomRouter([X, Y], budget_usd=10.0, seed=0)
    one = SharedRouters(flaky, {"pick": SimpleNamespace(router=mine)}, origin="one")  # type: ignore[arg-type,dict-item]
    two = SharedRouters(store, {"pick": SimpleNamespace(router=theirs)}, origin="two")  # type: ignore[dict-item]
    try:
        mine.limits.record_spend(X, 0.5)
        flaky.down = True
        with pytest.raises(Exception, match="connection refused"):
            one.sync()
        mine.limits.record_spend(X, 0.25)  # still counted here while down
        with pytest.raises(Exception, match="connection refused"):
            one.sync()
        assert mine.limits.total_spend == pytest.approx(0.75)
        assert one.status()["usage_unsent"] == 1  # kept, one row per alias and model
        two.sync()
        assert theirs.limits.total_spend == 0.0  # nothing reached the database
        flaky.down = False
        one.sync()
        two.sync()
        two.sync()
        assert theirs.limits.total_spend == pytest.approx(0.75)  # all of it, once
        assert theirs.limits.spend == {X: pytest.approx(0.75)}
        assert one.status()["usage_unsent"] == 0
        assert _db(url, "SELECT count(*), sum(cost_usd) FROM router_usage")[0] == (1, 0.75)
    finally:
        one.close()
        two.close()
        store.close()


def test_a_replica_that_starts_fills_its_quota_windows_from_the_log(
    sim: SimServer, url: str
) -> None:
    """The first fold sums old rows in the database; rows within a quota window
    still fill the window, so a new replica does not route past a quota."""
    cfg = GatewayConfig(
        aliases={
            "pick": AliasConfig(
                targets=[X], router="thompson", options={"seed": 1, "quotas": {X: [2, 3600]}}
            )
        },
        router_sync_seconds=3600,
    )
    with serving(sim, cfg, store=url) as (_, sa):
        for i in range(2):
            assert _routed(_call(sa.url, f"q{i}", "pick")) == X
    with serving(sim, cfg, store=url) as (a2, sa2):
        late = _call(sa2.url, "late", "pick")
        calls = dict(a2.aliases["pick"].router.limits.calls)
    assert late.status_code == 429
    assert calls[X] == 2  # (the refused call counts under the caller's model name)


def _shared(store: Any, router: Any, origin: str) -> Any:
    from types import SimpleNamespace

    from agentopt.gateway.replicas import SharedRouters

    return SharedRouters(store, {"pick": SimpleNamespace(router=router)}, origin=origin)


def test_compacting_the_usage_log_changes_no_replicas_count(url: str) -> None:
    """Rows appended over an hour ago, outside every quota window, are merged into
    one row per alias, model and origin. Replicas that folded them count the same
    after; a replica that starts reads the same sums; a row appended late (old
    usage, kept while the database was down) is not merged before it is folded."""
    from agentopt.routers import RandomRouter
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

    store = PostgresRecordStore(url)
    mine = RandomRouter([X, Y], budget_usd=100.0, seed=0)
    theirs = RandomRouter([X, Y], budget_usd=100.0, seed=0)
    one, two = _shared(store, mine, "one"), _shared(store, theirs, "two")
    three = None
    try:
        for _ in range(5):
            mine.limits.record_spend(X, 0.1)
            one.sync()
            theirs.limits.record_spend(Y, 0.2)
            two.sync()
        one.sync()
        assert mine.limits.total_spend == pytest.approx(1.5)
        assert theirs.limits.total_spend == pytest.approx(1.5)
        assert _db(url, "SELECT count(*) FROM router_usage")[0][0] == 10
        assert one.compact_usage() == 0  # nothing is an hour old yet
        _exec(url, "UPDATE router_usage SET at = at - 7200, appended_at = appended_at - 7200")
        # one's usage counted two hours ago, appended only now (the database was down)
        _exec(
            url,
            "INSERT INTO router_usage (alias, model, calls, cost_usd, at, origin)"
            f" SELECT 'pick', '{X}', 0, 0.05, min(at), '{one.usage_origin}' FROM router_usage",
        )
        assert two.compact_usage() == 8  # 5 + 5 rows → one per origin; the late row stays
        assert _db(url, "SELECT count(*) FROM router_usage")[0][0] == 3
        for r in (one, two, one, two):
            r.sync()
        assert mine.limits.total_spend == pytest.approx(1.5)  # its own rows are never folded
        assert theirs.limits.total_spend == pytest.approx(1.55)  # the late row, once
        three = _shared(store, RandomRouter([X, Y], budget_usd=100.0, seed=0), "three")
        three.sync()
        started = three.aliases["pick"].router.limits
        assert started.total_spend == pytest.approx(1.55)
        assert started.spend == {X: pytest.approx(0.55), Y: pytest.approx(1.0)}
        assert two.status()["usage_compacted"] == 8
    finally:
        for r in (one, two, three):
            if r is not None:
                r.close()
        store.close()


def test_usage_inside_a_quota_window_is_not_compacted(url: str) -> None:
    """Quotas count calls by time: rows whose usage falls within the longest quota
    window keep their own times, however long ago they were appended."""
    from agentopt.routers import RandomRouter
    from agentopt.tracking.storage.pg_store import PostgresRecordStore

    store = PostgresRecordStore(url)
    router = RandomRouter([X, Y], quotas={X: (1000, 4 * 3600)}, seed=0)
    one = _shared(store, router, "one")
    try:
        for _ in range(3):
            router.limits.record_call(X)
            one.sync()
        _exec(url, "UPDATE router_usage SET at = at - 7200, appended_at = appended_at - 7200")
        assert one.compact_usage() == 0  # two hours old, inside the four-hour window
        _exec(url, "UPDATE router_usage SET at = at - 4 * 3600")
        assert one.compact_usage() == 2  # now older than the window and the hour after it
    finally:
        one.close()
        store.close()
