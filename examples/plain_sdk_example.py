"""A plain SDK agent: the planner on the Anthropic SDK, the solver on the OpenAI SDK.

Pick the best models for each node, then route each node per datapoint with
feedback. No framework: the agent is a class with ``run``. Runs offline::

    python examples/plain_sdk_example.py
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
from _scaffold import route, run_on_simulator, select

from agentopt import ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset

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
    results = select(
        lambda models: PlannerSolver(models, base_url),
        {"planner": PLANNERS, "solver": SOLVERS},
        data,
    )

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolver({"planner": PLANNERS[0], "solver": SOLVERS[0]}, base_url)
    records = route(router, agent.run, data)
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
