"""The replay benchmark: its JSON contract, streams and missing cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agentopt.cli import main
from agentopt.exceptions import ConfigError
from agentopt.replay import ReplayTable
from agentopt.routers import available_routers
from agentopt.routers.bench import _filled, run_router_benchmark

KEYS = {
    "data",
    "router",
    "seeds",
    "horizon",
    "mean_reward",
    "mean_cost_usd",
    "regret_vs_best_fixed",
    "best_fixed_arm",
    "final_share_best_arm",
}


def synthetic_table(tmp_path: Path, *, n_dp: int = 40, missing: int = 3) -> Path:
    """2 nodes × 2 models; planner=strong + solver=strong is best (0.9)."""
    rng = np.random.default_rng(0)
    p_mean = {"weak": 0.1, "strong": 0.45}
    rows = []
    for p in ("weak", "strong"):
        for s in ("weak", "strong"):
            for d in range(n_dp):
                score = float(rng.random() < p_mean[p] + p_mean[s])
                rows.append(
                    {
                        "combo": f"planner={p} + solver={s}",
                        "planner": p,
                        "solver": s,
                        "datapoint": d,
                        "score": score,
                        "cost_usd": 0.01 if s == "strong" else 0.001,
                        "latency_s": 1.0,
                        "prompt": "x" * (10 + d * 50),
                    }
                )
    df = pd.DataFrame(rows).iloc[missing:]  # drop a few cells: missing
    path = tmp_path / "synthetic.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_writes_the_json_contract_for_all_routers(tmp_path: Path) -> None:
    data = synthetic_table(tmp_path)
    out = tmp_path / "out.json"
    code = main(
        [
            "bench",
            "routers",
            "--data",
            str(data),
            "--routers",
            "all",
            "--seeds",
            "2",
            "--horizon",
            "60",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    results = json.loads(out.read_text())["results"]
    assert [r["router"] for r in results] == available_routers()
    for r in results:
        assert set(r) >= KEYS
        assert r["data"] == "synthetic" and r["seeds"] == 2 and r["horizon"] == 60
        assert 0.0 <= r["mean_reward"] <= 1.0 and r["mean_cost_usd"] > 0
        assert 0.0 <= r["final_share_best_arm"] <= 1.0
        assert r["best_fixed_arm"] == "planner=strong + solver=strong"
        assert isinstance(r["regret_vs_best_fixed"], float)


def test_cli_reports_bad_input_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = synthetic_table(tmp_path)
    assert main(["bench", "routers", "--data", str(data), "--routers", "nope"]) == 1
    assert "unknown router 'nope'" in capsys.readouterr().err
    assert main(["bench", "routers", "--data", str(tmp_path / "missing.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_learning_beats_random_on_a_clear_table(tmp_path: Path) -> None:
    # best arm 0.9 vs mean 0.55; 4 seeds × 300 steps: Thompson's regret < 1/3 of random's
    data = synthetic_table(tmp_path)
    res = run_router_benchmark([data], "random,thompson,factored", seeds=4, horizon=300)
    regret = {r["router"]: r["regret_vs_best_fixed"] for r in res}
    assert regret["thompson"] < regret["random"] / 3
    assert regret["factored"] < regret["random"] / 3


def test_default_horizon_is_the_table_once_and_single_node_tables_work(tmp_path: Path) -> None:
    rows = [
        {
            "combo": f"agent={m}",
            "agent": m,
            "datapoint": d,
            "score": float(m == "good"),
            "cost_usd": 0.0,
        }
        for m in ("good", "bad")
        for d in range(10)
    ]
    path = tmp_path / "flat.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = run_router_benchmark([path], ["random"], seeds=3)
    assert res[0]["horizon"] == 10
    # random regret on a 0/1 table with a perfect arm: 10 steps × 1/2 on average
    assert 0 < res[0]["regret_vs_best_fixed"] <= 10
    assert res[0]["best_fixed_arm"] == "agent=good"


def test_missing_cells_are_resampled_from_the_same_arm_or_zeroed(tmp_path: Path) -> None:
    table = ReplayTable.from_csv(synthetic_table(tmp_path, missing=3))
    assert (~table.present).sum() == 3
    score, _ = _filled(table, np.random.default_rng(0), "resample")
    assert not np.isnan(score).any()
    a = int(np.flatnonzero((~table.present).any(axis=1))[0])
    present_values = set(table.score[a][table.present[a]].tolist())
    assert set(score[a][~table.present[a]].tolist()) <= present_values
    zs, zc = _filled(table, np.random.default_rng(0), "zero")
    assert (zs[~table.present] == 0).all() and (zc[~table.present] == 0).all()


def test_bad_arguments_are_config_errors(tmp_path: Path) -> None:
    data = synthetic_table(tmp_path)
    with pytest.raises(ConfigError, match="seeds"):
        run_router_benchmark([data], ["random"], seeds=0)
    with pytest.raises(ConfigError, match="horizon"):
        run_router_benchmark([data], ["random"], horizon=0)
    with pytest.raises(ConfigError, match="missing"):
        run_router_benchmark([data], ["random"], missing="drop")  # type: ignore[arg-type]


def test_cli_missing_zero_is_recorded_in_the_results(tmp_path: Path) -> None:
    data = synthetic_table(tmp_path, missing=10)
    out = tmp_path / "z.json"
    argv = ["bench", "routers", "--data", str(data), "--routers", "random", "--seeds", "2"]
    assert main([*argv, "--missing", "zero", "--json", str(out)]) == 0
    [r] = json.loads(out.read_text())["results"]
    assert r["missing"] == "zero" and r["horizon"] == 40


def test_prompt_column_reaches_routers_as_features(tmp_path: Path) -> None:
    from agentopt.routers import RouteContext, Router, register_router
    from agentopt.routers.registry import _REGISTRY

    seen: list[int] = []

    @register_router("spy")
    class Spy(Router):
        def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
            seen.append(ctx.features.token_estimate)
            return allowed[0]

    try:
        run_router_benchmark([synthetic_table(tmp_path)], ["spy"], seeds=1)
    finally:
        _REGISTRY.pop("spy", None)
    # prompts are "x" * (10 + 50 d): token estimates len // 4, one per datapoint
    assert sorted(seen) == sorted((10 + 50 * d) // 4 for d in range(40))


QUALITY_KEYS = {
    "mean_score",
    "mean_cost_usd",
    "best_single_score",
    "best_single_cost_usd",
    "tail_mean_score",
    "tail_mean_cost_usd",
    "tail_best_single_score",
    "tail_best_single_cost_usd",
}


def flat_table(tmp_path: Path, name: str, good: str, n_dp: int = 30) -> Path:
    """One node, models "a" (cheap) and "b" (dear); ``good`` scores 1, the other 0."""
    rows = [
        {
            "combo": f"agent={m}",
            "agent": m,
            "datapoint": d,
            "score": float(m == good),
            "cost_usd": 0.001 if m == "a" else 0.01,
            "prompt": f"{name} question number {d}: please answer",
        }
        for m in ("a", "b")
        for d in range(n_dp)
    ]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_mix_interleaves_tables_and_reports_quality_and_cost_against_the_best_single(
    tmp_path: Path,
) -> None:
    a = flat_table(tmp_path, "alpha", good="a")
    b = flat_table(tmp_path, "beta", good="b", n_dp=60)
    out = tmp_path / "mix.json"
    plots = tmp_path / "plots"
    argv = ["bench", "routers", "--data", str(a), "--data", str(b), "--mix"]
    argv += ["--routers", "random,prompt", "--seeds", "2", "--quality-floor", "0.9"]
    assert main([*argv, "--plot", str(plots), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["data"] for r in rows] == ["alpha+beta", "alpha+beta"]
    for r in rows:
        assert set(r) >= KEYS | QUALITY_KEYS
        assert r["horizon"] == 90 and r["quality_floor"] == 0.9
        # "b" is the best single model over the stream (60 of 90 right), at $0.01 a request
        assert r["best_single_score"] == pytest.approx(60 / 90)
        assert r["best_single_cost_usd"] == pytest.approx(0.01)
        assert 0 <= r["tail_mean_score"] <= 1 and r["tail_best_single_cost_usd"] > 0
    rnd = next(r for r in rows if r["router"] == "random")
    assert rnd["mean_score"] == pytest.approx(0.5, abs=0.15)
    assert sorted(p.name for p in plots.iterdir()) == [
        "alpha_beta-quality-cost.png",
        "alpha_beta-regret.png",
    ]


def test_tail_fields_are_the_last_third_of_the_stream(tmp_path: Path) -> None:
    from agentopt.routers import RouteContext, Router, register_router
    from agentopt.routers.registry import _REGISTRY

    @register_router("always_a")
    class AlwaysA(Router):
        def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
            return "a"

    try:
        [r] = run_router_benchmark(
            [flat_table(tmp_path, "t", good="b")], ["always_a"], seeds=1, curves=True
        )
    finally:
        _REGISTRY.pop("always_a", None)
    assert (r["mean_score"], r["tail_mean_score"]) == (0.0, 0.0)
    # the plots' curves: a point of regret per request, at a tenth of b's cost all along
    assert r["regret_curve"] == pytest.approx(list(range(1, r["horizon"] + 1)))
    assert r["cost_share_curve"] == pytest.approx([0.1] * r["horizon"])
    assert r["tail_mean_cost_usd"] == pytest.approx(0.001)
    assert r["tail_best_single_score"] == 1.0
    assert r["tail_best_single_cost_usd"] == pytest.approx(0.01)


def test_objective_reaches_the_routers_that_take_it(tmp_path: Path) -> None:
    from agentopt.routers import RouteContext, Router, register_router
    from agentopt.routers.registry import _REGISTRY

    seen: list[tuple[float | None, float | None, object]] = []

    @register_router("objective_spy")
    class Spy(Router):
        def __init__(
            self,
            candidates: list[str],
            *,
            cost_weight: float | None = None,
            quality_floor: float | None = None,
            prices: object = None,
            **kw: object,
        ) -> None:
            super().__init__(candidates, **kw)  # type: ignore[arg-type]
            seen.append((cost_weight, quality_floor, prices))

        def _choose(self, ctx: RouteContext, allowed: list[str]) -> str:
            return allowed[0]

    data = [flat_table(tmp_path, "t", good="b")]
    try:
        [r] = run_router_benchmark(data, ["objective_spy"], seeds=1, cost_weight=0.5)
        run_router_benchmark(data, ["objective_spy"], seeds=1, quality_floor=0.95)
    finally:
        _REGISTRY.pop("objective_spy", None)
    # prices: each model's mean recorded cost per request (a price list, not an outcome)
    assert [(w, f) for w, f, _ in seen] == [(0.5, None), (None, 0.95)]
    for _, _, prices in seen:
        assert prices == pytest.approx({"a": 0.001, "b": 0.01})
    assert r["lambda_cost"] == pytest.approx(2.0)  # regret objective: score − cost / 0.5
    with pytest.raises(ConfigError, match="not both"):
        run_router_benchmark(data, ["random"], cost_weight=1.0, lambda_cost=1.0)


def test_floor_confidence_reaches_the_prompt_router(tmp_path: Path) -> None:
    from agentopt.routers import PromptRouter, register_router
    from agentopt.routers.registry import _REGISTRY

    seen: list[float] = []

    @register_router("floor_spy")
    class Spy(PromptRouter):
        def __init__(
            self, candidates: list[str], *, floor_confidence: float = 0.0, **kw: object
        ) -> None:
            super().__init__(candidates, floor_confidence=floor_confidence, **kw)  # type: ignore[arg-type]
            seen.append(self.floor_confidence)

    data = [flat_table(tmp_path, "t", good="b")]
    try:
        run_router_benchmark(
            data, ["floor_spy"], seeds=1, quality_floor=0.95, floor_confidence=0.75
        )
        run_router_benchmark(data, ["floor_spy"], seeds=1, quality_floor=0.95)
    finally:
        _REGISTRY.pop("floor_spy", None)
    assert seen == [0.75, 0.0]


def test_mixing_tables_without_shared_arms_is_a_clear_error(tmp_path: Path) -> None:
    a = flat_table(tmp_path, "alpha", good="a")
    other = pd.read_csv(a).assign(agent=lambda d: d["agent"] + "2")
    other["combo"] = "agent=" + other["agent"]
    path = tmp_path / "other.csv"
    other.to_csv(path, index=False)
    with pytest.raises(ConfigError, match="share no arm"):
        run_router_benchmark([a, path], ["random"], seeds=1, mix=True)
