"""SelectionResults: figures computed once from the observations, and every export."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from agentopt.exceptions import SelectionError
from agentopt.records import Observation
from agentopt.selectors.objective import Objective
from agentopt.selectors.results import SelectionResults

LABELS = [
    {"planner": "p1", "solver": "cheap"},
    {"planner": "p1", "solver": "strong"},
    {"planner": "p2", "solver": "weak"},
    {"planner": "p2", "solver": "mystery"},
]


class LLM:
    """A framework-style model object."""

    def __init__(self, model: str) -> None:
        self.model = model


def _results(**kw: object) -> SelectionResults:
    # arm: (scores, cost per item or None, latency)
    spec = {
        0: ([1, 1, 0, 1], 0.001, 0.5),  # 0.75, cheap
        1: ([1, 1, 1, 1], 0.010, 1.0),  # 1.00, dear
        2: ([0, 0], 0.002, 0.2),  # 0.00, eliminated in round 1
        3: ([1, 0], None, 0.3),  # 0.50, unpriced
    }
    obs = []
    for arm, (scores, cost, lat) in spec.items():
        for dp, s in enumerate(scores):
            obs.append(
                (
                    arm,
                    dp,
                    Observation(
                        combo=LABELS[arm],
                        datapoint=dp,
                        score=float(s),
                        cost_usd=cost,
                        latency_seconds=lat,
                        input_tokens=10,
                        output_tokens=4,
                        error="boom" if (arm == 2 and dp == 1) else None,
                    ),
                )
            )
    combos = [dict(lab) for lab in LABELS]
    combos[1]["solver"] = LLM("strong")  # type: ignore[assignment]
    args: dict = dict(
        method="auto",
        labels=LABELS,
        combos=combos,
        observations=obs,
        best_arm=1,
        intervals=(np.array([0.4, 0.8, 0.0, 0.1]), np.array([0.95, 1.0, 0.3, 0.9])),
        eliminated={2: 1},
        n_datapoints=4,
        stop_reason="best certified at confidence 0.95",
        reused_keys=frozenset({(0, 0), (0, 1)}),
    )
    args.update(kw)
    return SelectionResults.from_parts(**args)


def test_best_is_first_and_the_combo_comes_back_as_passed() -> None:
    r = _results()
    best = r.get_best()
    assert best.arm == 1 and best.rank == 1 and best.best
    assert best.score == 1.0 and best.lower == 0.8 and best.upper == 1.0
    combo = r.get_best_combo()
    assert combo["planner"] == "p1" and isinstance(combo["solver"], LLM)


def test_ranking_puts_eliminated_arms_after_alive_ones() -> None:
    r = _results()
    assert [a.arm for a in r.arms] == [1, 0, 3, 2]
    assert r.arms[-1].eliminated_round == 1


def test_counts_and_cost_are_exact_and_unpriced_stays_unknown() -> None:
    r = _results()
    assert r.evaluations == 12
    assert r.selection_cost == pytest.approx(4 * 0.001 + 4 * 0.010 + 2 * 0.002)
    assert r.unpriced_evaluations == 2
    assert r.failures == 1
    assert r.reused_evaluations == 2 and r.reused_cost == pytest.approx(0.002)
    assert r.cost_this_run == pytest.approx(r.selection_cost - 0.002)
    by_arm = {a.arm: a for a in r.arms}
    assert by_arm[3].cost_per_item is None
    assert by_arm[0].cost_per_item == pytest.approx(0.001)
    assert by_arm[0].latency_per_item == pytest.approx(0.5)
    assert r.brute_force_cost_estimate is None  # arm 3 is unpriced


def test_dataframe_has_one_row_per_arm_and_the_documented_columns() -> None:
    df = _results().to_dataframe()
    assert list(df.columns) == [
        "rank", "combo", "planner", "solver", "score", "ci_lower", "ci_upper",
        "objective", "evaluations", "failures", "cost_per_item", "latency_per_item",
        "input_tokens_per_item", "output_tokens_per_item", "eliminated_round", "best",
    ]  # fmt: skip
    assert len(df) == 4 and df["best"].sum() == 1
    assert df.loc[0, "combo"] == "planner=p1 + solver=strong"
    assert pd.isna(df.loc[2, "cost_per_item"])  # the unpriced arm: unknown, never $0
    assert df.loc[3, "eliminated_round"] == 1 and pd.isna(df.loc[0, "eliminated_round"])


def test_objective_column_uses_natural_units() -> None:
    df = _results(objective=Objective(cost_weight=10.0)).to_dataframe()
    row = df[df["combo"] == "planner=p1 + solver=strong"].iloc[0]
    assert row["objective"] == pytest.approx(1.0 - 10.0 * 0.010)


def test_pareto_front_keeps_only_undominated_priced_arms() -> None:
    front = _results().pareto_front()
    # cheap (0.75 @ $0.001) and strong (1.0 @ $0.010); weak is dominated; mystery unpriced
    assert list(front["combo"]) == ["planner=p1 + solver=cheap", "planner=p1 + solver=strong"]


def test_csv_round_trips(tmp_path: Path) -> None:
    r = _results()
    p = r.to_csv(tmp_path / "sub" / "r.csv")
    back = pd.read_csv(p)
    assert len(back) == 4 and back.loc[0, "solver"] == "strong"
    assert back["evaluations"].sum() == r.evaluations


def test_export_config_writes_the_best_combo_as_yaml(tmp_path: Path) -> None:
    p = _results().export_config(tmp_path / "best.yaml")
    data = yaml.safe_load(p.read_text())["agentopt_selection"]
    assert data["best"] == {"planner": "p1", "solver": "strong"}
    assert data["method"] == "auto" and data["evaluations"] == 12
    assert data["interval"] == [0.8, 1.0]
    assert len(data["candidates"]) == 4


def test_plot_writes_a_png(tmp_path: Path) -> None:
    p = _results().plot(tmp_path / "pareto.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_a_path_returns_a_figure_for_jupyter() -> None:
    from matplotlib.figure import Figure

    fig = _results().plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "$ per item" and ax.get_legend() is not None


def test_plot_draws_on_a_given_axis() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert _results().plot(ax=right, title="mine") is right
    assert right.get_title() == "mine" and right.collections
    assert not left.collections and not left.lines  # the other axis is left alone


def test_html_and_rich_views_show_every_arm() -> None:
    r = _results()
    html = r._repr_html_()
    assert html.startswith("<table") and html.count("<tr") == 1 + 4 + 1
    assert "★ best" in html and "unpriced" in html
    buf = io.StringIO()
    r.print_summary(console=Console(file=buf, width=160))
    text = buf.getvalue()
    assert "strong" in text and "out r1" in text and "12 evaluations" in text


def test_arms_never_observed_are_shown_without_figures(tmp_path: Path) -> None:
    r = _results(observations=[])
    assert r.evaluations == 0 and r.selection_cost == 0.0
    assert all(a.evaluations == 0 for a in r.arms)
    assert r.pareto_front().empty
    assert r.plot(tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"
    assert "—" in r._repr_html_()


def test_a_best_arm_out_of_range_is_an_error() -> None:
    with pytest.raises(SelectionError, match="best arm 9"):
        _results(best_arm=9)


LONG = [
    {"planner": "anthropic/claude-3-5-haiku-20241022", "solver": "gpt-4o-mini-2024-07-18"},
    {"planner": "anthropic/claude-3-5-haiku-20241022", "solver": "openai/gpt-4.1-nano"},
    {"planner": "gpt-4.1-nano", "solver": "weak"},
    {"planner": "gpt-4.1-nano", "solver": "mystery"},
]


def _render(r: SelectionResults, width: int) -> list[str]:
    buf = io.StringIO()
    r.print_summary(console=Console(file=buf, width=width))
    return buf.getvalue().splitlines()


@pytest.mark.parametrize("labels", [LABELS, LONG], ids=["short", "long"])
def test_print_summary_is_complete_at_80_columns(labels: list[dict[str, str]]) -> None:
    """At 80 columns (logs, CI, narrow terminals) no column is dropped, no figure cut,
    every model named (in the table or a legend) and the totals wrapped between words."""
    r = _results(labels=labels, warnings=("all scores are equal; check eval_fn",))
    lines = _render(r, 80)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "score" in line)
    for col in ("#", "planner", "solver", "score", "95% CI", "evals", "$/1k", "s/item", "status"):
        assert col in header
    assert "…" not in text
    for cell in ("★ best", "out r1", "unpriced", "2 (1 failed)", "0.80–1.00", "$10"):
        assert cell in text
    flat = " ".join(text.split())
    for lab in labels:
        for model in lab.values():
            assert model in flat  # whole, in the table or the legend
    assert r._footer() in flat  # the totals, not cut mid-word
    assert "warning: all scores are equal; check eval_fn" in flat
    if labels is LONG:
        assert "P1 = anthropic/claude-3-5-haiku-20241022" in flat
