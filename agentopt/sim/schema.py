"""Values that fit a JSON schema: tool-call arguments and structured outputs.

:func:`fake` draws a value valid for a schema (types, ``enum``/``const``,
required properties, ``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, nullable
type lists, numeric bounds, string lengths and common formats, array lengths).
``pattern`` is not honoured. :func:`structured` fills a response schema and puts
the model's answer in the field that asks for it (``answer``, ``result``,
``choice``…), typed as that field wants it.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

__all__ = ["answer_key", "fake", "keys_in_prompt", "structured"]

_MAX_DEPTH = 6
_ANSWER_NAMES = ("answer", "final_answer", "result", "choice", "solution", "output", "value")
_TEXT_NAMES = ("reasoning", "explanation", "rationale", "thoughts", "analysis", "justification")
_FORMATS = {
    "date": "2025-01-15",
    "date-time": "2025-01-15T12:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
}
_KEY = re.compile(r'"([A-Za-z_][A-Za-z0-9_]{0,40})"\s*:')


class _Ctx:
    def __init__(self, rng: random.Random, words: list[str], root: dict[str, Any]) -> None:
        self.rng = rng
        self.words = words or ["example"]
        self.root = root


def _resolve(schema: Any, ctx: _Ctx, depth: int = 0) -> dict[str, Any]:
    """``schema`` with ``$ref`` followed (local references only) and ``allOf`` merged."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#") and depth < _MAX_DEPTH:
        target: Any = ctx.root
        for part in ref.lstrip("#").strip("/").split("/"):
            if not part:
                continue
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"), {})
                if isinstance(target, dict)
                else {}
            )
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {**_resolve(target, ctx, depth + 1), **rest}
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        props: dict[str, Any] = dict(merged.get("properties") or {})
        required: list[str] = list(merged.get("required") or [])
        for part in parts:
            sub = _resolve(part, ctx, depth + 1)
            props.update(sub.get("properties") or {})
            required += [r for r in sub.get("required") or [] if r not in required]
            merged = {**sub, **merged}
        if props:
            merged["properties"], merged["required"] = props, required
        return merged
    return schema


def _kind(schema: dict[str, Any], rng: random.Random) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        options = [k for k in kind if k != "null"] or ["null"]
        return str(options[0])
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _number(schema: dict[str, Any], rng: random.Random, integer: bool) -> float | int:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    lo = float(lo) if isinstance(lo, int | float) else None
    hi = float(hi) if isinstance(hi, int | float) else None
    if lo is None and hi is None:
        lo, hi = 1.0, 100.0
    elif lo is None:
        assert hi is not None
        lo = 1.0 if hi >= 1 else hi - 100.0
    elif hi is None:
        hi = lo + 100.0
    assert lo is not None and hi is not None
    if integer:
        a = math.ceil(lo + (1e-9 if "exclusiveMinimum" in schema else 0))
        b = math.floor(hi - (1e-9 if "exclusiveMaximum" in schema else 0))
        return rng.randint(a, max(a, b))
    value = round(rng.uniform(lo, hi), 2)
    if value <= lo and "exclusiveMinimum" in schema:
        value = (lo + hi) / 2
    if value >= hi and "exclusiveMaximum" in schema:
        value = (lo + hi) / 2
    return value


def _string(schema: dict[str, Any], ctx: _Ctx) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    text = ctx.rng.choice(ctx.words)
    lo = schema.get("minLength")
    hi = schema.get("maxLength")
    if isinstance(lo, int) and len(text) < lo:
        text = (text + " ") * (lo // max(1, len(text) + 1) + 1)
        text = text[: max(lo, len(text.rstrip()))]
    if isinstance(hi, int) and len(text) > hi:
        text = text[:hi]
    return text


def fake(schema: Any, rng: random.Random, words: list[str], root: Any = None) -> Any:
    """A value valid for ``schema``, drawn with ``rng``; strings are taken from ``words``.
    ``root`` is the document ``$ref`` points into (``schema`` itself by default)."""
    root = root if isinstance(root, dict) else schema if isinstance(schema, dict) else {}
    return _fake(schema, _Ctx(rng, words, root), 0)


def _fake(schema: Any, ctx: _Ctx, depth: int) -> Any:
    s = _resolve(schema, ctx)
    rng = ctx.rng
    if "const" in s:
        return s["const"]
    if isinstance(s.get("enum"), list) and s["enum"]:
        return rng.choice(s["enum"])
    for key in ("anyOf", "oneOf"):
        options = s.get(key)
        if isinstance(options, list) and options:
            solid = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _fake(rng.choice(solid or options), ctx, depth + 1)
    kind = _kind(s, rng)
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        return _number(s, rng, kind == "integer")
    if kind == "array":
        lo: int = s["minItems"] if isinstance(s.get("minItems"), int) else 1
        hi: int = s["maxItems"] if isinstance(s.get("maxItems"), int) else max(lo, 2)
        n = lo if depth >= _MAX_DEPTH else rng.randint(lo, max(lo, min(hi, lo + 2)))
        return [_fake(s.get("items") or {}, ctx, depth + 1) for _ in range(n)]
    if kind == "object":
        return _object(s, ctx, depth)
    return _string(s, ctx)


def _object(s: dict[str, Any], ctx: _Ctx, depth: int) -> dict[str, Any]:
    props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
    assert isinstance(props, dict)
    required = set(s.get("required") or ())
    out: dict[str, Any] = {}
    for name, spec in props.items():
        if name not in required and (depth >= _MAX_DEPTH or ctx.rng.random() < 0.5):
            continue
        out[name] = _fake(spec, ctx, depth + 1)
    return out


def answer_key(names: list[str]) -> str | None:
    """The property most likely to hold the answer, or None."""
    lowered = {n.lower(): n for n in names}
    for want in _ANSWER_NAMES:
        if want in lowered:
            return lowered[want]
    for n in names:
        if "answer" in n.lower() or "result" in n.lower():
            return n
    return None


def _coerce(answer: str, spec: dict[str, Any], ctx: _Ctx) -> Any:
    """``answer`` as a value of ``spec``'s type, or a fresh fake value if it cannot be one."""
    options = spec.get("enum")
    if isinstance(options, list) and options:
        for o in options:
            if str(o).strip().lower() == answer.strip().lower():
                return o
        for o in options:
            if isinstance(o, str) and o.strip().lower().startswith(answer.strip().lower()):
                return o
        return _fake(spec, ctx, 1)
    kind = _kind(spec, ctx.rng)
    try:
        if kind == "integer":
            return int(answer)
        if kind == "number":
            return float(answer)
    except ValueError:
        return _fake(spec, ctx, 1)
    if kind == "string":
        return answer
    if kind == "array":
        return [_coerce(answer, _resolve(spec.get("items") or {}, ctx), ctx)]
    return _fake(spec, ctx, 1)


def structured(
    schema: dict[str, Any] | None,
    rng: random.Random,
    words: list[str],
    answer: str,
    prose: str,
    keys: list[str] | None = None,
) -> tuple[Any, bool]:
    """A JSON value for a structured-output request, and whether ``prose`` found a place.

    With ``schema`` (a JSON-schema object), the object fits it; without one it has
    ``keys`` (default ``answer`` and ``reasoning``). The answer field gets ``answer``;
    ``prose`` (free text the model adds, e.g. its provenance marker) goes into a
    free-text field when the schema has one.
    """
    if not schema:
        names = keys or ["answer", "reasoning"]
        first = answer_key(names) or names[0]
        out: dict[str, Any] = {
            n: (answer if n == first else rng.choice(words or ["ok"])) for n in names
        }
        spare = next((n for n in names if n != first), None)
        if spare is not None:
            out[spare] = prose
        return out, spare is not None
    ctx = _Ctx(rng, words, schema)
    s = _resolve(schema, ctx)
    props = s.get("properties") if isinstance(s.get("properties"), dict) else None
    value = _fake(schema, ctx, 0)
    if not props or not isinstance(value, dict):
        return value, False
    required = set(s.get("required") or ())
    key = answer_key(list(props))
    if key is not None:
        value[key] = _coerce(answer, _resolve(props[key], ctx), ctx)
    placed = False
    names = sorted(props, key=lambda n: (n.lower() not in _TEXT_NAMES, list(props).index(n)))
    for name in names:
        spec = _resolve(props[name], ctx)
        free = _kind(spec, rng) == "string" and not any(
            k in spec for k in ("enum", "const", "format", "pattern", "maxLength")
        )
        if name != key and free and (name in value or name in required):
            value[name] = prose
            placed = True
            break
    return value, placed


def keys_in_prompt(text: str) -> list[str]:
    """Keys of a JSON example in a prompt (``{"answer": …, "why": …}``), in order."""
    seen: list[str] = []
    for k in _KEY.findall(text):
        if k not in seen:
            seen.append(k)
    return seen
