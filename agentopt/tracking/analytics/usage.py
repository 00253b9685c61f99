"""Usage statistics of recorded calls: counts, tokens, cost, latency, by any key.

:func:`usage_stats` answers the same question for every source, with the
same numbers: an LLMTracker, a record store, or a list of CallRecords. A SQL
store (SQLite, PostgreSQL) computes it in the database, reading only the flat
columns (:mod:`agentopt.tracking.storage.store_columns`); other sources are computed
here, in Python, by the reference implementation the SQL one is tested against.

Definitions (what each figure counts):

- ``requests``: calls (cache hits included); ``errors``: calls that failed
  (an error, or an HTTP status ≥ 400), ``error_rate`` = errors / requests;
  ``status``: calls per status class (``"2xx"``, ``"4xx"``, ``"5xx"``, …, and
  ``"no_response"`` for a failure with no HTTP answer);
- tokens: sums as recorded (cache hits included);
- ``cost_usd``: the sum over *priced* calls (None when no call is priced);
  ``unpriced_requests`` are counted apart, never as $0;
- latency and TTFT percentiles (p50/p90/p99, nearest rank: the smallest value
  with at least p % of the values at or below it; to the microsecond) and
  ``output_tokens_per_second`` (output tokens / seconds) over successful calls
  that reached the provider (cache hits replay an old latency: left out);
- ``tool_calls``: tool calls in the responses (0 for redacted bodies);
- billing reconciliation: ``estimated_requests`` calls carry an independent
  tokenizer count of their tokens (:mod:`agentopt.tracking.analytics.token_estimate`);
  over those calls, ``estimated_input_tokens`` / ``estimated_output_tokens``
  sum the counts and ``input_tokens_difference`` / ``output_tokens_difference``
  sum reported − estimated (the provider's figure against ours).

Filters: ``provider``, ``model`` (the model that answered, else the one
requested), ``alias``, ``combo_id``, ``data_id``, ``agent_id``, ``session_id``,
``start_date`` (inclusive) and ``end_date`` (exclusive; a plain date
``"2026-12-07"`` includes that whole day), ``status`` (``"ok"``, ``"error"``, a
class like ``"5xx"`` or ``"no_response"``, or a code like ``429``).
``group_by`` takes any of :data:`GROUP_KEYS` (``"model,day"`` or a sequence).

>>> from agentopt.records import CallRecord
>>> recs = [CallRecord(model="m", cost_usd=0.5, latency_seconds=1.0, completion_tokens=10),
...         CallRecord(model="m", cost_usd=None, latency_seconds=3.0, completion_tokens=30)]
>>> s = usage_stats(recs).total
>>> (s.requests, s.cost_usd, s.unpriced_requests, s.latency_seconds["p50"])
(2, 0.5, 1, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentopt.exceptions import ConfigError
from agentopt.records import CallRecord
from agentopt.tracking.storage.store_columns import (
    model_label,
    seconds,
    status_class,
    timestamp_seconds,
)

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

__all__ = [
    "GROUP_KEYS",
    "PERCENTILES",
    "UsageGroup",
    "UsageStats",
    "print_usage",
    "usage_stats",
]

#: Keys statistics can be grouped by.
GROUP_KEYS = (
    "provider",
    "model",
    "requested_model",
    "alias",
    "combo_id",
    "data_id",
    "agent_id",
    "session_id",
    "status",
    "day",
    "hour",
)
#: The percentiles reported for latency and time to first token.
PERCENTILES = (50, 90, 99)

_COLUMN_OF = {"model": "model_label", "status": "status_class"}


@dataclass(frozen=True)
class UsageGroup:
    """The statistics of one group of calls (``key`` maps each group-by key to
    its value; ``{}`` for all calls). See the module docstring for definitions."""

    key: dict[str, Any]
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    status: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    priced_requests: int = 0
    unpriced_requests: int = 0
    cache_hits: int = 0
    cached_latency_seconds: float = 0.0
    latency_seconds: dict[str, float | None] = field(default_factory=dict)
    ttft_seconds: dict[str, float | None] = field(default_factory=dict)
    output_tokens_per_second: float | None = None
    tool_calls: int = 0
    estimated_requests: int = 0
    estimated_input_tokens: int = 0
    estimated_output_tokens: int = 0
    input_tokens_difference: int = 0
    output_tokens_difference: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UsageStats:
    """:func:`usage_stats`' answer: one :class:`UsageGroup` per group (in order
    of first appearance), or exactly one (``total``) when not grouped."""

    groups: list[UsageGroup]
    group_by: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> UsageGroup:
        """The one group of an ungrouped answer."""
        if self.group_by:
            raise ConfigError("UsageStats.total: these statistics are grouped; see .groups")
        return self.groups[0]

    def __iter__(self) -> Any:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return {
            "group_by": list(self.group_by),
            "filters": {k: str(v) for k, v in self.filters.items()},
            "groups": [g.as_dict() for g in self.groups],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per group; percentiles and status classes as their own columns."""
        import pandas as pd

        rows = []
        for g in self.groups:
            d = g.as_dict()
            row = dict(d.pop("key"))
            for name in ("latency_seconds", "ttft_seconds"):
                for p, v in d.pop(name).items():
                    row[f"{name}_{p}"] = v
            for cls, n in d.pop("status").items():
                row[f"status_{cls}"] = n
            row.update(d)
            rows.append(row)
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- filters
def _to_seconds(value: str | date | datetime, *, end: bool) -> float:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day) + (
            timedelta(days=1) if end else timedelta()
        )
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:  # YYYY-MM-DD: a whole day
                d = date.fromisoformat(text)
                return _to_seconds(d, end=end)
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"usage_stats: {'end' if end else 'start'}_date={value!r} is not an ISO date"
                " (YYYY-MM-DD) or date-time"
            ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _status_test(status: str | int) -> tuple[str, Any]:
    """(column, value) a status filter compares: ok, status_class or status_code."""
    text = str(status).strip().lower()
    if text == "ok":
        return "ok", 1
    if text == "error":
        return "ok", 0
    if text.isdigit():
        return "status_code", int(text)
    if (len(text) == 3 and text[0].isdigit() and text.endswith("xx")) or text == "no_response":
        return "status_class", text
    raise ConfigError(
        f"usage_stats: status={status!r}: give 'ok', 'error', a class like '5xx',"
        " 'no_response' or a code like 429"
    )


def normalize(
    filters: dict[str, Any], group_by: str | Sequence[str] | None
) -> tuple[list[tuple[str, str, Any]], tuple[str, ...]]:
    """Checked filters as (column, operator, value) and the group-by keys."""
    conds: list[tuple[str, str, Any]] = []
    for key, value in filters.items():
        if value is None:
            continue
        if key == "start_date":
            conds.append(("ts", ">=", _to_seconds(value, end=False)))
        elif key == "end_date":
            conds.append(("ts", "<", _to_seconds(value, end=True)))
        elif key == "status":
            col, v = _status_test(value)
            conds.append((col, "=", v))
        else:
            conds.append((_COLUMN_OF.get(key, key), "=", str(value)))
    if group_by is None:
        keys: tuple[str, ...] = ()
    elif isinstance(group_by, str):
        keys = tuple(k.strip() for k in group_by.split(",") if k.strip())
    else:
        keys = tuple(group_by)
    for k in keys:
        if k not in GROUP_KEYS:
            raise ConfigError(f"usage_stats: cannot group by {k!r}; keys: {', '.join(GROUP_KEYS)}")
    if len(set(keys)) != len(keys):
        raise ConfigError(f"usage_stats: group_by={list(keys)} names a key twice")
    return conds, keys


# --------------------------------------------------------------------------- reference (Python)
def _value(r: CallRecord, column: str) -> Any:
    if column == "ts":
        return timestamp_seconds(r.timestamp)
    if column == "ok":
        return int(r.ok)
    if column == "model_label":
        return model_label(r)
    if column == "status_class":
        return _status_class(r)
    return getattr(r, column, None)


def _status_class(r: CallRecord) -> str:
    return status_class(r.status_code, r.ok)


def _key_value(r: CallRecord, key: str) -> Any:
    if key in ("day", "hour"):
        when = datetime.fromtimestamp(timestamp_seconds(r.timestamp), UTC)
        return when.strftime("%Y-%m-%d" if key == "day" else "%Y-%m-%dT%H:00")
    return _value(r, _COLUMN_OF.get(key, key))


def _matches(r: CallRecord, conds: list[tuple[str, str, Any]]) -> bool:
    for col, op, v in conds:
        x = _value(r, col)
        if op == "=":
            if x != v:
                return False
        elif op == ">=":
            if not x >= v:
                return False
        elif not x < v:
            return False
    return True


def nearest_rank(sorted_values: Sequence[float], p: int) -> float | None:
    """The nearest-rank p-th percentile of ascending values (None when empty)."""
    n = len(sorted_values)
    if n == 0:
        return None
    return sorted_values[max(1, math.ceil(n * p / 100)) - 1]


def stats_of_records(
    records: Iterable[CallRecord], conds: list[tuple[str, str, Any]], keys: tuple[str, ...]
) -> list[UsageGroup]:
    """The reference implementation: groups in order of first appearance."""
    groups: dict[tuple[Any, ...], list[CallRecord]] = {}
    for r in records:
        if _matches(r, conds):
            groups.setdefault(tuple(_key_value(r, k) for k in keys), []).append(r)
    if not keys and not groups:
        groups[()] = []
    out = []
    for kv, rs in groups.items():
        fast = [r for r in rs if r.ok and not r.cached]
        lat = sorted(seconds(r.latency_seconds) for r in fast)
        ttft = sorted(seconds(r.ttft_seconds) for r in fast if r.ttft_seconds is not None)
        status: dict[str, int] = {}
        for r in rs:
            cls = _status_class(r)
            status[cls] = status.get(cls, 0) + 1
        priced = [r.cost_usd for r in rs if r.cost_usd is not None]
        errors = sum(not r.ok for r in rs)
        secs = sum(r.latency_seconds for r in fast)
        est = [r for r in rs if r.estimated_input_tokens is not None]
        est_out = [r for r in rs if r.estimated_output_tokens is not None]
        out.append(
            UsageGroup(
                key=dict(zip(keys, kv, strict=True)),
                requests=len(rs),
                errors=errors,
                error_rate=errors / len(rs) if rs else 0.0,
                status=dict(sorted(status.items())),
                input_tokens=sum(r.prompt_tokens for r in rs),
                output_tokens=sum(r.completion_tokens for r in rs),
                cached_tokens=sum(r.cached_tokens for r in rs),
                reasoning_tokens=sum(r.reasoning_tokens for r in rs),
                cost_usd=math.fsum(priced) if priced else None,
                priced_requests=len(priced),
                unpriced_requests=len(rs) - len(priced),
                cache_hits=sum(r.cached for r in rs),
                cached_latency_seconds=sum(r.latency_seconds for r in rs if r.cached),
                latency_seconds={f"p{p}": nearest_rank(lat, p) for p in PERCENTILES},
                ttft_seconds={f"p{p}": nearest_rank(ttft, p) for p in PERCENTILES},
                output_tokens_per_second=(
                    sum(r.completion_tokens for r in fast) / secs if secs > 0 else None
                ),
                tool_calls=_tool_calls(rs),
                estimated_requests=len(est),
                estimated_input_tokens=sum(r.estimated_input_tokens or 0 for r in est),
                estimated_output_tokens=sum(r.estimated_output_tokens or 0 for r in est_out),
                input_tokens_difference=sum(
                    r.prompt_tokens - (r.estimated_input_tokens or 0) for r in est
                ),
                output_tokens_difference=sum(
                    r.completion_tokens - (r.estimated_output_tokens or 0) for r in est_out
                ),
            )
        )
    return out


def _tool_calls(rs: list[CallRecord]) -> int:
    from agentopt.tracking.storage.store_columns import count_tool_calls

    return sum(count_tool_calls(r.response_body) for r in rs)


# --------------------------------------------------------------------------- entry point
def usage_stats(
    source: Any,
    *,
    provider: str | None = None,
    model: str | None = None,
    alias: str | None = None,
    combo_id: str | int | None = None,
    data_id: str | int | None = None,
    agent_id: str | int | None = None,
    session_id: str | None = None,
    start_date: str | date | datetime | None = None,
    end_date: str | date | datetime | None = None,
    status: str | int | None = None,
    group_by: str | Sequence[str] | None = None,
) -> UsageStats:
    """Usage statistics of the calls in ``source`` (an LLMTracker, a record
    store or CallRecords) that match every filter given, per group; see the
    module docstring for what each figure means."""
    filters = {
        "provider": provider,
        "model": model,
        "alias": alias,
        "combo_id": combo_id,
        "data_id": data_id,
        "agent_id": agent_id,
        "session_id": session_id,
        "start_date": start_date,
        "end_date": end_date,
        "status": status,
    }
    return compute(source, filters, group_by)


def compute(
    source: Any,
    filters: dict[str, Any],
    group_by: str | Sequence[str] | None,
    *,
    percentiles: bool = True,
) -> UsageStats:
    """:func:`usage_stats` with its filters as a dict; ``percentiles=False``
    leaves latency and TTFT percentiles out where that saves a SQL store work
    (the tracker's totals)."""
    conds, keys = normalize(filters, group_by)
    given = {k: v for k, v in filters.items() if v is not None}
    store = source
    inner = getattr(source, "store", None)
    if inner is not None and hasattr(inner, "append"):  # an LLMTracker
        store = inner
    sql = getattr(store, "usage_groups", None)
    if sql is not None:
        groups = sql(conds, keys, percentiles=percentiles)
    else:
        if hasattr(store, "all") and callable(store.all):
            records: Iterable[CallRecord] = store.all()
        else:
            records = source
        groups = stats_of_records(records, conds, keys)
    return UsageStats(groups=groups, group_by=keys, filters=given)


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_usage(stats: UsageStats, *, console: Console | None = None) -> None:
    """Two rich tables of the statistics, one row per group, narrow enough for
    80 columns: calls, errors, tokens and cost (priced calls' sum, unpriced
    ones counted beside it); then latency, TTFT, tokens per second, tool calls;
    and a third when calls carry an independent token count: that count and
    reported − counted."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    by = f" by {', '.join(stats.group_by)}" if stats.group_by else ""
    name = " · ".join(stats.group_by) if stats.group_by else "calls"

    def label(g: UsageGroup) -> str:
        return " · ".join(str(g.key[k]) for k in stats.group_by) or "all"

    counts = Table(title=f"usage{by}")
    counts.add_column(name, overflow="fold")
    for col in ("calls", "errors", "in tok", "out tok", "cost $", "unpriced"):
        counts.add_column(col, justify="right", no_wrap=True)
    speed = Table(title=f"speed{by} (successful calls, cache hits left out)")
    speed.add_column(name, overflow="fold")
    for col in ("p50 s", "p90 s", "p99 s", "ttft p50", "tok/s", "tools"):
        speed.add_column(col, justify="right", no_wrap=True)
    for g in stats.groups:
        tps = g.output_tokens_per_second
        counts.add_row(
            label(g),
            str(g.requests),
            f"{g.errors} ({g.error_rate:.0%})",
            str(g.input_tokens),
            str(g.output_tokens),
            "-" if g.cost_usd is None else f"{g.cost_usd:.6f}",
            str(g.unpriced_requests),
        )
        speed.add_row(
            label(g),
            *(_secs(g.latency_seconds.get(f"p{p}")) for p in PERCENTILES),
            _secs(g.ttft_seconds.get("p50")),
            "-" if tps is None else f"{tps:.1f}",
            str(g.tool_calls),
        )
    console.print(counts)
    console.print(speed)
    if any(g.estimated_requests for g in stats.groups):
        bill = Table(title=f"reported vs independently counted tokens{by}")
        bill.add_column(name, overflow="fold")
        for col in ("counted", "est in", "in diff", "est out", "out diff"):
            bill.add_column(col, justify="right", no_wrap=True)
        for g in stats.groups:
            bill.add_row(
                label(g),
                str(g.estimated_requests),
                str(g.estimated_input_tokens),
                f"{g.input_tokens_difference:+d}",
                str(g.estimated_output_tokens),
                f"{g.output_tokens_difference:+d}",
            )
        console.print(bill)
