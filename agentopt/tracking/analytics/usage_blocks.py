"""Column blocks of SQLite's ``calls`` table: what its usage statistics read.

SQLite evaluates a statistics query row by row: the two dozen sums, the status
classes and the values ranked for percentiles cost about 1 µs per call, and its
``GROUP BY`` sorts. Over a million calls that is more than a second. So the
SQLite record store also keeps the columns statistics read as *blocks*: the
calls whose ``seq`` falls in one range (:data:`BLOCK_SEQS` seqs) as packed
numpy arrays in one BLOB (text columns as codes into the block's own labels;
integers as offsets from the block's minimum, in the narrowest unsigned type;
NULLs as a validity mask), which numpy filters, groups and sums in a few
milliseconds.

Blocks are derived data, never the source of truth: triggers on ``calls`` drop
the block of any row inserted, updated or deleted, a missing block's range is
computed by SQL (:mod:`agentopt.tracking.analytics.usage_sql`) and its block rebuilt, and
a block of an unknown format is ignored. :func:`block_groups` adds each block's
figures into the same per-group partial sums as the SQL chunks, so the answer
is the same whichever computed which rows: sums in the same order
(``_SUMS``), groups keyed by the same raw values, percentile values as integer
microseconds.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from agentopt.tracking.analytics.usage_sql import _Partial

__all__ = ["BLOCK_COLUMNS", "BLOCK_SEQS", "Unsupported", "block_groups", "build_block"]

#: Seqs one block covers (block ``b`` holds the calls with ``b <= seq < b + BLOCK_SEQS``).
BLOCK_SEQS = 65536
#: The block format this code writes and reads (others are ignored and rebuilt).
FORMAT = 1

_TEXT = (
    "provider",
    "model_label",
    "requested_model",
    "alias",
    "combo_id",
    "data_id",
    "agent_id",
    "session_id",
    "status_class",
)
_INTS = (
    "seq",
    "day",
    "hour",
    "status_code",
    "ok",
    "cached",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "tool_calls",
    "fast_latency_us",
    "fast_ttft_us",
    "estimated_input_tokens",
    "estimated_output_tokens",
)
_FLOATS = ("ts", "cost_usd", "latency_seconds")
#: The ``calls`` columns a block holds, in the order :func:`build_block` reads them.
BLOCK_COLUMNS: tuple[str, ...] = (*_INTS, *_FLOATS, *_TEXT)
_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "no_response")
# Positions in usage_sql._SUMS: the cost (None when no call is priced), the
# priced count, and the other sums of seconds.
_COST, _PRICED, _FLOAT_SUMS = 6, 7, (9, 11)


class Unsupported(Exception):
    """A filter on a column blocks do not hold (the caller uses SQL instead)."""


# --------------------------------------------------------------------------- writing
def build_block(rows: Sequence[tuple[Any, ...]]) -> tuple[float, float, bytes] | None:
    """(min ts, max ts, BLOB) of the ``calls`` rows given (their
    :data:`BLOCK_COLUMNS`, in seq order); None when a value is not of its
    column's type (the range is then left to SQL)."""
    if not rows:
        return None
    cols = list(zip(*rows, strict=True))
    header: dict[str, Any] = {"format": FORMAT, "n": len(rows), "cols": {}}
    parts: list[bytes] = []
    offset = 0

    def put(name: str, arr: np.ndarray, **meta: Any) -> None:
        nonlocal offset
        data = arr.tobytes()
        header["cols"][name] = {"dtype": arr.dtype.str, "offset": offset, **meta}
        pad = -len(data) % 8
        parts.append(data + b"\0" * pad)
        offset += len(data) + pad

    try:
        for i, name in enumerate(BLOCK_COLUMNS):
            values = cols[i]
            if name in _TEXT:
                index = dict.fromkeys(values, 0)
                index.pop(None, None)
                labels = list(index)
                if not all(isinstance(v, str) for v in labels):
                    return None
                index = {v: i for i, v in enumerate(labels, 1)}
                index[None] = 0
                codes = np.fromiter(map(index.__getitem__, values), np.int64, len(values))
                put(name, _narrow(codes), labels=labels, base=-1)
                continue
            arr = np.array(values, dtype=np.float64)  # None -> nan
            valid = ~np.isnan(arr)
            every = bool(valid.all())
            if not every:
                put(f"{name}.valid", valid)
            if name in _FLOATS:
                put(name, arr)
                continue
            ints = np.where(valid, arr, 0.0)
            if np.any(np.abs(ints) >= 2**53) or np.any(ints != np.round(ints)):
                return None
            ints = ints.astype(np.int64)
            base = int(ints.min())
            put(name, _narrow(ints - base), base=base)
    except (TypeError, ValueError, OverflowError):
        return None
    head = json.dumps(header, separators=(",", ":")).encode()
    ts = np.array(cols[BLOCK_COLUMNS.index("ts")], dtype=np.float64)
    blob = struct.pack("<I", len(head)) + head + b"".join(parts)
    return float(np.nanmin(ts)), float(np.nanmax(ts)), blob


def _narrow(arr: np.ndarray) -> np.ndarray:
    """Non-negative integers in the narrowest unsigned type that holds them."""
    top = int(arr.max()) if arr.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return arr.astype(dtype)
    return arr.astype(np.uint64)


# --------------------------------------------------------------------------- reading
class _Block:
    """One block's columns, decoded when first asked for."""

    def __init__(self, blob: bytes) -> None:
        (size,) = struct.unpack_from("<I", blob)
        self.header = json.loads(blob[4 : 4 + size])
        self.buf = memoryview(blob)[4 + size :]
        self.n = int(self.header["n"])
        self.cols: dict[str, Any] = self.header["cols"]

    def ok(self) -> bool:
        return self.header.get("format") == FORMAT

    def raw(self, name: str) -> np.ndarray:
        meta = self.cols[name]
        return np.frombuffer(self.buf, dtype=meta["dtype"], count=self.n, offset=meta["offset"])

    def valid(self, name: str) -> np.ndarray | None:
        """The validity mask (None: every value is there)."""
        return self.raw(f"{name}.valid") if f"{name}.valid" in self.cols else None

    def values(self, name: str) -> np.ndarray:
        """Integers as int64 (0 where NULL), floats as float64 (0.0 where NULL)."""
        raw = self.raw(name)
        if name in _FLOATS:
            valid = self.valid(name)
            return raw if valid is None else np.where(valid, raw, 0.0)
        out = raw.astype(np.int64) + int(self.cols[name]["base"])
        valid = self.valid(name)
        return out if valid is None else np.where(valid, out, 0)

    def codes(self, name: str) -> np.ndarray:
        """Text as codes into :meth:`labels` (-1: NULL)."""
        return self.raw(name).astype(np.int64) - 1

    def labels(self, name: str) -> list[str]:
        return list(self.cols[name]["labels"])


def _mask(block: _Block, conds: Sequence[tuple[str, str, Any]]) -> np.ndarray:
    keep = np.ones(block.n, dtype=bool)
    for col, op, value in conds:
        if col not in BLOCK_COLUMNS:
            raise Unsupported(col)
        if col in _TEXT:
            if op != "=" or not isinstance(value, str):
                raise Unsupported(col)
            labels = block.labels(col)
            if value not in labels:
                return np.zeros(block.n, dtype=bool)
            keep &= block.codes(col) == labels.index(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unsupported(col)
        arr = block.values(col)
        test = {
            "=": np.equal,
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
        }.get(op)
        if test is None:
            raise Unsupported(col)
        keep &= test(arr, value)
        valid = block.valid(col)
        if valid is not None:  # NULL matches nothing, as in SQL
            keep &= valid
    return keep


def _key_values(block: _Block, key: str, keep: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """The kept rows' local ids for one group-by column and each id's raw value
    (what SQL returns for it: text, None, or the integer day/hour)."""
    if key in _TEXT:
        codes = block.codes(key)[keep]
        labels: list[Any] = [None, *block.labels(key)]
        return codes + 1, labels
    arr = block.values(key)[keep]
    valid = block.valid(key)
    uniq, inverse = np.unique(arr, return_inverse=True)
    values: list[Any] = [int(v) for v in uniq]
    if valid is not None:
        nulls = ~valid[keep]
        if nulls.any():
            inverse = np.where(nulls, len(values), inverse)
            values.append(None)
    return inverse.astype(np.int64), values


def block_groups(
    blobs: Iterable[bytes],
    conds: Sequence[tuple[str, str, Any]],
    sql_keys: tuple[str, ...],
    into: dict[tuple[Any, ...], _Partial],
    *,
    percentiles: bool,
) -> None:
    """Add the figures of the calls in ``blobs`` that match ``conds`` to the
    partial sums ``into`` (per group of the columns ``sql_keys``), as :func:`agentopt.tracking.analytics.usage_sql._fold` adds a SQL
    chunk's. Raises :class:`Unsupported` for a filter blocks cannot apply."""
    for blob in blobs:
        block = _Block(blob)
        if not block.ok():
            raise Unsupported("format")
        keep = _mask(block, conds)
        if keep.any():
            _add_block(block, keep, sql_keys, into, percentiles=percentiles)


def _add_block(
    block: _Block,
    keep: np.ndarray,
    sql_keys: tuple[str, ...],
    into: dict[tuple[Any, ...], _Partial],
    *,
    percentiles: bool,
) -> None:
    """Add the kept rows of one block to ``into``, per group."""
    from agentopt.tracking.analytics.usage_sql import _Partial

    # local group of each kept row
    if sql_keys:
        ids = []
        sizes = []
        names = []
        for k in sql_keys:
            local, values = _key_values(block, k, keep)
            ids.append(local)
            sizes.append(len(values))
            names.append(values)
        flat = np.ravel_multi_index(ids, sizes) if len(ids) > 1 else ids[0]
        combos, first, gid = np.unique(flat, return_index=True, return_inverse=True)
        unravelled = np.unravel_index(combos, sizes) if len(ids) > 1 else (combos,)
        kvs = [
            tuple(names[j][int(unravelled[j][g])] for j in range(len(sql_keys)))
            for g in range(len(combos))
        ]
    else:
        first = np.zeros(1, dtype=np.int64)
        gid = np.zeros(int(keep.sum()), dtype=np.int64)
        kvs = [()]
    gid = gid.reshape(-1)
    n = len(kvs)
    seq = block.values("seq")[keep]

    def col(name: str) -> np.ndarray:
        return block.values(name)[keep]

    def valid(name: str) -> np.ndarray:
        v = block.valid(name)
        return np.ones(int(keep.sum()), dtype=bool) if v is None else v[keep]

    def total(weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(gid, weights=weights, minlength=n)

    ok = col("ok")
    cached = col("cached")
    prompt = col("prompt_tokens")
    completion = col("completion_tokens")
    latency = col("latency_seconds")
    lat_ok = valid("latency_seconds")
    fast = valid("fast_latency_us")
    cost_ok = valid("cost_usd")
    est_in_ok = valid("estimated_input_tokens")
    est_out_ok = valid("estimated_output_tokens")
    est_in = col("estimated_input_tokens")
    est_out = col("estimated_output_tokens")
    status = block.codes("status_class")[keep]
    status_labels = block.labels("status_class")
    columns = [  # in the order of usage_sql._SUMS
        total(),
        total(ok),
        total(prompt),
        total(completion),
        total(col("cached_tokens")),
        total(col("reasoning_tokens")),
        total(col("cost_usd")),
        total(cost_ok),
        total(cached),
        total(np.where(lat_ok, latency * cached, 0.0)),
        total(np.where(fast, completion, 0)),
        total(np.where(fast & lat_ok, latency, 0.0)),
        total(col("tool_calls")),
        total(est_in_ok),
        total(est_in),
        total(est_out),
        total(np.where(est_in_ok, prompt - est_in, 0)),
        total(np.where(est_out_ok, completion - est_out, 0)),
        *(
            total(status == status_labels.index(c)) if c in status_labels else np.zeros(n)
            for c in _CLASSES
        ),
    ]
    table = np.column_stack(columns)
    # integer sums are exact in float64 (below 2**53); cost and seconds stay floats
    as_ints = np.rint(table).astype(np.int64).tolist()
    as_floats = table.tolist()
    first_seq = seq[first].tolist()
    if percentiles:
        lat_us = col("fast_latency_us")
        ttft_us = col("fast_ttft_us")
        ttft_ok = valid("fast_ttft_us")
        lat_by = _split(gid[fast], lat_us[fast], n)
        ttft_by = _split(gid[ttft_ok], ttft_us[ttft_ok], n)
    for g, kv in enumerate(kvs):
        sums: list[Any] = as_ints[g]
        floats = as_floats[g]
        sums[_COST] = floats[_COST] if sums[_PRICED] else None
        for i in _FLOAT_SUMS:
            sums[i] = floats[i]
        p = into.get(kv)
        if p is None:
            p = into[kv] = _Partial(sums, first_seq[g])
        else:
            p.add(sums, first_seq[g])
        if percentiles:
            if lat_by[g].size:
                p.latency.append(lat_by[g])
            if ttft_by[g].size:
                p.ttft.append(ttft_by[g])


def _split(gid: np.ndarray, values: np.ndarray, n: int) -> list[np.ndarray]:
    """``values`` per group id (0 … n-1)."""
    if n == 1:
        return [values]
    order = np.argsort(gid, kind="stable")
    bounds = np.cumsum(np.bincount(gid, minlength=n))[:-1]
    return np.split(values[order], bounds)
