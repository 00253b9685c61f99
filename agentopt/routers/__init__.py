"""Routers: per-call model choice that learns from feedback, under quotas and budgets.

Example::

    from agentopt.routers import Feedback, RouteContext, get_router

    router = get_router("thompson", candidates=["gpt-4o-mini", "gpt-4o"], seed=0)
    model = router.route(RouteContext(requested_model="gpt-4o", data_id="q1"))
    router.update(Feedback(reward=1.0, data_id="q1"))

Names load on first use, so importing :mod:`agentopt.routers.context` (as the
tracker does) stays cheap: no numpy until a router is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentopt._lazy import lazy_exports
from agentopt.routers.context import Feedback, PromptFeatures, RouteContext

if TYPE_CHECKING:
    from agentopt.routers.bandits import (
        EpsilonGreedyRouter,
        RandomRouter,
        ThompsonRouter,
        UCBRouter,
    )
    from agentopt.routers.base import Router
    from agentopt.routers.contextual import ContextualRouter
    from agentopt.routers.cost_aware import CostAwareRouter
    from agentopt.routers.factored import FactoredThompsonRouter
    from agentopt.routers.features import PromptHasher
    from agentopt.routers.limits import Limits, Quota
    from agentopt.routers.mabwiser_router import MABWiserRouter
    from agentopt.routers.prompt import PromptRouter
    from agentopt.routers.registry import (
        available_routers,
        get_router,
        register_router,
        router_from_config,
    )

__all__ = [
    "ContextualRouter",
    "CostAwareRouter",
    "EpsilonGreedyRouter",
    "FactoredThompsonRouter",
    "Feedback",
    "Limits",
    "MABWiserRouter",
    "PromptFeatures",
    "PromptHasher",
    "PromptRouter",
    "Quota",
    "RandomRouter",
    "RouteContext",
    "Router",
    "ThompsonRouter",
    "UCBRouter",
    "available_routers",
    "get_router",
    "register_router",
    "router_from_config",
]

_LAZY = {
    "Router": "agentopt.routers.base",
    "RandomRouter": "agentopt.routers.bandits",
    "EpsilonGreedyRouter": "agentopt.routers.bandits",
    "UCBRouter": "agentopt.routers.bandits",
    "ThompsonRouter": "agentopt.routers.bandits",
    "CostAwareRouter": "agentopt.routers.cost_aware",
    "ContextualRouter": "agentopt.routers.contextual",
    "FactoredThompsonRouter": "agentopt.routers.factored",
    "PromptHasher": "agentopt.routers.features",
    "PromptRouter": "agentopt.routers.prompt",
    "Limits": "agentopt.routers.limits",
    "MABWiserRouter": "agentopt.routers.mabwiser_router",
    "Quota": "agentopt.routers.limits",
    "available_routers": "agentopt.routers.registry",
    "get_router": "agentopt.routers.registry",
    "register_router": "agentopt.routers.registry",
    "router_from_config": "agentopt.routers.registry",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
