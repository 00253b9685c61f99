"""The registry: names, classes, instances and users' own policies."""

from __future__ import annotations

import pytest

from agentopt.exceptions import ConfigError, RoutingError
from agentopt.routers import (
    FactoredThompsonRouter,
    Feedback,
    RouteContext,
    Router,
    ThompsonRouter,
    available_routers,
    get_router,
    register_router,
)
from agentopt.routers.registry import _REGISTRY

BUILTIN = {"random", "thompson", "ucb", "epsilon_greedy", "cost_aware", "contextual", "factored"}


def test_builtin_names() -> None:
    assert set(available_routers()) >= BUILTIN
    assert isinstance(get_router("Thompson", candidates=["a"]), ThompsonRouter)
    assert isinstance(get_router("factored", candidates=["a"]), FactoredThompsonRouter)
    assert get_router("epsilon-greedy", candidates=["a"]).name == "epsilon_greedy"


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown router .nope.; available: .*thompson"):
        get_router("nope", candidates=["a"])


def test_instances_and_classes_are_accepted() -> None:
    r = ThompsonRouter(["a", "b"], seed=1)
    assert get_router(r) is r
    with pytest.raises(ConfigError, match="configure the instance"):
        get_router(r, seed=2)
    assert isinstance(get_router(ThompsonRouter, candidates=["a"]), ThompsonRouter)
    with pytest.raises(ConfigError):
        get_router(42)  # type: ignore[arg-type]


def test_user_subclass_registers_and_gets_limits_for_free() -> None:
    @register_router("always_last")
    class AlwaysLast(Router):
        def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
            return allowed[-1]

    try:
        router = get_router("always_last", candidates=["a", "b", "c"], exclude=["c"])
        assert isinstance(router, AlwaysLast)
        assert router.route(RouteContext(requested_model="x", data_id="1")) == "b"
        router.update(Feedback(reward=1.0, data_id="1"))
        assert router.stats()["arms"]["b"]["mean_reward"] == 1.0
    finally:
        _REGISTRY.pop("always_last", None)


def test_a_policy_returning_a_disallowed_arm_is_a_routing_error() -> None:
    class Bad(Router):
        def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
            return "not-a-candidate"

    with pytest.raises(RoutingError, match="not one of the allowed arms"):
        Bad(["a"]).route(RouteContext(requested_model=None))


def test_register_rejects_non_routers() -> None:
    with pytest.raises(ConfigError, match="not a Router subclass"):
        register_router("x", int)  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ("gpt-4o", "not the string"),
        ([], "empty"),
        (["a", "a"], "appears twice"),
        ({"planner": []}, "empty"),
        ([{"p": "a"}, {"q": "b"}], "differ"),
        ([""], "expected a model name"),
    ],
)
def test_bad_candidates_are_clear_errors(candidates: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ThompsonRouter(candidates)  # type: ignore[arg-type]
