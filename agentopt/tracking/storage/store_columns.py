"""A CallRecord as flat columns: what SQL record stores index and aggregate.

SQL stores (SQLite, PostgreSQL) keep each record twice over: as its whole JSON
(the source of truth, read back into a CallRecord) and as the flat columns
below, derived from it once when it is written, so that filters, totals and
usage statistics are computed by the database without reading any JSON.

- ``model_label``: the model that answered, else the one requested, else ``"?"``
  (what per-model totals group by);
- ``ts``: the record's timestamp in seconds since the epoch (UTC);
- ``ok``: 1 when the call succeeded (no error, no HTTP status ≥ 400);
- ``status_class``: ``"2xx"``/``"3xx"``/``"4xx"``/``"5xx"`` from the HTTP status,
  else ``"no_response"`` for a failed call that got no HTTP answer (connection
  error, timeout), else ``"2xx"``;
- ``tool_calls``: tool calls in the response (OpenAI chat and Responses,
  Anthropic, Gemini); 0 when the body was redacted;
- ``day`` / ``hour``: the UTC day / hour of ``ts``, counted from the epoch
  (what statistics group by: an integer, never a date formatted per row);
- ``fast_latency_us`` / ``fast_ttft_us``: the latency / TTFT in whole
  microseconds of a successful call that reached the provider (not a cache
  hit), else NULL: the values latency percentiles rank;
- ``estimated_input_tokens`` / ``estimated_output_tokens``: the independent
  tokenizer count of the call (:mod:`agentopt.tracking.analytics.token_estimate`), NULL
  when it could not be counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from agentopt.records import CallRecord

__all__ = [
    "COLUMNS",
    "FILTER_FIELDS",
    "count_tool_calls",
    "day_hour",
    "day_label",
    "hour_label",
    "microseconds",
    "model_label",
    "row_of",
    "seconds",
    "status_class",
    "timestamp_seconds",
]

#: (name, SQL type) of each flat column, in insert order (``json`` is stored apart).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("call_id", "TEXT"),
    ("ts", "REAL"),
    ("timestamp", "TEXT"),
    ("session_id", "TEXT"),
    ("data_id", "TEXT"),
    ("combo_id", "TEXT"),
    ("agent_id", "TEXT"),
    ("alias", "TEXT"),
    ("provider", "TEXT"),
    ("requested_model", "TEXT"),
    ("model", "TEXT"),
    ("model_label", "TEXT"),
    ("status_code", "INTEGER"),
    ("status_class", "TEXT"),
    ("ok", "INTEGER"),
    ("error", "TEXT"),
    ("prompt_tokens", "INTEGER"),
    ("completion_tokens", "INTEGER"),
    ("cached_tokens", "INTEGER"),
    ("reasoning_tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("latency_seconds", "REAL"),
    ("ttft_seconds", "REAL"),
    ("first_byte_seconds", "REAL"),
    ("usage_known", "INTEGER"),
    ("cached", "INTEGER"),
    ("stream", "INTEGER"),
    ("tool_calls", "INTEGER"),
    ("request_url", "TEXT"),
    # schema version 4: gateway attempts
    ("request_id", "TEXT"),
    ("attempt", "INTEGER"),
    # schema version 5: what usage statistics group and rank by, as integers;
    # the independent (tokenizer) count of the call's tokens
    ("day", "INTEGER"),
    ("hour", "INTEGER"),
    ("fast_latency_us", "INTEGER"),
    ("fast_ttft_us", "INTEGER"),
    ("estimated_input_tokens", "INTEGER"),
    ("estimated_output_tokens", "INTEGER"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

#: Record id fields the tracker filters by (``query(data_id=..., ...)``).
FILTER_FIELDS = ("data_id", "combo_id", "agent_id", "session_id")


def model_label(record: CallRecord) -> str:
    """The model a call is counted under: answered, else requested, else ``"?"``."""
    return record.model or record.requested_model or "?"


def status_class(status_code: int | None, ok: bool) -> str:
    """``"2xx"``… from an HTTP status; ``"no_response"`` for a failure with none."""
    if status_code is not None:
        return f"{status_code // 100}xx"
    return "2xx" if ok else "no_response"


def timestamp_seconds(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 timestamp (naive means UTC)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def count_tool_calls(body: Any) -> int:
    """Tool calls in a response body of any supported wire format."""
    if not isinstance(body, Mapping):
        return 0
    n = 0
    choices = body.get("choices")
    if isinstance(choices, list):  # OpenAI Chat Completions
        for choice in choices:
            if isinstance(choice, Mapping):
                message = choice.get("message") or choice.get("delta")
                if isinstance(message, Mapping):
                    calls = message.get("tool_calls")
                    if isinstance(calls, list):
                        n += len(calls)
    content = body.get("content")
    if isinstance(content, list):  # Anthropic Messages
        n += sum(1 for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use")
    output = body.get("output")
    if isinstance(output, list):  # OpenAI Responses
        n += sum(1 for o in output if isinstance(o, Mapping) and o.get("type") == "function_call")
    candidates = body.get("candidates")
    if isinstance(candidates, list):  # Gemini
        for cand in candidates:
            parts = (cand.get("content") or {}).get("parts") if isinstance(cand, Mapping) else None
            if isinstance(parts, list):
                n += sum(1 for p in parts if isinstance(p, Mapping) and "functionCall" in p)
    return n


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def day_hour(ts: float) -> tuple[int, int]:
    """The UTC (day, hour) since the epoch of ``ts`` seconds, as the reference
    statistics see it (``datetime.fromtimestamp``, which rounds to the microsecond)."""
    when = datetime.fromtimestamp(ts, UTC)
    day = when.toordinal() - _EPOCH_DAY
    return day, day * 24 + when.hour


def day_label(day: int) -> str:
    """``"YYYY-MM-DD"`` of a :func:`day_hour` day."""
    return date.fromordinal(day + _EPOCH_DAY).isoformat()


def hour_label(hour: int) -> str:
    """``"YYYY-MM-DDTHH:00"`` of a :func:`day_hour` hour."""
    return f"{day_label(hour // 24)}T{hour % 24:02d}:00"


def microseconds(value: float | None) -> int | None:
    """A duration in whole microseconds, the integer whose millionth is
    :func:`seconds` ``(value)`` exactly."""
    return None if value is None else round(seconds(value) * 1_000_000)


def seconds(value: float) -> float:
    """A duration to the microsecond: how latency percentiles are reported (so
    a percentile is the same number from SQL text and from Python floats)."""
    return round(float(value), 6)


def row_of(record: CallRecord) -> tuple[Any, ...]:
    """The flat columns of ``record``, in :data:`COLUMNS` order."""
    ok = record.ok
    ts = timestamp_seconds(record.timestamp)
    day, hour = day_hour(ts)
    fast = ok and not record.cached
    return (
        record.call_id,
        ts,
        record.timestamp,
        record.session_id,
        record.data_id,
        record.combo_id,
        record.agent_id,
        getattr(record, "alias", None),
        record.provider,
        record.requested_model,
        record.model,
        model_label(record),
        record.status_code,
        status_class(record.status_code, ok),
        int(ok),
        record.error,
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_tokens,
        record.reasoning_tokens,
        record.cost_usd,
        record.latency_seconds,
        record.ttft_seconds,
        record.first_byte_seconds,
        int(record.usage_known),
        int(record.cached),
        int(record.stream),
        count_tool_calls(record.response_body),
        record.request_url,
        record.request_id,
        record.attempt,
        day,
        hour,
        microseconds(record.latency_seconds) if fast else None,
        microseconds(record.ttft_seconds) if fast else None,
        record.estimated_input_tokens,
        record.estimated_output_tokens,
    )
