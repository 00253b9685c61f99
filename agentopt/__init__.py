"""agentopt: track, route and select the LLMs your agents call.

Importing ``agentopt`` is cheap: public names load their modules on first use,
and litellm is imported only by the code paths that call it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → module that defines it
_LAZY: dict[str, str] = {
    # records and errors
    "CallRecord": "agentopt.records",
    "Cost": "agentopt.records",
    "Observation": "agentopt.records",
    "Usage": "agentopt.records",
    "AgentOptError": "agentopt.exceptions",
    "BudgetExhaustedError": "agentopt.exceptions",
    "ConfigError": "agentopt.exceptions",
    "DataError": "agentopt.exceptions",
    "SelectionError": "agentopt.exceptions",
    "TrackingError": "agentopt.exceptions",
    # pricing and replay
    "PriceBook": "agentopt.pricing",
    "ReplayTable": "agentopt.replay",
    # routing contract
    "Feedback": "agentopt.routers.context",
    "RouteContext": "agentopt.routers.context",
}

__all__ = [
    "AgentOptError",
    "BudgetExhaustedError",
    "CallRecord",
    "ConfigError",
    "Cost",
    "DataError",
    "Feedback",
    "Observation",
    "PriceBook",
    "ReplayTable",
    "RouteContext",
    "SelectionError",
    "TrackingError",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentopt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover
    from agentopt.exceptions import (
        AgentOptError,
        BudgetExhaustedError,
        ConfigError,
        DataError,
        SelectionError,
        TrackingError,
    )
    from agentopt.pricing import PriceBook
    from agentopt.records import CallRecord, Cost, Observation, Usage
    from agentopt.replay import ReplayTable
    from agentopt.routers.context import Feedback, RouteContext
