"""OpenAI chat-completions wire format: parse a request, render a reply or an error."""

from __future__ import annotations

import json
from typing import Any

from agentopt.sim.engine import Reply, SimRequest, ToolSpec
from agentopt.sim.wire import BadRequest, Event, split_text

#: an SSE event whose data is not JSON (the ``malformed`` fault)
MALFORMED_EVENT = b'data: {"choices": [{"delta": {"content": "\n\n'

__all__ = [
    "MALFORMED_EVENT",
    "BadRequest",
    "error_body",
    "output_format",
    "parse",
    "render",
    "render_stream",
]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    529: "server_error",
}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, param: str | None = None) -> bytes:
    err = {
        "message": message,
        "type": _ERROR_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        ),
        "param": param,
        "code": _ERROR_CODES.get(status),
    }
    return json.dumps({"error": err}).encode()


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "\n".join(parts)
    return str(content)


def parse(body: Any) -> SimRequest:
    """A :class:`SimRequest` from a decoded JSON body; :class:`BadRequest` if invalid."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    lines = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")
        text = _text_of(m.get("content"))
        for tc in m.get("tool_calls") or ():
            fn = tc.get("function", {}) if isinstance(tc, dict) else {}
            text += f"\n[tool call {fn.get('name')}({fn.get('arguments')})]"
        lines.append(f"{m['role']}: {text}")
    tools = []
    for i, t in enumerate(body.get("tools") or ()):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"tools[{i}] must have function.name", f"tools[{i}]")
        tools.append(ToolSpec(fn["name"], fn.get("parameters") or {}))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name", "required")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise BadRequest("max_tokens must be a positive integer", "max_tokens")
    stream_options = body.get("stream_options") or {}
    fmt = body.get("response_format")
    return SimRequest(
        model=model,
        text="\n".join(lines),
        n_messages=len(messages),
        tools=tools,
        tool_choice=str(choice),
        after_tool_result=messages[-1].get("role") == "tool",
        max_tokens=max_tokens,
        stream=bool(body.get("stream")),
        include_usage=bool(stream_options.get("include_usage")),
        output_format=output_format(fmt, "response_format"),
    )


def output_format(fmt: Any, where: str) -> dict[str, Any] | None:
    """``response_format`` (chat: the schema under ``json_schema``) or the Responses
    API's ``text.format`` (the schema at the top) as ``{"type", "schema"}``."""
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise BadRequest(
            f"{where}.type must be one of 'text', 'json_object', 'json_schema'", f"{where}.type"
        )
    if fmt["type"] != "json_schema":
        return {"type": fmt["type"]}
    spec = fmt.get("json_schema", fmt)
    target = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(target, dict):
        raise BadRequest(f"{where}: a json_schema format needs a 'schema' object", where)
    return {"type": "json_schema", "schema": target}


def _usage(r: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


_USAGE_TAIL = b',"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_agentopt_sim"}'


def render(r: Reply, model: str, rid: str, created: int) -> bytes:
    """The response body; pre-encoded pieces around the few JSON-encoded values."""
    if r.tool_calls:
        calls = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in r.tool_calls
        ]
        message = (
            f'{{"role":"assistant","content":{json.dumps(r.text or None)},'
            f'"tool_calls":{json.dumps(calls, separators=(",", ":"))}}}'
        )
    else:
        message = f'{{"role":"assistant","content":{json.dumps(r.text or None)}}}'
    head = (
        f'{{"id":"{rid}","object":"chat.completion","created":{created},"model":{json.dumps(model)},'
        f'"choices":[{{"index":0,"message":{message},"finish_reason":"{r.finish}","logprobs":null}}],'
        f'"usage":{{"prompt_tokens":{r.prompt_tokens},"completion_tokens":{r.completion_tokens},'
        f'"total_tokens":{r.prompt_tokens + r.completion_tokens}'
    )
    return head.encode() + _USAGE_TAIL


def render_stream(r: Reply, model: str, rid: str, created: int, include_usage: bool) -> list[Event]:
    """SSE events with the (unscaled) delay before each."""
    head = (
        f'{{"id":"{rid}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(model)},"system_fingerprint":"fp_agentopt_sim",'
    )
    tail = ',"usage":null}' if include_usage else "}"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f'data: {head}"choices":[{json.dumps(choice, separators=(",", ":"))}]{tail}\n\n'.encode()

    # nothing is sent before the modelled time to first token
    events: list[Event] = [Event(r.ttft_s, chunk({"role": "assistant", "content": ""}))]
    if r.tool_calls:
        for k, (cid, name, args) in enumerate(r.tool_calls):
            start = {
                "index": k,
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            events.append(Event(0.0, chunk({"tool_calls": [start]})))
            delta = {"index": k, "function": {"arguments": args}}
            events.append(
                Event(r.per_token_s * r.completion_tokens, chunk({"tool_calls": [delta]}))
            )
    else:
        for piece, share in split_text(r.text):
            delay = r.per_token_s * r.completion_tokens * share
            events.append(Event(delay, chunk({"content": piece})))
    events.append(Event(0.0, chunk({}, r.finish)))
    if include_usage:
        usage = json.dumps(_usage(r), separators=(",", ":"))
        events.append(Event(0.0, f'data: {head}"choices":[],"usage":{usage}}}\n\n'.encode()))
    events.append(Event(0.0, b"data: [DONE]\n\n", terminal=True))
    return events
