"""Router state as JSON-safe dicts: what :meth:`Router.state_dict` saves and
:meth:`Router.load_state_dict` restores (RNG state included, so a resumed
router makes the same decisions the original would have)."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from agentopt.exceptions import ConfigError
from agentopt.routers.arms import Arms
from agentopt.routers.context import PromptFeatures
from agentopt.routers.credit import Pending

if TYPE_CHECKING:
    from agentopt.routers.base import Router

__all__ = ["restore_router_state", "router_state"]


def router_state(router: Router, fmt: str) -> dict[str, Any]:
    def feat(f: PromptFeatures | None) -> list[Any] | None:
        if f is None:
            return None
        return [f.token_estimate, f.has_tools, f.has_images, f.turns]

    return {
        "format": fmt,
        "router": router.name,
        "config": router.config(),
        "rng": router.rng.bit_generator.state,
        "arms": {
            "pulls": router._pulls.tolist(),
            "n": router._n.tolist(),
            "sum": router._sum.tolist(),
            "sumsq": router._sumsq.tolist(),
            "cost_n": router._cost_n.tolist(),
            "cost_sum": router._cost_sum.tolist(),
        },
        "counters": {
            "calls": router._calls,
            "activated": router._activated,
            "kept": router._kept,
            "feedbacks": router._feedbacks,
            "uncredited": router._uncredited,
        },
        "excluded": sorted(router._excluded),
        "limits": router.limits.state_dict(),
        "pending": {
            k: {"arms": p.arms, "arm": p.arm, "used": p.used, "features": feat(p.features)}
            for k, p in router._pending.items()
        },
        "observed": list(router._observed),
        "decisions": list(router._decisions),
        "policy": router._policy_state(),
    }


def restore_router_state(router: Router, state: Mapping[str, Any], fmt: str) -> None:
    if state.get("format") != fmt:
        raise ConfigError(f"not a router state (format {state.get('format')!r})")
    saved = Arms.from_candidates(state["config"]["candidates"]).labels
    if saved != router.arms.labels:
        raise ConfigError("router state: the saved candidates differ from this router's")
    router.rng.bit_generator.state = state["rng"]
    a = state["arms"]
    router._pulls = np.asarray(a["pulls"], dtype=np.int64)
    router._n = np.asarray(a["n"], dtype=float)
    router._sum = np.asarray(a["sum"], dtype=float)
    router._sumsq = np.asarray(a["sumsq"], dtype=float)
    router._cost_n = np.asarray(a["cost_n"], dtype=float)
    router._cost_sum = np.asarray(a["cost_sum"], dtype=float)
    c = state["counters"]
    router._calls, router._activated, router._kept = c["calls"], c["activated"], c["kept"]
    router._feedbacks, router._uncredited = c["feedbacks"], c["uncredited"]
    router._excluded = set(state.get("excluded", ()))
    router.limits.load_state_dict(state.get("limits", {}))
    router._pending = OrderedDict()
    for k, p in state.get("pending", {}).items():
        f = p.get("features")
        router._pending[k] = Pending(
            arms=list(p["arms"]),
            arm=p["arm"],
            used=dict(p["used"]),
            features=None if f is None else PromptFeatures(*f),
        )
    router._observed = OrderedDict((k, None) for k in state.get("observed", ()))
    router._decisions = deque(state.get("decisions", ()), maxlen=router.history)
    router._load_policy_state(state.get("policy", {}))
