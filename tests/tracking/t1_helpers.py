"""Shared pieces of the LLMTracker tests: a small world with faulty models, a fake router."""

from __future__ import annotations

from typing import Any

from agentopt.records import CallRecord
from agentopt.routers.context import Feedback, RouteContext

MSG = [{"role": "user", "content": "What is 2 + 2?"}]
OPENAI_KEY = "sk-test-SECRET-openai"
ANTHROPIC_KEY = "sk-ant-test-SECRET"

WORLD: dict[str, Any] = {
    "name": "t1",
    "models": [
        {"name": "gpt-4o-mini"},
        {"name": "gpt-4o"},
        {"name": "claude-haiku-4-5", "provider": "anthropic"},
        {"name": "fault-500", "faults": {"errors": {500: 1.0}}},
        {"name": "fault-malformed", "faults": {"malformed": 1.0}},
        {"name": "fault-truncate", "faults": {"truncate": 1.0}},
        {"name": "no-stream-options", "accepts_stream_options": False},
    ],
}


class FakeRouter:
    """Routes every call to ``target`` (None keeps the caller's model); remembers all."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.contexts: list[RouteContext] = []
        self.observed: list[CallRecord] = []
        self.feedback: list[Feedback] = []

    def route(self, ctx: RouteContext) -> str | None:
        self.contexts.append(ctx)
        return self.target

    def observe(self, record: CallRecord) -> None:
        self.observed.append(record)

    def update(self, fb: Feedback) -> None:
        self.feedback.append(fb)


# -- fixtures (import them into a test module to use them) ------------------------------------

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from agentopt.sim import SimServer  # noqa: E402
from agentopt.tracking.capture import httpx_capture, litellm_capture  # noqa: E402


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(WORLD, time_scale=0.0, seed=0) as server:
        yield server


@pytest.fixture(autouse=True)
def no_global_patch() -> Iterator[None]:
    """Every test must leave httpx and litellm unpatched (trackers stopped)."""
    yield
    leaked = list(httpx_capture._running)
    for t in leaked:
        t.stop()
    assert not leaked, f"a test left trackers running: {leaked}"
    assert not httpx_capture.installed()
    assert not litellm_capture.installed()
