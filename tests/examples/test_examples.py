"""Each framework example under examples/ runs against the simulator and does what it says:
a selection whose candidates are the framework's own model objects (labelled, priced,
recorded), then a router inside LLMTracker that routes every call and learns from feedback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agentopt.sim import SimServer
from tests.scripts import load_script

pytestmark = pytest.mark.xdist_group("examples")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# example → (datapoints it runs, does the router pick per node?)
CASES = {
    "plain_sdk_example": (8, True),
    "openai_agents_example": (8, True),
    "langchain_example": (8, True),
    "langgraph_example": (8, True),
    "llamaindex_example": (8, True),
    "crewai_example": (4, False),
}


def _load(name: str) -> ModuleType:
    if str(EXAMPLES) not in sys.path:  # as when run as a script: examples/_scaffold.py
        sys.path.insert(0, str(EXAMPLES))
    return load_script(EXAMPLES / f"{name}.py", f"examples.{name}")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CrewAI keeps user data under the home and XDG data directories: never the real ones
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", "agentopt-examples")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as server:
        yield server


def test_every_example_is_tested() -> None:
    assert {p.stem for p in EXAMPLES.glob("*_example.py")} == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_example_selects_and_routes(name: str, sim: SimServer) -> None:
    n, per_node = CASES[name]
    environ = dict(os.environ)
    module = _load(name)
    out: dict[str, Any] = module.main(sim.openai_base_url)
    # an example's own settings stay inside it (CrewAI's OTEL_SDK_DISABLED would switch
    # OpenTelemetry off for the rest of the process)
    for var in {"OTEL_SDK_DISABLED", *getattr(module, "CREWAI_OFFLINE", ())}:
        assert os.environ.get(var) == environ.get(var), var
    planners, solvers = module.PLANNERS, module.SOLVERS

    # selection over the framework's model objects: labelled by model name, priced, recorded
    results = out["results"]
    arms = list(results)
    assert len(arms) == len(planners) * len(solvers)
    assert sum(r.is_best for r in arms) == 1
    assert {tuple(r.summary.combo.values()) for r in arms} == {
        (p, s) for p in planners for s in solvers
    }
    evaluated = [r for r in arms if r.datapoint_results]
    assert evaluated and results.evaluations == sum(r.num_samples for r in evaluated)
    for r in evaluated:
        assert r.price is not None and r.price > 0  # every call of every evaluation priced
        assert set(r.input_tokens) <= {*planners, *solvers}  # the models that answered
        assert r.total_input_tokens > 0 and r.total_output_tokens > 0

    # routing inside LLMTracker: every call routed to a candidate, feedback credited
    records, router = out["records"], out["router"]
    assert {r.data_id for r in records} == {str(i) for i in range(n)}
    assert all(r.error is None for r in records)
    stats = router.stats()
    assert stats["feedbacks"] == n and stats["uncredited"] == 0
    if per_node:
        assert len(records) == 2 * n
        for r in records:
            allowed = planners if r.agent_id == "planner" else solvers
            assert r.agent_id in ("planner", "solver") and r.model in allowed
        assert sum(a["pulls"] for a in stats["arms"].values()) == n  # one combination a datapoint
    else:
        assert len(records) >= 2 * n
        assert all(r.model in {*planners, *solvers} for r in records)
        assert sum(a["pulls"] for a in stats["arms"].values()) == len(records)
