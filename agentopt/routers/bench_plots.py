"""Pictures of a router benchmark (``agentopt bench routers --plot DIR``).

Per stream (table or mix), two PNGs:

- ``<data>-regret.png``: each router's cumulative regret against the best
  fixed arm in hindsight, step by step (mean over seeds);
- ``<data>-quality-cost.png``: each single model's mean score against its mean
  cost per request, and each router's, over the whole stream (hollow) and over
  its last third (filled: the operating point after learning).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_results"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "data"


def _short(label: str) -> str:
    """``agent=gpt-4o`` → ``gpt-4o``; combination labels stay whole."""
    return label.split("=", 1)[1] if label.count("=") == 1 else label


def plot_results(results: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write the PNGs of ``results`` (from ``run_router_benchmark(..., curves=True)``)
    into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    by_data: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if "regret_curve" not in r:
            raise ValueError("plot_results needs results from run_router_benchmark(curves=True)")
        by_data.setdefault(r["data"], []).append(r)
    colors = plt.get_cmap("tab10")
    for data, rows in by_data.items():
        objective = "score"
        lam = rows[0]["lambda_cost"]
        if lam:
            objective = f"score − {lam:g} × cost ($)"
        seeds, horizon = rows[0]["seeds"], rows[0]["horizon"]

        fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
        for k, r in enumerate(rows):
            curve = r["regret_curve"]
            ax.plot(range(1, len(curve) + 1), curve, label=r["router"], color=colors(k % 10))
        ax.axvline((2 * horizon) // 3, color="grey", lw=0.8, ls=":")
        ax.text(
            (2 * horizon) // 3, ax.get_ylim()[1], " last third", va="top", fontsize=8, color="grey"
        )
        ax.set_xlabel("requests routed")
        ax.set_ylabel(f"cumulative regret (objective: {objective})")
        ax.set_title(
            f"{data}: regret vs the best single model in hindsight\n(mean of {seeds} seeds)"
        )
        ax.grid(alpha=0.3)
        ax.legend(title="router", fontsize=8)
        fig.tight_layout()
        p = out / f"{_slug(data)}-regret.png"
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)

        fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=120)
        arms = rows[0]["arms"]
        xs = [a["cost_usd"] for a in arms.values()]
        ys = [a["score"] for a in arms.values()]
        ax.scatter(xs, ys, color="0.55", s=30, zorder=2, label="single model (whole stream)")
        for label, a in arms.items():
            ax.annotate(
                _short(label),
                (a["cost_usd"], a["score"]),
                textcoords="offset points",
                xytext=(4, 3),
                fontsize=7,
                color="0.35",
            )
        for k, r in enumerate(rows):
            c = colors(k % 10)
            whole = (r["mean_cost_usd"], r["mean_score"])
            tail = (r["tail_mean_cost_usd"], r["tail_mean_score"])
            ax.plot(*zip(whole, tail, strict=True), color=c, lw=0.8, zorder=3)
            ax.scatter(*whole, s=70, facecolors="none", edgecolors=[c], zorder=4)
            ax.scatter(*tail, s=90, marker="*", color=c, zorder=5, label=r["router"])
        ax.margins(x=0.12, y=0.08)  # room for the labels of the outermost models
        positive = [x for x in xs if x > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_xscale("log")
            ax.set_xlabel("mean cost per request (USD, log scale)")
        else:
            ax.set_xlabel("mean cost per request (USD)")
        ax.set_ylabel("mean score")
        ax.set_title(
            f"{data}: quality vs cost ({seeds} seeds)\n"
            "router: ○ whole stream, ★ last third (after learning)"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        fig.tight_layout()
        p = out / f"{_slug(data)}-quality-cost.png"
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)
    return paths
