"""The published AgentOpt package's ``agentopt.routing`` import path.

``from agentopt.routing import RouteContext, Router, RandomRouter`` gives ours
(:mod:`agentopt.routers`).
"""

from __future__ import annotations

from agentopt.routers import RandomRouter, Router
from agentopt.routers.context import RouteContext

__all__ = ["RandomRouter", "RouteContext", "Router"]
