"""OpenAI Agents SDK: pick the best planner → solver models, then route them with feedback.

The candidates are Agents SDK ``Model`` objects (``OpenAIResponsesModel``: the SDK's
default, on the Responses API), each bound to a client of the simulated provider.
The SDK's trace export is turned off: it would call OpenAI. Runs offline::

    python examples/openai_agents_example.py
"""

from __future__ import annotations

from typing import Any

from _scaffold import route, run_on_simulator, select
from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
from openai import AsyncOpenAI

from agentopt import ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset

set_tracing_disabled(True)

PLANNERS = ["gpt-4.1-nano", "gpt-4o"]
SOLVERS = ["gpt-4o-mini", "gpt-5-mini"]


class PlannerSolver:
    """Two Agents SDK agents run in sequence; ``models`` maps node → SDK ``Model``."""

    def __init__(self, models: dict[str, OpenAIResponsesModel]) -> None:
        self.planner = Agent(
            name="planner", instructions="Plan the steps, do not solve.", model=models["planner"]
        )
        self.solver = Agent(
            name="solver",
            instructions="Solve the problem. End with 'Answer: <number>'.",
            model=models["solver"],
        )

    async def run(self, question: str) -> str:
        with track_agent("planner"):
            plan = await Runner.run(self.planner, question)
        with track_agent("solver"):
            result = await Runner.run(self.solver, f"{question}\nPlan:\n{plan.final_output}")
        return str(result.final_output)


def main(base_url: str, n: int = 8) -> dict[str, Any]:
    def model(name: str, client: AsyncOpenAI) -> OpenAIResponsesModel:
        return OpenAIResponsesModel(model=name, openai_client=client)

    # an async client belongs to the event loop it first runs on: one per phase
    client = AsyncOpenAI(base_url=base_url, api_key="sim", max_retries=0)

    data = arithmetic_dataset(n)
    results = select(
        PlannerSolver,
        {
            "planner": [model(m, client) for m in PLANNERS],
            "solver": [model(m, client) for m in SOLVERS],
        },
        data,
    )

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    client = AsyncOpenAI(base_url=base_url, api_key="sim", max_retries=0)
    agent = PlannerSolver(
        {"planner": model(PLANNERS[0], client), "solver": model(SOLVERS[0], client)}
    )
    records = route(router, agent.run, data)  # async: one event loop for every datapoint
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
