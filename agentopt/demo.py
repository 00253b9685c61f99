"""``agentopt demo``: pick the best planner → solver combination, end to end, offline.

A two-step agent written with the ``openai`` SDK (a planner writes a plan, a
solver answers with it) is evaluated on arithmetic word problems with known
answers. By default it runs against the simulated provider's ``default`` world,
started in-process at high speed, so it needs no key and no network; with
``--live`` it calls the real OpenAI API (``OPENAI_API_KEY`` required).

The selection uses ``method="auto"``, shows a progress bar and the results
table, and writes into ``--out`` (default ``./agentopt-demo/``):
``results.csv``, ``best_config.yaml``, ``pareto.png`` and ``observations.csv``.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentopt.exceptions import ConfigError

__all__ = [
    "DEMO_MODELS",
    "LIVE_MODELS",
    "DemoOutput",
    "PlannerSolverAgent",
    "arithmetic_dataset",
    "cli_main",
    "grade_answer",
    "run_demo",
]

#: The simulated world's models (named after real ones, priced as them).
DEMO_MODELS: dict[str, list[str]] = {
    "planner": ["gpt-4.1-nano", "gpt-4o", "gpt-5-nano"],
    "solver": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini", "gpt-4.1"],
}
#: Real, inexpensive OpenAI models for ``--live``.
LIVE_MODELS: dict[str, list[str]] = {
    "planner": ["gpt-4.1-nano", "gpt-4o-mini"],
    "solver": ["gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1-mini"],
}
LIVE_BUDGET_USD = 0.50
#: Problems in the offline and the live demo.
DEMO_ITEMS = 150
LIVE_ITEMS = 40

PLANNER_PROMPT = (
    "You are a planner. Read the word problem and write a short numbered plan of the "
    "arithmetic steps needed to solve it. Do not give the final answer."
)
SOLVER_PROMPT = (
    "You are a careful solver. Follow the plan to solve the word problem. "
    "End your reply with 'Answer: <number>'."
)

_MARKER = re.compile(r"\u27e6[^\u27e7]*\u27e7")
_ANSWER = re.compile(r"answer\s*[:\-]?\s*\**\s*(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def grade_answer(expected: str, actual: Any) -> float:
    """1.0 when the reply's final number (after ``Answer:`` if present) equals ``expected``."""
    text = _MARKER.sub("", str(actual or ""))
    found = _ANSWER.findall(text) or _NUMBER.findall(text)
    if not found:
        return 0.0
    try:
        return float(float(found[-1].replace(",", "")) == float(expected))
    except ValueError:
        return 0.0


def arithmetic_dataset(n: int = 150) -> list[tuple[str, str]]:
    """``n`` (word problem, integer answer) pairs from the simulator's graded set."""
    from agentopt.sim.tasks import load_task

    items = load_task("arithmetic")
    if not 1 <= n <= len(items):
        raise ConfigError(f"the demo dataset has 1 to {len(items)} items, not {n}")
    return [(it.question, it.answer) for it in items[:n]]


class PlannerSolverAgent:
    """Planner → solver over the OpenAI chat completions API.

    ``combo`` is ``{"planner": model, "solver": model}``; ``client`` is an
    ``openai.OpenAI`` client shared by all evaluations (it is thread-safe, and
    the tracker captures it whenever it was built).
    """

    def __init__(self, combo: dict[str, str], client: Any, *, max_tokens: int = 400) -> None:
        self.planner = combo["planner"]
        self.solver = combo["solver"]
        self.client = client
        self.max_tokens = max_tokens

    def _chat(self, model: str, system: str, user: str) -> str:
        resp = self.client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            max_tokens=self.max_tokens,
        )
        return str(resp.choices[0].message.content or "")

    def run(self, question: str) -> str:
        plan = self._chat(self.planner, PLANNER_PROMPT, question)
        return self._chat(self.solver, SOLVER_PROMPT, f"{question}\n\nPlan:\n{plan}")


@dataclass
class DemoOutput:
    """What the demo wrote, and the results it wrote them from."""

    results: Any
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    out_dir: str | Path = "agentopt-demo",
    *,
    live: bool = False,
    seed: int = 0,
    progress: bool = True,
    n_items: int | None = None,
    time_scale: float = 0.001,
    models: dict[str, list[str]] | None = None,
    method: str = "auto",
    console: Any = None,
) -> DemoOutput:
    """Run the demo selection and write its files; returns what it wrote."""
    import openai
    from rich.console import Console

    from agentopt.selectors.selector import ModelSelector

    con = console or Console()
    if console is None and not con.is_terminal:
        con = Console(width=120)  # piped output: room for the results table
    out = Path(out_dir)
    t0 = time.perf_counter()
    if live:
        missing = [k for k in ("OPENAI_API_KEY",) if not os.environ.get(k)]
        if missing:
            raise ConfigError(
                "--live calls the real OpenAI API through the openai SDK; missing from the "
                f"environment: {', '.join(missing)}. "
                "OPENAI_BASE_URL may point it at any OpenAI-compatible provider. "
                "Run 'agentopt demo' without --live for the offline, simulated version."
            )
        dataset = arithmetic_dataset(n_items or LIVE_ITEMS)
        chosen = models or LIVE_MODELS
        client = openai.OpenAI(max_retries=2)
        con.print(
            f"[bold]agentopt demo (live)[/]: {len(dataset)} problems, OpenAI API, "
            f"budget ${LIVE_BUDGET_USD:.2f}"
        )
        results = _select(
            ModelSelector, client, chosen, dataset, seed, progress, method, LIVE_BUDGET_USD
        )
    else:
        from agentopt.sim import SimServer

        dataset = arithmetic_dataset(n_items or DEMO_ITEMS)
        chosen = models or DEMO_MODELS
        with SimServer("default", time_scale=time_scale, seed=seed) as sim:
            client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sim", max_retries=0)
            n = len(chosen["planner"]) * len(chosen["solver"])
            con.print(
                f"[bold]agentopt demo[/]: planner → solver agent, {n} model combinations × "
                f"{len(dataset)} arithmetic problems, against the simulated provider at "
                f"{sim.openai_base_url} (no key, no network; simulated delays × {time_scale:g}, "
                "so s/item is scaled too)"
            )
            try:
                results = _select(ModelSelector, client, chosen, dataset, seed, progress, method)
            finally:
                client.close()
    results.print_summary(console=con)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results": results.to_csv(out / "results.csv"),
        "config": results.export_config(out / "best_config.yaml"),
        "plot": results.plot(out / "pareto.png"),
        "observations": out / "observations.csv",
    }
    results.observations_dataframe().to_csv(files["observations"], index=False)
    total = results.n_datapoints * len(results.labels)
    best = results.get_best()
    con.print(
        f"Best: [bold green]{best.label}[/] (score {best.score:.3f}) after "
        f"{results.evaluations} of {total} evaluations "
        f"({1 - results.evaluations / total:.0%} fewer than brute force), "
        f"selection cost ${results.selection_cost:.4f}."
    )
    front = results.pareto_front()
    if len(front) > 1:
        steps = ", ".join(
            f"{r['combo']} ({r['score']:.3f} at ${r['cost_per_item'] * 1000:.3g}/1k)"
            for _, r in front.iterrows()
        )
        con.print(f"Pareto front, cheapest first: {steps}.")
    for name, path in files.items():
        con.print(f"  wrote {name:<12} {path}")
    return DemoOutput(results, out, files, time.perf_counter() - t0)


def _select(
    selector_cls: Any,
    client: Any,
    models: dict[str, list[str]],
    dataset: list[tuple[str, str]],
    seed: int,
    progress: bool,
    method: str,
    budget_usd: float | None = None,
) -> Any:
    def make_agent(combo: dict[str, str]) -> PlannerSolverAgent:
        return PlannerSolverAgent(combo, client)

    selector = selector_cls(
        agent=make_agent,
        models=models,
        eval_fn=grade_answer,
        dataset=dataset,
        method=method,
        seed=seed,
        budget_usd=budget_usd,
    )
    return selector.select_best(parallel=True, max_concurrent=8, progress=progress)


def cli_main(args: argparse.Namespace) -> int:
    """``agentopt demo [--out DIR] [--live] [--seed N] [--no-progress]``."""
    try:
        run_demo(
            getattr(args, "out", "agentopt-demo"),
            live=bool(getattr(args, "live", False)),
            seed=int(getattr(args, "seed", 0) or 0),
            progress=not getattr(args, "no_progress", False),
        )
    except ConfigError as exc:
        import sys

        print(f"agentopt demo: {exc}", file=sys.stderr)
        return 2
    return 0
