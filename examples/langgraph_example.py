"""LangGraph: a planner → solver graph; pick its best models, then route them with feedback.

The candidates are LangChain model objects (``ChatOpenAI(model=...)``) placed in the
graph's nodes. Runs offline against the simulated provider::

    python examples/langgraph_example.py
"""

from __future__ import annotations

from typing import Any, TypedDict

from _scaffold import route, run_on_simulator, select
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from pydantic import SecretStr

from agentopt import ThompsonRouter, track_agent
from agentopt.demo import arithmetic_dataset

PLANNERS = ["gpt-4.1-nano", "gpt-4o"]
SOLVERS = ["gpt-4o-mini", "gpt-5-mini"]


class State(TypedDict, total=False):
    question: str
    plan: str
    answer: str


class PlannerSolverGraph:
    """A two-node graph; ``models`` is ``{"planner": ChatOpenAI, "solver": ChatOpenAI}``."""

    def __init__(self, models: dict[str, ChatOpenAI]) -> None:
        planner, solver = models["planner"], models["solver"]

        def plan(state: State) -> State:
            with track_agent("planner"):
                msg = planner.invoke(f"Plan the steps, do not solve:\n{state['question']}")
            return {"plan": str(msg.content)}

        def solve(state: State) -> State:
            prompt = f"{state['question']}\nPlan:\n{state['plan']}\nEnd with 'Answer: <number>'."
            with track_agent("solver"):
                msg = solver.invoke(prompt)
            return {"answer": str(msg.content)}

        graph = StateGraph(State)
        graph.add_node("plan", plan)
        graph.add_node("solve", solve)
        graph.add_edge(START, "plan")
        graph.add_edge("plan", "solve")
        graph.add_edge("solve", END)
        self.app = graph.compile()

    def run(self, question: str) -> str:
        return str(self.app.invoke({"question": question})["answer"])


def main(base_url: str, n: int = 8) -> dict[str, Any]:
    def llm(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=base_url, api_key=SecretStr("sim"), max_retries=0)

    data = arithmetic_dataset(n)
    results = select(
        PlannerSolverGraph,
        {"planner": [llm(m) for m in PLANNERS], "solver": [llm(m) for m in SOLVERS]},
        data,
    )

    router = ThompsonRouter({"planner": PLANNERS, "solver": SOLVERS}, seed=0)
    agent = PlannerSolverGraph({"planner": llm(PLANNERS[0]), "solver": llm(SOLVERS[0])})
    records = route(router, agent.run, data)
    return {"results": results, "router": router, "records": records}


if __name__ == "__main__":
    run_on_simulator(main)
