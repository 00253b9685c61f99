"""Aggregates and views of call records: usage, cost, latency, tables, exports.

Plain functions over a list of records, so that the tracker, the gateway's
usage API and a notebook compute the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt.records import CallRecord

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

__all__ = [
    "cached_latency",
    "export_jsonl",
    "print_summary",
    "to_dataframe",
    "total_cost",
    "usage_by_model",
]


def _model(r: CallRecord) -> str:
    return r.model or r.requested_model or "?"


def usage_by_model(records: Iterable[CallRecord]) -> dict[str, tuple[int, int]]:
    """``{model: (input_tokens, output_tokens)}``, cache hits included."""
    out: dict[str, tuple[int, int]] = {}
    for r in records:
        i, o = out.get(_model(r), (0, 0))
        out[_model(r)] = (i + r.prompt_tokens, o + r.completion_tokens)
    return out


def total_cost(records: Iterable[CallRecord]) -> float | None:
    """The summed cost in USD; None when any call is unpriced (never a silent 0)."""
    total = 0.0
    for r in records:
        if r.cost_usd is None:
            return None
        total += r.cost_usd
    return total


def cached_latency(records: Iterable[CallRecord]) -> float:
    """Seconds the cache hits took when they were first answered (time saved)."""
    return sum(r.latency_seconds for r in records if r.cached)


def to_dataframe(records: Sequence[CallRecord]) -> pd.DataFrame:
    """One row per call (request and response bodies left out)."""
    import pandas as pd

    rows = [r.model_dump(exclude={"request_body", "response_body"}) for r in records]
    columns = [f for f in CallRecord.model_fields if f not in ("request_body", "response_body")]
    return pd.DataFrame(rows, columns=columns)


def export_jsonl(records: Iterable[CallRecord], path: str | Path) -> int:
    """Write one JSON record per line; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for r in records:
            f.write(r.model_dump_json())
            f.write("\n")
            n += 1
    return n


def _fmt_cost(usd: float | None) -> str:
    return "unpriced" if usd is None else f"${usd:.6f}"


def print_summary(records: Sequence[CallRecord], *, console: Console | None = None) -> None:
    """A rich table per datapoint (or one when all share it): the model sequence,
    then tokens, cost, latency and cache hits per model."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if not records:
        console.print("[dim]agentopt: no LLM calls recorded[/dim]")
        return
    groups: dict[str | None, list[CallRecord]] = {}
    for r in records:
        groups.setdefault(r.data_id, []).append(r)
    for data_id, recs in groups.items():
        title = "LLM calls" if len(groups) == 1 else f"data_id={data_id}"
        seq = " → ".join(_model(r) for r in recs)
        table = Table(title=title, caption=f"sequence: {seq}", caption_justify="left")
        for col in ("model", "calls", "input tok", "output tok", "cost", "latency s", "cached"):
            table.add_column(col, justify="left" if col == "model" else "right")
        per: dict[str, list[CallRecord]] = {}
        for r in recs:
            per.setdefault(_model(r), []).append(r)
        for model, rs in per.items():
            table.add_row(
                model,
                str(len(rs)),
                str(sum(r.prompt_tokens for r in rs)),
                str(sum(r.completion_tokens for r in rs)),
                _fmt_cost(total_cost(rs)),
                f"{sum(r.latency_seconds for r in rs):.3f}",
                str(sum(r.cached for r in rs)),
            )
        errors = sum(not r.ok for r in recs)
        table.add_section()
        table.add_row(
            "total",
            str(len(recs)),
            str(sum(r.prompt_tokens for r in recs)),
            str(sum(r.completion_tokens for r in recs)),
            _fmt_cost(total_cost(recs)),
            f"{sum(r.latency_seconds for r in recs):.3f}",
            str(sum(r.cached for r in recs)) + (f" ({errors} failed)" if errors else ""),
        )
        console.print(table)


def summary_dict(records: Sequence[CallRecord]) -> dict[str, Any]:
    """The totals as plain data (for JSON APIs)."""
    return {
        "calls": len(records),
        "usage": usage_by_model(records),
        "cost_usd": total_cost(records),
        "cached_latency_seconds": cached_latency(records),
    }


def dumps(records: Iterable[CallRecord]) -> str:
    """Records as a JSON array string."""
    return json.dumps([r.model_dump(mode="json") for r in records])
