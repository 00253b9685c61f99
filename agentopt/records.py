"""Records everyone shares: what a call cost, what an evaluation scored.

``CallRecord`` is one LLM call as the tracker saw it; ``Observation`` is one
evaluation of one model combination on one datapoint, as a selector saw it.
Both round-trip through JSON (``model_dump_json`` / ``model_validate_json``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PARSE_FAILED", "CallRecord", "Cost", "Observation", "Usage", "utc_now_iso"]

#: ``CallRecord.model`` when a successful response could not be parsed for usage.
PARSE_FAILED = "<parse-failed>"


def utc_now_iso() -> str:
    """The current time as an ISO 8601 string in UTC (``...+00:00``)."""
    return datetime.now(UTC).isoformat()


def _new_id() -> str:
    return uuid.uuid4().hex


class Usage(BaseModel):
    """Token counts of one call. ``cached_tokens`` and ``reasoning_tokens`` are
    subsets of ``prompt_tokens`` and ``completion_tokens`` respectively."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Cost(BaseModel):
    """The price of a call. ``known`` is False when no price exists for the model:
    then ``usd`` is None, and it must be shown as *unpriced*, never as $0."""

    model_config = ConfigDict(frozen=True)

    usd: float | None
    known: bool
    model: str | None = None
    input_usd: float | None = None
    output_usd: float | None = None
    source: str | None = None  # "user", "litellm", or None when unknown

    @classmethod
    def unknown(cls, model: str | None = None) -> Cost:
        return cls(usd=None, known=False, model=model)

    @classmethod
    def _trusted(
        cls,
        usd: float | None,
        known: bool,
        model: str | None,
        input_usd: float | None,
        output_usd: float | None,
        source: str | None,
    ) -> Cost:
        """Build without validation, for the PriceBook's hot path (values are ours)."""
        obj = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(
            obj,
            "__dict__",
            {
                "usd": usd,
                "known": known,
                "model": model,
                "input_usd": input_usd,
                "output_usd": output_usd,
                "source": source,
            },
        )
        setattr_(obj, "__pydantic_fields_set__", _COST_FIELDS)
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        return obj

    def __str__(self) -> str:
        return "unpriced" if self.usd is None else f"${self.usd:.6f}"

    def __add__(self, other: object) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        if self.usd is None or other.usd is None:
            return Cost(usd=None, known=False)
        return Cost(usd=self.usd + other.usd, known=True)


_COST_FIELDS = frozenset(Cost.model_fields)


class CallRecord(BaseModel):
    """One LLM call, as the tracker saw it.

    ``requested_model`` is what the caller asked for; ``model`` is the model that
    actually answered (after routing). When usage could not be parsed from a
    successful response, ``model`` is :data:`PARSE_FAILED` and ``error`` says why.
    ``cost_usd`` is None when the model is unpriced or its usage is unknown.
    ``usage_known`` is False when a call that may have been billed did not report
    its usage (a stream without its usage chunk, a body that could not be parsed, a
    stream cut short): its token counts are then only what was seen (a lower bound,
    often 0) and its cost is None, never a silent $0. ``ttft_seconds`` is the time
    to the first content (text, tool-call or reasoning delta) of a stream and
    ``first_byte_seconds`` the time to its first body byte; both are None when the
    call was not streamed. ``alias`` is the gateway alias the call was addressed
    to (``agentopt serve``), None otherwise.
    """

    call_id: str = Field(default_factory=_new_id)
    session_id: str | None = None
    data_id: str | None = None
    combo_id: str | None = None
    agent_id: str | None = None
    alias: str | None = None
    #: the caller's request a gateway call was an attempt of (retries and fallbacks
    #: share it: it is the ``x-agentopt-request-id`` the caller got), and which attempt
    request_id: str | None = None
    attempt: int | None = None
    provider: str | None = None
    requested_model: str | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    latency_seconds: float = 0.0
    ttft_seconds: float | None = None
    first_byte_seconds: float | None = None
    usage_known: bool = True
    cost_usd: float | None = None
    request_url: str | None = None
    request_body: Any = None
    response_body: Any = None
    status_code: int | None = None
    timestamp: str = Field(default_factory=utc_now_iso)
    cached: bool = False
    error: str | None = None
    stream: bool = False
    #: an independent count of the call's input and output tokens (litellm's
    #: tokenizer-based counter, run off the call's path, on the unredacted
    #: bodies) for billing reconciliation; None when not counted
    estimated_input_tokens: int | None = None
    estimated_output_tokens: int | None = None

    @field_validator("data_id", "combo_id", "agent_id", mode="before")
    @classmethod
    def _ids_as_str(cls, v: object) -> object:
        # Users pass ints for datapoint ids; records store strings so queries match.
        if v is None or isinstance(v, str):
            return v
        return str(v)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.cached_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )

    @property
    def ok(self) -> bool:
        return self.error is None and (self.status_code is None or self.status_code < 400)


class Observation(BaseModel):
    """One evaluation of one model combination on one datapoint.

    ``combo`` maps node → model. A failed run (agent or ``eval_fn`` raised) is an
    observation too: it carries the ``failure_score`` as its score and the error.
    ``cost_usd`` is None when some call of the run was unpriced.
    """

    combo: dict[str, str]
    datapoint: str | int
    score: float
    cost_usd: float | None = 0.0
    latency_seconds: float | None = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: ``{model: [input tokens, output tokens]}`` when the calls were recorded live
    tokens_by_model: dict[str, list[int]] | None = None
    error: str | None = None
    timestamp: str = Field(default_factory=utc_now_iso)

    @property
    def tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @staticmethod
    def combo_label(combo: Mapping[str, str]) -> str:
        """The canonical label of a combination: ``node=Model + node=Model``."""
        return " + ".join(f"{node}={model}" for node, model in combo.items())
