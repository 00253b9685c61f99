"""The fixed record set the usage-statistics figures were computed from by hand
(shared by the in-memory, SQLite and PostgreSQL tests)."""

from __future__ import annotations

from typing import Any

from agentopt.records import CallRecord

OPENAI_TOOLS = {"choices": [{"message": {"tool_calls": [{"id": "1"}, {"id": "2"}]}}]}
ANTHROPIC_TOOL = {"content": [{"type": "text"}, {"type": "tool_use", "id": "t"}]}
RESPONSES_TOOL = {"output": [{"type": "message"}, {"type": "function_call"}]}


def _r(n: int, **kw: Any) -> CallRecord:
    base: dict[str, Any] = {"call_id": f"r{n}", "provider": "openai", "model": "a"}
    base.update(kw)
    return CallRecord(**base)


# The fixed record set the figures below were computed from by hand.
RECORDS = [
    _r(1, data_id=1, combo_id="x", agent_id="p", status_code=200, prompt_tokens=100,
       completion_tokens=20, cached_tokens=10, reasoning_tokens=5, cost_usd=0.01,
       latency_seconds=1.0, ttft_seconds=0.2, timestamp="2026-12-01T10:15:00+00:00",
       response_body=OPENAI_TOOLS),
    _r(2, data_id=1, combo_id="y", agent_id="q", status_code=200, prompt_tokens=200,
       completion_tokens=40, cost_usd=0.02, latency_seconds=2.0, ttft_seconds=0.4,
       timestamp="2026-12-01T11:00:00+00:00"),
    _r(3, data_id=2, combo_id="x", status_code=500, error="upstream", cost_usd=None,
       latency_seconds=0.5, timestamp="2026-12-02T09:00:00+00:00"),
    _r(4, model="b", provider="anthropic", data_id=2, combo_id="x", status_code=200,
       prompt_tokens=50, completion_tokens=10, cost_usd=None, latency_seconds=4.0,
       timestamp="2026-12-02T09:30:00+00:00", response_body=ANTHROPIC_TOOL),
    _r(5, model="b", provider="anthropic", data_id=3, status_code=429, error="rate limited",
       cost_usd=0.0, latency_seconds=0.1, timestamp="2026-12-02T10:00:00+00:00"),
    _r(6, status_code=200, cached=True, prompt_tokens=100, completion_tokens=20, cost_usd=0.0,
       latency_seconds=1.0, timestamp="2026-12-02T10:30:00+00:00"),
    _r(7, model=None, requested_model="c", error="connection refused", cost_usd=None,
       latency_seconds=3.0, timestamp="2026-12-03T00:00:00+00:00"),
    _r(8, alias="smart", status_code=200, prompt_tokens=10, completion_tokens=30,
       cost_usd=0.005, latency_seconds=3.0, ttft_seconds=1.0,
       timestamp="2026-12-03T01:00:00+00:00", response_body=RESPONSES_TOOL),
]  # fmt: skip
