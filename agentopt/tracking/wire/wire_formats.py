"""What each wire format says about usage, models and errors.

Small, pure helpers shared by :mod:`agentopt.tracking.wire.parsing` (whole bodies)
and :mod:`agentopt.tracking.wire.sse` (streams). Nothing here raises on odd input:
a missing or mistyped field counts as absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentopt.records import Usage
from agentopt.tracking.providers import Wire

__all__ = [
    "ParsedResponse",
    "anthropic_usage",
    "as_int",
    "error_text",
    "gemini_usage",
    "is_content_event",
    "openai_usage",
    "reported_model",
    "usage_for",
]

_SNIPPET = 500


@dataclass
class ParsedResponse:
    """What the tracker learnt from one response.

    ``model`` is the model the provider reports, :data:`~agentopt.records.PARSE_FAILED`
    when a successful body could not be parsed, None when the provider did not say.
    ``error`` is the provider's error (with the HTTP status), or why parsing failed,
    or why a stream is incomplete. ``body`` is JSON-serialisable: the decoded body,
    or for a stream an assembled equivalent of the non-streamed response.
    ``usage_found`` is False when a successful response carried no usage at all.
    """

    model: str | None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    body: Any = None
    usage_found: bool = False


def as_int(value: object) -> int:
    """``value`` as a non-negative int; anything else counts as 0."""
    if type(value) is int:  # the usual case, first
        return value if value > 0 else 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value:  # not NaN
        return max(int(value), 0)
    return 0


_EMPTY: Mapping[str, Any] = {}


def _sub(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = d.get(key)
    return v if type(v) is dict or isinstance(v, Mapping) else _EMPTY


def openai_usage(u: Mapping[str, Any]) -> Usage:
    """Chat Completions (``prompt_tokens``…) or Responses API (``input_tokens``…) usage."""
    if "prompt_tokens" in u or "completion_tokens" in u:
        return Usage(
            prompt_tokens=as_int(u.get("prompt_tokens")),
            completion_tokens=as_int(u.get("completion_tokens")),
            cached_tokens=as_int(_sub(u, "prompt_tokens_details").get("cached_tokens")),
            reasoning_tokens=as_int(_sub(u, "completion_tokens_details").get("reasoning_tokens")),
        )
    return Usage(
        prompt_tokens=as_int(u.get("input_tokens")),
        completion_tokens=as_int(u.get("output_tokens")),
        cached_tokens=as_int(_sub(u, "input_tokens_details").get("cached_tokens")),
        reasoning_tokens=as_int(_sub(u, "output_tokens_details").get("reasoning_tokens")),
    )


def anthropic_usage(u: Mapping[str, Any]) -> Usage:
    """Anthropic usage: prompt = input + cache reads + cache writes; cached = cache reads."""
    cache_read = as_int(u.get("cache_read_input_tokens"))
    return Usage(
        prompt_tokens=as_int(u.get("input_tokens"))
        + cache_read
        + as_int(u.get("cache_creation_input_tokens")),
        completion_tokens=as_int(u.get("output_tokens")),
        cached_tokens=cache_read,
    )


def gemini_usage(u: Mapping[str, Any]) -> Usage:
    """Gemini ``usageMetadata``: thoughts are billed as output, so they count in
    ``completion_tokens`` (and ``reasoning_tokens``)."""
    thoughts = as_int(u.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=as_int(u.get("promptTokenCount")) + as_int(u.get("toolUsePromptTokenCount")),
        completion_tokens=as_int(u.get("candidatesTokenCount")) + thoughts,
        cached_tokens=as_int(u.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_for(wire: Wire, body: Mapping[str, Any]) -> Usage | None:
    """The usage a whole response body reports, or None when it has none."""
    if wire == "gemini":
        u = body.get("usageMetadata")
        return gemini_usage(u) if isinstance(u, Mapping) else None
    u = body.get("usage")
    if not isinstance(u, Mapping):
        return None
    return anthropic_usage(u) if wire == "anthropic" else openai_usage(u)


def reported_model(wire: Wire, body: Mapping[str, Any]) -> str | None:
    """The model a response body says answered."""
    m = body.get("modelVersion") if wire == "gemini" else body.get("model")
    return m if isinstance(m, str) and m else None


def error_text(obj: Any) -> str | None:
    """The provider's error message in an error body, or None when there is none.

    Covers OpenAI ``{"error": {"message"}}``, Anthropic ``{"type": "error",
    "error": {...}}``, Gemini ``{"error": {"code", "message", "status"}}`` (also
    wrapped in a list), and ``{"detail": ...}`` / ``{"message": ...}`` servers.
    """
    if isinstance(obj, list) and obj:
        obj = obj[0]
    if not isinstance(obj, Mapping):
        return None
    err = obj.get("error")
    if isinstance(err, Mapping):
        msg = err.get("message")
        kind = err.get("type") or err.get("status") or err.get("code")
        if isinstance(msg, str) and msg:
            return f"{kind}: {msg}" if isinstance(kind, str) and kind else msg
        return json.dumps(err, default=str)[:_SNIPPET]
    if isinstance(err, str) and err:
        return err
    for key in ("detail", "message"):
        v = obj.get(key)
        if isinstance(v, str) and v:
            return v
        if v is not None and key == "detail":
            return json.dumps(v, default=str)[:_SNIPPET]
    return None


def snippet(content: bytes) -> str:
    """The start of a raw body, decoded leniently, for error messages."""
    text = content[:_SNIPPET].decode("utf-8", errors="replace")
    return text + ("…" if len(content) > _SNIPPET else "")


_OPENAI_DELTA_KEYS = (
    "content",
    "tool_calls",
    "function_call",
    "reasoning_content",
    "reasoning",
    "refusal",
)


def is_content_event(wire: Wire, obj: Any) -> bool:
    """Whether a decoded stream event carries content: text, a tool call or
    reasoning (not a role-only chunk, ``message_start`` or a usage chunk). The
    first such event marks a stream's time to first token."""
    try:
        return _is_content(wire, obj)
    except Exception:  # odd shapes are no content
        return False


def _is_content(wire: Wire, obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    if wire == "anthropic":
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = _sub(obj, "delta")
            return any(delta.get(k) for k in ("text", "partial_json", "thinking"))
        if kind == "content_block_start":
            block = _sub(obj, "content_block")
            return block.get("type") in ("tool_use", "server_tool_use") or bool(block.get("text"))
        return False
    if wire == "gemini":
        for cand in obj.get("candidates") or ():
            for part in _sub(cand, "content").get("parts") or ():
                if isinstance(part, Mapping) and (part.get("text") or part.get("functionCall")):
                    return True
        return False
    kind = obj.get("type")
    if isinstance(kind, str) and kind.startswith("response."):
        if kind.endswith(".delta"):
            return bool(obj.get("delta"))
        if kind == "response.output_item.added":
            return _sub(obj, "item").get("type") == "function_call"
        return False
    for choice in obj.get("choices") or ():
        delta = _sub(choice, "delta") if isinstance(choice, Mapping) else _EMPTY
        if any(delta.get(k) for k in _OPENAI_DELTA_KEYS):
            return True
    return False
