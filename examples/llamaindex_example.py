"""LlamaIndex: pick the best planner → solver LLMs, then route them per call with feedback.

The candidates are LlamaIndex's own LLM objects (``llama_index.llms.openai.OpenAI``).
Runs offline against the simulated provider::

    python examples/llamaindex_example.py
"""

from __future__ import annotations

from typing import Any

from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from agentopt import LLMTracker, ModelSelector, SimServer, ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset, grade_answer

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
    selector = ModelSelector(
        agent=PlannerSolver,
        models={"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        eval_fn=grade_answer,
        dataset=data,
        seed=0,
    )
    results = selector.select_best(progress=False)
    results.print_summary()

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolver({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    with LLMTracker(router=router, cache=False, cache_dir=None) as tracker:
        for i, (question, expected) in enumerate(data):
            with tracker.track(data_id=i):
                answer = agent.run(question)
            tracker.feedback(data_id=i, score=grade_answer(expected, answer))
        records = tracker.get_records()
    print(router.stats()["arms"])
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    with SimServer("default", time_scale=0.0) as sim:
        main(sim.openai_base_url)
