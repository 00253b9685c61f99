"""The Pareto plot of a selection: score against $ per item, with intervals.

matplotlib is imported here only, with the Agg backend, so results work
without a display and without matplotlib until a plot is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentopt.exceptions import SelectionError

if TYPE_CHECKING:
    from agentopt.selectors.results import SelectionResults

__all__ = ["plot_pareto"]


def plot_pareto(
    results: SelectionResults,
    path: str | Path | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Score against $ per item, with intervals and the Pareto front.

    With ``path``: saved as PNG, the path is returned and the figure closed.
    With ``ax`` (a matplotlib Axes): drawn there, the Axes is returned.
    With neither: a new matplotlib Figure is returned (Jupyter displays it).
    """
    try:
        import matplotlib

        if path is not None and ax is None:
            matplotlib.use("Agg", force=False)  # a file needs no display
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise SelectionError("plot() needs matplotlib: pip install 'agentopt[plot]'") from exc
    df = results.to_dataframe()
    placed = df[df["evaluations"].gt(0) & df["cost_per_item"].notna()]
    front = results.pareto_front()
    # A pyplot-free Figure: nothing is registered with pyplot, so nothing leaks or shows twice.
    given_ax = ax is not None
    fig = ax.figure if given_ax else Figure(figsize=(8, 5.5), dpi=110)
    if not given_ax:
        ax = fig.subplots()
    x = placed["cost_per_item"].to_numpy(float)
    y = placed["score"].to_numpy(float)
    # the intervals bound the objective; drawn around the score with their widths
    centre = placed["objective"].to_numpy(float)
    lo = np.clip(centre - placed["ci_lower"].to_numpy(float), 0, None)
    hi = np.clip(placed["ci_upper"].to_numpy(float) - centre, 0, None)
    yerr = np.nan_to_num(np.vstack([lo, hi]), nan=0.0)
    alive = placed["eliminated_round"].isna().to_numpy()
    for mask, color, name in ((alive, "tab:blue", "alive"), (~alive, "0.6", "eliminated")):
        if mask.any():
            ax.errorbar(
                x[mask], y[mask], yerr=yerr[:, mask], fmt="o", color=color,
                ecolor=color, alpha=0.8, capsize=3, label=name,
            )  # fmt: skip
    if len(front):
        ax.step(
            front["cost_per_item"], front["score"], where="post",
            color="tab:orange", lw=1.5, label="Pareto front",
        )  # fmt: skip
        for _, r in front.iterrows():
            ax.annotate(
                " + ".join(str(r[n]) for n in results.nodes), (r["cost_per_item"], r["score"]), fontsize=7,
                xytext=(4, 4), textcoords="offset points",
            )  # fmt: skip
    best = placed[placed["best"]]
    if len(best):
        ax.scatter(
            best["cost_per_item"], best["score"], marker="*", s=260,
            color="gold", edgecolor="black", zorder=5, label="best",
        )  # fmt: skip
    if len(x) and np.nanmax(x) > 0 and np.nanmin(x[x > 0], initial=np.inf) > 0:
        pos = x[x > 0]
        if len(pos) and pos.max() / pos.min() > 30:
            ax.set_xscale("log")
    ax.set_xlabel("$ per item")
    ax.set_ylabel(f"score ({results.confidence:.0%} interval)")
    ax.set_title(title or f"Model selection ({results.method}): score vs cost")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no priced observations to place", ha="center",
                transform=ax.transAxes)  # fmt: skip
    if path is None:
        return ax if given_ax else fig
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, format="png")
    return p
