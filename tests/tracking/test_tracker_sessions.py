"""Sessions: nesting, asyncio and thread propagation, concurrency, queries and exports."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import t1_helpers
from rich.console import Console
from t1_helpers import MSG, OPENAI_KEY

import agentopt.tracking as tracking
from agentopt.exceptions import TrackingError
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker, carry_session, current_session

pytestmark = pytest.mark.xdist_group("t1-sessions")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch


@pytest.fixture(scope="module")
def oc(sim: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)


def ask(client: openai.OpenAI, model: str = "gpt-4o-mini") -> None:
    client.chat.completions.create(model=model, messages=MSG)


def test_nested_sessions_inherit_unset_ids(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t:
        with t.track(data_id=1, combo_id="c1") as outer:
            ask(oc)
            with t.track(agent_id="planner") as inner:
                assert (inner.data_id, inner.combo_id, inner.agent_id) == ("1", "c1", "planner")
                assert inner.session_id != outer.session_id and inner.parent is outer
                ask(oc)
            assert current_session() is outer
            ask(oc)
        assert current_session() is None
    assert [(r.data_id, r.agent_id) for r in t.records] == [
        ("1", None),
        ("1", "planner"),
        ("1", None),
    ]
    assert t.get_records(agent_id="planner")[0].session_id == inner.session_id


def test_tracker_ids_open_a_session_on_enter(oc: openai.OpenAI) -> None:
    with LLMTracker(data_id="d", combo_id="k", cache=False) as t:
        ask(oc)
    assert [(r.data_id, r.combo_id) for r in t.records] == [("d", "k")]
    assert current_session() is None


async def test_asyncio_tasks_inherit_the_session(sim: SimServer) -> None:
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY)

    async def one(i: int) -> None:
        with t.track(agent_id=f"a{i}"):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    with LLMTracker(cache=False) as t, t.track(data_id="async"):
        await asyncio.gather(*(asyncio.create_task(one(i)) for i in range(4)))
    recs = t.get_records(data_id="async")
    assert sorted(r.agent_id or "" for r in recs) == ["a0", "a1", "a2", "a3"]
    await client.close()


def test_carry_session_into_a_thread_and_plain_threads_have_none(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="th"):
        a = threading.Thread(target=carry_session(ask), args=(oc,))
        b = threading.Thread(target=t.wrap(ask), args=(oc,))
        plain = threading.Thread(target=ask, args=(oc,))
        for th in (a, b, plain):
            th.start()
            th.join()
    assert len(t.get_records(data_id="th")) == 2
    assert sum(r.data_id is None for r in t.records) == 1  # documented: no session in a bare thread


def test_fifty_threads_each_with_its_own_datapoint(oc: openai.OpenAI) -> None:
    def work(i: int) -> None:
        with t.track(data_id=i):
            ask(oc)
            ask(oc)

    with LLMTracker(cache=False) as t, ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(work, range(50)))
    assert len(t.records) == 100  # no loss, no double counting
    assert len({r.call_id for r in t.records}) == 100
    assert all(len(t.get_records(data_id=i)) == 2 for i in range(50))


def test_usage_cost_summary_dataframe_and_jsonl(oc: openai.OpenAI, tmp_path: Path) -> None:
    with LLMTracker(cache=False) as t:
        for d in (1, 2):
            with t.track(data_id=d):
                ask(oc)
                ask(oc, "gpt-4o")
    usage = t.get_usage()
    assert set(usage) == {r.model for r in t.records}
    assert sum(i for i, _ in usage.values()) == sum(r.prompt_tokens for r in t.records)
    cost = t.get_cost(data_id=1)
    assert cost is not None and cost == pytest.approx(
        sum(r.cost_usd or 0 for r in t.get_records(1))
    )
    console = Console(record=True, width=140)
    t.print_summary(by="data_id", console=console)
    text = console.export_text()
    assert "data_id=1" in text and "data_id=2" in text and "gpt-4o" in text
    df = t.to_dataframe(data_id=2)
    assert list(df["data_id"]) == ["2", "2"] and "request_body" not in df.columns
    path = tmp_path / "calls.jsonl"
    assert t.export_jsonl(path) == 4
    raw = path.read_text()
    assert OPENAI_KEY not in raw and "authorization" not in raw.lower()
    assert [json.loads(line)["data_id"] for line in raw.splitlines()] == ["1", "1", "2", "2"]
    t.clear()
    assert t.records == []


def test_unpriced_model_makes_cost_none_never_zero() -> None:
    from agentopt.records import CallRecord
    from agentopt.tracking.analytics.summary import total_cost

    assert total_cost([CallRecord(cost_usd=0.1), CallRecord(cost_usd=None)]) is None
    assert total_cost([CallRecord(cost_usd=0.1), CallRecord(cost_usd=0.2)]) == pytest.approx(0.3)


def test_redact_keeps_no_message_content(oc: openai.OpenAI) -> None:
    with LLMTracker(cache=False, redact=True) as t, t.track(data_id=1):
        ask(oc)
    [rec] = t.records
    dumped = rec.model_dump_json()
    assert "2 + 2" not in dumped
    assert rec.response_body["choices"][0]["message"]["content"] == "<redacted>"
    assert rec.prompt_tokens > 0 and rec.model == "gpt-4o-mini"


def test_stop_ends_sessions_and_close_is_final(oc: openai.OpenAI) -> None:
    t = LLMTracker(cache=False)
    with t.track(data_id="s") as s:  # track() starts the tracker
        assert t.running and t.sessions == [s]
        ask(oc)
        t.stop()
        assert not s.active and not t.running
        ask(oc)  # not captured any more
    assert len(t.records) == 1
    t.start()
    t.close()
    with pytest.raises(TrackingError, match="closed"):
        t.start()


def test_gateway_url_env_selects_the_remote_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPT_GATEWAY_URL", "http://127.0.0.1:9")
    with pytest.raises(TrackingError, match=r"AGENTOPT_GATEWAY_URL=http://127\.0\.0\.1:9"):
        LLMTracker()  # it tries the daemon there (tests/tracking/test_remote.py runs one)


def test_no_session_proxy_outside_a_session() -> None:
    assert tracking.get_current_session_proxy() is None


def test_session_proxy_inside_a_session() -> None:
    with LLMTracker(cache=False) as t, t.track(data_id="p") as s:
        proxy = tracking.get_current_session_proxy()
        assert proxy is not None and proxy.port > 0 and proxy.token in proxy.url
        env = proxy.env_dict()
        assert env["OPENAI_BASE_URL"].startswith(proxy.url)
        assert t.get_session_env()["OPENAI_BASE_URL"].startswith(proxy.url)
    assert tracking.get_current_session_proxy() is None
    with pytest.raises(TrackingError, match="not running"):
        t.get_session_env(s)
