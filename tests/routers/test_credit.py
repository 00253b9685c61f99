"""Credit assignment: a datapoint's reward credits every call made for it."""

from __future__ import annotations

import pytest

from agentopt.exceptions import RoutingWarning
from agentopt.routers import Feedback, RouteContext, Router


class Cycle(Router):
    """Routes the arms in turn (deterministic), for credit tests."""

    def __init__(self, candidates: list[str] | dict[str, list[str]], **kw: object) -> None:
        super().__init__(candidates, **kw)  # type: ignore[arg-type]
        self.turn = 0

    def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
        self.turn += 1
        return allowed[(self.turn - 1) % len(allowed)]


def ctx(data_id: str, agent_id: str | None = None, requested: str = "caller") -> RouteContext:
    return RouteContext(requested_model=requested, data_id=data_id, agent_id=agent_id)


def test_every_call_of_a_datapoint_is_credited_and_only_that_datapoint() -> None:
    router = Cycle(["a", "b", "c"])
    # interleaved datapoints: A gets a, c; B gets b
    assert router.route(ctx("A")) == "a"
    assert router.route(ctx("B")) == "b"
    assert router.route(ctx("A")) == "c"
    router.update(Feedback(reward=1.0, data_id="A"))  # no models given: the router's own record
    arms = router.stats()["arms"]
    assert (arms["a"]["rewards"], arms["c"]["rewards"], arms["b"]["rewards"]) == (1, 1, 0)
    router.update(Feedback(reward=0.0, data_id="B"))
    arms = router.stats()["arms"]
    assert arms["b"]["rewards"] == 1 and arms["b"]["mean_reward"] == 0.0
    assert arms["a"]["mean_reward"] == 1.0


def test_the_routers_own_record_credits_and_tracker_models_split_the_cost() -> None:
    router = Cycle(["a", "b"])
    router.route(ctx("A"))
    router.route(ctx("A"))
    # the tracker saw three calls (one it did not route, to another model), and
    # records name the model that answered, which may carry a version suffix
    router.update(
        Feedback(reward=0.5, models=("a-2024-07-18", "b", "other"), cost_usd=0.3, data_id="A")
    )
    s = router.stats()
    assert s["arms"]["a"]["rewards"] == 1 and s["arms"]["b"]["rewards"] == 1
    assert s["arms"]["a"]["spend_usd"] == pytest.approx(0.1)  # cost split over the 3 calls
    assert s["spend_usd"] == pytest.approx(0.3)
    assert s["models"]["a"]["spend_usd"] == pytest.approx(0.1)


def test_tracker_models_are_the_fallback_when_the_router_has_no_record() -> None:
    # e.g. a router restarted between the calls and the feedback
    router = Cycle(["openai/gpt-4o", "gpt-4o-mini"])
    router.update(
        Feedback(reward=1.0, models=("gpt-4o", "gpt-4o-mini-2024-07-18", "other"), data_id="X")
    )
    s = router.stats()
    assert s["arms"]["openai/gpt-4o"]["rewards"] == 1
    assert s["arms"]["gpt-4o-mini"]["rewards"] == 1
    assert s["uncredited"] == 1


def test_multi_node_routes_each_call_by_its_node_and_credits_the_combination() -> None:
    cands = {"planner": ["p0", "p1"], "solver": ["s0", "s1"]}
    router = Cycle(cands)
    planner = router.route(ctx("D", "planner"))
    solver = router.route(ctx("D", "solver"))
    again = router.route(ctx("D", "planner"))  # a second planner call: same combination
    assert (planner, solver, again) == ("p0", "s0", "p0")
    assert router.route(ctx("D", "critic")) is None  # not a node: caller's model kept
    assert "is not a node" in router.stats()["decisions"][-1]["reason"]
    other = router.route(ctx("E", "planner"))  # a new datapoint chooses anew
    assert other == "p0" and router.turn == 2
    router.update(Feedback(reward=1.0, models=("p0", "s0", "p0"), data_id="D"))
    arms = router.stats()["arms"]
    assert arms["planner=p0 + solver=s0"]["rewards"] == 1
    assert arms["planner=p0 + solver=s0"]["pulls"] == 1
    assert sum(a["rewards"] for a in arms.values()) == 1


def test_multi_node_feedback_combo_fills_nodes_the_router_did_not_route() -> None:
    router = Cycle({"planner": ["p0", "p1"], "solver": ["s0", "s1"]})
    assert router.route(ctx("D", "planner")) == "p0"
    # the tracker reports every agent_id's model; the planner call was routed by
    # this router (its record wins), the solver ran with the caller's model s1
    router.update(
        Feedback(reward=1.0, combo={"planner": "p0-v2", "solver": "s1", "extra": "z"}, data_id="D")
    )
    arms = router.stats()["arms"]
    assert arms["planner=p0 + solver=s1"]["rewards"] == 1
    # no solver call and no report: the chosen combination is credited
    assert router.route(ctx("E", "planner")) == "p0"  # 2nd choice: planner=p0 + solver=s1
    router.update(Feedback(reward=1.0, data_id="E"))
    assert router.stats()["arms"]["planner=p0 + solver=s1"]["rewards"] == 2
    # feedback for a datapoint the router never saw, with a complete combo
    router.update(Feedback(reward=0.0, combo={"planner": "p1", "solver": "s0"}, data_id="new"))
    assert router.stats()["arms"]["planner=p1 + solver=s0"]["rewards"] == 1
    # and with an incomplete one: nothing to credit, and a warning says so
    with pytest.warns(RoutingWarning, match="nothing credited"):
        router.update(Feedback(reward=0.0, combo={"planner": "p1"}, data_id="other"))
    assert router.stats()["uncredited"] == 1


def test_reward_outside_unit_interval_is_a_clear_error() -> None:
    from agentopt.exceptions import ConfigError

    router = Cycle(["a"])
    with pytest.raises(ConfigError, match=r"reward must be a number in \[0, 1\], got 1.5"):
        router.update(Feedback(reward=1.5))


def test_concurrent_routing_and_feedback_lose_nothing() -> None:
    import threading

    from agentopt.routers import ThompsonRouter

    router = ThompsonRouter(["a", "b", "c"], seed=0)

    def worker(w: int) -> None:
        for i in range(200):
            did = f"{w}-{i}"
            router.route(ctx(did))
            router.route(ctx(did))
            router.update(Feedback(reward=1.0, data_id=did))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = router.stats()
    assert s["calls"] == 1600 and s["feedbacks"] == 800
    assert sum(a["pulls"] for a in s["arms"].values()) == 1600
    assert sum(a["rewards"] for a in s["arms"].values()) == 1600


def test_credit_applies_resolved_feedback_identically_whatever_this_router_routed() -> None:
    routed, fresh = Cycle(["a", "b"], budget_usd=1.0), Cycle(["a", "b"], budget_usd=1.0)
    assert routed.route(ctx("A")) == "a"  # this router routed datapoint A to a
    fb = Feedback(reward=1.0, models=("b",), cost_usd=0.25, data_id="A")  # resolved elsewhere
    for r in (routed, fresh):
        r.credit(fb)
    for r in (routed, fresh):
        arms = r.stats()["arms"]
        assert (arms["a"]["rewards"], arms["b"]["rewards"]) == (0, 1)
        assert arms["b"]["mean_cost_usd"] == 0.25
        assert r.stats()["spend_usd"] == 0.0  # spend comes from records, not from feedback
    # the datapoint's routed calls were dropped with it: they are not credited again
    with pytest.warns(RoutingWarning, match="matches no call"):
        routed.update(Feedback(reward=0.0, data_id="A"))
    assert routed.stats()["arms"]["a"]["rewards"] == 0
