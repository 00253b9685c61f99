"""Pictures of a router benchmark (``agentopt bench routers --plot DIR``).

Per stream (table or mix), two PNGs:

- ``<data>-regret.png``: each router's cumulative regret against the best
  fixed arm in hindsight, step by step (mean over seeds), and below it the
  router's cumulative cost as a share of that arm's over the same requests
  (a router that trades score for money shows both sides of the trade);
- ``<data>-quality-cost.png``: each single model's mean score against its mean
  cost per request (the best one ringed), and each router's, over the whole
  stream (hollow) and over its last third (a star: the operating point after
  learning); shaded, the region of ≥ 95 % of the best model's score at ≤ 50 %
  of its cost.
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

        fig, (ax, ax2) = plt.subplots(
            2, 1, figsize=(8, 7), dpi=120, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
        )
        for k, r in enumerate(rows):
            curve = r["regret_curve"]
            steps = range(1, len(curve) + 1)
            ax.plot(steps, curve, label=r["router"], color=colors(k % 10))
            share = [float("nan") if v is None else 100.0 * v for v in r["cost_share_curve"]]
            ax2.plot(steps, share, color=colors(k % 10))
        for a in (ax, ax2):
            a.axvline((2 * horizon) // 3, color="grey", lw=0.8, ls=":")
            a.grid(alpha=0.3)
        ax.text(
            (2 * horizon) // 3,
            0.98,
            " last third →",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=8,
            color="grey",
        )
        ax.set_ylabel(f"cumulative regret\n(objective: {objective})")
        ax.set_title(
            f"{data}: learning online, mean of {seeds} seeds\n"
            "top: regret vs the best single model in hindsight (lower is better)"
        )
        ax.legend(title="router", fontsize=8)
        ax2.axhline(100.0, color="0.3", lw=0.8)
        ax2.set_ylim(bottom=0)
        ax2.set_ylabel("cumulative cost\n(% of the best single model's)")
        ax2.set_xlabel("requests routed")
        fig.tight_layout()
        p = out / f"{_slug(data)}-regret.png"
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)

        fig, ax = plt.subplots(figsize=(9.5, 5.5), dpi=120)
        arms = rows[0]["arms"]
        xs = [a["cost_usd"] for a in arms.values()]
        ys = [a["score"] for a in arms.values()]
        best = max(arms, key=lambda lab: arms[lab]["score"])
        bx, by = arms[best]["cost_usd"], arms[best]["score"]
        ax.scatter(xs, ys, color="0.55", s=30, zorder=2, label="single model (whole stream)")
        ax.scatter(
            [bx],
            [by],
            s=110,
            facecolors="none",
            edgecolors="0.2",
            zorder=2,
            label=f"best single model ({_short(best)})",
        )
        positive = [x for x in xs if x > 0]
        log = bool(positive) and max(positive) / min(positive) > 20
        right = max(xs) if xs else 0.0
        for label, a in arms.items():
            # labels of the rightmost models go to their left, inside the frame
            near_right = a["cost_usd"] >= (right / 3 if log else 0.8 * right)
            ax.annotate(
                _short(label),
                (a["cost_usd"], a["score"]),
                textcoords="offset points",
                xytext=(-4, 3) if near_right else (4, 3),
                ha="right" if near_right else "left",
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
        if log:
            ax.set_xscale("log")
            ax.set_xlabel("mean cost per request (USD, log scale)")
        else:
            ax.set_xlabel("mean cost per request (USD)")
        if bx > 0 and by > 0:  # the target, relative to the best single model
            (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
            ax.fill_between(
                [x0, 0.5 * bx],
                0.95 * by,
                y1,
                color="tab:green",
                alpha=0.10,
                lw=0,
                zorder=0,
                label="target: ≥ 95 % of the best model's score\nat ≤ 50 % of its cost",
            )
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
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
