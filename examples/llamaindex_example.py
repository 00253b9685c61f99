"""LlamaIndex: pick the best planner → solver LLMs, then route them per call with feedback.

The candidates are LlamaIndex's own LLM objects (``llama_index.llms.openai.OpenAI``).
Runs offline against the simulated provider::

    python examples/llamaindex_example.py
"""

from __future__ import annotations

from typing import Any

from _scaffold import route, run_on_simulator, select
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from agentopt import ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset

PLANNERS = ["gpt-4.1-nano", "gpt-4o"]
SOLVERS = ["gpt-4o-mini", "gpt-4.1-mini"]


class PlannerSolver:
    """``models`` is ``{"planner": OpenAI, "solver": OpenAI}`` (LlamaIndex LLMs)."""

    def __init__(self, models: dict[str, OpenAI]) -> None:
        self.planner = models["planner"]
        self.solver = models["solver"]

    def run(self, question: str) -> str:
        with track_agent("planner"):
            plan = self.planner.complete(f"Plan the steps, do not solve:\n{question}").text
        prompt = f"{question}\nPlan:\n{plan}\nEnd with 'Answer: <number>'."
        with track_agent("solver"):
            reply = self.solver.chat([ChatMessage(role="user", content=prompt)])
        return str(reply.message.content)


def main(base_url: str, n: int = 8) -> dict[str, Any]:
    def llm(model: str) -> OpenAI:
        return OpenAI(model=model, api_base=base_url, api_key="sim", max_retries=0)

    data = arithmetic_dataset(n)
    results = select(
        PlannerSolver,
        {"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        data,
    )

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolver({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    records = route(router, agent.run, data)
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
