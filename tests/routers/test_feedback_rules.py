"""Router feedback is counted once, and feedback that credits nothing says so."""

from __future__ import annotations

import warnings

import pytest

from agentopt.exceptions import ConfigError, RoutingWarning
from agentopt.routers import Feedback, RouteContext, ThompsonRouter


def routed(router: ThompsonRouter, data_id: str) -> str:
    m = router.route(RouteContext(requested_model="caller", data_id=data_id))
    assert m is not None
    return m


def test_feedback_twice_for_one_datapoint_is_credited_once() -> None:
    router = ThompsonRouter(["a", "b"], seed=0)
    m = routed(router, "q1")
    router.update(Feedback(reward=1.0, models=(m,), data_id="q1"))
    with pytest.warns(RoutingWarning, match=r"data_id 'q1' was already credited; ignored"):
        router.update(Feedback(reward=1.0, models=(m,), data_id="q1"))
    s = router.stats()
    assert s["arms"][m]["rewards"] == 1
    assert s["feedbacks"] == 1 and s["ignored_feedbacks"] == 1


def test_a_datapoint_routed_again_after_its_feedback_is_credited_again() -> None:
    router = ThompsonRouter(["a", "b"], seed=0)
    routed(router, "q1")
    router.update(Feedback(reward=1.0, data_id="q1"))
    routed(router, "q1")  # a second round of the same datapoint
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        router.update(Feedback(reward=0.0, data_id="q1"))
    assert router.stats()["feedbacks"] == 2


def test_model_reported_feedback_twice_is_credited_once() -> None:
    # the router did not route it (e.g. after a restart): credit by the models named
    router = ThompsonRouter(["a", "b"], seed=0)
    router.update(Feedback(reward=1.0, models=("a",), data_id="old"))
    with pytest.warns(RoutingWarning, match="already credited"):
        router.update(Feedback(reward=1.0, models=("a",), data_id="old"))
    assert router.stats()["arms"]["a"]["rewards"] == 1


def test_feedback_for_an_unknown_datapoint_warns_and_credits_nothing() -> None:
    router = ThompsonRouter(["a", "b"], seed=0)
    with pytest.warns(RoutingWarning, match=r"data_id 'nobody' matches no call this router"):
        router.update(Feedback(reward=1.0, data_id="nobody"))
    s = router.stats()
    assert all(a["rewards"] == 0 for a in s["arms"].values())
    assert s["ignored_feedbacks"] == 1


def test_reward_none_is_a_clear_error_and_changes_nothing() -> None:
    router = ThompsonRouter(["a", "b"], seed=0)
    routed(router, "q1")
    with pytest.raises(ConfigError, match=r"reward must be a number in \[0, 1\], got None"):
        router.update(Feedback(reward=None, data_id="q1"))  # type: ignore[arg-type]
    # the datapoint's calls are still waiting for a valid reward
    router.update(Feedback(reward=1.0, data_id="q1"))
    assert router.stats()["feedbacks"] == 1
