"""What a router sees when it routes a call, and what it learns from afterwards.

These two types are the contract between the tracker (which builds a
:class:`RouteContext` for every intercepted call) and the routers (which answer
with a model name, or None to keep the caller's model, and learn from
:class:`Feedback`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any

from agentopt.records import CallRecord

__all__ = ["Feedback", "PromptFeatures", "RouteContext"]


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """Cheap features of a request, for contextual routers."""

    token_estimate: int = 0
    has_tools: bool = False
    has_images: bool = False
    turns: int = 0

    def as_vector(self) -> list[float]:
        """A small numeric vector (bias first), stable across versions."""
        import math

        return [
            1.0,
            math.log1p(self.token_estimate) / 10.0,
            float(self.has_tools),
            float(self.has_images),
            math.log1p(self.turns) / 3.0,
        ]

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> PromptFeatures:
        """Features of an OpenAI- or Anthropic-shaped request body."""
        if not body:
            return cls()
        messages = body.get("messages") or body.get("contents") or []
        chars = 0
        images = False
        for m in messages if isinstance(messages, list) else []:
            content = m.get("content") if isinstance(m, Mapping) else None
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, Mapping):
                        continue
                    t = part.get("type")
                    if t in ("image_url", "image", "input_image"):
                        images = True
                    text = part.get("text")
                    if isinstance(text, str):
                        chars += len(text)
        system = body.get("system")
        if isinstance(system, str):
            chars += len(system)
        return cls(
            token_estimate=chars // 4,
            has_tools=bool(body.get("tools") or body.get("functions")),
            has_images=images,
            turns=len(messages) if isinstance(messages, list) else 0,
        )

    @classmethod
    def from_text(cls, text: str) -> PromptFeatures:
        return cls(token_estimate=len(text) // 4, turns=1)


@dataclass(frozen=True)
class RouteContext:
    """Everything a router may look at for one call. The body is read-only."""

    requested_model: str | None
    provider: str | None = None
    request_body: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    data_id: str | None = None
    combo_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    call_index: int = 0  # index of this call within its datapoint (0-based)
    history: Sequence[CallRecord] = ()  # the session's earlier records
    features: PromptFeatures = field(default_factory=PromptFeatures)
    budget: Mapping[str, Any] = field(default_factory=dict)  # filled by the router
    # the prompt's text when the caller has it at hand (replays, tests); routers
    # that read the prompt otherwise take it from ``request_body``
    prompt: str | None = None

    @property
    def session(self) -> SimpleNamespace:
        """The call's session as one object (``data_id``, ``combo_id``, ``agent_id``,
        ``session_id``, ``records``: its earlier calls), for code that reads it that way."""
        return SimpleNamespace(
            data_id=self.data_id,
            combo_id=self.combo_id,
            agent_id=self.agent_id,
            session_id=self.session_id,
            records=list(self.history),
        )

    @classmethod
    def for_call(
        cls,
        requested_model: str | None,
        body: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> RouteContext:
        b = body or {}
        return cls(
            requested_model=requested_model,
            request_body=MappingProxyType(dict(b)),
            features=PromptFeatures.from_body(b),
            **kw,
        )


@dataclass(frozen=True)
class Feedback:
    """A reward for one or more calls. ``models`` are the models used (one per
    call, or one per node for a combination); ``combo`` is set when the router
    chose a whole combination for the datapoint."""

    reward: float
    models: tuple[str, ...] = ()
    combo: Mapping[str, str] | None = None
    cost_usd: float | None = None
    latency_seconds: float | None = None
    data_id: str | None = None
    features: PromptFeatures | None = None
