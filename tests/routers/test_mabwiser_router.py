"""MABWiserRouter makes exactly MABWiser's choices, with our candidates and state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mabwiser.mab import MAB, LearningPolicy, NeighborhoodPolicy

from agentopt.exceptions import ConfigError
from agentopt.routers import Feedback, MABWiserRouter, PromptFeatures, RouteContext, Router

ARMS = ["a", "b", "c"]
P = {"a": 0.3, "b": 0.5, "c": 0.7}
FEATS = [PromptFeatures(token_estimate=40, turns=1), PromptFeatures(token_estimate=900, turns=3)]


def reward(t: int, arm: str) -> float:
    """Deterministic in (step, arm), so both sides see the same rewards."""
    return float(np.random.default_rng([t, ARMS.index(arm)]).random() < P[arm])


def drive(router: Router, steps: int, start: int = 0) -> list[str]:
    out = []
    for t in range(start, start + steps):
        f = FEATS[t % 2]
        m = router.route(RouteContext(requested_model=None, data_id=str(t), features=f))
        assert m is not None
        out.append(m)
        router.update(Feedback(reward=reward(t, m), data_id=str(t)))
    return out


POLICIES: list[tuple[Any, Any]] = [
    (LearningPolicy.ThompsonSampling(), None),
    (LearningPolicy.EpsilonGreedy(epsilon=0.2), None),
    (LearningPolicy.UCB1(alpha=1.25), None),
    (LearningPolicy.Softmax(tau=0.5), None),
    (LearningPolicy.LinUCB(alpha=0.5), None),
    (LearningPolicy.LinTS(alpha=0.5), None),
    (LearningPolicy.EpsilonGreedy(epsilon=0.1), NeighborhoodPolicy.KNearest(k=5)),
    (LearningPolicy.ThompsonSampling(), NeighborhoodPolicy.Radius(radius=2.0)),
]


@pytest.mark.parametrize(
    ("lp", "nbp"), POLICIES, ids=lambda p: type(p).__name__.lstrip("_") if p else "none"
)
def test_reproduces_mabwisers_choices_exactly_with_the_same_seed(lp: Any, nbp: Any) -> None:
    router = MABWiserRouter(ARMS, learning_policy=lp, neighborhood_policy=nbp, seed=11)
    ours = drive(router, 80)
    contextual = nbp is not None or type(lp).__name__.lstrip("_").startswith("Lin")

    def ctx(t: int) -> list[list[float]] | None:
        return [FEATS[t % 2].as_vector()] if contextual else None

    # MABWiser by hand: the decisions before it can predict are ours (uniform);
    # fit on them, then predict and partial_fit
    warm = getattr(nbp, "k", 1)
    mab = MAB(ARMS, lp, nbp, seed=11)
    first = ours[:warm]
    contexts = [c[0] for t in range(warm) if (c := ctx(t))] if contextual else None
    mab.fit(first, [reward(t, d) for t, d in enumerate(first)], contexts)
    theirs = list(first)
    for t in range(warm, 80):
        d = mab.predict(ctx(t))
        theirs.append(d)
        mab.partial_fit([d], [reward(t, d)], ctx(t))
    assert ours == theirs


def test_policies_by_name_for_config_files_and_state_round_trips(tmp_path: Path) -> None:
    router = MABWiserRouter(
        ARMS,
        learning_policy={"name": "LinUCB", "alpha": 0.5},
        neighborhood_policy={"name": "KNearest", "k": 5},
        seed=3,
    )
    drive(router, 40)
    restored = Router.load(router.save(tmp_path / "m.json"))
    assert isinstance(restored, MABWiserRouter)
    assert drive(router, 30, start=40) == drive(restored, 30, start=40)


def test_exclusions_restrict_mabwisers_choice() -> None:
    router = MABWiserRouter(ARMS, learning_policy="UCB1", seed=0, exclude=["c"])
    assert "c" not in drive(router, 40)


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown MABWiser policy 'Nope'"):
        MABWiserRouter(ARMS, learning_policy="Nope")
    with pytest.raises(ConfigError, match="context"):
        MABWiserRouter(ARMS, context="pixels")  # type: ignore[arg-type]


def test_prompt_context_reaches_a_neighbourhood_policy() -> None:
    router = MABWiserRouter(
        ["x", "y"],
        learning_policy="EpsilonGreedy",
        neighborhood_policy={"name": "KNearest", "k": 5},
        context="prompt",
        seed=1,
    )
    for t in range(60):
        kind = t % 2
        text = "solve the integral" if kind else "write a poem about rain"
        m = router.route(RouteContext(requested_model=None, data_id=str(t), prompt=text))
        good = "x" if kind else "y"
        router.update(Feedback(reward=float(m == good), data_id=str(t)))
    later = []
    for t in range(60, 100):
        text = "solve the integral" if t % 2 else "write a poem about rain"
        later.append(router.route(RouteContext(requested_model=None, data_id=str(t), prompt=text)))
        router.update(Feedback(reward=0.5, data_id=str(t)))
    right = [m == ("x" if t % 2 else "y") for t, m in zip(range(60, 100), later, strict=True)]
    assert np.mean(right) >= 0.8
