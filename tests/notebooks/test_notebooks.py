"""Execute the notebooks with nbclient and check the numbers they produced.

Each notebook ends with a cell tagged ``summary`` that prints one JSON object;
the tests parse it. Seeds and horizons are small (``AGENTOPT_NB_*``) so each
notebook runs in seconds; the committed notebooks keep no outputs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import ipykernel  # noqa: F401  # the notebook extra: `make test` installs it, so a missing one fails
import nbclient
import nbformat
import pytest
from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TABLES = ["gpqa", "bfcl", "hotpotqa", "mathqa"]
FAST_METHODS = [
    "auto",
    "brute_force",
    "agentopt_arm_elimination",
    "successive_elimination",
    "successive_halving",
    "random_search",
]

pytestmark = [pytest.mark.xdist_group("notebooks"), pytest.mark.timeout(180)]


def _execute_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("AGENTOPT_REPO", raising=False)
    monkeypatch.delenv("AGENTOPT_GATEWAY_URL", raising=False)


def _execute(name: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``notebooks/<name>.ipynb`` in a fresh python3 kernel, cwd ``notebooks/``."""
    _execute_env(env, monkeypatch)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return nb


def _summary(nb: Any) -> dict[str, Any]:
    cells = [c for c in nb.cells if "summary" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "one cell tagged 'summary'"
    text = "".join(o.get("text", "") for o in cells[0].outputs if o.get("output_type") == "stream")
    result: dict[str, Any] = json.loads(text)
    return result


def _images(nb: Any) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def _errors(nb: Any) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


@pytest.mark.parametrize(
    "name", ["selectors_comparison", "routers_comparison", "tracking_quickstart"]
)
def test_committed_notebooks_have_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_selectors_notebook_reproduces_the_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "AGENTOPT_NB_SEEDS": "3",
        "AGENTOPT_NB_METHODS": ",".join(FAST_METHODS),
        "AGENTOPT_NB_FRONTIER": "small",
    }
    nb = _execute("selectors_comparison", env, monkeypatch)
    assert not _errors(nb)
    s = _summary(nb)
    assert s["seeds"] == 3 and s["methods"] == FAST_METHODS and s["tables"] == TABLES
    rows = {(r["data"], r["method"]): r for r in s["results"]}
    assert set(rows) == {(t, m) for t in TABLES for m in FAST_METHODS}
    for r in rows.values():
        for key in ("found_best", "epsilon_good", "savings"):
            # fractions; brute force's savings is 1 − total/total, which float sums leave at ±1e-16
            assert -1e-9 <= r[key] <= 1.0 + 1e-9, (r["data"], r["method"], key)
        assert r["epsilon_good"] >= r["found_best"]
        assert r["mean_regret"] >= 0.0
    for t in TABLES:
        bf = rows[(t, "brute_force")]
        # brute force sees every present cell: it is exact and saves nothing
        assert bf["found_best"] == 1.0 and bf["mean_regret"] == 0.0
        assert bf["savings"] == pytest.approx(0.0, abs=1e-9)
        # the pick's accuracy is the best mean minus the regret
        assert bf["mean_accuracy"] == pytest.approx(
            rows[(t, "auto")]["mean_accuracy"] + rows[(t, "auto")]["mean_regret"]
        )
    assert rows[("hotpotqa", "brute_force")]["mean_evaluations"] == 16168  # every present cell
    # the published table was parsed, with both spellings of the savings column
    pub = {(r["data"], r["method"]): r for r in s["published"]}
    assert pub[("gpqa", "arm_elimination")]["found_best"] == pytest.approx(0.94)
    assert pub[("gpqa", "arm_elimination")]["savings"] == pytest.approx(0.243)
    assert pub[("bfcl", "arm_elimination")]["savings"] == pytest.approx(0.123)
    assert pub[("mathqa", "brute_force")]["mean_accuracy"] == pytest.approx(0.9884)
    assert pub[("hotpotqa", "brute_force")]["mean_evaluations"] == 16168
    # the frontier: auto at three confidences and three budgets per table
    fr = s["frontier"]
    assert {(r["data"], r["curve"]) for r in fr} == {
        (t, c) for t in TABLES for c in ("confidence", "budget")
    }
    for r in fr:
        assert 0.0 <= r["savings"] <= 1.0 + 1e-9 and r["regret"] >= 0.0
    full = [r for r in fr if r["curve"] == "budget" and r["at"] == 1.0]
    assert all(r["found_best"] == 1.0 for r in full)  # the whole table buys the exact best
    # the same money: every capped method spent at most the reference's mean spend
    eq = s["equal_budget"]
    assert {r["data"] for r in eq} == set(TABLES)
    for r in eq:
        if r["method"] != "agentopt_arm_elimination (no cap)":
            assert r["mean_cost_usd"] <= r["budget_usd"] * (1 + 1e-9)
    assert _images(nb) == 2  # found-best vs savings, and the frontier
    text = json.dumps(nb.cells[0].source) + "".join(c.source for c in nb.cells)
    assert "issue" not in text.lower() and "✗" not in text


def test_routers_notebook_reports_regret_vs_random(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AGENTOPT_NB_SEEDS": "2", "AGENTOPT_NB_HORIZON": "150", "AGENTOPT_NB_SIM_ITEMS": "60"}
    nb = _execute("routers_comparison", env, monkeypatch)
    assert not _errors(nb)
    s = _summary(nb)
    assert (s["seeds"], s["horizon"], s["tables"]) == (2, 150, TABLES)
    from agentopt.routers.registry import available_routers

    assert set(s["routers"]) == set(available_routers())  # "all" by default
    assert {
        "random",
        "thompson",
        "ucb",
        "epsilon_greedy",
        "cost_aware",
        "contextual",
        "factored",
    } <= set(s["routers"])
    rows = {(r["data"], r["router"]): r for r in s["results"]}
    assert set(rows) == {(t, r) for t in TABLES for r in s["routers"]}
    for t in TABLES:
        assert rows[(t, "random")]["regret_vs_random"] == pytest.approx(1.0)
        assert rows[(t, "random")]["regret_vs_best_fixed"] > 0
    assert {r["n_arms"] for r in s["results"] if r["data"] in ("gpqa", "bfcl")} == {9}
    assert all(math.isfinite(r["regret_vs_random"]) for r in s["results"])
    assert [(c["router"], c["data"]) for c in s["checks"]] == [
        ("thompson", "gpqa"),
        ("thompson", "bfcl"),
        ("thompson", "hotpotqa"),
        ("thompson", "mathqa"),
        ("factored", "hotpotqa"),
        ("factored", "mathqa"),
    ]
    mix = s["mix"]
    assert mix["requests"] == 2 * 60 and mix["quality_floor"] == 0.95
    by = {r["router"]: r for r in mix["results"]}
    assert set(by) == {"random", "thompson", "cost_aware", "mabwiser", "prompt"}
    for r in by.values():
        assert 0 <= r["tail_mean_score"] <= 1 and r["tail_best_single_cost_usd"] > 0
    # the bar chart, then the mixed stream's regret curves and quality-vs-cost points
    assert _images(nb) == 3


def _runner() -> Any:
    return load_script(NOTEBOOKS / "run.py", "nb_runner")


def test_tracking_quickstart_records_and_selects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Executed through notebooks/run.py, which keeps the executed copy elsewhere."""
    _execute_env({"AGENTOPT_NB_ITEMS": "12"}, monkeypatch)
    written = _runner().run("tracking_quickstart", tmp_path / "out")
    assert written == tmp_path / "out" / "tracking_quickstart.ipynb"
    assert "tracking_quickstart: executed in" in capsys.readouterr().out
    nb = nbformat.read(written, as_version=4)
    assert not _errors(nb)
    s = _summary(nb)
    # 2 datapoints x 2 models, plus one call to an unknown model
    assert s["calls"] == 5 and s["data_ids"] == ["q1", "q2", "q3"]
    assert {"gpt-4o-mini", "claude-haiku-4-5"} <= set(s["models"])
    assert s["errors"] == 1 and s["unpriced"] == 1 and s["priced_cost_usd"] > 0
    assert s["dataframe_rows"] == 5 and s["exported"] == 5
    assert (s["report_kind"], s["report_records"]) == ("records", 5)
    sel = s["selection"]
    assert sel["inside_running_event_loop"] is True  # select_best() ran under Jupyter's loop
    assert sel["arms"] == 4 and sel["datapoints"] == 12 and sel["table_rows"] == 4
    assert 1 <= sel["evaluations"] <= 4 * 12
    assert sel["best"]["planner"] in ("gpt-4.1-nano", "gpt-5-nano")
    assert sel["best"]["solver"] in ("gpt-4o-mini", "gpt-5-mini")
    assert sel["selection_cost_usd"] > 0
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "unpriced" in text  # print_summary / report show the unknown model as unpriced


def test_notebook_finds_the_data_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repo-root search the notebooks use walks up from the cwd."""
    nb = nbformat.read(NOTEBOOKS / "routers_comparison.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if "def find_repo_root" in c.source)
    fn_src = src[src.index("def find_repo_root") :].split("\n\n\n")[0]
    ns: dict[str, Any] = {"os": os, "Path": Path}
    exec(fn_src, ns)
    monkeypatch.chdir(NOTEBOOKS)
    assert ns["find_repo_root"]() == REPO
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="AGENTOPT_REPO"):
        ns["find_repo_root"]()
    monkeypatch.setenv("AGENTOPT_REPO", str(REPO / "agentopt"))
    assert ns["find_repo_root"]() == REPO
