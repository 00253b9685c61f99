"""CrewAI: a planner agent and a solver agent in one crew; pick their models, then route.

The candidates are CrewAI's own ``LLM`` objects. CrewAI's telemetry and trace
prompts are turned off while the example runs (they would call the network). The crew runs its tasks
itself, so the router here picks a model for every call from one pool and learns
from each datapoint's score. Runs offline against the simulated provider::

    python examples/crewai_example.py
"""

from __future__ import annotations

from typing import Any

from _scaffold import route, run_on_simulator, scoped_env, select

from agentopt import ThompsonRouter
from agentopt.demo import arithmetic_dataset

# CrewAI's switches for running offline, set only while CrewAI loads and while main()
# runs, then removed: OTEL_SDK_DISABLED in particular would turn OpenTelemetry off for
# everything else in the process.
CREWAI_OFFLINE = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    # CrewAI's own switch that skips the first-run "view your traces? [y/N]" prompt
    # (it waits 20 s for an answer) and any trace collection
    "CREWAI_TESTING": "true",
    "OTEL_SDK_DISABLED": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}

with scoped_env(CREWAI_OFFLINE):
    from crewai import LLM, Agent, Crew, Task

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
    with scoped_env(CREWAI_OFFLINE):
        return _select_and_route(base_url, n)


def _select_and_route(base_url: str, n: int) -> dict[str, Any]:
    def llm(model: str) -> LLM:
        return LLM(model=f"openai/{model}", base_url=base_url, api_key="sim")

    data = arithmetic_dataset(n)
    results = select(
        PlannerSolverCrew,
        {"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        data,
    )

    router = ThompsonRouter(sorted({*PLANNERS, *SOLVERS}), seed=0)
    crew = PlannerSolverCrew({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    records = route(router, crew.run, data)
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
