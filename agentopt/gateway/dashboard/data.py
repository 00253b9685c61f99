"""What the dashboard shows, computed in SQL over a SQLite or PostgreSQL record store.

Totals, percentiles and per-provider error rates come from
:func:`agentopt.usage_stats` (so the page, ``GET /v1/usage/stats``,
``agentopt report --stats`` and Python give the same numbers); the call list,
time series and routing views read the store's flat ``calls`` columns
(:mod:`agentopt.tracking.storage.store_columns`) with the same definitions: requests
count cache hits, cost sums priced calls (unpriced ones are counted apart,
never as $0), an error is a call with an error or an HTTP status ≥ 400. No view
loads whole records, so a store of 100,000 calls answers in milliseconds; only
a call's detail reads its JSON.

Filters are the same for every view (:class:`Filters`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentopt.exceptions import ConfigError, StoreError
from agentopt.tracking.analytics.usage import normalize, usage_stats
from agentopt.tracking.storage.sql_store import SQLRecordStore

__all__ = ["BUCKETS", "STATUSES", "DashboardData", "Filters"]

STATUSES = ("ok", "error", "4xx", "5xx", "no_response")
#: time bucket → seconds
BUCKETS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_MAX_LIMIT = 1000
_LIST_COLUMNS = (
    "timestamp",
    "alias",
    "requested_model",
    "model",
    "model_label",
    "provider",
    "status_code",
    "status_class",
    "ok",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_seconds",
    "ttft_seconds",
    "cached",
    "stream",
    "tool_calls",
    "data_id",
    "combo_id",
    "agent_id",
)


@dataclass(frozen=True)
class Filters:
    """One filter set, shared by every view. Empty fields do not filter.
    ``start`` is inclusive, ``end`` exclusive (ISO 8601)."""

    model: str | None = None
    provider: str | None = None
    status: str | None = None
    combo_id: str | None = None
    data_id: str | None = None
    agent_id: str | None = None
    alias: str | None = None
    start: str | None = None
    end: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        """Read filters from URL query parameters (unknown keys are ignored)."""
        values = {k: (params.get(k) or None) for k in cls.__dataclass_fields__}
        if values["status"] is not None and values["status"] not in STATUSES:
            raise ConfigError(f"status={values['status']!r}: expected one of {', '.join(STATUSES)}")
        return cls(**values)

    def usage_kwargs(self) -> dict[str, Any]:
        """The same filters as :func:`agentopt.usage_stats` keywords."""
        return {
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "combo_id": self.combo_id,
            "data_id": self.data_id,
            "agent_id": self.agent_id,
            "alias": self.alias,
            "start_date": self.start,
            "end_date": self.end,
        }


class DashboardData:
    """Read-only views of the record store ``store``: a SQLite file's path, or an
    open SQL store (:class:`~agentopt.tracking.storage.sqlite_store.SQLiteRecordStore`
    or :class:`~agentopt.tracking.storage.pg_store.PostgresRecordStore`, e.g. the
    daemon's)."""

    def __init__(self, store: Any) -> None:
        from agentopt.tracking.storage.store import get_store

        opened: Any
        if isinstance(store, str | Path):  # a SQLite file's path or a database URL
            url = isinstance(store, str) and "://" in store
            if not url and not Path(store).exists():
                raise StoreError(f"record store {str(store)!r} does not exist")
            opened, self._owned = get_store(store), True
        else:
            opened, self._owned = store, False
        if not isinstance(opened, SQLRecordStore):
            if self._owned:
                opened.close()
            raise ConfigError(
                "the dashboard needs a SQL record store (a SQLite file or PostgreSQL),"
                f" got {opened!r}"
            )
        self.store: SQLRecordStore = opened
        self.where = self.store.where  # how errors name the store (a path, a redacted URL)
        self._ph = self.store.placeholder
        self._dialect = self.store.dialect

    # ------------------------------------------------------------------ plumbing
    def _sql(self, sql: str, args: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read of the store (its buffer written first; a failing store still
        shows what it has)."""
        return [tuple(map(_plain, row)) for row in self.store.sql(sql, args)]

    def close(self) -> None:
        if self._owned:
            self.store.close()

    def _where(self, f: Filters, *extra: tuple[str, str, Any]) -> tuple[str, list[Any]]:
        conds, _ = normalize(f.usage_kwargs(), None)
        where, args = self.store.calls_where(conds, extra)
        return where, list(args)

    def _stats(self, f: Filters, group_by: str | None = None) -> Any:
        return usage_stats(self.store, group_by=group_by, **f.usage_kwargs())

    # ------------------------------------------------------------------ views
    def options(self) -> dict[str, list[str]]:
        """Distinct values for the filter drop-downs (at most 500 each)."""
        out: dict[str, list[str]] = {}
        for key, col in (
            ("model", "model_label"),
            ("provider", "provider"),
            ("agent_id", "agent_id"),
            ("combo_id", "combo_id"),
            ("alias", "alias"),
        ):
            rows = self._sql(
                f"SELECT DISTINCT {col} FROM calls WHERE {col} IS NOT NULL ORDER BY 1 LIMIT 500"
            )
            out[key] = [str(r[0]) for r in rows]
        return out

    def calls(
        self, f: Filters, *, limit: int = 100, before: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """The most recent calls (newest first); ``before``/``after`` page by ``seq``."""
        limit = max(1, min(int(limit), _MAX_LIMIT))
        conds, _ = normalize(f.usage_kwargs(), None)
        rows = self.store.read_calls(
            conds,
            ("seq", "call_id", *_LIST_COLUMNS),
            newest_first=True,
            before=None if before is None else int(before),
            after=None if after is None else int(after),
            limit=limit,
        )
        out = []
        for row in rows:
            d = dict(zip(("seq", "call_id", *_LIST_COLUMNS), row, strict=True))
            d["ok"] = bool(d["ok"])
            d["cached"] = bool(d["cached"])
            d["stream"] = bool(d["stream"])
            out.append(d)
        return out

    def call(self, call_id: str) -> dict[str, Any] | None:
        """One call's whole record (request and response as stored: redacted stays redacted)."""
        rows = self._sql(f"SELECT seq, json FROM records WHERE call_id = {self._ph}", (call_id,))
        if not rows:
            return None
        row = rows[0]
        try:
            record = json.loads(row[1])
        except ValueError as exc:
            raise StoreError(f"record {call_id!r} in {self.where} is malformed: {exc}") from exc
        record["seq"] = row[0]
        return dict(record)

    def summary(self, f: Filters) -> dict[str, Any]:
        """Totals over the filtered calls: :func:`agentopt.usage_stats`' figures."""
        return dict(self._stats(f).total.as_dict())

    def grouped(self, f: Filters, group_by: str) -> list[dict[str, Any]]:
        """:func:`agentopt.usage_stats` grouped (``model``, ``provider``, …)."""
        return [g.as_dict() for g in self._stats(f, group_by)]

    def bucket_for(self, f: Filters) -> str:
        """A time bucket that gives a readable number of points."""
        where, args = self._where(f)
        ((lo, hi),) = self._sql(f"SELECT min(ts), max(ts) FROM calls {where}", args)
        if lo is None or hi is None:
            return "minute"
        span = hi - lo
        for name, limit in (("second", 300), ("minute", 3 * 3600), ("hour", 4 * 86400)):
            if span <= limit:
                return name
        return "day"

    def timeseries(self, f: Filters, bucket: str | None = None) -> dict[str, Any]:
        """Requests, cost (priced calls), errors and cache hits per time bucket and model."""
        bucket = bucket or self.bucket_for(f)
        width = _width(bucket)
        where, args = self._where(f)
        sql = (
            f"SELECT {self._dialect.bucket('ts', width)} AS b, model_label, count(*), sum(cost_usd),"
            " sum(1 - ok), sum(cached) FROM calls"
            f" {where} GROUP BY b, model_label ORDER BY b"
        )
        rows = self._sql(sql, args)
        keys = sorted({r[0] for r in rows})
        index = {b: i for i, b in enumerate(keys)}
        series: dict[str, dict[str, list[float]]] = {}
        hits = [0] * len(keys)
        total = [0] * len(keys)
        for b, model, n, cost, errors, cached in rows:
            s = series.setdefault(
                str(model), {k: [0.0] * len(keys) for k in ("requests", "cost_usd", "errors")}
            )
            i = index[b]
            s["requests"][i] = n
            s["cost_usd"][i] = float(cost or 0.0)
            s["errors"][i] = errors or 0
            hits[i] += cached or 0
            total[i] += n
        return {
            "bucket": bucket,
            "buckets": [_label(b * width, bucket) for b in keys],
            "series": series,
            "cache_hit_rate": [h / t if t else None for h, t in zip(hits, total, strict=True)],
        }

    def latency(self, f: Filters) -> dict[str, Any]:
        """Latency and TTFT percentiles per model (successful calls, cache hits left out)."""
        groups = self._stats(f, "model")
        return {
            "latency": {str(g.key["model"]): g.latency_seconds for g in groups},
            "ttft": {str(g.key["model"]): g.ttft_seconds for g in groups},
        }

    def errors_by_provider(self, f: Filters) -> list[dict[str, Any]]:
        return [
            {
                "provider": str(g.key["provider"] or "(unknown)"),
                "requests": g.requests,
                "errors": g.errors,
                "error_rate": g.error_rate,
                "status": g.status,
            }
            for g in self._stats(f, "provider")
        ]

    def routing(self, f: Filters, bucket: str | None = None) -> list[dict[str, Any]]:
        """Per alias (or requested model a router replaced): each target's share of
        traffic over time, and what routing saved against always calling the most
        expensive target it used (same tokens at that target's observed price per token)."""
        bucket = bucket or self.bucket_for(f)
        width = _width(bucket)
        key = "coalesce(alias, requested_model)"
        routed = "(alias IS NOT NULL OR requested_model != model_label)"
        where, args = self._where(f)
        also = "AND" if where else "WHERE"
        aliases = [
            r[0]
            for r in self._sql(
                f"SELECT {key} AS a FROM calls {where} {also} {key} IS NOT NULL GROUP BY a"
                f" HAVING sum(CASE WHEN {routed} THEN 1 ELSE 0 END) > 0 ORDER BY a",
                args,
            )
        ]
        out = []
        one = f"{where} {also} {key} = {self._ph}"
        for a in aliases:
            targets = self._sql(
                "SELECT model_label, count(*), sum(cost_usd),"
                " sum(prompt_tokens + completion_tokens),"
                " sum(CASE WHEN cost_usd IS NULL THEN 0"
                " ELSE prompt_tokens + completion_tokens END),"
                " sum(1 - ok), sum(CASE WHEN cost_usd IS NULL THEN 0 ELSE 1 END)"
                f" FROM calls {one} GROUP BY model_label ORDER BY model_label",
                [*args, a],
            )
            over_time = self._sql(
                f"SELECT {self._dialect.bucket('ts', width)} AS b, model_label, count(*)"
                f" FROM calls {one} GROUP BY b, model_label ORDER BY b",
                [*args, a],
            )
            out.append(_routing_view(str(a), targets, over_time, width, bucket))
        return out


def _plain(value: Any) -> Any:
    """A value as JSON has it: PostgreSQL sums integers as ``numeric`` (Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _width(bucket: str) -> int:
    if bucket not in BUCKETS:
        raise ConfigError(f"bucket={bucket!r}: expected one of {', '.join(BUCKETS)}")
    return BUCKETS[bucket]


def _label(seconds: float, bucket: str) -> str:
    when = datetime.fromtimestamp(seconds, UTC)
    fmt = {
        "second": "%Y-%m-%d %H:%M:%S",
        "minute": "%Y-%m-%d %H:%M",
        "hour": "%Y-%m-%d %H:00",
        "day": "%Y-%m-%d",
    }[bucket]
    return when.strftime(fmt)


def _routing_view(
    alias: str,
    targets: list[tuple[Any, ...]],
    over_time: list[tuple[Any, ...]],
    width: int,
    bucket: str,
) -> dict[str, Any]:
    total = sum(int(t[1]) for t in targets) or 1
    rows: list[dict[str, Any]] = []
    worst_rate: float | None = None
    worst_model: str | None = None
    for model, n, cost, tokens, priced_tokens, errors, priced in targets:
        rate = (cost / priced_tokens) if cost is not None and priced_tokens else None
        if rate is not None and (worst_rate is None or rate > worst_rate):
            worst_rate, worst_model = rate, str(model)
        rows.append(
            {
                "model": str(model),
                "requests": int(n),
                "share": int(n) / total,
                "cost_usd": float(cost) if cost is not None else None,
                "mean_cost_usd": float(cost) / int(priced) if cost is not None and priced else None,
                "unpriced_requests": int(n) - int(priced or 0),
                "usd_per_1k_tokens": rate * 1000 if rate is not None else None,
                "error_rate": (errors or 0) / int(n) if n else None,
                "tokens": int(tokens or 0),
            }
        )
    actual = sum(r["cost_usd"] or 0.0 for r in rows)
    priced_tokens_all = sum(int(t[4] or 0) for t in targets)
    counterfactual = worst_rate * priced_tokens_all if worst_rate is not None else None
    keys = sorted({int(b) for b, _, _ in over_time})
    index = {b: i for i, b in enumerate(keys)}
    per_bucket = [0] * len(keys)
    for b, _m, n in over_time:
        per_bucket[index[int(b)]] += int(n)
    share: dict[str, list[float]] = {}
    for b, m, n in over_time:
        i = index[int(b)]
        share.setdefault(str(m), [0.0] * len(keys))[i] = int(n) / per_bucket[i]
    return {
        "alias": alias,
        "requests": sum(int(t[1]) for t in targets),
        "targets": rows,
        "bucket": bucket,
        "buckets": [_label(b * width, bucket) for b in keys],
        "share_over_time": share,
        "actual_cost_usd": actual,
        "most_expensive_target": worst_model,
        "cost_if_most_expensive_usd": counterfactual,
        "saved_usd": (counterfactual - actual) if counterfactual is not None else None,
    }
