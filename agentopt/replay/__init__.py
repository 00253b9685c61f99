"""Recorded outcomes, replayed: evaluators for selectors and routers, offline."""

from agentopt.replay.table import RESERVED_COLUMNS, ReplayTable

__all__ = ["RESERVED_COLUMNS", "ReplayTable"]
