"""Routers inside the tracker, against the simulated provider (loopback only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from agentopt.routers import CostAwareRouter, RouteContext, Router, ThompsonRouter
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("routers-tracker")

MSG = [{"role": "user", "content": "What is 2 + 2?"}]
OPENAI_KEY = "sk-test-routers"
ANTHROPIC_KEY = "sk-ant-test-routers"
WORLD: dict[str, Any] = {
    "name": "routers",
    "models": [
        {"name": "gpt-4o-mini"},
        {"name": "gpt-4o"},
        {"name": "claude-haiku-4-5", "provider": "anthropic"},
    ],
}


class First(Router):
    """The first allowed arm: makes quotas visible."""

    def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
        return allowed[0]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(WORLD, time_scale=0.0, seed=0) as server:
        yield server


@pytest.fixture(scope="module")
def client(sim: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)


def test_thompson_learns_through_tracker_feedback(client: openai.OpenAI) -> None:
    # the "eval" rewards datapoints answered by gpt-4o; two calls per datapoint
    router = ThompsonRouter(["gpt-4o-mini", "gpt-4o"], seed=0)
    with LLMTracker(cache=False, router=router) as t:
        for d in range(40):
            with t.track(data_id=d):
                for _ in range(2):
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
            used = [r.model for r in t.get_records(data_id=str(d))]
            t.feedback(data_id=d, score=1.0 if all(m == "gpt-4o" for m in used) else 0.0)
    records = t.records
    assert len(records) == 80
    assert all(r.requested_model == "gpt-4o-mini" for r in records)
    assert {r.model for r in records} <= {"gpt-4o-mini", "gpt-4o"}
    s = router.stats()
    assert sum(a["pulls"] for a in s["arms"].values()) == 80  # every call was routed
    assert s["feedbacks"] == 40
    assert sum(a["rewards"] for a in s["arms"].values()) == 80  # each call credited
    late = [r.model for r in records[-20:]]
    assert late.count("gpt-4o") >= 16  # learned (tolerance: 80 % of the last 10 datapoints)
    assert s["activation_rate"] == pytest.approx(
        sum(r.model != r.requested_model for r in records) / 80
    )
    # spend came from the observed records, not twice from the feedback
    priced = sum(r.cost_usd or 0.0 for r in records)
    assert router.limits.total_spend == pytest.approx(priced)


def test_multi_node_router_routes_each_agent_by_its_node(client: openai.OpenAI) -> None:
    cands = {"planner": ["gpt-4o-mini", "gpt-4o"], "solver": ["gpt-4o-mini", "gpt-4o"]}
    router = ThompsonRouter(cands, seed=1)
    with LLMTracker(cache=False) as t:
        for d in range(6):
            with t.track(data_id=d, router=router):
                with t.track(agent_id="planner"):
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
                with t.track(agent_id="solver"):
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
                    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
                with t.track(agent_id="logger"):  # not a node: keeps its model
                    client.chat.completions.create(model="gpt-4o", messages=MSG)
            t.feedback(data_id=d, score=1.0)
    for d in range(6):
        recs = t.get_records(data_id=str(d))
        by_agent: dict[str, set[str | None]] = {}
        for r in recs:
            by_agent.setdefault(r.agent_id or "", set()).add(r.model)
        assert len(by_agent["solver"]) == 1  # one combination per datapoint
        assert by_agent["logger"] == {"gpt-4o"}
    s = router.stats()
    assert sum(a["pulls"] for a in s["arms"].values()) == 6
    # the tracker's combo includes "logger"; only the nodes count: one credit per datapoint
    assert sum(a["rewards"] for a in s["arms"].values()) == 6
    assert s["uncredited"] == 0


def test_quota_through_the_tracker_falls_back_and_records_both_models(
    client: openai.OpenAI,
) -> None:
    router = First(["gpt-4o", "gpt-4o-mini"], quotas={"gpt-4o": (2, 3600)})
    with LLMTracker(cache=False, router=router) as t, t.track(data_id="q"):
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert [(r.requested_model, r.model) for r in t.records] == [
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
    ]
    assert "quota exhausted: gpt-4o 2 calls/3600 s" in router.stats()["decisions"][-1]["reason"]


@pytest.fixture
def cross_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMANTHROPIC_API_KEY", ANTHROPIC_KEY)


def test_cross_provider_candidate_is_routed_credited_and_budgeted(
    client: openai.OpenAI, sim: SimServer, cross_env: None
) -> None:
    # an OpenAI-format call routed to an Anthropic-format model, through litellm
    target = "simanthropic/claude-haiku-4-5"
    router = CostAwareRouter([target], tolerance=None, seed=0)
    with LLMTracker(cache=False, router=router) as t:
        t.register_provider("simanthropic", sim.anthropic_base_url, wire="anthropic")
        with t.track(data_id="x"):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        t.feedback(data_id="x", score=0.5)
    assert reply.choices[0].message.content
    assert all(r.provider == "simanthropic" for r in t.records)
    assert all((r.model or "").startswith("claude-haiku-4-5") for r in t.records)
    s = router.stats()
    assert s["arms"][target]["rewards"] == 1 and s["arms"][target]["mean_reward"] == 0.5
    # the records name the model as it answered; spend is still booked to the candidate
    spent = sum(r.cost_usd or 0.0 for r in t.records)
    assert s["models"][target]["spend_usd"] == pytest.approx(spent)


def test_tracker_feedback_with_score_none_is_a_clear_error() -> None:
    from agentopt.exceptions import ConfigError

    router = ThompsonRouter(["gpt-4o-mini", "gpt-4o"], seed=0)
    with (
        LLMTracker(router=router) as t,
        pytest.raises(ConfigError, match=r"score must be a number"),
    ):
        t.feedback(data_id="q1", score=None)  # type: ignore[arg-type]


def test_prompt_router_reads_the_prompt_through_the_tracker(client: openai.OpenAI) -> None:
    from agentopt.routers import PromptRouter

    seen: list[str] = []

    class Spy(PromptRouter):
        def _featurize(self, text: str, cheap: Any, *, learn: bool) -> Any:
            seen.append(text)
            return super()._featurize(text, cheap, learn=learn)

    router = Spy(["gpt-4o-mini", "gpt-4o"], quality_floor=0.95, seed=0)
    with LLMTracker(router=router, cache=False) as t:
        for i, q in enumerate(["What is 2 + 2?", "Name a prime number above 10."]):
            with t.track(data_id=f"p{i}"):
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": q}]
                )
            t.feedback(data_id=f"p{i}", score=1.0)
    assert seen == ["What is 2 + 2?", "Name a prime number above 10."]
    s = router.stats()
    assert s["feedbacks"] == 2 and sum(a["rewards"] for a in s["arms"].values()) == 2
