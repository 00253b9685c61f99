"""LangChain: pick the best planner → solver models, then route them per call with feedback.

The candidates are LangChain's own model objects (``ChatOpenAI(model=...)``): the
selector labels them by their model name, prices them from the price map and hands
the objects to the agent as given. Runs offline against the simulated provider::

    python examples/langchain_example.py
"""

from __future__ import annotations

from typing import Any

from _scaffold import route, run_on_simulator, select
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agentopt import ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset

PLANNERS = ["gpt-4.1-nano", "gpt-4o"]
SOLVERS = ["gpt-4o-mini", "gpt-5-mini"]

PLAN = ChatPromptTemplate.from_template("Plan the steps, do not solve:\n{question}")
SOLVE = ChatPromptTemplate.from_template("{question}\nPlan:\n{plan}\nEnd with 'Answer: <number>'.")


class PlannerSolver:
    """Two LCEL chains; ``models`` is ``{"planner": ChatOpenAI, "solver": ChatOpenAI}``."""

    def __init__(self, models: dict[str, ChatOpenAI]) -> None:
        self.plan = PLAN | models["planner"] | StrOutputParser()
        self.solve = SOLVE | models["solver"] | StrOutputParser()

    def run(self, question: str) -> str:
        with track_agent("planner"):  # attributes the node's calls (a no-op untracked)
            plan = self.plan.invoke({"question": question})
        with track_agent("solver"):
            return self.solve.invoke({"question": question, "plan": plan})


def main(base_url: str, n: int = 8) -> dict[str, Any]:
    def llm(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=base_url, api_key=SecretStr("sim"), max_retries=0)

    data = arithmetic_dataset(n)
    results = select(
        PlannerSolver,
        {"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        data,
    )

    # Routing: the agent keeps its default models; the router picks each node's model
    # per datapoint and learns from the score fed back.
    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolver({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    records = route(router, agent.run, data)
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
