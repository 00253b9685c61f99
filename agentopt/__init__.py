"""agentopt: track, route and select the LLMs your agents call.

Importing ``agentopt`` is cheap: public names load their modules on first use,
and litellm is imported only by the code paths that call it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentopt._lazy import lazy_exports

__version__ = "0.1.0"

# public name → module that defines it
_LAZY: dict[str, str] = {
    "CallRecord": "agentopt.records",
    "Cost": "agentopt.records",
    "Observation": "agentopt.records",
    "Usage": "agentopt.records",
    "AgentOptError": "agentopt.exceptions",
    "BudgetExhaustedError": "agentopt.exceptions",
    "ConfigError": "agentopt.exceptions",
    "DataError": "agentopt.exceptions",
    "EvaluationError": "agentopt.exceptions",
    "EvaluationsFailedError": "agentopt.exceptions",
    "ProviderError": "agentopt.exceptions",
    "RoutingError": "agentopt.exceptions",
    "RoutingWarning": "agentopt.exceptions",
    "SelectionError": "agentopt.exceptions",
    "TrackingError": "agentopt.exceptions",
    "NotBuiltError": "agentopt.exceptions",
    "PriceBook": "agentopt.pricing",
    "ReplayTable": "agentopt.replay",
    "LLMTracker": "agentopt.tracking",
    "SessionInfo": "agentopt.tracking",
    "carry_session": "agentopt.tracking",
    "current_session": "agentopt.tracking",
    "get_current_session_proxy": "agentopt.tracking",
    "get_store": "agentopt.tracking.store",
    "usage_stats": "agentopt.tracking.usage",
    "UsageStats": "agentopt.tracking.usage",
    "Feedback": "agentopt.routers.context",
    "RouteContext": "agentopt.routers.context",
    "PromptFeatures": "agentopt.routers.context",
    "Router": "agentopt.routers",
    "RandomRouter": "agentopt.routers",
    "ThompsonRouter": "agentopt.routers",
    "UCBRouter": "agentopt.routers",
    "EpsilonGreedyRouter": "agentopt.routers",
    "CostAwareRouter": "agentopt.routers",
    "ContextualRouter": "agentopt.routers",
    "FactoredThompsonRouter": "agentopt.routers",
    "PromptRouter": "agentopt.routers",
    "MABWiserRouter": "agentopt.routers",
    "Quota": "agentopt.routers",
    "get_router": "agentopt.routers",
    "register_router": "agentopt.routers",
    "ModelSelector": "agentopt.selectors",
    "SelectionResults": "agentopt.selectors",
    "Objective": "agentopt.selectors",
    "AutoSelector": "agentopt.selectors",
    "BruteForceSelector": "agentopt.selectors",
    "SuccessiveEliminationSelector": "agentopt.selectors",
    "LUCBSelector": "agentopt.selectors",
    "TopTwoThompsonSelector": "agentopt.selectors",
    "SuccessiveHalvingSelector": "agentopt.selectors",
    "RandomSearchSelector": "agentopt.selectors",
    "AgentOptArmEliminationSelector": "agentopt.selectors",
    "RayExecutor": "agentopt.selectors",
    "SimServer": "agentopt.sim",
    "World": "agentopt.sim",
    "load_world": "agentopt.sim",
    "Daemon": "agentopt.gateway",
    "DaemonServer": "agentopt.gateway",
    "GatewayConfig": "agentopt.gateway",
}

__all__ = [
    "AgentOptArmEliminationSelector",
    "AgentOptError",
    "AutoSelector",
    "BruteForceSelector",
    "BudgetExhaustedError",
    "CallRecord",
    "ConfigError",
    "ContextualRouter",
    "Cost",
    "CostAwareRouter",
    "Daemon",
    "DaemonServer",
    "DataError",
    "EpsilonGreedyRouter",
    "EvaluationError",
    "EvaluationsFailedError",
    "FactoredThompsonRouter",
    "Feedback",
    "GatewayConfig",
    "LLMTracker",
    "LUCBSelector",
    "MABWiserRouter",
    "ModelSelector",
    "NotBuiltError",
    "Objective",
    "Observation",
    "PriceBook",
    "PromptFeatures",
    "PromptRouter",
    "ProviderError",
    "Quota",
    "RandomRouter",
    "RandomSearchSelector",
    "RayExecutor",
    "ReplayTable",
    "RouteContext",
    "Router",
    "RoutingError",
    "RoutingWarning",
    "SelectionError",
    "SelectionResults",
    "SessionInfo",
    "SimServer",
    "SuccessiveEliminationSelector",
    "SuccessiveHalvingSelector",
    "ThompsonRouter",
    "TopTwoThompsonSelector",
    "TrackingError",
    "UCBRouter",
    "Usage",
    "UsageStats",
    "World",
    "__version__",
    "carry_session",
    "current_session",
    "get_current_session_proxy",
    "get_router",
    "get_store",
    "load_world",
    "register_router",
    "usage_stats",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from agentopt.exceptions import (
        AgentOptError,
        BudgetExhaustedError,
        ConfigError,
        DataError,
        EvaluationError,
        EvaluationsFailedError,
        NotBuiltError,
        ProviderError,
        RoutingError,
        RoutingWarning,
        SelectionError,
        TrackingError,
    )
    from agentopt.gateway import Daemon, DaemonServer, GatewayConfig
    from agentopt.pricing import PriceBook
    from agentopt.records import (
        CallRecord,
        Cost,
        Observation,
        Usage,
    )
    from agentopt.replay import ReplayTable
    from agentopt.routers import (
        ContextualRouter,
        CostAwareRouter,
        EpsilonGreedyRouter,
        FactoredThompsonRouter,
        MABWiserRouter,
        PromptRouter,
        Quota,
        RandomRouter,
        Router,
        ThompsonRouter,
        UCBRouter,
        get_router,
        register_router,
    )
    from agentopt.routers.context import (
        Feedback,
        PromptFeatures,
        RouteContext,
    )
    from agentopt.selectors import (
        AgentOptArmEliminationSelector,
        AutoSelector,
        BruteForceSelector,
        LUCBSelector,
        ModelSelector,
        Objective,
        RandomSearchSelector,
        RayExecutor,
        SelectionResults,
        SuccessiveEliminationSelector,
        SuccessiveHalvingSelector,
        TopTwoThompsonSelector,
    )
    from agentopt.sim import SimServer, World, load_world
    from agentopt.tracking import (
        LLMTracker,
        SessionInfo,
        carry_session,
        current_session,
        get_current_session_proxy,
    )
    from agentopt.tracking.store import get_store
    from agentopt.tracking.usage import UsageStats, usage_stats
