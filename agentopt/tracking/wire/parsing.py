"""Read LLM requests and responses of every wire format, never raising.

- :func:`request_model`, :func:`with_model`, :func:`is_stream_request` read and
  rewrite requests (Gemini names its model in the URL path, the others in the body);
- :func:`parse_body` turns a whole response body into a :class:`ParsedResponse`;
- :class:`StreamParser` does the same for a stream, fed chunk by chunk.

>>> p = parse_body("openai", 200, b'{"model": "gpt-4o", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}')
>>> (p.model, p.usage.total_tokens, p.error)
('gpt-4o', 5, None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx

from agentopt.records import PARSE_FAILED, Usage
from agentopt.tracking.providers import Wire
from agentopt.tracking.wire.sse import StreamParser
from agentopt.tracking.wire.wire_formats import (
    ParsedResponse,
    error_text,
    reported_model,
    snippet,
    usage_for,
)

__all__ = [
    "PARSE_FAILED",
    "ParsedResponse",
    "StreamParser",
    "is_stream_request",
    "parse_body",
    "request_model",
    "with_model",
]

# .../models/<model>:generateContent  (the model may contain dots and dashes)
_GEMINI_MODEL = re.compile(r"/models/([^/:]+):")


def _path(url: httpx.URL | str) -> str:
    if isinstance(url, httpx.URL):
        return url.path
    try:
        return httpx.URL(url).path
    except Exception:
        return str(url)


def request_model(wire: Wire, url: httpx.URL | str, body: Mapping[str, Any] | None) -> str | None:
    """The model a request asks for: from the URL path for Gemini, else ``body["model"]``."""
    if wire == "gemini":
        m = _GEMINI_MODEL.search(_path(url))
        return m.group(1) if m else None
    if isinstance(body, Mapping):
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
    return None


def with_model(
    wire: Wire, url: httpx.URL, body: dict[str, Any], model: str
) -> tuple[httpx.URL, dict[str, Any]]:
    """The request rewritten to ask for ``model`` (a new URL and a new body dict)."""
    if wire == "gemini":
        path = url.path
        m = _GEMINI_MODEL.search(path)
        if m is not None:
            path = f"{path[: m.start(1)]}{model}{path[m.end(1) :]}"
        else:  # no model segment: nothing to rewrite in the path
            return url, dict(body)
        return url.copy_with(path=path), dict(body)
    new_body = dict(body)
    new_body["model"] = model
    return url, new_body


def is_stream_request(wire: Wire, url: httpx.URL | str, body: Mapping[str, Any] | None) -> bool:
    """Whether the request asks for a streamed response."""
    if wire == "gemini":
        return _path(url).endswith(":streamGenerateContent")
    return isinstance(body, Mapping) and body.get("stream") is True


def parse_body(wire: Wire, status_code: int, content: bytes) -> ParsedResponse:
    """Parse a whole (non-streamed) response body. Never raises."""
    try:
        return _parse_body(wire, status_code, content)
    except Exception as exc:  # defensive: a parser bug must never reach the caller
        return ParsedResponse(
            model=PARSE_FAILED if status_code < 400 else None,
            error=f"could not parse response body: {type(exc).__name__}: {exc}",
            body=snippet(content),
        )


def _decode(content: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(content), None
    except (ValueError, TypeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _parse_body(wire: Wire, status_code: int, content: bytes) -> ParsedResponse:
    obj, why = _decode(content)
    if status_code >= 400:
        msg = error_text(obj) if why is None else None
        if msg is None:
            msg = snippet(content).strip() or httpx.codes.get_reason_phrase(status_code)
        return ParsedResponse(
            model=None,
            error=f"HTTP {status_code}: {msg}",
            body=obj if why is None else snippet(content),
        )
    if why is not None:
        return ParsedResponse(
            model=PARSE_FAILED,
            error=f"response body is not valid JSON ({why}): {snippet(content)!r}",
            body=snippet(content),
        )
    if wire == "gemini" and isinstance(obj, list):
        # streamGenerateContent without alt=sse answers with a JSON array of chunks.
        return _merge_gemini_chunks(obj)
    if not isinstance(obj, dict):
        return ParsedResponse(
            model=PARSE_FAILED,
            error=f"response body is JSON but not an object: {snippet(content)!r}",
            body=obj,
        )
    model = reported_model(wire, obj)
    usage = usage_for(wire, obj)
    error = error_text(obj) if "error" in obj else None
    if error is None and wire == "openai" and obj.get("status") == "failed":
        error = "response failed"
    return ParsedResponse(
        model=model,
        usage=usage or Usage(),
        error=error,
        body=obj,
        usage_found=usage is not None,
    )


def _merge_gemini_chunks(chunks: list[Any]) -> ParsedResponse:
    parser = StreamParser("gemini")
    for chunk in chunks:
        parser.feed_event(None, chunk)
    return parser.finish()
