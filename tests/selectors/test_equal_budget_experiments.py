"""The equal-budget experiments' own arithmetic (experiments/synthetic_selectors.py and
experiments/bench_selectors.py): what money each run gets, and the paired interval."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest

from agentopt.selectors.auto import AutoStrategy
from tests.scripts import load_script

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _load(name: str) -> ModuleType:
    return load_script(EXPERIMENTS / f"{name}.py", f"_exp_{name}")


class _Spy(AutoStrategy):
    caps: ClassVar[list[float | None]] = []

    def _on_start(self) -> None:
        type(self).caps.append(self.problem.budget_usd)
        super()._on_start()


def _rule_spends(syn: ModuleType, tables: int, seeds: int) -> list[list[float]]:
    from agentopt.selectors.registry import get_strategy

    out = []
    for _, _, tabs in syn.settings(("rare",), tables):
        for data in tabs:
            out.append(
                [
                    syn._run(data, 100 + s, lambda: get_strategy("agentopt_arm_elimination"), None)[
                        1
                    ]
                    for s in range(seeds)
                ]
            )
    return out


@pytest.mark.parametrize("per_seed", [True, False])
def test_synthetic_equal_budget_gives_auto_the_rules_money(
    per_seed: bool, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """--per-seed: run s gets exactly what the rule spent on run s; without it, every
    run of a table gets the rule's mean spend on that table."""
    syn = _load("synthetic_selectors")
    monkeypatch.setattr(syn, "ARMS", (9,))
    _Spy.caps = []
    syn.equal_budget(_Spy, ("rare",), 2, 3, per_seed=per_seed)
    spends = _rule_spends(syn, 2, 3)
    want = [c for t in spends for c in (t if per_seed else [float(np.mean(t))] * len(t))]
    assert _Spy.caps == pytest.approx(want)
    assert len(set(spends[0])) > 1  # the rule's spend does vary by seed: the two modes differ
    out = capsys.readouterr().out
    assert ("the rule's spend on each run" in out) is per_seed
    assert "auto − rule" in out


def test_paired_difference_is_the_mean_and_a_95_percent_half_width() -> None:
    bench = _load("bench_selectors")
    a = np.array([1.0, 1.0, 0.0, 1.0])
    b = np.array([1.0, 0.0, 0.0, 0.0])
    mean, half = bench.paired_difference(a, b)
    d = a - b
    assert mean == pytest.approx(0.5)
    assert half == pytest.approx(1.96 * d.std(ddof=1) / 2.0)
    assert bench.paired_difference(np.array([1.0]), np.array([0.0])) == (1.0, 0.0)


def test_synthetic_calibration_counts_the_best_among_the_picks_said_90_percent_likely(
    capsys: pytest.CaptureFixture[str],
) -> None:
    syn = _load("synthetic_selectors")
    rows = [
        ("rare", "estimate", 0.95, True),
        ("rare", "estimate", 0.92, False),
        ("rare", "estimate", 0.50, False),  # said < 90 %: not counted
        ("cont", "estimate", 0.99, True),
        ("cont", "certified", None, True),
        ("cont", "exact", None, False),
    ]
    out = syn.calibration_summary(rows)
    assert out["rare"] == 0.5 and out["cont"] == 1.0
    assert out["all"] == pytest.approx(2 / 3)
    assert out["certified"] == 0.5
    assert "said ≥ 90 %" in capsys.readouterr().out


def test_synthetic_calibration_rows_are_auto_under_each_budget() -> None:
    syn = _load("synthetic_selectors")
    rows = syn.calibration_rows(("close",), 1, 2, (0.1, 0.5))
    assert len(rows) == len(syn.ARMS) * 2 * 2  # sizes × budgets × seeds
    assert all(k == "close" and c in ("estimate", "certified", "exact") for k, c, _, _ in rows)
    estimates = [p for _, c, p, _ in rows if c == "estimate"]
    assert estimates and all(p is not None and 0.0 <= p <= 1.0 for p in estimates)
