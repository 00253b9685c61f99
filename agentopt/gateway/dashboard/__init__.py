"""The dashboard: calls, charts, routing and selections over a record store.

Served by the daemon at ``/dashboard`` and by ``agentopt dashboard --store PATH``
for a store without a running daemon. Server side: a JSON API of aggregates
computed in SQL (:mod:`.data`, :mod:`.selection`); browser side: one page of
plain JavaScript and Chart.js, vendored in ``static/`` (works offline).
"""

from __future__ import annotations

from agentopt.gateway.dashboard.app import create_dashboard_app
from agentopt.gateway.dashboard.data import DashboardData, Filters
from agentopt.gateway.dashboard.selection import selection_view

__all__ = [
    "DashboardData",
    "DashboardServer",
    "Filters",
    "create_dashboard_app",
    "selection_view",
]


def __getattr__(name: str) -> object:
    if name == "DashboardServer":  # needs uvicorn (the 'server' extra): imported on use
        from agentopt.gateway.dashboard.cli import DashboardServer

        return DashboardServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
