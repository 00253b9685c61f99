"""Usage statistics in SQL, for the SQLite and PostgreSQL record stores.

One query, one scan of the flat ``calls`` table (never the JSON), gives the
sums, the status classes and the nearest-rank percentiles of latency and TTFT
per group: in PostgreSQL with ``percentile_disc``; in SQLite (which has no
percentile function, and whose sort of a million rows takes seconds) the same
scan concatenates each group's values of successful uncached calls into one
text, ranked here by numpy. Percentiles are reported to the microsecond
(:func:`~agentopt.tracking.store_columns.seconds`), which SQLite's 15
significant digits write exactly. The numbers equal :func:`agentopt.tracking.usage.stats_of_records`',
which the tests check on a fixed record set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentopt.tracking.usage import PERCENTILES, UsageGroup

__all__ = ["POSTGRES", "SQLITE", "Dialect", "usage_groups"]

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines: placeholders and date formatting."""

    param: str
    day: str  # SQL of the UTC day of ``ts`` (seconds since the epoch)
    hour: str
    #: True: ``percentile_disc(...) WITHIN GROUP`` (PostgreSQL); False: the values
    #: are read in one scan, as text, and ranked here (SQLite has no percentile).
    native_percentiles: bool = False


SQLITE = Dialect(
    param="?",
    day="strftime('%Y-%m-%d', ts, 'unixepoch')",
    hour="strftime('%Y-%m-%dT%H:00', ts, 'unixepoch')",
)
POSTGRES = Dialect(
    param="%s",
    day="to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    hour="to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00')",
    native_percentiles=True,
)

_COLUMN_OF = {"model": "model_label", "status": "status_class"}


def _key_sql(key: str, d: Dialect) -> str:
    if key == "day":
        return d.day
    if key == "hour":
        return d.hour
    return _COLUMN_OF.get(key, key)


_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "no_response")


def usage_groups(
    run: Run,
    conds: list[tuple[str, str, Any]],
    keys: tuple[str, ...],
    d: Dialect,
    *,
    percentiles: bool = True,
) -> list[UsageGroup]:
    """The statistics per group, computed by the database ``run`` talks to."""
    where = " AND ".join(f"{col} {op} {d.param}" for col, op, _ in conds) or "1=1"
    args = [v for _, _, v in conds]
    gexprs = [_key_sql(k, d) for k in keys]
    lead = "".join(f"{g}, " for g in gexprs)
    gby = ("GROUP BY " + ", ".join(gexprs)) if gexprs else ""
    native = ""
    if percentiles and d.native_percentiles:
        fractions = ", ".join(str(p / 100) for p in PERCENTILES)
        native = "".join(
            f", percentile_disc(ARRAY[{fractions}]) WITHIN GROUP"
            f" (ORDER BY round({c}::numeric, 6))"
            " FILTER (WHERE ok = 1 AND cached = 0)"
            for c in ("latency_seconds", "ttft_seconds")
        )
    elif percentiles:  # the values themselves, in the same scan, ranked below
        native = "".join(
            f", group_concat(round({c}, 6), ',') FILTER (WHERE ok = 1 AND cached = 0)"
            for c in ("latency_seconds", "ttft_seconds")
        )
    classes = "".join(f" SUM(CASE WHEN status_class = '{c}' THEN 1 ELSE 0 END)," for c in _CLASSES)
    sums = run(
        f"SELECT {lead}COUNT(*), SUM(1 - ok), SUM(prompt_tokens), SUM(completion_tokens),"
        " SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_usd), COUNT(cost_usd),"
        " SUM(cached), SUM(CASE WHEN cached = 1 THEN latency_seconds ELSE 0 END),"
        " SUM(CASE WHEN ok = 1 AND cached = 0 THEN completion_tokens ELSE 0 END),"
        " SUM(CASE WHEN ok = 1 AND cached = 0 THEN latency_seconds ELSE 0 END),"
        f" SUM(tool_calls),{classes} MIN(seq){native} FROM calls WHERE {where} {gby}"
        " ORDER BY MIN(seq)",
        args,
    )
    n = len(keys)
    pct: dict[str, dict[tuple[Any, ...], dict[str, float | None]]] = {"latency": {}, "ttft": {}}
    if percentiles:
        for row in sums:
            kv = tuple(row[:n])
            for name, values in (("latency", row[n + 20]), ("ttft", row[n + 21])):
                ranked = _native(values) if d.native_percentiles else _ranked(values)
                if ranked is not None:
                    pct[name][kv] = ranked
    out = []
    for row in sums:
        kv = tuple(row[:n])
        (
            requests,
            errors,
            prompt,
            completion,
            cached_tok,
            reasoning,
            cost,
            priced,
            hits,
            cached_lat,
            fast_out,
            fast_secs,
            tools,
        ) = row[n : n + 13]
        status = {c: int(v) for c, v in zip(_CLASSES, row[n + 13 : n + 19], strict=True) if v}
        requests = int(requests)
        errors = int(errors or 0)
        fast_secs = float(fast_secs or 0.0)
        out.append(
            UsageGroup(
                key=dict(zip(keys, kv, strict=True)),
                requests=requests,
                errors=errors,
                error_rate=errors / requests if requests else 0.0,
                status=dict(sorted(status.items())),
                input_tokens=int(prompt or 0),
                output_tokens=int(completion or 0),
                cached_tokens=int(cached_tok or 0),
                reasoning_tokens=int(reasoning or 0),
                cost_usd=None if cost is None else float(cost),
                priced_requests=int(priced),
                unpriced_requests=requests - int(priced),
                cache_hits=int(hits or 0),
                cached_latency_seconds=float(cached_lat or 0.0),
                latency_seconds=pct["latency"].get(kv, _none()),
                ttft_seconds=pct["ttft"].get(kv, _none()),
                output_tokens_per_second=(
                    int(fast_out or 0) / fast_secs if fast_secs > 0 else None
                ),
                tool_calls=int(tools or 0),
            )
        )
    if not keys and not out:
        out.append(UsageGroup(key={}, latency_seconds=_none(), ttft_seconds=_none()))
    return out


def _none() -> dict[str, float | None]:
    return {f"p{p}": None for p in PERCENTILES}


def _native(values: list[float | None] | None) -> dict[str, float | None] | None:
    """PostgreSQL's ``percentile_disc`` array (None: no value in the group)."""
    if values is None or all(v is None for v in values):
        return None
    return {
        f"p{p}": None if v is None else float(v) for p, v in zip(PERCENTILES, values, strict=True)
    }


def _ranked(text: str | None) -> dict[str, float | None] | None:
    """Nearest-rank percentiles of SQLite's concatenated values (NULLs are left
    out by ``group_concat``), parsed and sorted by numpy."""
    import numpy as np

    if not text:
        return None
    vals = np.sort(np.fromstring(text, dtype=float, sep=","))
    if vals.size == 0:
        return None
    return {f"p{p}": float(vals[max(1, -(-vals.size * p // 100)) - 1]) for p in PERCENTILES}
