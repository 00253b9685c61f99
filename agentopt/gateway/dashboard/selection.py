"""The selection view: a selection's observation store as a table and a Pareto chart.

Reads any file :func:`agentopt.report.load` reads (the JSONL or SQLite stores
``ModelSelector(store=...)`` writes). Per combination: evaluations, mean score
with a 95 % t-interval (the spread of this combination's own scores; the
selector's certified bounds live in its results), failures, $ per item and
seconds per item. "Last evaluated" is the position of the combination's last
observation in the run (observations in time order); a combination evaluated
fewer times than the most-evaluated one stopped being evaluated there, which
for an elimination strategy is when it was eliminated.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from scipy import stats as _stats

from agentopt.records import Observation
from agentopt.report import load

__all__ = ["selection_view"]


def selection_view(path: str | Path, *, fingerprint: str | None = None) -> dict[str, Any]:
    """The whole selection view of the observation store at ``path``.

    A store may hold several selections (one per fingerprint); the one with the
    most observations is shown unless ``fingerprint`` names another.
    """
    loaded = load(path)
    if loaded.kind != "observations":
        raise ValueError(f"{path}: holds call records, not a selection's observations")
    by_fp: dict[str | None, list[Observation]] = {}
    for fp, obs in loaded.observations:
        by_fp.setdefault(fp, []).append(obs)
    fingerprints = sorted(by_fp, key=lambda k: (-len(by_fp[k]), str(k)))
    if fingerprint is not None and fingerprint not in by_fp:
        raise ValueError(f"{path}: no selection with fingerprint {fingerprint!r}")
    chosen = fingerprint if fingerprint is not None else (fingerprints[0] if fingerprints else None)
    observations = sorted(by_fp.get(chosen, []), key=lambda o: o.timestamp)
    total = len(observations)
    groups: dict[str, list[tuple[int, Observation]]] = {}
    for i, o in enumerate(observations, start=1):
        groups.setdefault(Observation.combo_label(o.combo), []).append((i, o))
    all_scores = [o.score for o in observations]
    bounded = bool(all_scores) and min(all_scores) >= 0.0 and max(all_scores) <= 1.0
    rows = [_row(label, items, total, bounded) for label, items in groups.items()]
    most = max((r["n"] for r in rows), default=0)
    for r in rows:
        # evaluated less than the most-evaluated combination: it stopped being
        # evaluated at its last position (an elimination, or a budget's end)
        r["stopped_early"] = r["n"] < most
    rows.sort(
        key=lambda r: (
            -r["mean_score"],
            math.inf if r["usd_per_item"] is None else r["usd_per_item"],
        )
    )
    _mark_pareto(rows)
    return {
        "path": str(path),
        "fingerprint": chosen,
        "fingerprints": [
            {"fingerprint": fp, "observations": len(by_fp[fp])} for fp in fingerprints
        ],
        "observations": total,
        "combinations": rows,
        "warnings": loaded.skipped,
    }


def _row(
    label: str, items: list[tuple[int, Observation]], total: int, bounded: bool
) -> dict[str, Any]:
    obs = [o for _, o in items]
    scores = [o.score for o in obs]
    n = len(scores)
    mean = statistics.fmean(scores)
    half: float | None = None
    if n > 1:
        sd = statistics.stdev(scores)
        half = float(_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    low = mean - half if half is not None else None
    high = mean + half if half is not None else None
    if bounded and low is not None and high is not None:
        # scores in [0, 1]: an interval past the bounds says nothing more
        low, high = max(0.0, low), min(1.0, high)
    costs = [o.cost_usd for o in obs]
    usd = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs) / n
    lat = [o.latency_seconds for o in obs if o.latency_seconds is not None]
    last = max(i for i, _ in items)
    return {
        "combo": label,
        "nodes": dict(obs[0].combo),
        "n": n,
        "mean_score": mean,
        "ci_low": low,
        "ci_high": high,
        "failures": sum(o.failed for o in obs),
        "usd_per_item": usd,
        "unpriced": usd is None,
        "latency_per_item": statistics.fmean(lat) if lat else None,
        "first_evaluated": min(i for i, _ in items),
        "last_evaluated": last,
        "of": total,
    }


def _mark_pareto(rows: list[dict[str, Any]]) -> None:
    """Flag combinations not dominated on (higher score, lower $ per item)."""
    priced = [r for r in rows if r["usd_per_item"] is not None]
    for r in rows:
        r["pareto"] = False
    for r in priced:
        r["pareto"] = not any(
            o["mean_score"] >= r["mean_score"]
            and o["usd_per_item"] <= r["usd_per_item"]
            and (o["mean_score"] > r["mean_score"] or o["usd_per_item"] < r["usd_per_item"])
            for o in priced
        )
