"""Check a provider's bill: the tokens it reported against an independent count.

:func:`reconcile_usage` re-counts the stored request and response of each
recorded call with litellm's tokenizer-based ``token_counter`` (tiktoken for
OpenAI models, the model's own tokenizer where litellm has one, an
approximation otherwise) and sets it beside the usage the provider reported,
per model (or any :func:`~agentopt.tracking.usage.usage_stats` grouping key):

- ``reported_input_tokens`` / ``reported_output_tokens``: what the provider said;
- ``estimated_input_tokens`` / ``estimated_output_tokens``: the independent count;
- ``input_difference`` / ``output_difference``: reported − estimated, and
  ``*_ratio``: reported / estimated (a provider's chat template adds a few tokens
  per message, so a ratio a little above 1 is normal; far from 1 is worth a look);
- ``compared``: calls counted both ways; ``not_comparable``: calls with no stored
  body (redacted), no reported usage, a failure, or a body the tokenizer cannot
  read: counted apart, never guessed.

The count runs when asked (never on a call's path): it reads the bodies, so it
takes seconds per ten thousand calls. Filters are :func:`usage_stats`' filters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from agentopt.records import CallRecord
from agentopt.tracking.redact import REDACTED

__all__ = ["ReconcileGroup", "reconcile_usage"]


@dataclass
class ReconcileGroup:
    key: dict[str, Any]
    compared: int = 0
    not_comparable: int = 0
    reported_input_tokens: int = 0
    reported_output_tokens: int = 0
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0

    @property
    def input_difference(self) -> int:
        return self.reported_input_tokens - self.estimated_input_tokens

    @property
    def output_difference(self) -> int:
        return self.reported_output_tokens - self.estimated_output_tokens

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_difference"] = self.input_difference
        d["output_difference"] = self.output_difference
        d["input_ratio"] = (
            self.reported_input_tokens / self.estimated_input_tokens
            if self.estimated_input_tokens
            else None
        )
        d["output_ratio"] = (
            self.reported_output_tokens / self.estimated_output_tokens
            if self.estimated_output_tokens
            else None
        )
        return d


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The request as chat messages (OpenAI chat, Anthropic messages, Responses input)."""
    out: list[dict[str, Any]] = []
    system = body.get("system") or body.get("instructions")
    if isinstance(system, str):
        out.append({"role": "system", "content": system})
    elif isinstance(system, list):
        text = " ".join(str(b.get("text", "")) for b in system if isinstance(b, Mapping))
        out.append({"role": "system", "content": text})
    msgs = body.get("messages")
    if msgs is None:
        inp = body.get("input")
        if isinstance(inp, str):
            msgs = [{"role": "user", "content": inp}]
        elif isinstance(inp, list):
            msgs = inp
    if not isinstance(msgs, list):
        return None
    for m in msgs:
        if not isinstance(m, Mapping):
            return None
        content = m.get("content")
        if isinstance(content, list):  # content blocks: count their text
            content = " ".join(
                str(b.get("text") or b.get("input_text") or "")
                for b in content
                if isinstance(b, Mapping)
            )
        out.append({"role": str(m.get("role") or "user"), "content": content or ""})
    return out


def _answer_text(body: Any) -> str | None:
    """The text (and tool-call arguments) of a response of any supported wire format."""
    if not isinstance(body, Mapping):
        return None
    parts: list[str] = []
    for choice in body.get("choices") or []:
        if isinstance(choice, Mapping):
            msg = choice.get("message") or {}
            if isinstance(msg, Mapping):
                if isinstance(msg.get("content"), str):
                    parts.append(msg["content"])
                for call in msg.get("tool_calls") or []:
                    fn = call.get("function") if isinstance(call, Mapping) else None
                    if isinstance(fn, Mapping):
                        parts.append(str(fn.get("arguments") or ""))
    content = body.get("content")
    if isinstance(content, list):  # Anthropic
        for b in content:
            if isinstance(b, Mapping):
                if b.get("type") == "text":
                    parts.append(str(b.get("text") or ""))
                elif b.get("type") == "tool_use":
                    import json

                    parts.append(json.dumps(b.get("input") or {}))
    for item in body.get("output") or []:  # OpenAI Responses
        if isinstance(item, Mapping):
            for c in item.get("content") or []:
                if isinstance(c, Mapping) and isinstance(c.get("text"), str):
                    parts.append(c["text"])
            if item.get("type") == "function_call":
                parts.append(str(item.get("arguments") or ""))
    return "".join(parts) if parts or "choices" in body or "content" in body else None


def _redacted(obj: Any) -> bool:
    return obj == REDACTED or (isinstance(obj, Mapping) and REDACTED in obj.values())


def reconcile_usage(
    source: Any, *, group_by: str = "model", **filters: Any
) -> list[ReconcileGroup]:
    """Reported against re-counted tokens of the calls in ``source`` (a tracker, a
    record store or CallRecords) matching ``filters``; see the module docstring."""
    from agentopt.tracking.usage import _key_value, _matches, normalize

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    conds, keys = normalize(filters, group_by)
    store = getattr(source, "store", source)
    if hasattr(store, "iter_records"):
        records: Iterable[CallRecord] = store.iter_records()
    elif hasattr(store, "all"):
        records = store.all()
    else:
        records = source
    groups: dict[tuple[Any, ...], ReconcileGroup] = {}
    for r in records:
        if not _matches(r, conds):
            continue
        kv = tuple(_key_value(r, k) for k in keys)
        g = groups.setdefault(kv, ReconcileGroup(key=dict(zip(keys, kv, strict=True))))
        req, resp = r.request_body, r.response_body
        usage_known = getattr(r, "usage_known", True)
        if (
            not r.ok
            or r.cached
            or not usage_known
            or not isinstance(req, Mapping)
            or _redacted(req)
            or _redacted(resp)
        ):
            g.not_comparable += 1
            continue
        messages = _messages(req)
        text = _answer_text(resp)
        model = r.model or r.requested_model or "gpt-4o"
        if messages is None or text is None:
            g.not_comparable += 1
            continue
        try:
            est_in = int(litellm.token_counter(model=model, messages=messages))
            est_out = int(litellm.token_counter(model=model, text=text, count_response_tokens=True))
        except Exception:
            g.not_comparable += 1
            continue
        g.compared += 1
        g.reported_input_tokens += r.prompt_tokens
        g.reported_output_tokens += r.completion_tokens
        g.estimated_input_tokens += est_in
        g.estimated_output_tokens += est_out
    return list(groups.values())
