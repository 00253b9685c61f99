"""Routing through the tracker: same provider, cross provider (litellm), feedback."""

from __future__ import annotations

import anthropic
import openai
import pytest
import t1_helpers
from t1_helpers import ANTHROPIC_KEY, MSG, OPENAI_KEY, FakeRouter

from agentopt.exceptions import BudgetExhaustedError, ConfigError
from agentopt.routers.context import RouteContext
from agentopt.sim import SimServer
from agentopt.tracking import LLMTracker

pytestmark = pytest.mark.xdist_group("t1-routing")

# Shared fixtures (module-scoped simulator; no patch left behind).
sim = t1_helpers.sim
no_global_patch = t1_helpers.no_global_patch


@pytest.fixture(scope="module")
def oc(sim: SimServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.openai_base_url, api_key=OPENAI_KEY, max_retries=0)


def test_router_swaps_the_model_and_records_keep_both(oc: openai.OpenAI) -> None:
    router = FakeRouter("gpt-4o")
    with LLMTracker(cache=False, router=router) as t, t.track(data_id="q", agent_id="solver"):
        r1 = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert r1.model == "gpt-4o"  # the provider answered with the routed model
    assert [(r.requested_model, r.model) for r in t.records] == [("gpt-4o-mini", "gpt-4o")] * 2
    first, second = router.contexts
    assert (first.call_index, second.call_index) == (0, 1)
    assert first.data_id == "q" and first.agent_id == "solver" and first.provider == "openai"
    assert first.request_body["messages"] == MSG and first.features.turns == 1
    assert [h.call_id for h in second.history] == [t.records[0].call_id]
    assert [r.call_id for r in router.observed] == [r.call_id for r in t.records]


def test_feedback_reaches_the_router_that_routed_the_datapoint(oc: openai.OpenAI) -> None:
    router = FakeRouter(None)  # keeps the caller's model
    other = FakeRouter(None)
    with LLMTracker(cache=False, router=other) as t, t.track(data_id=7, router=router):
        with t.track(agent_id="planner"):
            oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        with t.track(agent_id="solver"):
            oc.chat.completions.create(model="gpt-4o", messages=MSG)
    fb = t.feedback(data_id=7, score=0.75)
    assert router.feedback == [fb] and other.feedback == []
    assert fb.reward == 0.75 and fb.data_id == "7"
    assert fb.models == ("gpt-4o-mini", "gpt-4o")
    assert fb.combo == {"planner": "gpt-4o-mini", "solver": "gpt-4o"}
    assert fb.cost_usd == pytest.approx(sum(r.cost_usd or 0 for r in t.records))
    assert fb.latency_seconds == pytest.approx(sum(r.latency_seconds for r in t.records))


def test_budget_errors_from_the_router_reach_the_caller(oc: openai.OpenAI) -> None:
    class Broke(FakeRouter):
        def route(self, ctx: RouteContext) -> str | None:
            raise BudgetExhaustedError("no budget left")

    with (
        LLMTracker(cache=False) as t,
        t.track(data_id=1, router=Broke(None)),
        pytest.raises(openai.APIConnectionError) as info,
    ):
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    # Raised inside the transport, the SDK wraps it; the cause is the router's error.
    assert isinstance(info.value.__cause__, BudgetExhaustedError)
    assert t.records == []  # nothing was sent


def test_a_router_without_route_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="route"):
        LLMTracker(router=object())


@pytest.fixture(scope="module")
def cross(sim: SimServer, monkeypatch_module: pytest.MonkeyPatch) -> str:
    monkeypatch_module.setenv("SIMANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch_module.setenv("SIMOPENAI_API_KEY", OPENAI_KEY)
    return sim.anthropic_base_url


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    yield mp  # type: ignore[misc]
    mp.undo()


def test_cross_provider_routing_translates_through_litellm(
    oc: openai.OpenAI, sim: SimServer, cross: str
) -> None:
    router = FakeRouter("simanthropic/claude-haiku-4-5")
    with LLMTracker(cache=False, router=router) as t:
        t.register_provider("simanthropic", sim.anthropic_base_url, wire="anthropic")
        with t.track(data_id="x"):
            r = oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
            chunks = list(
                oc.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
            )
    assert r.model.startswith("claude-haiku-4-5") and r.choices[0].message.content
    assert (
        r.system_fingerprint != "fp_agentopt_sim"
    )  # answered by litellm, not the sim's openai wire
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain, streamed = t.records
    assert plain.requested_model == "gpt-4o-mini" and plain.provider == "simanthropic"
    assert plain.request_url == sim.anthropic_base_url + "/v1/messages"
    assert plain.model is not None and plain.model.startswith("claude-haiku-4-5")
    assert plain.completion_tokens > 0 and plain.error is None
    assert streamed.stream and streamed.error is None and streamed.completion_tokens > 0
    assert len(t.records) == 2  # litellm's own upstream call is not recorded again


def test_cross_provider_routing_from_anthropic_to_openai(sim: SimServer, cross: str) -> None:
    ac = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0)
    router = FakeRouter("simopenai/gpt-4o")
    with LLMTracker(cache=False, router=router) as t:
        t.register_provider("simopenai", sim.openai_base_url, wire="openai")
        with t.track(data_id="y"):
            m = ac.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MSG)
    assert m.content[0].type == "text" and m.content[0].text  # type: ignore[union-attr]
    [rec] = t.records
    assert (rec.requested_model, rec.model, rec.provider) == (
        "claude-haiku-4-5",
        "gpt-4o",
        "simopenai",
    )
    assert rec.request_url == sim.openai_base_url + "/chat/completions"
    assert rec.completion_tokens == m.usage.output_tokens


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }
]


def test_a_translated_tool_call_reaches_the_caller(
    oc: openai.OpenAI, sim: SimServer, cross: str
) -> None:
    """Any litellm call with tools= needs mcp: the install declares it (no 502)."""
    router = FakeRouter("simanthropic/claude-haiku-4-5")
    with LLMTracker(cache=False, router=router) as t:
        t.register_provider("simanthropic", sim.anthropic_base_url, wire="anthropic")
        r = oc.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, tools=TOOLS, tool_choice="required"
        )
    [call] = r.choices[0].message.tool_calls or []
    assert call.function.name == "add"
    [rec] = t.records
    assert rec.ok and rec.provider == "simanthropic" and rec.completion_tokens > 0


class _Clock:
    """A stand-in for the ``time`` module of the tee: time moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


def test_first_translated_call_latency_excludes_litellm_set_up(
    oc: openai.OpenAI, sim: SimServer, cross: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentopt.tracking.capture import tee
    from agentopt.tracking.wire import translate

    clock = _Clock()
    monkeypatch.setattr(tee, "time", clock)
    real = translate._litellm
    calls: list[int] = []

    def slow_first_import() -> object:
        if not calls:
            clock.now += 100.0  # importing litellm: seconds, once per process
        calls.append(1)
        return real()

    monkeypatch.setattr(translate, "_litellm", slow_first_import)
    router = FakeRouter("simanthropic/claude-haiku-4-5")
    with LLMTracker(cache=False, router=router) as t:
        t.register_provider("simanthropic", sim.anthropic_base_url, wire="anthropic")
        oc.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    [rec] = t.records
    assert rec.ok and rec.latency_seconds < 100.0  # the set-up is not the provider's time
