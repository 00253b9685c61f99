"""Small raw-ASGI helpers shared by the gateway's apps (no framework on the hot path)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "HOP_HEADERS",
    "BodyTooLarge",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "error",
    "read_body",
    "respond",
    "respond_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the
# ones httpx recomputes.
HOP_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


class BodyTooLarge(Exception):
    """The request body is larger than the limit."""


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole request body; :class:`BodyTooLarge` past ``limit`` bytes."""
    parts = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge(size)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, json.dumps(payload).encode(), "application/json", headers)


async def error(
    send: Send,
    status: int,
    message: str,
    *,
    kind: str = "gateway_error",
    wire: str = "openai",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An error in the caller's wire format (OpenAI's or Anthropic's shape)."""
    if wire == "anthropic":
        payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        payload = {"error": {"message": message, "type": kind, "code": status}}
    await respond_json(send, status, payload, headers)
