"""CrewAI: a planner agent and a solver agent in one crew; pick their models, then route.

The candidates are CrewAI's own ``LLM`` objects. CrewAI's telemetry and trace
prompts are turned off (they would call the network). The crew runs its tasks
itself, so the router here picks a model for every call from one pool and learns
from each datapoint's score. Runs offline against the simulated provider::

    python examples/crewai_example.py
"""

from __future__ import annotations

import os

for _var, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    # CrewAI's own switch that skips the first-run "view your traces? [y/N]" prompt
    # (it waits 20 s for an answer) and any trace collection
    "CREWAI_TESTING": "true",
    "OTEL_SDK_DISABLED": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}.items():
    os.environ.setdefault(_var, _value)

from typing import Any  # noqa: E402

from crewai import LLM, Agent, Crew, Task  # noqa: E402

from agentopt import LLMTracker, ModelSelector, SimServer, ThompsonRouter  # noqa: E402
from agentopt.demo import arithmetic_dataset, grade_answer  # noqa: E402

PLANNERS = ["gpt-4.1-nano", "gpt-4o"]
SOLVERS = ["gpt-4o-mini", "gpt-5-mini"]


class PlannerSolverCrew:
    """``models`` is ``{"planner": crewai.LLM, "solver": crewai.LLM}``."""

    def __init__(self, models: dict[str, LLM]) -> None:
        planner = Agent(
            role="planner",
            goal="Plan how to solve the problem, without solving it",
            backstory="You write short numbered plans.",
            llm=models["planner"],
        )
        solver = Agent(
            role="solver",
            goal="Solve the problem following the plan",
            backstory="You compute carefully.",
            llm=models["solver"],
        )
        plan = Task(
            description="Plan the steps, do not solve:\n{question}",
            expected_output="a short plan",
            agent=planner,
        )
        solve = Task(
            description="{question}\nEnd with 'Answer: <number>'.",
            expected_output="the worked answer ending with 'Answer: <number>'",
            agent=solver,
            context=[plan],
        )
        self.crew = Crew(agents=[planner, solver], tasks=[plan, solve])

    def run(self, question: str) -> str:
        return str(self.crew.kickoff(inputs={"question": question}))


def main(base_url: str, n: int = 4) -> dict[str, Any]:
    def llm(model: str) -> LLM:
        return LLM(model=f"openai/{model}", base_url=base_url, api_key="sim")

    data = arithmetic_dataset(n)
    selector = ModelSelector(
        agent=PlannerSolverCrew,
        models={"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        eval_fn=grade_answer,
        dataset=data,
        seed=0,
    )
    results = selector.select_best(progress=False)
    results.print_summary()

    router = ThompsonRouter(sorted({*PLANNERS, *SOLVERS}), seed=0)
    crew = PlannerSolverCrew({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    with LLMTracker(router=router, cache=False, cache_dir=None) as tracker:
        for i, (question, expected) in enumerate(data):
            with tracker.track(data_id=i):
                answer = crew.run(question)
            tracker.feedback(data_id=i, score=grade_answer(expected, answer))
        records = tracker.get_records()
    print(router.stats()["arms"])
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    with SimServer("default", time_scale=0.0) as sim:
        main(sim.openai_base_url)
