from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agentopt.exceptions import DataError
from agentopt.replay import ReplayTable


def test_reads_every_bench_table_with_its_published_shape(bench_data: Path) -> None:
    shapes = {"gpqa": (9, 198, 1782), "bfcl": (9, 200, 1800), "hotpotqa": (81, 200, 16168),
              "mathqa": (81, 200, 14961)}  # fmt: skip
    for name, (arms, dps, cells) in shapes.items():
        t = ReplayTable.from_csv(bench_data / f"{name}.csv")
        assert (t.n_arms, t.n_datapoints, t.n_cells) == (arms, dps, cells), name
    t = ReplayTable.from_csv(bench_data / "hotpotqa.csv")
    assert t.nodes == ["planner", "solver"]
    assert t.combos[0] == {"planner": "Claude 3 Haiku", "solver": "Claude 3 Haiku"}


def test_brute_force_cost_matches_the_published_figure(bench_data: Path) -> None:
    # data/agentopt-bench/README.md: gpqa $4.71, hotpotqa $51.90
    assert ReplayTable.from_csv(bench_data / "gpqa.csv").total_cost() == pytest.approx(
        4.71, abs=0.01
    )
    assert ReplayTable.from_csv(bench_data / "hotpotqa.csv").total_cost() == pytest.approx(
        51.90, abs=0.01
    )


def test_best_arm_matches_published_brute_force(bench_data: Path) -> None:
    t = ReplayTable.from_csv(bench_data / "hotpotqa.csv")
    best = t.best_arms()
    assert [t.labels[i] for i in best] == ["planner=Ministral 3 8B + solver=Claude Opus 4.6"]
    assert t.mean_scores()[best[0]] == pytest.approx(0.7427, abs=1e-4)


def test_lookup_and_missing_cells(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(
        "combo,agent,datapoint,score,cost_usd,latency_s,input_tokens,output_tokens,error\n"
        "agent=a,a,0,1.0,0.1,1.0,10,2,\n"
        "agent=a,a,1,0.0,0.1,1.0,10,2,timeout\n"
        "agent=b,b,0,0.5,0.2,2.0,,,\n"
    )
    t = ReplayTable.from_csv(p)
    obs = t.lookup({"agent": "a"}, 1)
    assert obs is not None and obs.score == 0.0 and obs.error == "timeout"
    b0 = t.lookup("agent=b", 0)
    assert b0 is not None and b0.input_tokens is None and b0.cost_usd == 0.2
    assert t.lookup({"agent": "b"}, 1) is None  # missing cell
    assert t.n_cells == 3
    np.testing.assert_allclose(t.mean_scores("skip"), [0.5, 0.5])
    np.testing.assert_allclose(t.mean_scores("zero"), [0.5, 0.25])
    assert math.isnan(t.score[1, 1])
    with pytest.raises(DataError, match="no combination"):
        t.lookup({"agent": "c"}, 0)


@pytest.mark.parametrize(
    ("csv", "match"),
    [
        ("combo,agent,score\nagent=a,a,1\n", "missing required column"),
        ("combo,datapoint,score\nx,0,1\n", "no node columns"),
        ("combo,agent,datapoint,score\nagent=a,a,0,high\n", "row 2, column 'score'"),
        ("combo,agent,datapoint,score\nagent=a,a,0,1.5\n", "outside"),
        ("combo,agent,datapoint,score\nagent=a,a,0,1\nagent=a,a,0,0\n", "row 3: duplicate cell"),
    ],
)
def test_malformed_tables_raise_data_error_naming_the_place(
    tmp_path: Path, csv: str, match: str
) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(csv)
    with pytest.raises(DataError, match=match):
        ReplayTable.from_csv(p)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        ReplayTable.from_csv(tmp_path / "nope.csv")
