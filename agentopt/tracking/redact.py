"""Keep secrets, and on request message content, out of records.

API keys travel in headers (``Authorization``, ``x-api-key``,
``x-goog-api-key``), in Gemini's ``?key=`` query parameter, and in litellm
keyword arguments (``api_key``): :func:`scrub_headers`, :func:`scrub_url` and
:func:`scrub_body` remove them always. With ``redact=True``,
:func:`scrub_body` also replaces message content (prompts, system prompts,
inputs, response text, tool-call arguments) with :data:`REDACTED`, keeping
the structure, the model and the usage.

>>> scrub_headers({"Authorization": "Bearer sk-secret", "Accept": "*/*"})
{'Authorization': '<redacted>', 'Accept': '*/*'}
>>> scrub_body({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, redact=True)
{'model': 'm', 'messages': '<redacted>'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_HEADERS", "scrub_body", "scrub_headers", "scrub_url"]

REDACTED = "<redacted>"

#: Lower-cased header names whose values are credentials.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
    }
)

# Body keys that hold credentials (litellm kwargs, ``extra_headers``, some proxies).
_SECRET_KEYS = SECRET_HEADERS | frozenset(
    {"api_key", "apikey", "aws_secret_access_key", "aws_session_token", "client_secret"}
)
_SECRET_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token"})

# Keys whose values are message content, in requests and responses of every wire.
_CONTENT_KEYS = frozenset(
    {
        # requests
        "messages",
        "system",
        "contents",
        "input",
        "instructions",
        "prompt",
        "systemInstruction",
        "system_instruction",
        # responses
        "content",
        "output",
        "output_text",
        "text",
        "parts",
        "arguments",
        "args",
        "refusal",
        "thinking",
        "reasoning_content",
        "partial_json",
    }
)


def scrub_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """A copy of ``headers`` with credential values replaced by :data:`REDACTED`."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: REDACTED if k.lower() in SECRET_HEADERS else v for k, v in items}


def scrub_url(url: object) -> str:
    """``url`` as a string without credentials in its query (Gemini's ``?key=``)
    or its userinfo."""
    text = str(url)
    if "?" not in text and "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text.split("?", 1)[0]
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub_body(body: Any, *, redact: bool = False) -> Any:
    """A copy of a JSON-like request or response body without credentials and,
    when ``redact``, without message content. Usage and model are kept. A body
    that is raw text (a response that was not JSON) is all content."""
    if redact:
        return REDACTED if isinstance(body, str | bytes) else _walk(body, True)
    return _drop_secrets(body)


def _drop_secrets(body: Any) -> Any:
    """Credentials sit at the top of a body or one mapping down (``extra_headers``,
    ``metadata``), never inside messages: look there only, and copy only when
    something must go (this runs for every record)."""
    if type(body) is dict and not any(map(_suspect, body.items())):
        return body  # the usual body, checked with no copy and no lower-casing
    if not isinstance(body, Mapping):
        return body
    out: dict[str, Any] | None = None
    for k, v in body.items():
        new = v
        if str(k).lower() in _SECRET_KEYS:
            new = REDACTED
        elif isinstance(v, Mapping) and any(str(kk).lower() in _SECRET_KEYS for kk in v):
            new = {kk: REDACTED if str(kk).lower() in _SECRET_KEYS else vv for kk, vv in v.items()}
        if new is not v:
            if out is None:
                out = dict(body)
            out[k] = new
    return body if out is None else out


def _suspect(item: tuple[Any, Any]) -> bool:
    """Whether one entry of a body may hold a credential (then the careful
    path looks again): a key that is no str or names a secret, or a mapping
    value with such a key (where nested credentials sit)."""
    key, value = item
    if type(key) is not str or key.lower() in _SECRET_KEYS:
        return True
    if type(value) is dict:
        return not all(type(k) is str and k.lower() not in _SECRET_KEYS for k in value)
    return isinstance(value, Mapping)


def _walk(obj: Any, redact: bool) -> Any:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = str(k)
            secret = key.lower() in _SECRET_KEYS
            if secret or (redact and key in _CONTENT_KEYS and v is not None):
                out[key] = REDACTED
            else:
                out[key] = _walk(v, redact)
        return out
    if isinstance(obj, list | tuple):
        return [_walk(v, redact) for v in obj]
    return obj
