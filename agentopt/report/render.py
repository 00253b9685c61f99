"""Summaries and tables of what :mod:`agentopt.report.loading` read.

Records are summarised per model (calls, errors, tokens, cost, latency), then
per ``combo_id``, ``agent_id`` and ``data_id`` when present; observations per
combination (n, mean score, failures, $ and seconds per item); a ranking (a
results CSV or an exported config) as the ranked table it holds. An unpriced
cost is shown as *unpriced*, never as $0.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text

from agentopt.records import CallRecord, Observation
from agentopt.report.loading import Loaded, load

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CostSum",
    "cli_main",
    "observation_rows",
    "print_report",
    "record_rows",
]

#: At most this many groups are listed per grouping (the rest are counted).
MAX_GROUP_ROWS = 40


# --------------------------------------------------------------------------- summaries
@dataclass
class CostSum:
    """A sum of costs that keeps unpriced items apart (they are never $0)."""

    usd: float = 0.0
    priced: int = 0
    unpriced: int = 0

    def add(self, usd: float | None) -> None:
        if usd is None:
            self.unpriced += 1
        else:
            self.usd += usd
            self.priced += 1

    def per_item(self) -> float | None:
        """Mean over priced items; None when nothing was priced."""
        return self.usd / self.priced if self.priced else None

    def text(self, value: float | None = None) -> str:
        v = self.usd if value is None else value
        if not self.priced:
            return "unpriced"
        money = f"${v:.6f}" if abs(v) < 1 else f"${v:,.2f}"
        return money + (f" + {self.unpriced} unpriced" if self.unpriced else "")


def _model(r: CallRecord) -> str:
    return r.model or r.requested_model or "?"


def _p95(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)] if s else 0.0


def record_rows(
    records: Iterable[CallRecord], key: Callable[[CallRecord], str | None] = _model
) -> list[dict[str, Any]]:
    """One row per ``key(record)`` (default: the answering model), in first-seen order."""
    groups: dict[str | None, list[CallRecord]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    rows = []
    for name, rs in groups.items():
        cost = CostSum()
        for r in rs:
            cost.add(r.cost_usd)
        lat = [r.latency_seconds for r in rs]
        rows.append(
            {
                "key": name,
                "calls": len(rs),
                "errors": sum(not r.ok for r in rs),
                "cached": sum(r.cached for r in rs),
                "routed": sum(
                    r.requested_model is not None and r.model not in (None, r.requested_model)
                    for r in rs
                ),
                "input_tokens": sum(r.prompt_tokens for r in rs),
                "output_tokens": sum(r.completion_tokens for r in rs),
                "cost": cost,
                "latency_mean": statistics.fmean(lat),
                "latency_p95": _p95(lat),
            }
        )
    return rows


def observation_rows(observations: Iterable[Observation]) -> list[dict[str, Any]]:
    """One row per combination, best mean score first (ties: cheaper first)."""
    groups: dict[str, list[Observation]] = {}
    for o in observations:
        groups.setdefault(Observation.combo_label(o.combo), []).append(o)
    rows = []
    for label, obs in groups.items():
        cost = CostSum()
        for o in obs:
            cost.add(o.cost_usd)
        lat = [o.latency_seconds for o in obs if o.latency_seconds is not None]
        scores = [o.score for o in obs]
        rows.append(
            {
                "combo": label,
                "n": len(obs),
                "mean_score": statistics.fmean(scores),
                "sd": statistics.stdev(scores) if len(scores) > 1 else None,
                "failures": sum(o.failed for o in obs),
                "cost": cost,
                "usd_per_item": cost.per_item(),
                "latency_per_item": statistics.fmean(lat) if lat else None,
            }
        )
    rows.sort(key=_rank)
    return rows


def _rank(row: dict[str, Any]) -> tuple[float, float, str]:
    usd = row["usd_per_item"]
    return (-float(row["mean_score"]), math.inf if usd is None else float(usd), str(row["combo"]))


# --------------------------------------------------------------------------- rendering
def _records_table(title: str, rows: list[dict[str, Any]], first: str) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in (first, "calls", "errors", "input tok", "output tok", "cost", "latency s", "p95 s"):
        t.add_column(col, justify="left" if col == first else "right", overflow="fold")
    for r in rows[:MAX_GROUP_ROWS]:
        t.add_row(
            Text(str(r["key"])),
            str(r["calls"]),
            str(r["errors"]) if r["errors"] else "",
            f"{r['input_tokens']:,}",
            f"{r['output_tokens']:,}",
            r["cost"].text(),
            f"{r['latency_mean']:.3f}",
            f"{r['latency_p95']:.3f}",
        )
    if len(rows) > MAX_GROUP_ROWS:
        t.caption = f"… and {len(rows) - MAX_GROUP_ROWS} more"
    return t


def _field_key(name: str) -> Callable[[CallRecord], str | None]:
    return lambda r: getattr(r, name) or "(none)"


def _print_records(loaded: Loaded, console: Console) -> None:
    recs = loaded.records
    if not recs:
        console.print(Text(f"{loaded.path}: no calls recorded"))
        return
    by_model = record_rows(recs)
    total = record_rows(recs, key=lambda r: "total")[0]
    stamps = sorted(r.timestamp for r in recs)
    console.print(
        f"[bold]{escape(str(loaded.path))}[/bold]: {len(recs)} calls ({loaded.fmt} records), "
        f"{stamps[0]} → {stamps[-1]}",
        highlight=False,
    )
    table = _records_table("per model", by_model, "model")
    table.add_section()
    table.add_row(
        "total",
        str(total["calls"]),
        str(total["errors"]),
        f"{total['input_tokens']:,}",
        f"{total['output_tokens']:,}",
        total["cost"].text(),
        f"{total['latency_mean']:.3f}",
        f"{total['latency_p95']:.3f}",
    )
    console.print(table)
    extras = [f"{total['cached']} cache hits"] if total["cached"] else []
    if total["routed"]:
        extras.append(f"{total['routed']} calls routed to another model")
    if extras:
        console.print(", ".join(extras))
    for fld in ("combo_id", "agent_id", "data_id"):
        if any(getattr(r, fld) is not None for r in recs):
            rows = record_rows(recs, key=_field_key(fld))
            console.print(_records_table(f"per {fld}", rows, fld))


def _print_observations(loaded: Loaded, console: Console) -> None:
    from rich.table import Table

    obs = loaded.observations
    if not obs:
        console.print(Text(f"{loaded.path}: no observations"))
        return
    by_fp: dict[str | None, list[Observation]] = {}
    for fp, o in obs:
        by_fp.setdefault(fp, []).append(o)
    console.print(
        f"[bold]{escape(str(loaded.path))}[/bold]: {len(obs)} observations ({loaded.fmt}), "
        f"{len(by_fp)} selection(s)",
        highlight=False,
    )
    for fp, group in by_fp.items():
        rows = observation_rows(group)
        title = "per combination" + (f" (selection {escape(fp)})" if fp and len(by_fp) > 1 else "")
        t = Table(title=title, title_justify="left")
        for col in ("combination", "n", "mean score", "sd", "failures", "$ per item", "s per item"):
            t.add_column(col, justify="left" if col == "combination" else "right", overflow="fold")
        for r in rows:
            t.add_row(
                Text(r["combo"]),
                str(r["n"]),
                f"{r['mean_score']:.4f}",
                "" if r["sd"] is None else f"{r['sd']:.3f}",
                str(r["failures"]) if r["failures"] else "",
                r["cost"].text(r["usd_per_item"] or 0.0),
                "" if r["latency_per_item"] is None else f"{r['latency_per_item']:.3f}",
            )
        total = CostSum()
        for o in group:
            total.add(o.cost_usd)
        t.caption = f"{len(group)} evaluations, total cost {total.text()}"
        console.print(t)


def _print_ranking(loaded: Loaded, console: Console) -> None:
    from rich.table import Table

    sel = loaded.selection
    head = f"[bold]{escape(str(loaded.path))}[/bold]: {len(loaded.ranking)} combinations ranked"
    if sel:
        head += f" by {escape(str(sel.get('method', '?')))}"
        if sel.get("evaluations") is not None:
            head += f", {sel['evaluations']} evaluations"
        if sel.get("selection_cost_usd") is not None:
            head += f", cost ${float(sel['selection_cost_usd']):.6f}"
    console.print(head, highlight=False)
    t = Table(title="ranking", title_justify="left")
    for col in ("#", "combination", "score", "evals", "failed", "$ per item", "status"):
        t.add_column(col, justify="left" if col in ("combination", "status") else "right")
    for r in loaded.ranking:
        usd, score, out = r["cost_per_item"], r["score"], r["eliminated_round"]
        status = "★ best" if r["best"] else (f"out r{int(out)}" if out is not None else "")
        t.add_row(
            str(r["rank"]),
            Text(str(r["combo"])),
            "—" if score is None else f"{float(score):.4f}",
            str(r["evaluations"]),
            str(r["failures"]) if r["failures"] else "",
            "unpriced" if usd is None else f"${float(usd):.6f}",
            status,
        )
    console.print(t)
    if sel.get("stop_reason"):
        console.print(Text(f"stopped: {sel['stop_reason']}"))


def print_report(path: str | Path, *, console: Console | None = None) -> Loaded:
    """Load ``path`` and print its summary; returns what was loaded."""
    from rich.console import Console

    loaded = load(path)
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    for note in loaded.skipped:
        console.print(f"[yellow]warning:[/yellow] {escape(note)}")
    if loaded.kind == "observations":
        _print_observations(loaded, console)
    elif loaded.kind == "ranking":
        _print_ranking(loaded, console)
    else:
        _print_records(loaded, console)
    return loaded


def cli_main(args: argparse.Namespace) -> int:
    """``agentopt report PATH [--stats [GROUP_BY]]``."""
    loaded = print_report(args.path)
    group_by = getattr(args, "stats", None)
    if group_by and loaded.kind == "records":
        from agentopt.tracking.analytics.usage import print_usage, usage_stats

        print_usage(usage_stats(loaded.records, group_by=group_by))
    return 0
