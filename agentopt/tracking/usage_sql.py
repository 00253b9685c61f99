"""Usage statistics in SQL, for the SQLite and PostgreSQL record stores.

Three queries over the flat ``calls`` table (never the JSON): the sums per
group, the calls per status class per group, and the nearest-rank
percentiles of latency and TTFT per group (window functions: ``ROW_NUMBER``
over the group ordered by the value, and the group's count). They give the
same numbers as :func:`agentopt.tracking.usage.stats_of_records`, which the
tests check on a fixed record set.
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


SQLITE = Dialect(
    param="?",
    day="strftime('%Y-%m-%d', ts, 'unixepoch')",
    hour="strftime('%Y-%m-%dT%H:00', ts, 'unixepoch')",
)
POSTGRES = Dialect(
    param="%s",
    day="to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    hour="to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00')",
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
    classes = "".join(f" SUM(CASE WHEN status_class = '{c}' THEN 1 ELSE 0 END)," for c in _CLASSES)
    sums = run(
        f"SELECT {lead}COUNT(*), SUM(1 - ok), SUM(prompt_tokens), SUM(completion_tokens),"
        " SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_usd), COUNT(cost_usd),"
        " SUM(cached), SUM(CASE WHEN cached = 1 THEN latency_seconds ELSE 0 END),"
        " SUM(CASE WHEN ok = 1 AND cached = 0 THEN completion_tokens ELSE 0 END),"
        " SUM(CASE WHEN ok = 1 AND cached = 0 THEN latency_seconds ELSE 0 END),"
        f" SUM(tool_calls),{classes} MIN(seq) FROM calls WHERE {where} {gby} ORDER BY MIN(seq)",
        args,
    )
    n = len(keys)
    pct: dict[str, dict[tuple[Any, ...], dict[str, float | None]]] = {"latency": {}, "ttft": {}}
    if percentiles and sums:
        for name, column in (("latency", "latency_seconds"), ("ttft", "ttft_seconds")):
            pct[name] = _percentiles(run, where, args, column, gexprs)
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


def _percentiles(
    run: Run, where: str, args: list[Any], column: str, gexprs: list[str]
) -> dict[tuple[Any, ...], dict[str, float | None]]:
    gcols = [f"g{i}" for i in range(len(gexprs))]
    gsel = "".join(f"{g} AS g{i}, " for i, g in enumerate(gexprs))
    glead = "".join(f"{g}, " for g in gcols)
    part = ("PARTITION BY " + ", ".join(gcols) + " ") if gcols else ""
    picks = ", ".join(f"MAX(CASE WHEN rn = (n * {p} + 99) / 100 THEN v END)" for p in PERCENTILES)
    gby = ("GROUP BY " + ", ".join(gcols)) if gcols else ""
    ranks = ", ".join(f"(n * {p} + 99) / 100" for p in PERCENTILES)
    rows = run(
        f"SELECT {glead}{picks} FROM (SELECT {glead}v,"
        f" ROW_NUMBER() OVER ({part}ORDER BY v) AS rn,"
        f" COUNT(*) OVER ({part.rstrip()}) AS n"
        f" FROM (SELECT {gsel}{column} AS v FROM calls WHERE {where}"
        f" AND ok = 1 AND cached = 0 AND {column} IS NOT NULL) AS f) AS w"
        f" WHERE rn IN ({ranks}) {gby}",
        args,
    )
    n = len(gexprs)
    out: dict[tuple[Any, ...], dict[str, float | None]] = {}
    for row in rows:
        vals = row[n:]
        if all(v is None for v in vals):
            continue
        out[tuple(row[:n])] = {
            f"p{p}": None if v is None else float(v) for p, v in zip(PERCENTILES, vals, strict=True)
        }
    return out
