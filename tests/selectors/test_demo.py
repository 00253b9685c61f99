"""``agentopt demo``: end to end against the simulated provider, into a temp dir."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import yaml
from rich.console import Console

from agentopt import demo
from agentopt.cli import main

pytestmark = pytest.mark.xdist_group("selectors-demo")


def test_grade_answer_reads_the_final_number() -> None:
    assert demo.grade_answer("42", "Let me think: 40 + 2.\n\nAnswer: 42") == 1.0
    assert demo.grade_answer("42", "Answer: 41 ⟦sim:abc⟧") == 0.0
    assert demo.grade_answer("1200", "so 1,200 in total") == 1.0
    assert demo.grade_answer("3", "no idea") == 0.0
    assert demo.grade_answer("3", None) == 0.0


def test_the_dataset_is_bundled_and_bounded() -> None:
    data = demo.arithmetic_dataset(5)
    assert len(data) == 5 and all(q.endswith("?") and a.lstrip("-").isdigit() for q, a in data)
    with pytest.raises(demo.ConfigError, match="the demo dataset has 1 to"):
        demo.arithmetic_dataset(0)


def test_demo_runs_end_to_end_and_writes_its_files(tmp_path: Path) -> None:
    buf = io.StringIO()
    out = demo.run_demo(
        tmp_path / "out", n_items=16, progress=False, console=Console(file=buf, width=140)
    )
    res = out.results
    assert res.method == "auto"
    assert 0 < res.evaluations <= 12 * 16
    assert set(out.files) == {"results", "config", "plot", "observations"}
    table = pd.read_csv(out.files["results"])
    assert len(table) == 12 and {"planner", "solver", "score", "cost_per_item"} <= set(table)
    config = yaml.safe_load(out.files["config"].read_text())["agentopt_selection"]
    assert config["best"] == {k: str(v) for k, v in res.get_best_combo().items()}
    assert out.files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    obs = pd.read_csv(out.files["observations"])
    assert len(obs) == res.evaluations and obs["error"].isna().all()
    text = buf.getvalue()
    assert "Model selection (auto)" in text and "Best:" in text and "pareto.png" in text
    # `agentopt report` reads every data file the demo wrote
    from agentopt.report import load

    assert len(load(out.files["observations"]).observations) == res.evaluations
    for name in ("results", "config"):
        ranking = load(out.files[name]).ranking
        assert len(ranking) == 12 and sum(r["best"] for r in ranking) == 1


def test_cli_demo_writes_into_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "DEMO_ITEMS", 10)
    code = main(["demo", "--out", str(tmp_path / "d"), "--no-progress", "--seed", "1"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "best_config.yaml",
        "observations.csv",
        "pareto.png",
        "results.csv",
    ]


def test_live_demo_without_a_key_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(["demo", "--live", "--out", str(tmp_path / "live")])
    assert code == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and "missing" in err
    assert not (tmp_path / "live").exists()


def test_live_demo_runs_against_any_openai_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--live uses the openai SDK's own configuration: pointed at the simulator through
    OPENAI_BASE_URL (which serves the live models' names too), it runs the live path."""
    from agentopt.sim import SimServer

    with SimServer("default", time_scale=0.0, seed=0) as sim:
        monkeypatch.setenv("OPENAI_API_KEY", "sim-key")
        monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
        buf = io.StringIO()
        out = demo.run_demo(
            tmp_path / "live", live=True, n_items=6, progress=False,
            console=Console(file=buf, width=140),
        )  # fmt: skip
    res = out.results
    assert res.labels == [
        {"planner": p, "solver": s}
        for p in demo.LIVE_MODELS["planner"]
        for s in demo.LIVE_MODELS["solver"]
    ]
    assert res.selection_cost <= demo.LIVE_BUDGET_USD
    assert "(live)" in buf.getvalue() and out.files["plot"].exists()
