"""SelectionResults: what a selection found, as a table, exports and a plot.

Built once from the observations and the strategy's final state. Every
figure is computed from the observations themselves, each counted once:
``evaluations`` is the number of (combination, datapoint) cells observed and
``selection_cost`` the sum of their costs (cells served from a resume store
are included, and counted in ``reused_evaluations`` / ``reused_cost``).

Example::

    results = selector.select_best()
    results.print_summary()
    results.get_best_combo()        # {"planner": "gpt-4o-mini", "solver": "gpt-4o"}
    results.to_csv("results.csv"); results.export_config("best.yaml")
    results.plot("pareto.png")
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentopt._tables import fit, wrap_name
from agentopt.compat.results import CompatResults
from agentopt.exceptions import SelectionError
from agentopt.records import Observation
from agentopt.selectors.certainty import Certainty
from agentopt.selectors.objective import Objective

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ArmResult", "SelectionResults"]


@dataclass(frozen=True, slots=True)
class ArmResult:
    """One combination's summary. Per-item figures are means over its evaluations;
    ``cost_per_item`` is None when one of its calls was unpriced (never $0).
    ``lower``/``upper`` bound the mean *objective* at the selection's confidence
    (simultaneously over arms); with the default objective that is the score."""

    arm: int
    rank: int
    combo: dict[str, str]
    label: str
    score: float
    lower: float
    upper: float
    evaluations: int
    failures: int
    cost_per_item: float | None
    latency_per_item: float | None
    input_tokens_per_item: float | None
    output_tokens_per_item: float | None
    objective: float
    eliminated_round: int | None
    best: bool


def _nan_to_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


@dataclass(eq=False)
class SelectionResults(CompatResults):
    """The outcome of one selection (see the module docstring). Iterating yields a
    :class:`~agentopt.compat.results.ModelResult` per combination, best first;
    ``get_best()``, ``get_by_attribute()`` and ``export_config()`` (a LiteLLM-style
    config plus how the pick was made) come from :class:`CompatResults`."""

    method: str
    nodes: list[str]
    labels: list[dict[str, str]]
    combos: list[dict[str, Any]]
    observations: list[tuple[int, int, Observation]]
    best_arm: int
    lower: np.ndarray
    upper: np.ndarray
    eliminated: dict[int, int]
    n_datapoints: int
    objective: Objective = field(default_factory=Objective)
    confidence: float = 0.95
    epsilon: float = 0.0
    seed: int | None = None
    stop_reason: str | None = None
    rounds: int = 0
    reused_keys: frozenset[tuple[int, int]] = frozenset()
    #: what the evidence cannot support or looks wrong (printed under the table)
    warnings: tuple[str, ...] = ()
    #: how sure the pick is: certified, exact, an estimate, or unsupported
    certainty: Certainty | None = None
    arms: list[ArmResult] = field(init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.best_arm < len(self.labels):
            raise SelectionError(f"best arm {self.best_arm} is not one of {len(self.labels)} arms")
        self.arms = self._summarise()

    # ----------------------------------------------------------------- figures
    def _summarise(self) -> list[ArmResult]:
        k = len(self.labels)
        n = np.zeros(k, dtype=int)
        fails = np.zeros(k, dtype=int)
        s_score = np.zeros(k)
        s_cost = np.zeros(k)
        cost_unknown = np.zeros(k, dtype=bool)
        s_lat = np.zeros(k)
        s_in = np.zeros(k)
        s_out = np.zeros(k)
        for arm, _dp, o in self.observations:
            n[arm] += 1
            fails[arm] += o.failed
            s_score[arm] += o.score
            if o.cost_usd is None:
                cost_unknown[arm] = True
            else:
                s_cost[arm] += o.cost_usd
            s_lat[arm] += o.latency_seconds or 0.0
            s_in[arm] += o.input_tokens or 0
            s_out[arm] += o.output_tokens or 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s_score / n, np.nan)
            cost = np.where((n > 0) & ~cost_unknown, s_cost / n, np.nan)
            lat = np.where(n > 0, s_lat / n, np.nan)
            tin = np.where(n > 0, s_in / n, np.nan)
            tout = np.where(n > 0, s_out / n, np.nan)
        obj = self.objective.values(mean, cost, lat)

        def sort_key(a: int) -> tuple[int, int, float, float]:
            # The pick first; then arms never eliminated, then eliminated ones,
            # later eliminations first; within each, higher objective first.
            m = -np.inf if math.isnan(obj[a]) else obj[a]
            return (a != self.best_arm, a in self.eliminated, -self.eliminated.get(a, 0), -m)

        order = sorted(range(k), key=sort_key)
        out = []
        for rank, a in enumerate(order, 1):
            lo = float(self.lower[a]) if len(self.lower) > a else math.nan
            hi = float(self.upper[a]) if len(self.upper) > a else math.nan
            out.append(
                ArmResult(
                    arm=a,
                    rank=rank,
                    combo=dict(self.labels[a]),
                    label=Observation.combo_label(self.labels[a]),
                    score=float(mean[a]),
                    lower=lo,
                    upper=hi,
                    evaluations=int(n[a]),
                    failures=int(fails[a]),
                    cost_per_item=_nan_to_none(cost[a]),
                    latency_per_item=_nan_to_none(lat[a]),
                    input_tokens_per_item=_nan_to_none(tin[a]),
                    output_tokens_per_item=_nan_to_none(tout[a]),
                    objective=float(obj[a]),
                    eliminated_round=self.eliminated.get(a),
                    best=a == self.best_arm,
                )
            )
        return out

    @property
    def evaluations(self) -> int:
        """Cells observed (each (combination, datapoint) once), resumed ones included."""
        return len(self.observations)

    @property
    def reused_evaluations(self) -> int:
        """Cells served from the resume store: not paid for in this run."""
        return sum((a, d) in self.reused_keys for a, d, _ in self.observations)

    @property
    def failures(self) -> int:
        return sum(o.failed for _, _, o in self.observations)

    @property
    def unpriced_evaluations(self) -> int:
        return sum(o.cost_usd is None for _, _, o in self.observations)

    @property
    def selection_cost(self) -> float:
        """Dollars spent on all observed cells (unpriced ones excluded: see
        :attr:`unpriced_evaluations`)."""
        return float(sum(o.cost_usd or 0.0 for _, _, o in self.observations))

    @property
    def reused_cost(self) -> float:
        """The part of :attr:`selection_cost` paid by an earlier, resumed run."""
        return float(
            sum(o.cost_usd or 0.0 for a, d, o in self.observations if (a, d) in self.reused_keys)
        )

    @property
    def cost_this_run(self) -> float:
        """What this run paid: :attr:`selection_cost` minus :attr:`reused_cost`."""
        return self.selection_cost - self.reused_cost

    @property
    def brute_force_cost_estimate(self) -> float | None:
        """What evaluating every combination on every datapoint would cost, from the
        observed cost per item (None when some arm is unpriced or unobserved)."""
        costs = [a.cost_per_item for a in self.arms]
        if any(c is None for c in costs):
            return None
        return float(sum(c or 0.0 for c in costs) * self.n_datapoints)

    # ----------------------------------------------------------------- picks
    @property
    def supported(self) -> bool:
        """False when the evidence cannot support the pick (see ``certainty``)."""
        return self.certainty is None or self.certainty.supported

    def get_best_combo(self) -> dict[str, Any]:
        """The chosen ``{node: model}``, with the model objects exactly as passed in."""
        return dict(self.combos[self.best_arm])

    def pareto_front(self) -> pd.DataFrame:
        """Arms not dominated on (higher score, lower $ per item), cheapest first.
        Unpriced or unobserved arms cannot be placed and are left out."""
        df = self.to_dataframe()
        cand = df[df["evaluations"].gt(0) & df["cost_per_item"].notna()]
        keep = []
        for i, row in cand.iterrows():
            dominated = (
                (cand["score"] >= row["score"])
                & (cand["cost_per_item"] <= row["cost_per_item"])
                & ((cand["score"] > row["score"]) | (cand["cost_per_item"] < row["cost_per_item"]))
            ).any()
            if not dominated:
                keep.append(i)
        return cand.loc[keep].sort_values(["cost_per_item", "score"]).reset_index(drop=True)

    # ----------------------------------------------------------------- exports
    def to_dataframe(self) -> pd.DataFrame:
        """One row per combination, in rank order; one column per node."""
        import pandas as pd

        rows = []
        for a in self.arms:
            row: dict[str, Any] = {"rank": a.rank, "combo": a.label}
            row.update({node: a.combo.get(node) for node in self.nodes})
            row.update(
                score=a.score,
                ci_lower=a.lower,
                ci_upper=a.upper,
                objective=a.objective,
                evaluations=a.evaluations,
                failures=a.failures,
                cost_per_item=a.cost_per_item,
                latency_per_item=a.latency_per_item,
                input_tokens_per_item=a.input_tokens_per_item,
                output_tokens_per_item=a.output_tokens_per_item,
                eliminated_round=a.eliminated_round,
                best=a.best,
            )
            rows.append(row)
        df = pd.DataFrame(rows)
        for col in ("cost_per_item", "latency_per_item"):
            df[col] = df[col].astype(float)
        df["eliminated_round"] = df["eliminated_round"].astype("Int64")
        return df

    def observations_dataframe(self) -> pd.DataFrame:
        """Every observation, one row each (the raw material of the table)."""
        import pandas as pd

        columns = [
            "arm", "combo", "datapoint", "score", "cost_usd", "latency_s",
            "input_tokens", "output_tokens", "error", "reused",
        ]  # fmt: skip
        return pd.DataFrame(
            [
                {
                    "arm": a,
                    "combo": Observation.combo_label(o.combo),
                    "datapoint": d,
                    "score": o.score,
                    "cost_usd": o.cost_usd,
                    "latency_s": o.latency_seconds,
                    "input_tokens": o.input_tokens,
                    "output_tokens": o.output_tokens,
                    "error": o.error,
                    "reused": (a, d) in self.reused_keys,
                }
                for a, d, o in self.observations
            ],
            columns=columns,
        )

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`to_dataframe` as CSV; returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.to_dataframe().to_csv(p, index=False)
        return p

    def summary_dict(self) -> dict[str, Any]:
        """The selection as plain data (what :meth:`export_config` writes)."""
        best = self.get_best()
        return {
            "best": dict(best.combo),
            "score": round(best.score, 6),
            "interval": [round(best.lower, 6), round(best.upper, 6)],
            "cost_per_item_usd": best.cost_per_item,
            "latency_per_item_s": best.latency_per_item,
            "method": self.method,
            "objective": {k: v for k, v in vars(self.objective).items() if v},
            "confidence": self.confidence,
            "epsilon": self.epsilon,
            "seed": self.seed,
            "stop_reason": self.stop_reason,
            "certainty": self.certainty.as_dict() if self.certainty is not None else None,
            "warnings": list(self.warnings),
            "dataset_size": self.n_datapoints,
            "evaluations": self.evaluations,
            "reused_evaluations": self.reused_evaluations,
            "selection_cost_usd": round(self.selection_cost, 8),
            "candidates": [
                {
                    "rank": a.rank,
                    "combo": dict(a.combo),
                    "score": round(a.score, 6) if not math.isnan(a.score) else None,
                    "evaluations": a.evaluations,
                    "cost_per_item_usd": a.cost_per_item,
                    "eliminated_round": a.eliminated_round,
                }
                for a in self.arms
            ],
        }

    # ----------------------------------------------------------------- views
    def _headers(self) -> list[str]:
        # strategies bound the objective; with no weights the objective is the score
        ci = f"{self.confidence:.0%} CI"
        if not self.objective.is_score_only:
            ci = f"objective ({ci})"
        return ["#", *self.nodes, "score", ci, "evals", "$/1k", "s/item", "status"]

    def _rows(self) -> list[list[str]]:
        rows: list[list[str]] = []
        for a in self.arms:
            seen = a.evaluations > 0
            score = f"{a.score:.3f}" if seen else "—"
            interval = f"{a.lower:.2f}–{a.upper:.2f}" if seen and not math.isnan(a.lower) else "—"
            if seen and not self.objective.is_score_only:
                interval = f"{a.objective:.3f} ({interval})"
            cost = "unpriced" if a.cost_per_item is None else f"${a.cost_per_item * 1000:.3g}"
            lat = "—" if a.latency_per_item is None else f"{a.latency_per_item:.2g}"
            if a.best and not self.supported:
                state = "pick (unsupported)"
            elif a.best:
                state = "★ best"
            elif a.eliminated_round is not None:
                state = f"out r{a.eliminated_round}"
            else:
                state = "alive"
            evals = f"{a.evaluations}" + (f" ({a.failures} failed)" if a.failures else "")
            models = [a.combo.get(n, "") for n in self.nodes]
            rows.append(
                [str(a.rank), *models, score, interval, evals, cost if seen else "—", lat, state]
            )
        return rows

    def _footer(self) -> str:
        parts = [
            f"{self.evaluations} evaluations of {len(self.labels) * self.n_datapoints} cells",
            f"cost ${self.selection_cost:.4f}",
        ]
        if self.reused_evaluations:
            parts.append(f"{self.reused_evaluations} resumed from the store")
        if self.unpriced_evaluations:
            parts.append(f"{self.unpriced_evaluations} unpriced")
        if self.failures:
            parts.append(f"{self.failures} failed")
        bf = self.brute_force_cost_estimate
        if bf:
            parts.append(f"brute force ≈ ${bf:.4f}")
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return " · ".join(parts)

    def print_summary(self, console: Any = None) -> None:
        """Print the ranked table, the totals and any warnings (rich).

        Every column is kept at 80 columns: figures never wrap or get cut. Model
        names that do not fit wrap in their column (at ``/ - . _ :`` where they
        can); when they would take more than two lines, they are abbreviated
        (``P1``, ``S2``, …) with a legend under the table. The totals and the
        legend wrap between words.
        """
        from rich.console import Console
        from rich.text import Text

        console = console or Console()
        names = [lab[n] for lab in self.labels for n in self.nodes]
        table = fit(console, lambda cap: self._table(wrap=cap), max(map(len, names), default=8))
        legend: list[str] = []
        cap = table.columns[1].max_width if self.nodes else None
        if cap is not None and any(wrap_name(m, cap).count("\n") > 1 for m in names):
            codes = self._codes()  # more than two lines a name: abbreviate, with a legend
            table = self._table(codes=codes)
            for node in self.nodes:
                pairs = ", ".join(f"{c} = {m}" for m, c in codes[node].items())
                legend.append(f"{node}: {pairs}")
        console.print(table)
        for line in legend:
            console.print(Text(line), overflow="fold")
        console.print(Text(self._footer(), style="dim"), overflow="fold")
        if self.certainty is not None:
            console.print(Text(f"pick: {self.certainty.describe()}"), overflow="fold")
        for w in self.warnings:
            console.print(Text(f"warning: {w}", style="yellow"), overflow="fold")

    def _codes(self) -> dict[str, dict[str, str]]:
        """Short names per node: the node's initial and a number (``P1``, ``P2``)."""
        initials = [n[:1].upper() for n in self.nodes]
        out: dict[str, dict[str, str]] = {}
        for node, ini in zip(self.nodes, initials, strict=True):
            prefix = ini if initials.count(ini) == 1 else node[:3]
            models = dict.fromkeys(lab[node] for lab in self.labels)
            out[node] = {m: f"{prefix}{i}" for i, m in enumerate(models, 1)}
        return out

    def _table(
        self, *, wrap: int | None = None, codes: Mapping[str, Mapping[str, str]] | None = None
    ) -> Any:
        from rich import box
        from rich.table import Table

        table = Table(
            title=f"Model selection ({self.method})",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        for h in self._headers():
            is_model = h in self.nodes
            table.add_column(
                h,
                justify="left" if is_model or h == "status" else "right",
                no_wrap=not is_model,
                overflow="fold" if is_model else "ellipsis",
                max_width=wrap if is_model else None,
            )
        k = len(self.nodes)
        for row in self._rows():
            models = row[1 : 1 + k]
            if codes is not None:
                models = [codes[n][m] for n, m in zip(self.nodes, models, strict=True)]
            elif wrap is not None:
                models = [wrap_name(m, wrap) for m in models]
            row[1 : 1 + k] = models
            table.add_row(*row, style="bold green" if row[-1] == "★ best" else None)
        return table

    def __str__(self) -> str:
        best = self.get_best()
        return (
            f"SelectionResults(best={best.label!r}, score={best.score:.3f}, "
            f"evaluations={self.evaluations}, cost=${self.selection_cost:.4f})"
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The ranked table for Jupyter."""
        esc = html.escape
        headers = self._headers()
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = []
        for row in self._rows():
            style = ' style="font-weight:bold"' if row[-1] == "★ best" else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        return (
            f"<table><caption>Model selection ({esc(self.method)}): "
            f"{'best' if self.supported else 'pick'} <b>{esc(self.get_best().label)}</b>"
            f"{'<br>' + esc(self.certainty.describe()) if self.certainty is not None else ''}"
            "</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
            f"<tfoot><tr><td colspan='{len(headers)}'>{esc(self._footer())}</td></tr>"
            + "".join(
                f"<tr><td colspan='{len(headers)}'>warning: {esc(w)}</td></tr>"
                for w in self.warnings
            )
            + "</tfoot></table>"
        )

    def plot(
        self, path: str | Path | None = None, *, ax: Any = None, title: str | None = None
    ) -> Any:
        """Score against $ per item, with intervals and the Pareto front: saved as PNG
        when ``path`` is given (returns the path), drawn on ``ax`` when given (returns
        it), else returned as a matplotlib Figure (Jupyter displays it)."""
        from agentopt.selectors.plotting import plot_pareto

        return plot_pareto(self, path, ax=ax, title=title)

    @classmethod
    def from_parts(
        cls,
        *,
        method: str,
        labels: Sequence[Mapping[str, str]],
        combos: Sequence[Mapping[str, Any]],
        observations: Sequence[tuple[int, int, Observation]],
        best_arm: int,
        intervals: tuple[np.ndarray, np.ndarray] | None,
        eliminated: Mapping[int, int],
        n_datapoints: int,
        **kw: Any,
    ) -> SelectionResults:
        """Build from plain parts (the selector does; tests can too)."""
        k = len(labels)
        lo, hi = intervals if intervals is not None else (np.full(k, np.nan), np.full(k, np.nan))
        nodes = list(labels[0]) if labels else []
        return cls(
            method=method,
            nodes=nodes,
            labels=[dict(lab) for lab in labels],
            combos=[dict(c) for c in combos],
            observations=list(observations),
            best_arm=int(best_arm),
            lower=np.asarray(lo, dtype=float),
            upper=np.asarray(hi, dtype=float),
            eliminated=dict(eliminated),
            n_datapoints=n_datapoints,
            **kw,
        )
