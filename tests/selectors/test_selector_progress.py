"""The selection progress bar: what it counts, and when it is shown."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agentopt.records import Observation
from agentopt.selectors.run.progress import SelectionProgress, progress_enabled


def _obs(cost: float | None) -> Observation:
    return Observation(combo={"m": "a"}, datapoint=0, score=1.0, cost_usd=cost)


def test_counts_evaluations_dollars_unpriced_and_resumed() -> None:
    with SelectionProgress(total=10, n_arms=4, enabled=False) as bar:
        bar.observe(_obs(0.25))
        bar.observe(_obs(None))
        bar.observe(_obs(1.0), reused=True)
        bar.alive(2)
    assert (bar.evaluations, bar.reused, bar.unpriced, bar.n_alive) == (3, 1, 1, 2)
    assert bar.spent == pytest.approx(0.25)  # a resumed observation was paid before


def test_draws_evaluations_spend_and_arms_alive_on_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with SelectionProgress(total=8, n_arms=5, console=console, description="Selecting") as bar:
        for _ in range(3):
            bar.observe(_obs(0.5))
        bar.alive(3)
    out = buf.getvalue()
    assert "Selecting" in out and "3/8" in out and "$1.5000" in out and "3 alive" in out


def test_shown_only_on_a_terminal_and_never_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AGENTOPT_NO_PROGRESS", raising=False)
    tty = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert progress_enabled(True, tty) is True
    assert progress_enabled(False, tty) is False
    assert progress_enabled(True, pipe) is False
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(True, tty) is False
