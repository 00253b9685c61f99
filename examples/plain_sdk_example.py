"""A plain SDK agent: the planner on the Anthropic SDK, the solver on the OpenAI SDK.

Pick the best models for each node, then route each node per datapoint with
feedback. No framework: the agent is a class with ``run``. Runs offline::

    python examples/plain_sdk_example.py
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from agentopt import LLMTracker, ModelSelector, SimServer, ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset, grade_answer

PLANNERS = ["claude-haiku-4-5", "claude-opus-4-6"]  # Anthropic Messages API
SOLVERS = ["gpt-4o-mini", "gpt-5-mini"]  # OpenAI Chat Completions


class PlannerSolver:
    """``models`` is ``{"planner": anthropic model, "solver": openai model}``."""

    def __init__(self, models: dict[str, str], base_url: str) -> None:
        self.models = models
        root = base_url.removesuffix("/v1")  # the simulator serves both APIs
        self.claude = anthropic.Anthropic(base_url=root, api_key="sim", max_retries=0)
        self.gpt = openai.OpenAI(base_url=f"{root}/v1", api_key="sim", max_retries=0)

    def run(self, question: str) -> str:
        with track_agent("planner"):
            msg = self.claude.messages.create(
                model=self.models["planner"],
                max_tokens=400,
                messages=[
                    {"role": "user", "content": f"Plan the steps, do not solve:\n{question}"}
                ],
            )
        plan = "".join(b.text for b in msg.content if b.type == "text")
        with track_agent("solver"):
            r = self.gpt.chat.completions.create(
                model=self.models["solver"],
                messages=[
                    {
                        "role": "user",
                        "content": f"{question}\nPlan:\n{plan}\nEnd with 'Answer: <number>'.",
                    }
                ],
            )
        return r.choices[0].message.content or ""


def main(base_url: str, n: int = 8) -> dict[str, Any]:
    data = arithmetic_dataset(n)
    selector = ModelSelector(
        agent=lambda models: PlannerSolver(models, base_url),
        models={"planner": PLANNERS, "solver": SOLVERS},
        eval_fn=grade_answer,
        dataset=data,
        seed=0,
    )
    results = selector.select_best(progress=False)
    results.print_summary()

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolver({"planner": PLANNERS[0], "solver": SOLVERS[0]}, base_url)
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
