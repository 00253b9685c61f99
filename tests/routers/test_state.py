"""Saved routers round-trip through JSON and resume identically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from routers_testkit import bernoulli, play, play_combos

from agentopt.exceptions import ConfigError
from agentopt.routers import (
    Feedback,
    PromptFeatures,
    RouteContext,
    Router,
    ThompsonRouter,
    available_routers,
    get_router,
)

MEANS = {"a": 0.3, "b": 0.5, "c": 0.6}


@pytest.mark.parametrize("name", sorted(set(available_routers())))
def test_state_round_trips_and_resumes_identically(name: str, tmp_path: Path) -> None:
    feats = [
        PromptFeatures(token_estimate=40, turns=1),
        PromptFeatures(token_estimate=900, has_tools=True),
    ]
    router = get_router(name, candidates=list(MEANS), seed=7)
    play(router, bernoulli(MEANS), 120, seed=1, features=feats, cost_of=lambda m: 0.01)
    # a datapoint in flight when saved: routed, feedback not yet given
    router.route(RouteContext(requested_model="x", data_id="open", features=feats[1]))

    path = router.save(tmp_path / "router.json")
    state = json.loads(path.read_text())  # plain JSON
    assert state["router"] == name
    restored = Router.load(path)
    assert type(restored) is type(router)
    assert restored.state_dict() == router.state_dict()

    # same future: identical decisions under identical feedback
    for r in (router, restored):
        r.update(Feedback(reward=1.0, data_id="open"))
    a = play(router, bernoulli(MEANS), 150, seed=2, features=feats, cost_of=lambda m: 0.01)
    b = play(restored, bernoulli(MEANS), 150, seed=2, features=feats, cost_of=lambda m: 0.01)
    assert a == b
    assert router.stats()["arms"] == restored.stats()["arms"]


def test_multi_node_state_round_trips(tmp_path: Path) -> None:
    cands = {"planner": ["p0", "p1"], "solver": ["s0", "s1", "s2"]}

    def reward(combo: dict[str, str], rng: np.random.Generator) -> float:
        return float(rng.random() < 0.5)

    router = get_router("factored", candidates=cands, seed=3)
    play_combos(router, ["planner", "solver"], reward, 60)
    restored = Router.load(router.save(tmp_path / "r.json"))
    a = play_combos(router, ["planner", "solver"], reward, 60, seed=9)
    b = play_combos(restored, ["planner", "solver"], reward, 60, seed=9)
    assert a == b


def test_subclass_load_and_overrides(tmp_path: Path) -> None:
    clock_calls: list[float] = []

    def clock() -> float:
        clock_calls.append(0.0)
        return 0.0

    router = ThompsonRouter(["a", "b"], seed=1, quotas={"a": (5, 60.0)})
    path = router.save(tmp_path / "t.json")
    restored = ThompsonRouter.load(path, clock=clock)
    assert restored.limits.quotas["a"].max_calls == 5
    restored.route(RouteContext(requested_model=None))
    assert clock_calls  # the injected clock is used after loading


def test_load_rejects_other_candidates_and_bad_files(tmp_path: Path) -> None:
    router = ThompsonRouter(["a", "b"], seed=1)
    other = ThompsonRouter(["a", "c"], seed=1)
    with pytest.raises(ConfigError, match="candidates differ"):
        other.load_state_dict(router.state_dict())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        Router.load(bad)
    bad.write_text("[]")
    with pytest.raises(ConfigError, match="not a saved router"):
        Router.load(bad)
