"""The published AgentOpt package's ``agentopt.proxy`` import path.

``from agentopt.proxy import LLMTracker, CallRecord, ResponseCache`` gives ours.
"""

from __future__ import annotations

from agentopt.records import CallRecord
from agentopt.tracking.storage.cache import ResponseCache
from agentopt.tracking.tracker import LLMTracker

__all__ = ["CallRecord", "LLMTracker", "ResponseCache"]
