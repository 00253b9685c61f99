"""OpenAI Responses API wire format (``POST /v1/responses``): parse, render, stream.

The shapes follow the ``openai`` SDK's ``types.responses`` models: a ``Response``
object with ``output`` items (``message`` with ``output_text`` parts,
``function_call``), usage as ``input_tokens``/``output_tokens``, and a stream of
named events (``response.created`` … ``response.completed``), each with a
``sequence_number``. Errors share the Chat Completions error body.
"""

from __future__ import annotations

import json
from typing import Any

from agentopt.sim.engine import Reply, SimRequest, ToolSpec
from agentopt.sim.wire import BadRequest, Event, split_text
from agentopt.sim.wire_openai import error_body, output_format

#: an SSE event whose data is not JSON (the ``malformed`` fault)
MALFORMED_EVENT = (
    b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": \n\n'
)

__all__ = ["MALFORMED_EVENT", "error_body", "parse", "render", "render_stream"]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for p in content:
        if isinstance(p, dict) and isinstance(p.get("text"), str):
            parts.append(p["text"])
        elif isinstance(p, dict) and isinstance(p.get("refusal"), str):
            parts.append(p["refusal"])
    return "\n".join(parts)


def _item_line(i: int, item: Any) -> tuple[str | None, str | None]:
    """(role, text) of one input item; (None, None) for items without text (reasoning)."""
    if not isinstance(item, dict):
        raise BadRequest(f"input[{i}] must be an object", f"input[{i}]")
    kind = item.get("type", "message")
    if kind == "message" or (kind is None and "role" in item):
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise BadRequest(
                f"input[{i}].role must be 'user', 'assistant', 'system' or 'developer'",
                f"input[{i}].role",
            )
        return str(role), _content_text(item.get("content"))
    if kind == "function_call":
        return "assistant", f"[tool call {item.get('name')}({item.get('arguments')})]"
    if kind == "function_call_output":
        output = item.get("output")
        return "tool", output if isinstance(output, str) else _content_text(output)
    return None, None


def _tools(raw: Any) -> list[ToolSpec]:
    tools = []
    for i, t in enumerate(raw or ()):
        if not isinstance(t, dict):
            raise BadRequest(f"tools[{i}] must be an object", f"tools[{i}]")
        if t.get("type", "function") != "function":
            continue  # hosted tools (web_search, file_search, …) are not simulated
        if not isinstance(t.get("name"), str):
            raise BadRequest(f"tools[{i}].name: a function tool needs a name", f"tools[{i}].name")
        tools.append(ToolSpec(t["name"], t.get("parameters") or {}))
    return tools


def _tool_choice(choice: Any) -> str:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        if choice.get("type") == "function" and isinstance(choice.get("name"), str):
            return str(choice["name"])
        if choice.get("type") == "allowed_tools":
            return "required" if choice.get("mode") == "required" else "auto"
    return "required"


def parse(body: Any) -> SimRequest:
    """A :class:`SimRequest` from a decoded JSON body; :class:`BadRequest` if invalid."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    raw_input = body.get("input")
    items: list[Any]
    if isinstance(raw_input, str):
        items = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list) and raw_input:
        items = raw_input
    else:
        raise BadRequest("'input' must be a string or a non-empty array", "input")
    lines = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        lines.append(f"system: {instructions}")
    last_kind = None
    for i, item in enumerate(items):
        role, text = _item_line(i, item)
        last_kind = item.get("type", "message")
        if role is not None:
            lines.append(f"{role}: {text}")
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise BadRequest("max_output_tokens must be a positive integer", "max_output_tokens")
    text_cfg = body.get("text")
    fmt = text_cfg.get("format") if isinstance(text_cfg, dict) else None
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_tokens,
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt or {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": list(body.get("tools") or ()),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return SimRequest(
        model=model,
        text="\n".join(lines),
        n_messages=len(lines),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(body.get("tool_choice")),
        after_tool_result=last_kind == "function_call_output",
        max_tokens=max_tokens,
        stream=bool(body.get("stream")),
        include_usage=True,
        output_format=output_format(fmt, "text.format"),
        echo=echo,
    )


def _usage(r: Reply) -> dict[str, Any]:
    return {
        "input_tokens": r.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": r.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": r.prompt_tokens + r.completion_tokens,
    }


def _suffix(rid: str) -> str:
    return rid.removeprefix("resp_")


def _message(r: Reply, rid: str, status: str, text: str | None = None) -> dict[str, Any]:
    content = [] if text is None else [_part(text)]
    return {
        "id": f"msg_{_suffix(rid)}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call(cid: str, name: str, args: str, status: str) -> dict[str, Any]:
    return {
        "id": "fc_" + cid.removeprefix("call_"),
        "type": "function_call",
        "status": status,
        "arguments": args,
        "call_id": cid,
        "name": name,
    }


def _output(r: Reply, rid: str) -> list[dict[str, Any]]:
    status = "incomplete" if r.finish == "length" else "completed"
    out = []
    if r.text or not r.tool_calls:
        out.append(_message(r, rid, status, r.text))
    out += [_call(cid, name, args, "completed") for cid, name, args in r.tool_calls]
    return out


def _response(
    r: Reply | None, model: str, rid: str, created: int, echo: dict[str, Any]
) -> dict[str, Any]:
    """The Response object: in progress (``r`` None) or finished."""
    done = r is not None
    incomplete = r is not None and r.finish == "length"
    status = "in_progress" if not done else "incomplete" if incomplete else "completed"
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": _output(r, rid) if r is not None else [],
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"),
        "reasoning": echo.get("reasoning", {"effort": None, "summary": None}),
        "service_tier": "default",
        "store": echo.get("store", True),
        "temperature": echo.get("temperature", 1.0),
        "text": echo.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": echo.get("top_p", 1.0),
        "truncation": echo.get("truncation", "disabled"),
        "usage": _usage(r) if r is not None else None,
        "user": echo.get("user"),
        "metadata": echo.get("metadata", {}),
    }


def render(
    r: Reply, model: str, rid: str, created: int, echo: dict[str, Any] | None = None
) -> bytes:
    """The non-streamed response body."""
    return json.dumps(_response(r, model, rid, created, echo or {}), separators=(",", ":")).encode()


def render_stream(
    r: Reply,
    model: str,
    rid: str,
    created: int,
    include_usage: bool,
    echo: dict[str, Any] | None = None,
) -> list[Event]:
    """SSE events with the (unscaled) delay before each; usage comes with the
    final ``response.completed`` (``response.incomplete`` when cut by the token limit)."""
    echo = echo or {}
    seq = iter(range(1_000_000))
    events: list[Event] = []

    def emit(delay: float, kind: str, terminal: bool = False, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": next(seq), **fields}
        line = f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        events.append(Event(delay, line.encode(), terminal))

    pending = _response(None, model, rid, created, echo)
    emit(r.ttft_s, "response.created", response=pending)  # nothing before the first token
    emit(0.0, "response.in_progress", response=pending)
    final = _output(r, rid)
    index = 0
    if r.text or not r.tool_calls:
        msg = final[0]
        item_id = msg["id"]
        emit(
            0.0, "response.output_item.added", output_index=0, item=_message(r, rid, "in_progress")
        )
        emit(
            0.0,
            "response.content_part.added",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=_part(""),
        )
        for piece, share in split_text(r.text):
            emit(
                r.per_token_s * r.completion_tokens * share,
                "response.output_text.delta",
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        emit(
            0.0,
            "response.output_text.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=r.text,
            logprobs=[],
        )
        emit(
            0.0,
            "response.content_part.done",
            item_id=item_id,
            output_index=0,
            content_index=0,
            part=_part(r.text),
        )
        emit(0.0, "response.output_item.done", output_index=0, item=msg)
        index = 1
    for k, (cid, name, args) in enumerate(r.tool_calls):
        i = index + k
        item = _call(cid, name, "", "in_progress")
        emit(0.0, "response.output_item.added", output_index=i, item=item)
        emit(
            r.per_token_s * r.completion_tokens,
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=i,
            delta=args,
        )
        emit(
            0.0,
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=i,
            name=name,
            arguments=args,
        )
        emit(0.0, "response.output_item.done", output_index=i, item=final[i])
    done = _response(r, model, rid, created, echo)
    kind = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
    emit(0.0, kind, terminal=True, response=done)
    return events
