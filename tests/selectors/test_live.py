"""Live selection end to end: the openai SDK, the real LLMTracker, the simulated provider.

The planner → solver agent calls the simulated provider on loopback (no
network, no key); each evaluation is priced from its own tracker session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from agentopt.demo import PlannerSolverAgent, arithmetic_dataset, grade_answer
from agentopt.selectors.selector import ModelSelector
from agentopt.sim import SimServer
from agentopt.tracking.tracker import LLMTracker

pytestmark = pytest.mark.xdist_group("selectors-live")

MODELS = {"planner": ["gpt-4.1-nano", "gpt-4o"], "solver": ["gpt-4o-mini", "gpt-5-mini"]}
N = 12


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer("default", time_scale=0.0, seed=0) as server:
        yield server


@pytest.fixture
def tracker() -> Iterator[LLMTracker]:
    t = LLMTracker(cache=False, cache_dir=None)
    t.start()
    yield t
    t.close()


class AsyncPlannerSolver:
    """The same agent on ``openai.AsyncOpenAI``: one client per event loop (an async
    client binds to the loop it first runs on; building one per run costs ~80 ms)."""

    base_url = ""
    clients: dict[int, openai.AsyncOpenAI]

    def __init__(self, combo: dict[str, str]) -> None:
        self.combo = combo

    def _client(self) -> openai.AsyncOpenAI:
        key = id(asyncio.get_running_loop())
        if key not in self.clients:
            self.clients[key] = openai.AsyncOpenAI(base_url=self.base_url, api_key="sim")
        return self.clients[key]

    async def run(self, question: str) -> str:
        client = self._client()
        plan = await client.chat.completions.create(
            model=self.combo["planner"], messages=[{"role": "user", "content": question}]
        )
        text = plan.choices[0].message.content or ""
        ans = await client.chat.completions.create(
            model=self.combo["solver"],
            messages=[{"role": "user", "content": f"{question}\n\nPlan:\n{text}"}],
        )
        return ans.choices[0].message.content or ""


def _async_agent(sim: SimServer) -> Any:
    return type("Agent", (AsyncPlannerSolver,), {"base_url": sim.openai_base_url, "clients": {}})


def _check(results: Any, tracker: LLMTracker) -> None:
    """Every evaluation made exactly two tracked calls, and costs add up exactly."""
    records = tracker.records
    assert len(records) == 2 * results.evaluations
    assert all(r.data_id is not None and r.combo_id is not None for r in records)
    assert results.selection_cost == pytest.approx(sum(r.cost_usd or 0.0 for r in records))
    assert results.selection_cost > 0 and results.unpriced_evaluations == 0
    df = results.observations_dataframe()
    assert (df["input_tokens"] > 0).all() and (df["output_tokens"] > 0).all()
    assert df["error"].isna().all()
    for _, row in df.iterrows():  # each observation's cost is its own session's calls
        combo = row["combo"]
        recs = [r for r in records if r.combo_id == combo and r.data_id == f"{row['datapoint']}"]
        assert len(recs) == 2
        assert row["cost_usd"] == pytest.approx(sum(r.cost_usd or 0.0 for r in recs))


@pytest.mark.parametrize("parallel", [False, True])
def test_sync_openai_agent_end_to_end(sim: SimServer, tracker: LLMTracker, parallel: bool) -> None:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim", max_retries=0)
    sel = ModelSelector(
        agent=lambda combo: PlannerSolverAgent(combo, client),
        models=MODELS,
        eval_fn=grade_answer,
        dataset=arithmetic_dataset(N),
        method="brute_force",
        seed=0,
        tracker=tracker,
    )
    res = sel.select_best(parallel=parallel, max_concurrent=4, progress=False)
    client.close()
    assert res.evaluations == 4 * N
    _check(res, tracker)


@pytest.mark.parametrize("parallel", [False, True])
def test_async_openai_agent_end_to_end(sim: SimServer, tracker: LLMTracker, parallel: bool) -> None:
    agent = _async_agent(sim)
    sel = ModelSelector(
        agent=agent,
        models=MODELS,
        eval_fn=grade_answer,
        dataset=arithmetic_dataset(N),
        method="brute_force",
        seed=0,
        tracker=tracker,
    )
    res = sel.select_best(parallel=parallel, max_concurrent=4, progress=False)
    assert res.evaluations == 4 * N
    _check(res, tracker)


async def test_live_selection_inside_a_running_event_loop(
    sim: SimServer, tracker: LLMTracker
) -> None:
    asyncio.get_running_loop()  # as in a Jupyter cell
    agent = _async_agent(sim)
    sel = ModelSelector(
        agent=agent,
        models=MODELS,
        eval_fn=grade_answer,
        dataset=arithmetic_dataset(N),
        method="auto",
        seed=0,
        tracker=tracker,
    )
    res = sel.select_best(progress=False)  # sync call: runs on a worker thread's loop
    _check(res, tracker)
    tracker.clear()
    again = await sel.aselect_best(progress=False)  # the same selector: nothing paid twice
    assert len(tracker.records) == 0 and again.reused_evaluations == again.evaluations
    assert again.get_best_combo() == res.get_best_combo()
    fresh = ModelSelector(
        agent=agent, models=MODELS, eval_fn=grade_answer, dataset=arithmetic_dataset(N),
        method="auto", seed=0, tracker=tracker,
    )  # fmt: skip
    res2 = await fresh.aselect_best(progress=False)
    _check(res2, tracker)
    assert res2.get_best_combo() == res.get_best_combo()


def test_default_private_tracker_and_provider_failures(sim: SimServer) -> None:
    """No tracker given: a private one is made and closed. A model the provider does
    not know answers 404: those runs score failure_score and keep the error."""
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim", max_retries=0)
    sel = ModelSelector(
        agent=lambda combo: PlannerSolverAgent(combo, client),
        models={"planner": ["gpt-4.1-nano"], "solver": ["gpt-4o-mini", "no-such-model"]},
        eval_fn=grade_answer,
        dataset=arithmetic_dataset(6),
        method="brute_force",
        failure_score=0.0,
        seed=0,
    )
    res = sel.select_best(progress=False)
    client.close()
    df = res.observations_dataframe()
    bad = df[df["combo"].str.contains("no-such-model")]
    assert len(bad) == 6 and bad["error"].str.contains("NotFoundError").all()
    assert (bad["score"] == 0.0).all()
    assert res.get_best_combo()["solver"] == "gpt-4o-mini"
