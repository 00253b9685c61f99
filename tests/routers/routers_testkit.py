"""Synthetic bandits for router tests: drive a router exactly as the tracker does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agentopt.routers import Feedback, PromptFeatures, RouteContext, Router


def play(
    router: Router,
    reward_of: Callable[[str, np.random.Generator, PromptFeatures], float],
    steps: int,
    *,
    seed: int = 0,
    features: Sequence[PromptFeatures] | None = None,
    cost_of: Callable[[str], float] | None = None,
) -> list[str]:
    """Route one call per datapoint (flat candidates) and feed its reward back."""
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for t in range(steps):
        f = features[t % len(features)] if features else PromptFeatures()
        m = router.route(RouteContext(requested_model="caller", data_id=f"d{t}", features=f))
        assert m is not None
        chosen.append(m)
        cost = cost_of(m) if cost_of else None
        router.update(
            Feedback(reward=reward_of(m, rng, f), models=(m,), cost_usd=cost, data_id=f"d{t}")
        )
    return chosen


def play_combos(
    router: Router,
    nodes: Sequence[str],
    reward_of: Callable[[dict[str, str], np.random.Generator], float],
    steps: int,
    *,
    seed: int = 0,
) -> list[dict[str, str]]:
    """One call per node per datapoint, then the datapoint's feedback."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, str]] = []
    for t in range(steps):
        combo: dict[str, str] = {}
        for k, node in enumerate(nodes):
            ctx = RouteContext(
                requested_model="caller", data_id=f"d{t}", agent_id=node, call_index=k
            )
            m = router.route(ctx)
            assert m is not None
            combo[node] = m
        out.append(combo)
        router.update(Feedback(reward=reward_of(combo, rng), combo=combo, data_id=f"d{t}"))
    return out


def bernoulli(
    means: dict[str, float],
) -> Callable[[str, np.random.Generator, PromptFeatures], float]:
    def reward(m: str, rng: np.random.Generator, f: PromptFeatures) -> float:
        return float(rng.random() < means[m])

    return reward
