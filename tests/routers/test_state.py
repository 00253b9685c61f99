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


def test_concurrent_saves_to_one_path_always_leave_a_loadable_file(tmp_path: Path) -> None:
    import threading

    routers = [ThompsonRouter(["a", "b", "c"], seed=i) for i in range(4)]
    for i, r in enumerate(routers):
        play(r, bernoulli(MEANS), 20 + 10 * i, seed=i)
    path = tmp_path / "shared.json"
    routers[0].save(path)
    errors: list[BaseException] = []
    start = threading.Barrier(len(routers) + 1)

    def saver(r: Router) -> None:
        start.wait()
        for _ in range(150):
            try:
                r.save(path)
            except BaseException as exc:  # every failure is a finding
                errors.append(exc)

    def reader() -> None:
        start.wait()
        for _ in range(150):
            try:
                Router.load(path)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=saver, args=(r,)) for r in routers]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    loaded = Router.load(path)
    assert any(loaded.state_dict() == r.state_dict() for r in routers)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]  # no temporary left


def test_state_with_other_arms_is_a_clear_error_and_leaves_the_router_as_it_was() -> None:
    three = ThompsonRouter(["a", "b", "c"], seed=1)
    play(three, bernoulli(MEANS), 30)
    state = three.state_dict()
    state["config"]["candidates"] = ["a", "b"]  # e.g. a hand-edited candidate list
    two = ThompsonRouter(["a", "b"], seed=1)
    before = two.state_dict()
    with pytest.raises(ConfigError, match=r"arms\.pulls has shape \(3,\), this router has 2 arms"):
        two.load_state_dict(state)
    assert two.state_dict() == before
    two.route(RouteContext(requested_model=None, data_id="after"))  # still usable


def test_truncated_state_is_a_clear_error() -> None:
    router = ThompsonRouter(["a", "b"], seed=1)
    state = router.state_dict()
    del state["arms"]
    with pytest.raises(ConfigError, match=r"router state for ThompsonRouter is malformed"):
        router.load_state_dict(state)
