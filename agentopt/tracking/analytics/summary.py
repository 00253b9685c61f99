"""Aggregates and views of call records: usage, cost, latency, tables, exports.

Plain functions over a list of records, so that the tracker, the gateway's
usage API and a notebook compute the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentopt._tables import fit, wrap_name
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


def _fmt_costs(rs: Sequence[CallRecord]) -> str:
    """The priced sum; ``*`` when some calls are unpriced (left out, never counted as $0)."""
    unpriced = sum(r.cost_usd is None for r in rs)
    if unpriced == len(rs):
        return "unpriced"
    usd = sum(r.cost_usd for r in rs if r.cost_usd is not None)
    return f"${usd:.6f}" + ("*" if unpriced else "")


#: What ``print_summary(by=...)`` can group by.
GROUPS = ("data_id", "combo_id", "agent_id")


def _rows(table: Any, recs: Sequence[CallRecord], errors_col: bool, cap: int | None) -> None:
    per: dict[str, list[CallRecord]] = {}
    for r in recs:
        per.setdefault(_model(r), []).append(r)
    for model, rs in per.items():
        table.add_row(wrap_name(model, cap) if cap else model, *_figures(rs, errors_col))


def _figures(rs: Sequence[CallRecord], errors_col: bool) -> list[str]:
    errors = sum(not r.ok for r in rs)
    return [
        f"{len(rs):,}",
        *([str(errors) if errors else ""] if errors_col else []),
        f"{sum(r.prompt_tokens for r in rs):,}",
        f"{sum(r.completion_tokens for r in rs):,}",
        _fmt_costs(rs),
        f"{sum(r.latency_seconds for r in rs):.3f}",
        str(sum(r.cached for r in rs)),
    ]


def _table(title: str, errors_col: bool, cap: int | None) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("model", overflow="fold", max_width=cap)  # whole names: wrapped, never cut
    cols = ["calls", *(["errors"] if errors_col else []), "in tok", "out tok", "cost"]
    for col in (*cols, "latency s", "cached"):
        table.add_column(col, justify="right", no_wrap=True)
    return table


def print_summary(
    records: Sequence[CallRecord], *, by: str | None = None, console: Console | None = None
) -> None:
    """One table of calls, tokens, cost, latency and cache hits per model, with a
    grand total. Model names are never cut (they wrap at narrow widths); a cost
    with unpriced calls left out is marked ``*`` and the note under the table
    says how many (never counted as $0). With one datapoint (or none named), the
    model sequence is shown under the table. ``by="data_id"`` (or ``"combo_id"``,
    ``"agent_id"``) adds one table per value, then the grand total.
    """
    from rich.console import Console
    from rich.text import Text

    if by is not None and by not in GROUPS:
        from agentopt.exceptions import ConfigError

        raise ConfigError(f"print_summary(by=...) must be one of {', '.join(GROUPS)}, not {by!r}")
    console = console or Console()
    if not records:
        console.print("[dim]agentopt: no LLM calls recorded[/dim]")
        return
    errors_col = any(not r.ok for r in records)
    longest = max(len(_model(r)) for r in records)

    def build(title: str, recs: Sequence[CallRecord], total: bool) -> Callable[[int | None], Any]:
        def make(cap: int | None) -> Any:
            table = _table(title, errors_col, cap)
            if recs:
                _rows(table, recs, errors_col, cap)
            if total:
                if recs:
                    table.add_section()
                table.add_row("total", *_figures(records, errors_col), style="bold")
            return table

        return make

    if by is not None:
        groups: dict[str | None, list[CallRecord]] = {}
        for r in records:
            groups.setdefault(getattr(r, by), []).append(r)
        for value, recs in groups.items():
            console.print(fit(console, build(f"{by}={value}", recs, False), longest))
        console.print(fit(console, build("all calls", [], True), longest))
    else:
        console.print(fit(console, build("LLM calls", records, True), longest))
    unpriced = sum(r.cost_usd is None for r in records)
    if unpriced and unpriced < len(records):
        console.print(Text(f"* without {unpriced} unpriced call(s): their cost is unknown, not $0"))
    data_ids = {r.data_id for r in records}
    if by is None and len(data_ids) == 1:
        seq = " → ".join(_model(r) for r in records)
        console.print(Text(f"sequence: {seq}"), overflow="fold")
    elif by is None:
        console.print(
            Text(f"{len(data_ids)} datapoints; print_summary(by='data_id') shows each"),
            style="dim",
        )


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
