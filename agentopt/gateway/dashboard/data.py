"""What the dashboard shows, computed in SQL over a SQLite record store.

Every figure is aggregated by the database (counts, sums, buckets) or from one
numeric column fetched for percentiles; no view loads whole records, so a store
of 100,000 calls answers in milliseconds. The file is opened read-only: the
dashboard never writes to the store it shows (a running daemon may be writing).

Filters are the same for every view (:class:`Filters`): model, status, ids,
alias and a time range, so a number in the table and the same number in a
chart always agree.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentopt.exceptions import ConfigError, StoreError

__all__ = ["DashboardData", "Filters"]

# CallRecord field → SQL expression over the store's row. Columns the store
# keeps next to the JSON are used directly; the rest are read from the JSON.
_JSON_FIELDS = (
    "model",
    "requested_model",
    "provider",
    "status_code",
    "error",
    "cost_usd",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "latency_seconds",
    "ttft_seconds",
    "timestamp",
    "cached",
    "stream",
    "alias",
    "router",
    "fallback_from",
)
_ID_COLUMNS = ("call_id", "session_id", "data_id", "combo_id", "agent_id")

STATUSES = ("ok", "error", "cached")
_MAX_LIMIT = 1000
_PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Filters:
    """One filter set, shared by every view. Empty fields do not filter."""

    model: str | None = None
    status: str | None = None  # "ok" | "error" | "cached"
    combo_id: str | None = None
    data_id: str | None = None
    agent_id: str | None = None
    alias: str | None = None
    start: str | None = None  # ISO 8601, inclusive
    end: str | None = None  # ISO 8601, exclusive

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        """Read filters from URL query parameters (unknown keys are ignored)."""
        values = {k: (params.get(k) or None) for k in cls.__dataclass_fields__}
        if values["status"] is not None and values["status"] not in STATUSES:
            raise ConfigError(f"status={values['status']!r}: expected one of {', '.join(STATUSES)}")
        return cls(**values)


class DashboardData:
    """Read-only aggregate queries over the record store at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._columns: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if not self.path.exists():
            raise StoreError(f"record store {str(self.path)!r} does not exist")
        try:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA busy_timeout=30000")
            cols = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open record store {str(self.path)!r}: {exc}") from exc
        if not cols:
            conn.close()
            raise StoreError(f"{str(self.path)!r} is not a record store (no 'records' table)")
        self._conn, self._columns = conn, frozenset(cols)
        return conn

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connect()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read record store {str(self.path)!r}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def col(self, name: str) -> str:
        """The SQL expression for a record field (a column when the store has one)."""
        if name in self._columns:
            return name
        if name in _JSON_FIELDS:
            return f"json_extract(json, '$.{name}')"
        raise KeyError(name)

    def _ok(self) -> str:
        return f"({self.col('error')} IS NULL AND coalesce({self.col('status_code')}, 200) < 400)"

    def _where(self, f: Filters, extra: str = "") -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if f.model:
            clauses.append(f"{self.col('model')} = ?")
            args.append(f.model)
        for key in ("combo_id", "data_id", "agent_id"):
            value = getattr(f, key)
            if value:
                clauses.append(f"{key} = ?")
                args.append(value)
        if f.alias:
            clauses.append(f"coalesce({self.col('alias')}, {self.col('requested_model')}) = ?")
            args.append(f.alias)
        if f.start:
            clauses.append(f"{self.col('timestamp')} >= ?")
            args.append(f.start)
        if f.end:
            clauses.append(f"{self.col('timestamp')} < ?")
            args.append(f.end)
        if f.status == "ok":
            clauses.append(self._ok())
        elif f.status == "error":
            clauses.append(f"NOT {self._ok()}")
        elif f.status == "cached":
            clauses.append(f"{self.col('cached')} = 1")
        if extra:
            clauses.append(extra)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    # ------------------------------------------------------------------ views
    def options(self) -> dict[str, list[str]]:
        """Distinct values for the filter drop-downs (at most 500 each)."""
        out: dict[str, list[str]] = {}
        with self._cursor() as conn:
            for key, expr in (
                ("model", self.col("model")),
                ("agent_id", "agent_id"),
                ("combo_id", "combo_id"),
                ("alias", f"coalesce({self.col('alias')}, {self.col('requested_model')})"),
            ):
                rows = conn.execute(
                    f"SELECT DISTINCT {expr} AS v FROM records WHERE v IS NOT NULL"
                    " ORDER BY v LIMIT 500"
                ).fetchall()
                out[key] = [str(r[0]) for r in rows]
        return out

    def calls(
        self, f: Filters, *, limit: int = 100, before: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """The most recent calls (newest first); ``before``/``after`` page by ``seq``."""
        limit = max(1, min(int(limit), _MAX_LIMIT))
        extra = []
        args_extra: list[Any] = []
        if before is not None:
            extra.append("seq < ?")
            args_extra.append(int(before))
        if after is not None:
            extra.append("seq > ?")
            args_extra.append(int(after))
        where, args = self._where(f, " AND ".join(extra))
        fields = (
            "timestamp",
            "alias",
            "requested_model",
            "model",
            "provider",
            "status_code",
            "error",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_seconds",
            "ttft_seconds",
            "cached",
            "stream",
            "fallback_from",
        )
        select = ", ".join(f"{self.col(x)} AS {x}" for x in fields)
        sql = (
            f"SELECT seq, call_id, data_id, combo_id, agent_id, {select}"
            f" FROM records {where} ORDER BY seq DESC LIMIT ?"
        )
        with self._cursor() as conn:
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(sql, [*args, *args_extra, limit]).fetchall()
            finally:
                conn.row_factory = None
        out = []
        for r in rows:
            d = dict(r)
            d["ok"] = d["error"] is None and (d["status_code"] or 200) < 400
            d["cached"] = bool(d["cached"])
            d["stream"] = bool(d["stream"])
            if isinstance(d.get("fallback_from"), str):
                with contextlib.suppress(ValueError):
                    d["fallback_from"] = json.loads(d["fallback_from"])
            out.append(d)
        return out

    def call(self, call_id: str) -> dict[str, Any] | None:
        """One call's whole record (request and response as stored: redacted stays redacted)."""
        with self._cursor() as conn:
            row = conn.execute(
                "SELECT seq, json FROM records WHERE call_id = ?", (call_id,)
            ).fetchone()
        if row is None:
            return None
        try:
            record = json.loads(row[1])
        except ValueError as exc:
            raise StoreError(
                f"record {call_id!r} in {str(self.path)!r} is malformed: {exc}"
            ) from exc
        record["seq"] = row[0]
        return dict(record)

    def summary(self, f: Filters) -> dict[str, Any]:
        """Totals: requests, errors, cost (priced calls only; unpriced counted apart),
        tokens, cache hits and latency/TTFT percentiles."""
        where, args = self._where(f)
        c = self.col
        sql = (
            "SELECT count(*),"
            f" sum(CASE WHEN {self._ok()} THEN 0 ELSE 1 END),"
            f" sum({c('cost_usd')}),"
            f" sum(CASE WHEN {c('cost_usd')} IS NULL THEN 1 ELSE 0 END),"
            f" sum({c('prompt_tokens')}), sum({c('completion_tokens')}),"
            f" sum(CASE WHEN {c('cached')} = 1 THEN 1 ELSE 0 END)"
            f" FROM records {where}"
        )
        with self._cursor() as conn:
            n, errors, cost, unpriced, tin, tout, hits = conn.execute(sql, args).fetchone()
        n = int(n or 0)
        lat = self._percentiles(f, "latency_seconds")
        ttft = self._percentiles(f, "ttft_seconds")
        return {
            "requests": n,
            "errors": int(errors or 0),
            "error_rate": (errors or 0) / n if n else None,
            "cost_usd": float(cost) if cost is not None else (None if unpriced else 0.0),
            "unpriced_calls": int(unpriced or 0),
            "prompt_tokens": int(tin or 0),
            "completion_tokens": int(tout or 0),
            "cache_hits": int(hits or 0),
            "cache_hit_rate": (hits or 0) / n if n else None,
            "latency": lat,
            "ttft": ttft,
        }

    def _percentiles(self, f: Filters, field: str, *, group: str | None = None) -> dict[str, Any]:
        expr = self.col(field)
        where, args = self._where(f, f"{expr} IS NOT NULL")
        if group is None:
            with self._cursor() as conn:
                values = [r[0] for r in conn.execute(f"SELECT {expr} FROM records {where}", args)]
            return _pcts(values)
        gexpr = self.col(group)
        with self._cursor() as conn:
            rows = conn.execute(f"SELECT {gexpr}, {expr} FROM records {where}", args).fetchall()
        groups: dict[str, list[float]] = {}
        for key, value in rows:
            groups.setdefault(str(key), []).append(value)
        return {k: _pcts(v) for k, v in sorted(groups.items())}

    def bucket_for(self, f: Filters) -> str:
        """Pick a time bucket that gives a readable number of points."""
        where, args = self._where(f)
        ts = self.col("timestamp")
        with self._cursor() as conn:
            lo, hi = conn.execute(
                f"SELECT min({ts}), max({ts}) FROM records {where}", args
            ).fetchone()
        if lo is None or hi is None:
            return "minute"
        from datetime import datetime

        span = (datetime.fromisoformat(hi) - datetime.fromisoformat(lo)).total_seconds()
        if span <= 5 * 60:
            return "second"
        if span <= 3 * 3600:
            return "minute"
        if span <= 4 * 86400:
            return "hour"
        return "day"

    def timeseries(self, f: Filters, bucket: str | None = None) -> dict[str, Any]:
        """Requests, cost, errors and cache hits per time bucket and model."""
        bucket = bucket or self.bucket_for(f)
        width = _width(bucket)
        where, args = self._where(f)
        c = self.col
        sql = (
            f"SELECT substr({c('timestamp')}, 1, {width}) AS b, {c('model')} AS m, count(*),"
            f" sum({c('cost_usd')}), sum(CASE WHEN {self._ok()} THEN 0 ELSE 1 END),"
            f" sum(CASE WHEN {c('cached')} = 1 THEN 1 ELSE 0 END)"
            f" FROM records {where} GROUP BY b, m ORDER BY b"
        )
        with self._cursor() as conn:
            rows = conn.execute(sql, args).fetchall()
        buckets = sorted({r[0] for r in rows if r[0] is not None})
        index = {b: i for i, b in enumerate(buckets)}
        series: dict[str, dict[str, list[float]]] = {}
        hits = [0] * len(buckets)
        total = [0] * len(buckets)
        for b, m, n, cost, errors, cached in rows:
            if b is None:
                continue
            s = series.setdefault(
                str(m),
                {k: [0.0] * len(buckets) for k in ("requests", "cost_usd", "errors")},
            )
            i = index[b]
            s["requests"][i] = n
            s["cost_usd"][i] = float(cost or 0.0)
            s["errors"][i] = errors or 0
            hits[i] += cached or 0
            total[i] += n
        return {
            "bucket": bucket,
            "buckets": buckets,
            "series": series,
            "cache_hit_rate": [h / t if t else None for h, t in zip(hits, total, strict=True)],
        }

    def latency(self, f: Filters) -> dict[str, Any]:
        """Latency and TTFT percentiles (p50/p90/p99, seconds) per model."""
        return {
            "latency": self._percentiles(f, "latency_seconds", group="model"),
            "ttft": self._percentiles(f, "ttft_seconds", group="model"),
        }

    def errors_by_provider(self, f: Filters) -> list[dict[str, Any]]:
        where, args = self._where(f)
        c = self.col
        sql = (
            f"SELECT coalesce({c('provider')}, '(unknown)') AS p, count(*),"
            f" sum(CASE WHEN {self._ok()} THEN 0 ELSE 1 END)"
            f" FROM records {where} GROUP BY p ORDER BY p"
        )
        with self._cursor() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            {"provider": p, "requests": n, "errors": e or 0, "error_rate": (e or 0) / n}
            for p, n, e in rows
        ]

    def routing(self, f: Filters, bucket: str | None = None) -> list[dict[str, Any]]:
        """Per alias (or requested model that was routed elsewhere): each target's
        share of traffic over time, and what the router saved against always
        calling the most expensive target it used (same tokens at that target's
        observed price per token)."""
        bucket = bucket or self.bucket_for(f)
        width = _width(bucket)
        c = self.col
        alias = f"coalesce({c('alias')}, {c('requested_model')})"
        routed = f"({c('alias')} IS NOT NULL OR {c('requested_model')} != {c('model')})"
        where, args = self._where(f, f"{alias} IS NOT NULL")
        with self._cursor() as conn:
            aliases = [
                r[0]
                for r in conn.execute(
                    f"SELECT {alias} AS a FROM records {where} GROUP BY a"
                    f" HAVING sum(CASE WHEN {routed} THEN 1 ELSE 0 END) > 0 ORDER BY a",
                    args,
                )
            ]
            out = []
            for a in aliases:
                w, wargs = self._where(f, f"{alias} = ?")
                targets = conn.execute(
                    f"SELECT {c('model')} AS m, count(*), sum({c('cost_usd')}),"
                    f" sum({c('prompt_tokens')} + {c('completion_tokens')}),"
                    f" sum(CASE WHEN {c('cost_usd')} IS NULL THEN 0"
                    f" ELSE {c('prompt_tokens')} + {c('completion_tokens')} END),"
                    f" sum(CASE WHEN {self._ok()} THEN 0 ELSE 1 END)"
                    f" FROM records {w} GROUP BY m ORDER BY m",
                    [*wargs, a],
                ).fetchall()
                over_time = conn.execute(
                    f"SELECT substr({c('timestamp')}, 1, {width}) AS b, {c('model')}, count(*)"
                    f" FROM records {w} GROUP BY b, {c('model')} ORDER BY b",
                    [*wargs, a],
                ).fetchall()
                out.append(_routing_view(str(a), targets, over_time))
        return out


_BUCKETS = {"second": 19, "minute": 16, "hour": 13, "day": 10}


def _width(bucket: str) -> int:
    """Characters of an ISO timestamp that name its bucket."""
    if bucket not in _BUCKETS:
        raise ConfigError(f"bucket={bucket!r}: expected one of {', '.join(_BUCKETS)}")
    return _BUCKETS[bucket]


def _routing_view(
    alias: str, targets: list[tuple[Any, ...]], over_time: list[tuple[Any, ...]]
) -> dict[str, Any]:
    total = sum(int(t[1]) for t in targets) or 1
    rows: list[dict[str, Any]] = []
    worst_rate: float | None = None
    worst_model: str | None = None
    for model, n, cost, tokens, priced_tokens, errors in targets:
        rate = (cost / priced_tokens) if cost is not None and priced_tokens else None
        if rate is not None and (worst_rate is None or rate > worst_rate):
            worst_rate, worst_model = rate, str(model)
        rows.append(
            {
                "model": str(model),
                "requests": int(n),
                "share": int(n) / total,
                "cost_usd": float(cost) if cost is not None else None,
                "mean_cost_usd": float(cost) / int(n) if cost is not None and n else None,
                "usd_per_1k_tokens": rate * 1000 if rate is not None else None,
                "error_rate": (errors or 0) / int(n) if n else None,
                "tokens": int(tokens or 0),
            }
        )
    actual = sum(r["cost_usd"] or 0.0 for r in rows)
    priced_tokens_all = sum(int(t[4] or 0) for t in targets)
    counterfactual = worst_rate * priced_tokens_all if worst_rate is not None else None
    buckets = sorted({str(b) for b, _, _ in over_time if b is not None})
    index = {b: i for i, b in enumerate(buckets)}
    share: dict[str, list[float]] = {}
    per_bucket = [0] * len(buckets)
    for b, _m, n in over_time:
        if b is None:
            continue
        per_bucket[index[str(b)]] += int(n)
    for b, m, n in over_time:
        if b is None:
            continue
        i = index[str(b)]
        share.setdefault(str(m), [0.0] * len(buckets))[i] = int(n) / per_bucket[i]
    return {
        "alias": alias,
        "requests": sum(int(t[1]) for t in targets),
        "targets": rows,
        "buckets": buckets,
        "share_over_time": share,
        "actual_cost_usd": actual,
        "most_expensive_target": worst_model,
        "cost_if_most_expensive_usd": counterfactual,
        "saved_usd": (counterfactual - actual) if counterfactual is not None else None,
    }


def _pcts(values: list[float]) -> dict[str, Any]:
    clean = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not clean:
        return {"n": 0, "p50": None, "p90": None, "p99": None}
    arr = np.asarray(clean)
    p50, p90, p99 = (float(x) for x in np.percentile(arr, _PERCENTILES))
    return {"n": len(clean), "p50": p50, "p90": p90, "p99": p99}
