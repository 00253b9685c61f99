"""Anthropic messages wire format: parse a request, render a reply or an error."""

from __future__ import annotations

import json
from typing import Any

from agentopt.sim.engine import Reply, SimRequest, ToolSpec
from agentopt.sim.wire import BadRequest, Event, split_text
from agentopt.sim.wire_openai import output_format

#: an SSE event whose data is not JSON (the ``malformed`` fault)
MALFORMED_EVENT = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {\n\n'
)

__all__ = ["MALFORMED_EVENT", "error_body", "parse", "render", "render_stream"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_body(status: int, message: str, param: str | None = None) -> bytes:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"[tool call {block.get('name')}({json.dumps(block.get('input'))})]"
    if kind == "tool_result":
        inner = block.get("content")
        if isinstance(inner, list):
            return "\n".join(_block_text(b) for b in inner)
        return f"[tool result {inner}]"
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(_block_text(b) for b in content)
    return _block_text(content)


def parse(body: Any) -> SimRequest:
    """A :class:`SimRequest` from a decoded JSON body; :class:`BadRequest` if invalid."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required", "model")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a positive integer)", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required (a non-empty list)", "messages")
    lines = []
    system = body.get("system")
    if system:
        lines.append(f"system: {_content_text(system)}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: must be 'user' or 'assistant'", f"messages.{i}")
        lines.append(f"{m['role']}: {_content_text(m.get('content'))}")
    tools = []
    for i, t in enumerate(body.get("tools") or ()):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise BadRequest(f"tools.{i}.name: Field required", f"tools.{i}")
        tools.append(ToolSpec(t["name"], t.get("input_schema") or {}))
    choice: Any = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    tool_choice = {"any": "required", "tool": str(choice.get("name", "required"))}.get(kind, kind)
    last = messages[-1].get("content")
    after_tool = isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last
    )
    return SimRequest(
        model=model,
        text="\n".join(lines),
        n_messages=len(messages) + (1 if system else 0),
        tools=tools,
        tool_choice=tool_choice,
        after_tool_result=after_tool,
        max_tokens=max_tokens,
        stream=bool(body.get("stream")),
        include_usage=True,
        output_format=output_format(_format_of(body), "output_format"),
    )


def _format_of(body: dict[str, Any]) -> Any:
    """Structured outputs: ``output_format`` (beta) or ``output_config.format``."""
    config = body.get("output_config")
    if isinstance(config, dict) and config.get("format") is not None:
        return config["format"]
    return body.get("output_format")


def _usage(r: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": r.prompt_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _tool_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


def render(r: Reply, model: str, rid: str, created: int) -> bytes:
    content: list[dict[str, Any]] = []
    if r.text:
        content.append({"type": "text", "text": r.text})
    for cid, name, args in r.tool_calls:
        content.append(
            {"type": "tool_use", "id": _tool_id(cid), "name": name, "input": json.loads(args)}
        )
    body = {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _STOP[r.finish],
        "stop_sequence": None,
        "usage": _usage(r, r.completion_tokens),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def render_stream(r: Reply, model: str, rid: str, created: int, include_usage: bool) -> list[Event]:
    """SSE events with the (unscaled) delay before each."""
    start: dict[str, Any] = {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(r, 1),
    }
    # nothing is sent before the modelled time to first token
    events = [Event(r.ttft_s, _sse("message_start", {"type": "message_start", "message": start}))]
    index = 0
    if r.text:
        block = {"type": "text", "text": ""}
        events.append(
            Event(
                0.0,
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": block},
                ),
            )
        )
        events.append(Event(0.0, _sse("ping", {"type": "ping"})))
        for piece, share in split_text(r.text):
            delay = r.per_token_s * r.completion_tokens * share
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            events.append(Event(delay, _sse("content_block_delta", delta)))
        events.append(
            Event(0.0, _sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        )
        index = 1
    for k, (cid, name, args) in enumerate(r.tool_calls):
        tool_block: dict[str, Any] = {
            "type": "tool_use",
            "id": _tool_id(cid),
            "name": name,
            "input": {},
        }
        i = index + k
        events.append(
            Event(
                0.0,
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": tool_block},
                ),
            )
        )
        delta = {
            "type": "content_block_delta",
            "index": i,
            "delta": {"type": "input_json_delta", "partial_json": args},
        }
        events.append(
            Event(r.per_token_s * r.completion_tokens, _sse("content_block_delta", delta))
        )
        events.append(
            Event(0.0, _sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        )
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": _STOP[r.finish], "stop_sequence": None},
        "usage": {"output_tokens": r.completion_tokens},
    }
    events.append(Event(0.0, _sse("message_delta", message_delta)))
    events.append(Event(0.0, _sse("message_stop", {"type": "message_stop"}), terminal=True))
    return events
