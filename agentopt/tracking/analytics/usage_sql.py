"""Usage statistics in SQL, for the SQLite and PostgreSQL record stores.

Each query reads the flat ``calls`` table only (never the JSON): the sums, the
status classes and the values the nearest-rank percentiles of latency and TTFT
are taken from, per group.

- PostgreSQL (hash aggregation, ``percentile_disc``): one query.
- SQLite has neither; its ``GROUP BY`` sorts every row, and its float-to-text
  is slow. So it groups by integer columns where it can (``day``, ``hour``:
  labelled here), concatenates each group's *integer* microseconds
  (``fast_latency_us``, ``fast_ttft_us``: NULL for the calls percentiles leave
  out) which numpy ranks here, and :func:`usage_groups_chunked` runs the query
  over ranges of ``seq`` (small sorts, the same rows once each), spread over
  the reader connections it is given (two threads: sqlite3 releases the GIL
  while SQLite works), then adds the partial sums up per group.

The numbers equal :func:`agentopt.tracking.analytics.usage.stats_of_records`' (which the
tests check on a fixed record set): percentiles to the microsecond
(:func:`~agentopt.tracking.storage.store_columns.seconds`), groups in order of first
appearance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentopt.tracking.analytics.usage import PERCENTILES, UsageGroup
from agentopt.tracking.storage.store_columns import day_label, hour_label

__all__ = [
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "add_chunks",
    "chunked",
    "finish",
    "usage_groups",
    "usage_groups_chunked",
]

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines."""

    param: str
    #: True: ``percentile_disc(...) WITHIN GROUP`` and ``to_char`` dates
    #: (PostgreSQL); False: integer day/hour columns and microseconds ranked here.
    native: bool = False

    def bucket(self, column: str, width: int) -> str:
        """``floor(column / width)`` as an integer (a time bucket of ``width`` s;
        SQLite's CAST truncates, which is the floor for the non-negative times
        stored; SQLite may lack ``floor``)."""
        if self.native:
            return f"CAST(floor({column} / {int(width)}) AS BIGINT)"
        return f"CAST({column} / {int(width)} AS INTEGER)"


SQLITE = Dialect(param="?")
POSTGRES = Dialect(param="%s", native=True)

_COLUMN_OF = {"model": "model_label", "status": "status_class"}
_PG_TIME = {
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "hour": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00')",
}
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "no_response")
_FAST = "ok = 1 AND cached = 0"
#: The sums every query reads, in this order (after the group keys).
_SUMS = (
    "COUNT(*)",
    "SUM(ok)",
    "SUM(prompt_tokens)",
    "SUM(completion_tokens)",
    "SUM(cached_tokens)",
    "SUM(reasoning_tokens)",
    "SUM(cost_usd)",
    "COUNT(cost_usd)",
    "SUM(cached)",
    "SUM(CASE WHEN cached = 1 THEN latency_seconds ELSE 0 END)",
    f"SUM(CASE WHEN {_FAST} THEN completion_tokens ELSE 0 END)",
    f"SUM(CASE WHEN {_FAST} THEN latency_seconds ELSE 0 END)",
    "SUM(tool_calls)",
    "COUNT(estimated_input_tokens)",
    "SUM(estimated_input_tokens)",
    "SUM(estimated_output_tokens)",
    "SUM(prompt_tokens - estimated_input_tokens)",
    "SUM(completion_tokens - estimated_output_tokens)",
    *(f"SUM(CASE WHEN status_class = '{c}' THEN 1 ELSE 0 END)" for c in _CLASSES),
)
# The same in SQLite's cheaper forms (a comparison is 0 or 1 there).
_SQLITE_SUMS = tuple(
    s.replace(f"CASE WHEN {_FAST} THEN completion_tokens ELSE 0 END", "completion_tokens * (fast_latency_us IS NOT NULL)")
    .replace(f"CASE WHEN {_FAST} THEN latency_seconds ELSE 0 END", "latency_seconds * (fast_latency_us IS NOT NULL)")
    .replace("CASE WHEN cached = 1 THEN latency_seconds ELSE 0 END", "latency_seconds * cached")
    .replace("CASE WHEN status_class = '", "status_class = '")
    .replace("' THEN 1 ELSE 0 END", "'")
    for s in _SUMS
)  # fmt: skip


def _key_sql(key: str, d: Dialect) -> str:
    if d.native and key in _PG_TIME:
        return _PG_TIME[key]
    return _COLUMN_OF.get(key, key)


def _select(
    conds: list[tuple[str, str, Any]],
    keys: tuple[str, ...],
    d: Dialect,
    *,
    percentiles: bool,
    extra_where: str = "",
) -> str:
    where = [f"{col} {op} {d.param}" for col, op, _ in conds]
    if extra_where:
        where.append(extra_where)
    gexprs = [_key_sql(k, d) for k in keys]
    lead = "".join(f"{g}, " for g in gexprs)
    tail = ""
    if percentiles and d.native:
        fractions = ", ".join(str(p / 100) for p in PERCENTILES)
        tail = "".join(
            f", percentile_disc(ARRAY[{fractions}]) WITHIN GROUP"
            f" (ORDER BY round({c}::numeric, 6)) FILTER (WHERE {_FAST})"
            for c in ("latency_seconds", "ttft_seconds")
        )
    elif percentiles:
        tail = ", group_concat(fast_latency_us), group_concat(fast_ttft_us)"
    sums = _SQLITE_SUMS if not d.native else _SUMS
    return (
        f"SELECT {lead}{', '.join(sums)}, MIN(seq){tail} FROM calls"
        f" WHERE {' AND '.join(where) or '1=1'}"
        + (f" GROUP BY {', '.join(gexprs)}" if gexprs else "")
    )


class _Partial:
    """One group's sums so far (chunks of the same group are added up)."""

    __slots__ = ("first", "latency", "sums", "ttft")

    def __init__(self, sums: list[Any], first: int) -> None:
        self.sums = sums
        self.first = first
        # SQL chunks' concatenated microseconds (text) or blocks' (int64 arrays)
        self.latency: list[Any] = []
        self.ttft: list[Any] = []

    def add(self, sums: Sequence[Any], first: int) -> None:
        mine = self.sums
        for i, v in enumerate(sums):
            if v is not None:
                mine[i] = v if mine[i] is None else mine[i] + v
        self.first = min(self.first, first)


def _fold(rows: list[tuple[Any, ...]], n: int, into: dict[tuple[Any, ...], _Partial]) -> None:
    width = len(_SUMS)
    for row in rows:
        if not row[n]:  # an ungrouped query over a range with no matching call
            continue
        kv = tuple(row[:n])
        sums = row[n : n + width]
        first = row[n + width]
        p = into.get(kv)
        if p is None:
            p = into[kv] = _Partial(list(sums), first)
        else:
            p.add(sums, first)
        if len(row) > n + width + 1:
            lat, ttft = row[n + width + 1], row[n + width + 2]
            if lat:
                p.latency.append(lat)
            if ttft:
                p.ttft.append(ttft)


def usage_groups(
    run: Run,
    conds: list[tuple[str, str, Any]],
    keys: tuple[str, ...],
    d: Dialect,
    *,
    percentiles: bool = True,
) -> list[UsageGroup]:
    """The statistics per group, computed by the database ``run`` talks to, in
    one query."""
    rows = run(_select(conds, keys, d, percentiles=percentiles), [v for _, _, v in conds])
    if not d.native:
        parts: dict[tuple[Any, ...], _Partial] = {}
        _fold(rows, len(keys), parts)
        return _groups(parts, keys, {})
    n = len(keys)
    width = len(_SUMS)
    parts = {}
    native: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    for row in rows:
        kv = tuple(row[:n])
        parts[kv] = _Partial(list(row[n : n + width]), row[n + width])
        if percentiles:
            native[kv] = (row[n + width + 1], row[n + width + 2])
    return _groups(parts, keys, native)


def usage_groups_chunked(
    runs: Sequence[Run],
    bounds: tuple[int, int],
    conds: list[tuple[str, str, Any]],
    keys: tuple[str, ...],
    *,
    percentiles: bool = True,
    chunk: int = 65536,
) -> list[UsageGroup]:
    """SQLite: the statistics of the calls with ``lo < seq <= hi`` (``bounds``),
    one query per range of ``chunk`` seqs, the ranges shared among the reader
    connections ``runs`` (each in its own thread), the partial sums added up."""
    lo, hi = bounds
    parts: dict[tuple[Any, ...], _Partial] = {}
    add_chunks(runs, chunked([(lo, hi)], chunk), conds, keys, parts, percentiles=percentiles)
    return finish(parts, keys)


def chunked(spans: Sequence[tuple[int, int]], chunk: int) -> list[tuple[int, int]]:
    """The ``(lo, hi]`` seq spans cut into ranges of at most ``chunk`` seqs."""
    return [(a, min(a + chunk, hi)) for lo, hi in spans for a in range(lo, hi, chunk)]


def add_chunks(
    runs: Sequence[Run],
    ranges: Sequence[tuple[int, int]],
    conds: list[tuple[str, str, Any]],
    keys: tuple[str, ...],
    into: dict[tuple[Any, ...], _Partial],
    *,
    percentiles: bool = True,
) -> None:
    """SQLite: add the partial sums of the calls with ``lo < seq <= hi``, one
    query per range, the ranges shared among the reader connections ``runs``
    (each in its own thread: sqlite3 releases the GIL while SQLite works)."""
    if not ranges:
        return
    sql = _select(conds, keys, SQLITE, percentiles=percentiles, extra_where="seq > ? AND seq <= ?")
    args = [v for _, _, v in conds]
    n = len(keys)
    results: list[list[tuple[Any, ...]]] = [[] for _ in ranges]
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = iter(range(len(ranges)))

    def work(run: Run) -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None or errors:
                return
            try:
                results[i] = run(sql, [*args, *ranges[i]])
            except BaseException as exc:
                errors.append(exc)
                return

    helpers = [threading.Thread(target=work, args=(r,), daemon=True) for r in runs[1:]]
    if len(ranges) < 2:
        helpers = []
    for t in helpers:
        t.start()
    work(runs[0])
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]
    for rows in results:
        _fold(rows, n, into)


def finish(parts: dict[tuple[Any, ...], _Partial], keys: tuple[str, ...]) -> list[UsageGroup]:
    """The groups of the partial sums added up (in order of first appearance)."""
    return _groups(parts, keys, {})


def _groups(
    parts: dict[tuple[Any, ...], _Partial],
    keys: tuple[str, ...],
    native: dict[tuple[Any, ...], tuple[Any, Any]],
) -> list[UsageGroup]:
    out = []
    for kv, p in sorted(parts.items(), key=lambda item: item[1].first):
        (
            requests,
            ok,
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
            estimated,
            est_in,
            est_out,
            diff_in,
            diff_out,
            *classes,
        ) = p.sums
        requests = int(requests)
        errors = requests - int(ok or 0)
        fast_secs = float(fast_secs or 0.0)
        if kv in native:
            latency = _native(native[kv][0])
            ttft = _native(native[kv][1])
        else:
            latency = _ranked(p.latency)
            ttft = _ranked(p.ttft)
        out.append(
            UsageGroup(
                key=dict(zip(keys, _labels(kv, keys), strict=True)),
                requests=requests,
                errors=errors,
                error_rate=errors / requests if requests else 0.0,
                status={c: int(v) for c, v in zip(_CLASSES, classes, strict=True) if v},
                input_tokens=int(prompt or 0),
                output_tokens=int(completion or 0),
                cached_tokens=int(cached_tok or 0),
                reasoning_tokens=int(reasoning or 0),
                cost_usd=None if cost is None else float(cost),
                priced_requests=int(priced),
                unpriced_requests=requests - int(priced),
                cache_hits=int(hits or 0),
                cached_latency_seconds=float(cached_lat or 0.0),
                latency_seconds=latency,
                ttft_seconds=ttft,
                output_tokens_per_second=(
                    int(fast_out or 0) / fast_secs if fast_secs > 0 else None
                ),
                tool_calls=int(tools or 0),
                estimated_requests=int(estimated or 0),
                estimated_input_tokens=int(est_in or 0),
                estimated_output_tokens=int(est_out or 0),
                input_tokens_difference=int(diff_in or 0),
                output_tokens_difference=int(diff_out or 0),
            )
        )
    if not keys and not out:
        out.append(UsageGroup(key={}, latency_seconds=_none(), ttft_seconds=_none()))
    return out


def _labels(kv: tuple[Any, ...], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """Integer day/hour buckets (SQLite) as the reference's text labels."""
    out = []
    for k, v in zip(keys, kv, strict=True):
        if k == "day" and isinstance(v, int):
            v = day_label(v)
        elif k == "hour" and isinstance(v, int):
            v = hour_label(v)
        out.append(v)
    return tuple(out)


def _none() -> dict[str, float | None]:
    return {f"p{p}": None for p in PERCENTILES}


def _native(values: list[float | None] | None) -> dict[str, float | None]:
    """PostgreSQL's ``percentile_disc`` array (all None: no value in the group)."""
    if values is None or all(v is None for v in values):
        return _none()
    return {
        f"p{p}": None if v is None else float(v) for p, v in zip(PERCENTILES, values, strict=True)
    }


def _ranked(parts: list[Any]) -> dict[str, float | None]:
    """Nearest-rank percentiles of integer microseconds: SQLite's concatenated
    text (NULLs are left out by ``group_concat``) parsed by numpy, and blocks'
    arrays, ranked by numpy."""
    import numpy as np

    texts = [p for p in parts if isinstance(p, str)]
    arrays = [p for p in parts if not isinstance(p, str)]
    if texts:
        arrays.append(np.fromstring(",".join(texts), dtype=np.int64, sep=","))
    if not arrays:
        return _none()
    vals = np.concatenate(arrays) if len(arrays) > 1 else arrays[0].copy()
    if vals.size == 0:
        return _none()
    ranks = [max(1, -(-vals.size * p // 100)) - 1 for p in PERCENTILES]
    vals.partition(sorted(set(ranks)))
    return {f"p{p}": int(vals[r]) / 1_000_000 for p, r in zip(PERCENTILES, ranks, strict=True)}
