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
from agentopt.routers.credit import Pending

if TYPE_CHECKING:
    from agentopt.routers.base import Router

__all__ = ["restore_router_state", "router_state"]


def router_state(router: Router, fmt: str) -> dict[str, Any]:
    return {
        "format": fmt,
        "router": router.name,
        "config": router._config_kwargs(),
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
            "ignored": router._ignored,
        },
        "excluded": sorted(router._excluded),
        "limits": router.limits.state_dict(),
        "pending": {
            k: {
                "arms": p.arms,
                "arm": p.arm,
                "used": p.used,
                "features": router._encode_features(p.features),
            }
            for k, p in router._pending.items()
        },
        "observed": list(router._observed),
        "rewarded": dict(router._rewarded),
        "decisions": list(router._decisions),
        "policy": router._policy_state(),
    }


def restore_router_state(router: Router, state: Mapping[str, Any], fmt: str) -> None:
    """Restore ``state`` into ``router``. Every part is checked before any is
    applied, so a state that does not fit (other candidates, a hand-edited or
    truncated file) raises :class:`ConfigError` and leaves the router as it was."""
    if not isinstance(state, Mapping) or state.get("format") != fmt:
        got = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise ConfigError(f"not a router state (format {got!r})")
    try:
        _restore(router, state)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"router state for {type(router).__name__} is malformed "
            f"({type(exc).__name__}: {exc}); it was not loaded"
        ) from exc


def _arr(a: Mapping[str, Any], name: str, k: int, dtype: Any) -> np.ndarray:
    out = np.asarray(a[name], dtype=dtype)
    if out.shape != (k,):
        raise ConfigError(
            f"router state: arms.{name} has shape {out.shape}, this router has {k} arms "
            "(the state was saved with other candidates)"
        )
    return out


def _restore(router: Router, state: Mapping[str, Any]) -> None:
    saved = Arms.from_candidates(state["config"]["candidates"]).labels
    if saved != router.arms.labels:
        raise ConfigError(
            "router state: the saved candidates differ from this router's "
            f"(saved {saved}, this router {router.arms.labels})"
        )
    k = len(router.arms)
    a = state["arms"]
    arrays = {
        "pulls": _arr(a, "pulls", k, np.int64),
        "n": _arr(a, "n", k, float),
        "sum": _arr(a, "sum", k, float),
        "sumsq": _arr(a, "sumsq", k, float),
        "cost_n": _arr(a, "cost_n", k, float),
        "cost_sum": _arr(a, "cost_sum", k, float),
    }
    pending: OrderedDict[str, Pending] = OrderedDict()
    for key, p in state.get("pending", {}).items():
        arms = [int(i) for i in p["arms"]]
        arm = None if p["arm"] is None else int(p["arm"])
        if any(not 0 <= i < k for i in [*arms, *([] if arm is None else [arm])]):
            raise ConfigError(
                f"router state: pending datapoint {key!r} names arm indices outside 0..{k - 1}"
            )
        pending[key] = Pending(
            arms=arms,
            arm=arm,
            used=dict(p["used"]),
            features=router._decode_features(p.get("features")),
        )
    c = state["counters"]
    rng_state = state["rng"]
    probe = np.random.default_rng()
    probe.bit_generator.state = rng_state  # validates before anything is applied
    router.rng.bit_generator.state = rng_state
    router._pulls = arrays["pulls"]
    router._n = arrays["n"]
    router._sum = arrays["sum"]
    router._sumsq = arrays["sumsq"]
    router._cost_n = arrays["cost_n"]
    router._cost_sum = arrays["cost_sum"]
    router._calls, router._activated, router._kept = c["calls"], c["activated"], c["kept"]
    router._feedbacks, router._uncredited = c["feedbacks"], c["uncredited"]
    router._ignored = int(c.get("ignored", 0))
    router._excluded = set(state.get("excluded", ()))
    router.limits.load_state_dict(state.get("limits", {}))
    router._pending = pending
    router._observed = OrderedDict((k_, None) for k_ in state.get("observed", ()))
    router._rewarded = OrderedDict((str(k_), str(v)) for k_, v in state.get("rewarded", {}).items())
    router._decisions = deque(state.get("decisions", ()), maxlen=router.history)
    router._load_policy_state(state.get("policy", {}))
