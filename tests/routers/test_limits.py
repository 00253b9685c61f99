"""Quotas and budgets, with an injected clock (no sleeping)."""

from __future__ import annotations

import pytest

from agentopt.exceptions import BudgetExhaustedError, ConfigError
from agentopt.records import CallRecord
from agentopt.routers import Feedback, Quota, RandomRouter, RouteContext, Router


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Prefer(Router):
    """Always the first allowed arm: makes limits visible."""

    def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
        return allowed[0]


def call(router: Router, data_id: str = "d", requested: str | None = "caller") -> str | None:
    return router.route(RouteContext(requested_model=requested, data_id=data_id))


def test_quota_per_window_skips_the_model_and_says_why() -> None:
    clock = FakeClock()
    router = Prefer(["gpt-4o", "mini"], quotas={"gpt-4o": (2, 60)}, clock=clock)
    assert [call(router, str(i)) for i in range(3)] == ["gpt-4o", "gpt-4o", "mini"]
    last = router.stats()["decisions"][-1]
    assert "quota exhausted: gpt-4o 2 calls/60 s" in last["reason"]
    assert router.stats()["models"]["gpt-4o"]["blocked"] == "quota exhausted: gpt-4o 2 calls/60 s"
    clock.now += 59.0
    assert call(router) == "mini"  # the window still holds both calls
    clock.now += 1.5
    assert call(router) == "gpt-4o"  # both calls have left the 60 s window


def test_quota_objects_are_accepted_and_validated() -> None:
    router = Prefer(["a", "b"], quotas=[Quota("a", 1, 10.0)], clock=FakeClock())
    assert [call(router, "1"), call(router, "2")] == ["a", "b"]
    with pytest.raises(ConfigError, match="window_seconds"):
        Quota("a", 1, 0.0)
    with pytest.raises(ConfigError, match="quotas"):
        Prefer(["a"], quotas={"a": 3})  # type: ignore[dict-item]


def test_model_budget_from_observed_records() -> None:
    router = Prefer(["dear", "cheap"], model_budget_usd={"dear": 0.05})
    assert call(router, "1") == "dear"
    router.observe(CallRecord(model="dear", data_id="1", cost_usd=0.06))
    assert call(router, "2") == "cheap"
    assert (
        "budget exhausted: dear spent $0.0600 of $0.0500"
        in router.stats()["decisions"][-1]["reason"]
    )
    assert router.stats()["models"]["dear"]["spend_usd"] == pytest.approx(0.06)


def test_feedback_cost_counts_only_when_no_record_was_observed() -> None:
    router = Prefer(["a"], budget_usd=1.0)
    call(router, "seen")
    router.observe(CallRecord(model="a", data_id="seen", cost_usd=0.2))
    router.update(Feedback(reward=1.0, models=("a",), cost_usd=0.2, data_id="seen"))
    assert router.limits.total_spend == pytest.approx(0.2)  # not 0.4
    call(router, "unseen")
    router.update(Feedback(reward=1.0, models=("a",), cost_usd=0.3, data_id="unseen"))
    assert router.limits.total_spend == pytest.approx(0.5)


def test_overall_budget_keeps_the_callers_model_when_all_are_exhausted() -> None:
    router = Prefer(["a", "b"], budget_usd=0.10)
    assert call(router, "1") == "a"
    router.update(Feedback(reward=1.0, cost_usd=0.11, data_id="1"))
    assert call(router, "2", requested="gpt-4o") is None
    d = router.stats()["decisions"][-1]
    assert d["routed"] == "gpt-4o"
    assert "every candidate exhausted" in d["reason"]
    assert "overall budget exhausted: spent $0.1100 of $0.1000" in d["reason"]
    assert "kept the caller's model" in d["reason"]


def test_exhausted_router_raises_when_configured() -> None:
    clock = FakeClock()
    router = RandomRouter(["a"], quotas={"a": (1, 60)}, on_exhausted="raise", clock=clock, seed=0)
    assert call(router, "1") == "a"
    with pytest.raises(BudgetExhaustedError, match="quota exhausted: a 1 calls/60 s"):
        call(router, "2")


def test_exclusions_at_construction_and_at_runtime() -> None:
    router = Prefer(["a", "b", "c"], exclude=["a"])
    assert call(router, "1") == "b"
    router.exclude_models("b")
    assert call(router, "2") == "c"
    assert "excluded: a" in router.stats()["decisions"][-1]["reason"]
    router.include_models("a", "b")
    assert call(router, "3") == "a"


def test_multi_node_combination_avoids_a_blocked_model() -> None:
    clock = FakeClock()
    router = Prefer(
        {"planner": ["big", "small"], "solver": ["big", "small"]},
        quotas={"big": (1, 60)},
        clock=clock,
    )
    ctx = RouteContext(requested_model="x", data_id="1", agent_id="planner")
    assert router.route(ctx) == "big"
    # the solver call of the same datapoint would use "big" again: over quota, so
    # the router re-chooses among combinations that keep planner=big
    solver = router.route(RouteContext(requested_model="x", data_id="1", agent_id="solver"))
    assert solver == "small"
    assert "combination changed" in router.stats()["decisions"][-1]["reason"]


def test_activation_rate_counts_calls_routed_away_from_the_request() -> None:
    router = Prefer(["a", "b"])
    call(router, "1", requested="a")
    call(router, "2", requested="z")
    call(router, "3", requested="z")
    call(router, "4", requested="a")
    assert router.stats()["activation_rate"] == pytest.approx(0.5)


# ---------------------------------------------------------------- shared limits


def test_shared_limits_journal_each_call_and_spend_once_and_absorb_none() -> None:
    """What gateway replicas publish: after share(), every call and spend is in the
    journal once; drain() empties it; usage absorbed from other replicas counts
    towards the limits but is never journaled (it would echo back)."""
    clock = FakeClock()
    router = Prefer(["gpt-4o", "mini"], budget_usd=1.0, quotas={"gpt-4o": (5, 60)}, clock=clock)
    call(router, "before")  # counted, not journaled: sharing starts at share()
    router.limits.share()
    assert router.limits.shared
    assert call(router, "a") == "gpt-4o"
    router.observe(CallRecord(model="gpt-4o", data_id="a", cost_usd=0.25))
    assert router.limits.drain() == [("gpt-4o", 1, 0.0, 1000.0), ("gpt-4o", 0, 0.25, 1000.0)]
    assert router.limits.drain() == []
    router.absorb_usage([("gpt-4o", 2, 0.5, 999.0), (None, 0, 0.1, 999.0)])
    assert router.limits.drain() == []
    assert router.limits.total_spend == pytest.approx(0.85)
    assert router.limits.spend == {"gpt-4o": pytest.approx(0.75)}
    assert router.limits.calls["gpt-4o"] == 4
    router.absorb_usage([("gpt-4o", 0, 0.2, 999.0)])  # the overall budget is now spent
    assert call(router, "b") is None  # the caller's model is kept
    assert "overall budget exhausted" in router.stats()["decisions"][-1]["reason"]


def test_absorbed_calls_fill_quota_windows_in_time_order() -> None:
    clock = FakeClock()
    router = Prefer(["gpt-4o", "mini"], quotas={"gpt-4o": (3, 60)}, clock=clock)
    router.limits.share()
    assert call(router, "a") == "gpt-4o"  # at 1000
    clock.now = 1010.0
    # another replica's two calls, made at 995 (before this one's): the window
    # holds three calls, the oldest at 995
    router.absorb_usage([("gpt-4o", 2, 0.0, 995.0)])
    assert call(router, "b") == "mini"
    clock.now = 1056.0  # 995 + 60 has passed: two calls left in the window
    assert call(router, "c") == "gpt-4o"
    # calls older than the window count in the totals but not in the window
    router.absorb_usage([("gpt-4o", 10, 0.0, 900.0)])
    assert router.limits.calls["gpt-4o"] == 14
    clock.now = 1061.0  # the call at 1000 leaves the window: 1 of 3 used
    assert call(router, "d") == "gpt-4o"
